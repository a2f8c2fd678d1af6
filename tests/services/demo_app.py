"""Session fixture: the demo application (``kubestack.demo``) under steady load, on servers of its own: a Redis
(allkeys-lru, 64 MB), a PostgreSQL (25 connection slots), a MariaDB and a single-node Kafka broker started for it
alone (the cascade tests pause it: never the session's shared broker). The shop, its order-writer consumer and the
load run as real processes (``python -m kubestack.demo ...``); ``targets()`` are the agent targets that watch all of
it (both parts through the ``http`` plugin, every server through its own plugin, and the host)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from kubestack.demo.config import DemoConfig, Endpoint
from kubestack.demo.schema import setup_mariadb, setup_postgresql
from kubestack.deploy.kafka.launcher import LocalKafka
from kubestack.settings import LocalKafkaSettings
from tests.services.kafka_jars import with_jars
from tests.services.process import ServerProcess, ServerStartError, free_port

if TYPE_CHECKING:  # imported where used: the session's plugin loader registers these modules after this one
    from tests.services.mariadb import MariadbServer
    from tests.services.postgresql import PostgresServer
    from tests.services.redis import RedisServer

RHYTHM = {"interval": 1, "health_interval": 1, "config_interval": 2}
DEMO_USER = "shop"


@dataclass
class DemoStack:
    config: DemoConfig
    config_path: Path
    redis: RedisServer
    postgres: PostgresServer
    mariadb: MariadbServer
    broker: LocalKafka
    parts: dict[str, ServerProcess] = field(default_factory=dict)

    @property
    def broker_pid(self) -> int:
        pid = self.broker.pid()
        assert pid is not None, "the demo's broker is not running"
        return pid

    def metrics(self, part: str = "app") -> str:
        port = self.config.app_port if part == "app" else self.config.consumer_metrics_port
        return httpx.get(f"http://{self.config.app_host}:{port}/metrics", timeout=5).text

    def answered(self) -> dict[str, float]:
        """The shop's requests so far by status."""
        out: dict[str, float] = {}
        for line in self.metrics().splitlines():
            if line.startswith("http_requests_total{"):
                status = line.split('status="')[1].split('"')[0]
                out[status] = out.get(status, 0.0) + float(line.rsplit(" ", 1)[1])
        return out

    def targets(self, host_name: str = "demo-host") -> list[dict]:
        c, common = self.config, {"timeout_s": 2}
        redis, pg, maria = self.redis, self.postgres, self.mariadb
        return [
            # each part's own listener as its address: a server seen at "127.0.0.1:port" is then that one alone
            {"type": "http", "name": "shop", **RHYTHM, "labels": {"address": f"{c.app_host}:{c.app_port}"},
             "config": {"url": f"{c.app_url}/metrics", **common}},
            {"type": "http", "name": "order-writer", **RHYTHM,
             "labels": {"address": f"{c.app_host}:{c.consumer_metrics_port}"},
             "config": {"url": f"http://{c.app_host}:{c.consumer_metrics_port}/metrics",
                        "requests_metric": "demo_events_total", "latency_metric": "demo_event_duration_seconds",
                        "min_requests": 1, **common}},
            {"type": "redis", "name": "shop-cache", **RHYTHM,
             "config": {"host": redis.host, "port": redis.port, "password": {"value": redis.password},
                        "slowlog_window_s": 3,  # a stall's slowlog entry must not hold the next fault back
                        "log_path": str(redis.log_path), **common}},
            {"type": "postgresql", "name": "shop-db", **RHYTHM,
             "config": {"host": pg.host, "port": pg.port, "dbname": pg.dbname, "user": pg.user,
                        "password": {"value": pg.password}, "lock_wait_s": 1, "log_path": str(pg.log_path),
                        **common}},
            {"type": "mysql", "name": "orders-db", **RHYTHM,
             "config": {"host": maria.host, "port": maria.port, "user": maria.user,
                        "password": {"value": maria.password}, "lock_wait_min_s": 1,
                        "log_path": str(maria.log_path), **common}},
            {"type": "kafka", "name": "events", **RHYTHM, "labels": {"address": c.kafka_bootstrap},
             "config": {"bootstrap": c.kafka_bootstrap, "groups": [c.group], "lag_high": 200, "timeout_s": 5}},
        ]


