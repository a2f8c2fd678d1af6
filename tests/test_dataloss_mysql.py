"""Data loss foreseen on a real MariaDB pair: the replica's IO thread is stopped on purpose while the primary writes and
rotates its binary logs every hour at scale with a short expiry (34 s: 34 h at scale); each rotation purges the files
last written longer ago than that. The real agent collects the replica (and, through it, its primary's binary logs),
the real worker forecasts at a compressed time scale (``tests/dataloss.py``), and the notice must come while the
primary still has the binary log the replica needs. It must say what will be lost, reach an incident and come with
the proposal to keep binary logs longer on the primary. Once the file is purged the replica's health says its stream
is lost, before its IO thread asks for the file and after (error 1236)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kubestack.agents.config import AgentConfig
from kubestack.agents.runtime import Agent
from kubestack.errors import PreconditionFailedError
from kubestack.plugins.base import LocalRunner
from kubestack.plugins.mysql import MySQLConfig, MySQLPlugin
from kubestack.plugins.mysql.client import DirectMySQLClient
from kubestack.plugins.mysql.parse import parse_replica_status
from kubestack.plugins.mysql.sources import BinlogReader
from tests.dataloss import COLLECT_S, TIME_SCALE, at_scale, calm_before_the_fault, hours, until, worker_and_watch
from tests.services.mariadb import MariadbPair, MariadbServer
from tests.services.process import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

EXPIRE_S = 34            # the first notice can come 24 s (a day at scale) after the first sample
ROTATE_S = hours(1)
STOP_AFTER_S = hours(10)    # the replica keeps up at first (and until the worker is ready)
LOSS_BOUND_S = STOP_AFTER_S + EXPIRE_S + 30


@pytest.fixture(scope="module")
def pair(mariadb_pair: MariadbPair) -> Iterator[MariadbPair]:
    """The session's pair with a short expiry; this module breaks its replication on purpose, and mends it."""
    with mariadb_pair.primary.admin() as admin, admin.cursor() as cur:
        cur.execute("SELECT @@binlog_expire_logs_seconds")
        saved = cur.fetchone()[0]
        cur.execute(f"SET GLOBAL binlog_expire_logs_seconds = {EXPIRE_S}")
        cur.execute("CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(200))")
    try:
        yield mariadb_pair
    finally:
        with mariadb_pair.primary.admin() as admin, admin.cursor() as cur:
            cur.execute(f"SET GLOBAL binlog_expire_logs_seconds = {int(saved)}")
        mariadb_pair.restart_replication()
        with mariadb_pair.primary.admin() as admin, admin.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS shop.orders")
        mariadb_pair.wait_caught_up()


class Writer(threading.Thread):
    """Writes to the primary and rotates its binary log every ``ROTATE_S`` (each rotation purges expired files)."""

    def __init__(self, primary: MariadbServer) -> None:
        super().__init__(name="binlog-writer", daemon=True)
        self.primary, self.stopping = primary, threading.Event()

    def run(self) -> None:
        with self.primary.admin() as admin, admin.cursor() as cur:
            rotated = time.monotonic()
            while not self.stopping.wait(hours(0.1)):
                cur.execute("INSERT INTO shop.orders (note) VALUES (REPEAT('x', 200))")
                if time.monotonic() - rotated >= ROTATE_S:
                    cur.execute("FLUSH BINARY LOGS")
                    rotated = time.monotonic()


class Truth:
    """The primary's binary logs four times a second: when the one the replica needs was purged."""

    def __init__(self, pair: MariadbPair) -> None:
        self.pair = pair
        self.needed: str | None = None
        self.purged_at: datetime | None = None

    async def run(self) -> None:
        with self.pair.primary.admin() as admin, admin.cursor() as cur:
            while True:
                cur.execute("SHOW BINARY LOGS")
                kept = {row[0] for row in cur.fetchall()}
                if self.needed is not None and self.needed not in kept and self.purged_at is None:
                    self.purged_at = datetime.now(timezone.utc)
                await asyncio.sleep(0.25)

    def stop_replica_io(self) -> None:
        with self.pair.replica.admin() as admin, admin.cursor() as cur:
            cur.execute("STOP SLAVE IO_THREAD")
        self.needed = self.pair.replica_status()["Master_Log_File"]


def config_for(server: MariadbServer) -> dict:
    return {"host": server.host, "port": server.port, "user": server.user, "password": {"value": server.password}}


