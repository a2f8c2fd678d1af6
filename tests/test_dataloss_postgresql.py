"""Data loss foreseen on a real PostgreSQL: a physical replication slot whose standby is gone retains WAL while a writer
produces it at a varying rate, towards ``max_slot_wal_keep_size`` (96 MB, passed some 40 h at scale after it starts);
a checkpoint every hour at scale invalidates the slot soon after it passes the limit. The real agent collects the
server, the real worker forecasts at a compressed time scale (``tests/dataloss.py``), and the notice must come while
the slot still holds what its consumer needs (``wal_status`` reserved or extended, before unreserved and lost). It
must say what will be lost, reach an incident and come with the proposal to raise the limit."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kubestack.agents.config import AgentConfig
from kubestack.agents.runtime import Agent
from tests.dataloss import COLLECT_S, TIME_SCALE, at_scale, calm_before_the_fault, hours, until, worker_and_watch
from tests.services.postgresql import PostgresServer, running_postgresql

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]  # minutes of WAL at a compressed time scale

KEEP_MB = 96
SLOT = "standby_gone"
CALM_S = hours(10)                   # the slot is collected this long at least before the writer starts
WAL_RATES = (1.9e6, 3.1e6, 2.5e6)   # bytes of WAL a (real) second, each for 2.5 h at scale in turn
MESSAGE = 64 * 1024
LOSS_BOUND_S = 120.0


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with running_postgresql("dataloss-pg", max_slot_wal_keep_size=f"{KEEP_MB}MB") as server:
        yield server


class WalWriter(threading.Thread):
    """Writes WAL (logical messages, not decoded by anyone) at ``WAL_RATES`` and checkpoints every hour at scale."""

    def __init__(self, server: PostgresServer) -> None:
        super().__init__(name="wal-writer", daemon=True)
        self.server, self.stopping = server, threading.Event()

    def run(self) -> None:
        with self.server.admin("shop") as conn:
            started = last_checkpoint = due = time.monotonic()
            while not self.stopping.is_set():
                rate = WAL_RATES[int((time.monotonic() - started) / hours(2.5)) % len(WAL_RATES)]
                conn.execute("select pg_logical_emit_message(false, 'fill', repeat(md5(random()::text), %s))",
                             (MESSAGE // 32,))
                if time.monotonic() - last_checkpoint >= hours(1):
                    conn.execute("checkpoint")
                    last_checkpoint = time.monotonic()
                due += MESSAGE / rate   # the next message on schedule: a busy machine does not slow the rate
                self.stopping.wait(max(0.0, due - time.monotonic()))


class SlotTruth:
    """The slot's ``wal_status``, polled four times a second: when it first left reserved/extended, when it was
    lost."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.rows: list[tuple[datetime, str]] = []
        self.unreserved_at: datetime | None = None
        self.lost_at: datetime | None = None

    async def run(self) -> None:
        with self.server.admin("shop") as conn:
            while True:
                status = conn.execute("select wal_status from pg_replication_slots where slot_name = %s",
                                      (SLOT,)).fetchone()[0]
                now = datetime.now(timezone.utc)
                self.rows.append((now, status))
                if status not in ("reserved", "extended") and self.unreserved_at is None:
                    self.unreserved_at = now
                if status == "lost" and self.lost_at is None:
                    self.lost_at = now
                await asyncio.sleep(0.25)

    def at(self, when: datetime) -> str:
        return [status for at, status in self.rows if at <= when][-1]


def agent_config(name: str, server: PostgresServer) -> AgentConfig:
    return AgentConfig.model_validate({
        "agent": {"name": name, "metrics_listen": None},
        "targets": [{"type": "postgresql", "name": f"{name}-shop-pg", "interval": COLLECT_S, "health_interval": 5,
                     "config_interval": 60,
                     "config": {"host": server.host, "port": server.port, "dbname": server.dbname,
                                "user": server.user, "password": {"value": server.password}}}],
    })


async def test_a_slot_is_warned_before_it_passes_max_slot_wal_keep_size(kafka, postgres: PostgresServer,
                                                                          tmp_path: Path, unique: str) -> None:
    with postgres.admin("shop") as conn:
        conn.execute("select pg_create_physical_replication_slot(%s, true)", (SLOT,))
    truth, writer = SlotTruth(postgres), WalWriter(postgres)
    async with worker_and_watch(kafka, tmp_path) as (settings, watch, worker):
        agent = Agent(agent_config(f"slot-{unique}", postgres), settings)
        stop = asyncio.Event()
        collecting, polling = asyncio.create_task(agent.run(stop)), asyncio.create_task(truth.run())
        try:
            await calm_before_the_fault(watch, worker, CALM_S)
            writer.start()
            await until(lambda: truth.lost_at is not None, LOSS_BOUND_S)
            await until(lambda: watch.told(f"replication slot {SLOT} will lose WAL", "postgresql.alter_system_set"),
                        10)  # the last batches through the worker
        finally:
            writer.stopping.set()
            stop.set()
            polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await polling
            await asyncio.wait_for(collecting, 60)
            with postgres.admin("shop") as conn:
                conn.execute("select pg_drop_replication_slot(%s)", (SLOT,))

    where = f"predictions:\n{watch.said()}\nworker: {worker.output[-3000:]}"
    assert truth.lost_at is not None, f"the slot was not lost in {LOSS_BOUND_S:.0f} s\n{where}"
    notices = [(at, p) for at, p in watch.notices("postgresql_slot_retained_wal_bytes") if p.labels.get("slot") == SLOT]
    assert notices, f"no notice for slot {SLOT}\n{where}"
    arrived, first = notices[0]
    assert arrived < truth.unreserved_at and truth.at(arrived) in ("reserved", "extended"), \
        f"the notice came at {arrived:%H:%M:%S} ({truth.at(arrived)}); unreserved at {truth.unreserved_at:%H:%M:%S}, " \
        f"lost at {truth.lost_at:%H:%M:%S}\n{where}"
    assert first.outcome == f"replication slot {SLOT} will lose WAL its consumer has not received " \
                            "(max_slot_wal_keep_size)"
    assert first.capacity == KEEP_MB * 2**20
    assert any(f"replication slot {SLOT} will lose WAL" in i.summary for i in watch.incidents), \
        f"no incident says what will be lost: {[i.summary for i in watch.incidents]}"
    raise_limit = [p for p in watch.proposals if p.action == "postgresql.alter_system_set"]
    assert raise_limit and raise_limit[0].params == {"name": "max_slot_wal_keep_size", "value": f"{2 * KEEP_MB}MB"}, \
        [(p.action, p.params) for p in watch.proposals]
    lead = (truth.lost_at - arrived).total_seconds()
    before_unreserved = (truth.unreserved_at - arrived).total_seconds()
    print(f"\npostgresql slot {SLOT}: first notice {lead:.1f} s before it was lost ({at_scale(lead)} at scale "
          f"1/{1 / TIME_SCALE:.0f}), {before_unreserved:.1f} s before unreserved ({at_scale(before_unreserved)}), "
          f"{first.severity.value}; foreseen {first.exhaustion_at:%H:%M:%S} (early bound "
          f"{first.exhaustion_lower_bound:%H:%M:%S}), unreserved {truth.unreserved_at:%H:%M:%S}, lost "
          f"{truth.lost_at:%H:%M:%S}; {watch.timeline(notice=arrived, lost=truth.lost_at)}")