def _prepare_postgres(server: PostgresServer, password: str, products: int, page_bytes: int,
                      volume: Path | None) -> None:
    with server.admin() as admin:
        admin.execute(f"CREATE ROLE {DEMO_USER} LOGIN PASSWORD '{password}'")
        setup_postgresql(admin, products, page_bytes)
        if volume is not None:
            admin.execute(f"CREATE TABLESPACE events LOCATION '{volume / 'ts'}'")
            admin.execute("ALTER TABLE order_events SET TABLESPACE events")
        admin.execute(f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {DEMO_USER}")
        admin.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {DEMO_USER}")


def _prepare_mariadb(server: MariadbServer, password: str, products: int) -> None:
    with server.admin() as admin, admin.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS demo")
        cur.execute(f"CREATE USER '{DEMO_USER}'@'%%' IDENTIFIED BY %s", (password,))
        cur.execute(f"GRANT SELECT, INSERT, UPDATE ON demo.* TO '{DEMO_USER}'@'%'")
        cur.execute("USE demo")
        setup_mariadb(admin, products)


@contextlib.contextmanager
def small_volume(mount: Path, size_mb: int = 24) -> Iterator[Path | None]:
    """A filesystem of its own (an ext4 image on a loop device) mounted at ``mount``, owned by postgres, for the
    tablespace the volume-full fault fills; None where loop devices cannot be mounted (that fault then fails)."""
    image = mount.with_suffix(".img")
    mount.mkdir(parents=True, exist_ok=True)
    mount.parent.chmod(0o755)  # postgres reaches its tablespace through it
    subprocess.run(["truncate", "-s", f"{size_mb}M", str(image)], check=True)
    made = subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], capture_output=True, text=True)
    mounted = made.returncode == 0 and subprocess.run(
        ["mount", "-o", "loop", str(image), str(mount)], capture_output=True, text=True).returncode == 0
    try:
        if mounted:
            (mount / "ts").mkdir()
            shutil.chown(mount / "ts", "postgres", "postgres")
        yield mount if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)
        image.unlink(missing_ok=True)
        shutil.rmtree(mount.parent, ignore_errors=True)