def agent_config(name: str, replica: MariadbServer) -> AgentConfig:
    return AgentConfig.model_validate({
        "agent": {"name": name, "metrics_listen": None},
        "targets": [{"type": "mysql", "name": f"{name}-db-2", "interval": COLLECT_S, "health_interval": 5,
                     "config_interval": 60, "config": config_for(replica)}],
    })


async def test_a_stopped_replica_is_warned_before_its_primary_purges_the_binlog_it_needs(
        kafka, pair: MariadbPair, tmp_path: Path, unique: str) -> None:
    truth, writer = Truth(pair), Writer(pair.primary)
    async with worker_and_watch(kafka, tmp_path) as (settings, watch, worker):
        agent = Agent(agent_config(f"binlog-{unique}", pair.replica), settings)
        stop = asyncio.Event()
        collecting, polling = asyncio.create_task(agent.run(stop)), asyncio.create_task(truth.run())
        writer.start()
        try:
            await calm_before_the_fault(watch, worker, STOP_AFTER_S)
            truth.stop_replica_io()
            await until(lambda: truth.purged_at is not None, LOSS_BOUND_S - STOP_AFTER_S)
            await until(lambda: watch.told("will lose its binary log stream", "mysql.set_source_binlog_expiry"),
                        10)  # the last batches through the worker
        finally:
            writer.stopping.set()
            stop.set()
            polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await polling
            await asyncio.wait_for(collecting, 60)

    where = f"predictions:\n{watch.said()}\nworker: {worker.output[-3000:]}"
    assert truth.purged_at is not None, f"{truth.needed} was not purged in {LOSS_BOUND_S:.0f} s\n{where}"
    notices = watch.notices("mysql_replica_needed_binlog_age_seconds")
    assert notices, f"no notice for the replica\n{where}"
    arrived, first = notices[0]
    assert arrived < truth.purged_at, \
        f"the notice came at {arrived:%H:%M:%S}, {truth.needed} was purged at {truth.purged_at:%H:%M:%S}\n{where}"
    source = f"{pair.primary.host}:{pair.primary.port}"
    assert first.outcome == f"this replica will lose its binary log stream from {source} (binlog_expire_logs_seconds)"
    assert first.capacity == EXPIRE_S and first.labels == {"channel": "", "source": source}
    assert any("will lose its binary log stream" in i.summary for i in watch.incidents), \
        f"no incident says what will be lost: {[i.summary for i in watch.incidents]}"
    keep_longer = [p for p in watch.proposals if p.action == "mysql.set_source_binlog_expiry"]
    assert keep_longer and keep_longer[0].params == {"seconds": 2 * EXPIRE_S, "channel": ""}, \
        [(p.action, p.params) for p in watch.proposals]
    lead = (truth.purged_at - arrived).total_seconds()
    print(f"\nmariadb replica of {source}: first notice {lead:.1f} s before {truth.needed} was purged "
          f"({at_scale(lead)} at scale 1/{1 / TIME_SCALE:.0f}), {first.severity.value}; foreseen "
          f"{first.exhaustion_at:%H:%M:%S} (early bound {first.exhaustion_lower_bound:%H:%M:%S}), purged "
          f"{truth.purged_at:%H:%M:%S}; {watch.timeline(notice=arrived, purged=truth.purged_at)}")

    plugin = MySQLPlugin.create(MySQLConfig.model_validate(config_for(pair.replica)))
    try:
        [lost] = [f for f in await plugin.check_health() if f.rule_id == "mysql.replica_binlog_purged"]
        assert lost.evidence["needed_file"] == truth.needed and lost.evidence["last_io_errno"] == 0, lost
        assert lost.evidence["oldest_on_source"] > truth.needed
        with pair.replica.admin() as admin, admin.cursor() as cur:
            cur.execute("START SLAVE IO_THREAD")
        async with asyncio.timeout(30):
            while pair.replica_status()["Last_IO_Errno"] != 1236:
                await asyncio.sleep(0.2)
        [told] = [f for f in await plugin.check_health() if f.rule_id == "mysql.replica_binlog_purged"]
        assert told.evidence["last_io_errno"] == 1236 and "binary log" in told.evidence["last_io_error"], told
    finally:
        await plugin.close()