def _wait_http(url: str, part: ServerProcess, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if part.proc.poll() is not None:
            raise ServerStartError(f"{part.name} exited with {part.proc.returncode}:\n{part.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise ServerStartError(f"{part.name} did not answer {url} within {timeout_s:.0f}s:\n{part.tail()}")


def start_part(stack: DemoStack, part: str, base: Path) -> ServerProcess:
    process = ServerProcess(f"demo-{part}", [sys.executable, "-m", "kubestack.demo", part, "--config",
                                             str(stack.config_path)], base / f"{part}.log")
    stack.parts[part] = process
    return process


@contextlib.contextmanager
def running_demo(base: Path, *, rate: float = 20.0, jars: Path | None = None) -> Iterator[DemoStack]:
    """The demo's servers, its two parts and its load, until the block ends (its broker on ``jars`` when given,
    else on jars it resolves)."""
    from tests.services.mariadb import running_mariadb
    from tests.services.postgresql import running_postgresql
    from tests.services.redis import start_redis

    local = LocalKafkaSettings(port=free_port(), controller_port=free_port())
    broker = LocalKafka(local, with_jars(base / "kafka-home", jars) if jars else base / "kafka-home")
    broker.up()
    redis_process = None
    try:
        redis_process, redis = start_redis("demo-cache", base, secrets.token_hex(8), "--maxmemory", "64mb",
                                           "--maxmemory-policy", "allkeys-lru")
        with running_postgresql("demo-pg", max_connections="25") as pg, running_mariadb(base / "mariadb") as maria, \
                small_volume(Path(tempfile.mkdtemp(prefix="kubestack-demo-vol-", dir="/tmp")) / "pg") as volume:
            password = secrets.token_hex(8)
            config = DemoConfig(
                redis=Endpoint(host=redis.host, port=redis.port, password=redis.password),
                postgresql=Endpoint(host=pg.host, port=pg.port, user=DEMO_USER, password=password,
                                    database=pg.dbname),
                mariadb=Endpoint(host=maria.host, port=maria.port, user=DEMO_USER, password=password,
                                 database="demo"),
                kafka_bootstrap=local.bootstrap, app_port=free_port(), consumer_metrics_port=free_port(), rate=rate,
                volume=volume)
            _prepare_postgres(pg, password, config.products, config.page_bytes, volume)
            _prepare_mariadb(maria, password, config.products)
            stack = DemoStack(config, base / "demo.json", redis, pg, maria, broker)
            config.save(stack.config_path)
            try:
                app = start_part(stack, "app", base)
                _wait_http(f"{config.app_url}/healthz", app)
                consumer = start_part(stack, "consumer", base)
                _wait_http(f"http://{config.app_host}:{config.consumer_metrics_port}/metrics", consumer)
                start_part(stack, "load", base)
                yield stack
            finally:
                for part in reversed(list(stack.parts.values())):
                    part.stop()
    finally:
        with contextlib.suppress(ProcessLookupError, TypeError):
            os.kill(broker.pid(), signal.SIGCONT)  # never leave a paused broker behind
        broker.stop()
        if redis_process is not None:
            redis_process.stop()


@pytest.fixture(scope="session")
def demo_stack(tmp_path_factory: pytest.TempPathFactory, kafka_jars: Path) -> Iterator[DemoStack]:
    with running_demo(tmp_path_factory.mktemp("demo"), jars=kafka_jars) as stack:
        yield stack


def wait_serving(stack: DemoStack, timeout_s: float = 60.0, min_ok: int = 50) -> dict[str, float]:
    """Blocks until the shop has answered ``min_ok`` requests with 2xx (the load reached it end to end)."""
    deadline = time.monotonic() + timeout_s
    answered: dict[str, float] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            answered = stack.answered()
            if sum(v for k, v in answered.items() if k.startswith("2")) >= min_ok:
                return answered
        time.sleep(0.5)
    raise AssertionError(f"the shop did not serve its load: {answered}; app:\n{stack.parts['app'].tail()}")



# --- one cascade cycle, shared by tests/test_cascade.py and bench/rca/cascade.py ----------------------------------

SYMPTOM_TARGETS = ("shop", "order-writer")
"""The demo's own parts: where the faults are felt."""
CAUSE_TARGETS = {"redis": "shop-cache", "postgresql": "shop-db", "mysql": "orders-db", "kafka": "events",
                 "host": "demo-host"}
HOST_TARGET = {"type": "host", "name": "demo-host", **RHYTHM,
               # the load threshold far up: the machines this runs on are shared (10 per core happens)
               "config": {"processes": ["redis-server", "postgres"], "load_per_core_high": 50}}


@dataclass
class CascadeOutcome:
    """What one fault produced: the incident holding the cause and a symptom, and the rank of the true cause."""

    fault: str
    cause: str
    incident: str = ""
    resources: list[str] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)
    ranking: list[str] = field(default_factory=list)
    rank: int | None = None
    detect_s: float | None = None
    split_into: list[str] = field(default_factory=list)
    """Other incidents opened on the cause or a symptom during the fault."""
    record: dict = field(default_factory=dict, repr=False)
    """The incident and its report as the worker published them (JSON)."""

    def row(self) -> str:
        rank = "-" if self.rank is None else str(self.rank)
        detect = "-" if self.detect_s is None else f"{self.detect_s:.0f}s"
        return (f"{self.fault:<16} {self.cause.split('/')[-1]:<12} rank={rank:>2} detect={detect:>5} "
                f"split={len(self.split_into)} resources={[k.split('/')[-1] for k in self.resources]} "
                f"ranking={self.ranking[:3]} signals={self.signals[:14]}")


def _holding(seen, keys: set[str], cause: str, started):
    """The latest revision of an incident since ``started`` holding the cause and one of the symptoms ``keys``."""
    for incident in reversed(seen.incidents_since(started)):
        held = {r.key for r in incident.resources}
        if cause in held and held & keys:
            return incident
    return None


async def cascade_cycle(pipeline, watched: dict, stack: DemoStack, name: str, *, detect_s: float = 60.0,
                        rank_s: float = 40.0, settle_s: float = 150.0, min_resources: int = 3,
                        grow_s: float = 20.0) -> CascadeOutcome:
    """Settle, inject fault ``name`` into the demo, wait for one incident holding its cause and a symptom, for a
    report ranking the cause first and for the incident to hold ``min_resources`` (``grow_s`` at most), restore;
    what happened (ranked by the incident's latest report), for the caller to judge."""
    import asyncio
    from datetime import datetime, timezone

    from kubestack.demo.faults import FAULTS, KafkaPaused, fault

    options = {"broker_pid": stack.broker.pid} if FAULTS[name] is KafkaPaused else {}
    one = fault(name, stack.config, **options)
    cause = watched[CAUSE_TARGETS[one.cause]]
    symptoms = {watched[s].key for s in SYMPTOM_TARGETS}
    outcome = CascadeOutcome(name, cause.key)
    if not await pipeline.settle(list(watched.values()), timeout_s=settle_s):
        raise AssertionError("not healthy and quiet before the fault" + pipeline.diagnosis())
    started = datetime.now(timezone.utc)
    await asyncio.to_thread(one.inject)
    report = None
    try:
        incident = await pipeline.watch.wait_for(lambda s: _holding(s, symptoms, cause.key, started), detect_s)
        if incident is not None:
            outcome.detect_s = (incident.ts - started).total_seconds()

            def first(seen):
                return next((r for r in reversed(seen.reports) if r.incident_id == incident.incident_id
                             and r.hypotheses and r.hypotheses[0].component == cause.key), None)

            report = await pipeline.watch.wait_for(first, rank_s)
            reports = [r for r in pipeline.watch.seen.reports if r.incident_id == incident.incident_id]
            report = report or (reports[-1] if reports else None)

            def grown(seen):  # the cascade reaches further while the fault lasts: give it a little time to
                latest = next(i for i in reversed(seen.incidents) if i.incident_id == incident.incident_id)
                return len(latest.resources) >= min_resources

            await pipeline.watch.wait_for(grown, grow_s)
            reports = [r for r in pipeline.watch.seen.reports if r.incident_id == incident.incident_id]
            if reports and reports[-1].hypotheses:  # the latest ranking, over everything the incident holds
                report = reports[-1]
    finally:
        await asyncio.to_thread(one.restore)
    seen = pipeline.watch.seen
    earlier = {i.incident_id for i in seen.incidents if i.ts < started}  # their updates and resolutions are not new
    outcome.split_into = sorted({i.incident_id for i in seen.incidents_since(started)
                                 if i.incident_id not in earlier
                                 and (incident is None or i.incident_id != incident.incident_id)
                                 and {r.key for r in i.resources} & (symptoms | {cause.key})})
    if incident is None:
        return outcome
    incident = next((i for i in reversed(seen.incidents) if i.incident_id == incident.incident_id), incident)
    outcome.incident = incident.incident_id
    outcome.resources = sorted(r.key for r in incident.resources)
    outcome.signals = [f"{s.resource.split('/')[-1]}:{s.name}" for s in incident.signals]
    components = [h.component for h in report.hypotheses] if report else []
    outcome.ranking = [f"{h.component.split('/')[-1]}:{h.cause}" for h in report.hypotheses] if report else []
    outcome.rank = components.index(cause.key) + 1 if cause.key in components else None
    outcome.record = {"fault": name, "incident": incident.model_dump(mode="json"),
                      "report": report.model_dump(mode="json") if report else None}
    return outcome