async def test_keeping_binlogs_longer_runs_on_the_replicas_primary_with_a_dry_run_and_an_undo(
        pair: MariadbPair) -> None:
    pair.restart_replication()
    with pair.primary.admin() as admin, admin.cursor() as cur:   # replicated: the same user on the replica
        cur.execute("CREATE USER IF NOT EXISTS 'binlog_ops'@'%%' IDENTIFIED BY %s", (pair.primary.password,))
        cur.execute("GRANT BINLOG MONITOR, BINLOG ADMIN, SLAVE MONITOR ON *.* TO 'binlog_ops'@'%'")
    pair.wait_caught_up()
    plugin = MySQLPlugin.create(MySQLConfig.model_validate(config_for(pair.replica) | {"user": "binlog_ops"}))

    def expiry() -> int:
        with pair.primary.admin() as admin, admin.cursor() as cur:
            cur.execute("SELECT @@binlog_expire_logs_seconds")
            return int(cur.fetchone()[0])

    try:
        before = expiry()
        source = f"{pair.primary.host}:{pair.primary.port}"
        dry = await plugin.execute("mysql.set_source_binlog_expiry", {"seconds": 3 * before}, dry_run=True)
        assert source in dry.output and expiry() == before
        done = await plugin.execute("mysql.set_source_binlog_expiry", {"seconds": 3 * before})
        assert expiry() == 3 * before and done.before["source"] == source
        assert done.undo == ("mysql.set_source_binlog_expiry", {"seconds": before, "channel": ""})
        await plugin.execute(*done.undo)
        assert expiry() == before
        with pytest.raises(PreconditionFailedError, match="no channel 'elsewhere'"):
            await plugin.execute("mysql.set_source_binlog_expiry", {"seconds": 600, "channel": "elsewhere"})
    finally:
        await plugin.close()


@pytest.mark.parametrize("cli", [False, True], ids=["direct", "mariadb-cli"])
async def test_the_primary_sizes_its_binlogs_on_its_disk_and_a_caught_up_replica_needs_nothing_old(
        pair: MariadbPair, cli: bool) -> None:
    pair.wait_caught_up()
    runner = LocalRunner() if cli else None
    source = f"{pair.primary.host}:{pair.primary.port}"
    primary = MySQLPlugin.create(MySQLConfig.model_validate(config_for(pair.primary) | {"cli": "mariadb"}), runner)
    replica = MySQLPlugin.create(MySQLConfig.model_validate(config_for(pair.replica) | {"cli": "mariadb"}), runner)
    try:
        own = {s.name: s for s in await primary.collect()}
        stream = {s.name: s for s in await replica.collect()}
    finally:
        await primary.close()
        await replica.close()
    with pair.primary.admin() as admin, admin.cursor() as cur:
        cur.execute("SHOW BINARY LOGS")
        kept = cur.fetchall()
    assert own["mysql_binlog_files"].value == len(kept)
    assert own["mysql_binlog_size_bytes"].value == sum(int(size) for _, size in kept)
    assert own["mysql_binlog_expire_seconds"].value == EXPIRE_S
    seen_here = not cli   # through a runner the files are on the runner's host: not read by the agent
    assert ("mysql_binlog_disk_capacity_bytes" in own) is seen_here
    assert ("mysql_binlog_oldest_age_seconds" in own) is (seen_here and len(kept) > 1)
    assert "mysql_binlog_files" not in stream, "the replica writes no binary log of its own"
    assert stream["mysql_source_binlog_expire_seconds"].labels == {"channel": "", "source": source}
    assert stream["mysql_source_binlog_expire_seconds"].value == EXPIRE_S
    assert stream["mysql_replica_needed_binlog_age_seconds"].value == 0, "it reads the file being written"
    assert stream["mysql_replica_unread_binlog_bytes"].value == 0


async def test_a_primary_that_cannot_be_reached_is_said_once_and_asked_again_a_minute_later(
        pair: MariadbPair, caplog: pytest.LogCaptureFixture) -> None:
    closed = free_port()
    row = {k: None if v is None else str(v) for k, v in pair.replica_status().items()}
    [status] = parse_replica_status([row | {"Master_Port": str(closed)}])
    reader = BinlogReader(MySQLPlugin.create(MySQLConfig()).client,
                          lambda host, port: DirectMySQLClient(MySQLConfig(host=host, port=port, timeout_s=1)),
                          host="127.0.0.1", binlog_dir=None, read_sources=True)
    caplog.set_level(logging.DEBUG, logger="kubestack.plugins.mysql.sources")
    try:
        assert await reader.of_source(status) is None
        assert await reader.of_source(status) is None
    finally:
        await reader.close()
    said = [r for r in caplog.records if r.name == "kubestack.plugins.mysql.sources"]
    assert [(r.levelno, f"127.0.0.1:{closed}" in r.getMessage()) for r in said] == [(logging.INFO, True)], \
        "the second round within RETRY_S does not try again"
