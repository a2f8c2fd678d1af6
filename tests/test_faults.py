"""Fault tests: real faults in real Redis, MariaDB and PostgreSQL servers while the real agent collects from them
(metrics, health, configuration, and the servers' own log files) and the real worker correlates. A clean run
produces no incident, also once the log sources are warm; each fault becomes an incident naming its resource
within a bound, and resolves once the server is healthy again. ``pytest -s`` prints the table."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import subprocess
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import psycopg
import pymysql
import pytest
import redis

from kubestack.agents.config import AgentConfig
from kubestack.agents.runtime import Agent
from kubestack.bus import ensure_topics
from kubestack.contract.base import ResourceRef
from kubestack.contract.events import Anomaly, Incident, IncidentStatus, RcaReport, Severity
from kubestack.contract.topics import ANOMALIES, DEAD_LETTER, HEALTH, INCIDENTS, METRICS
from kubestack.pipeline.logstage import DETECTOR_PREFIX
from kubestack.settings import KafkaSettings, Settings
from tests.fault_injection import (
    Fault,
    MariadbConnectionsExhausted,
    MariadbRowLock,
    PostgresAuthFailures,
    PostgresConnectionsExhausted,
    PostgresRowLock,
    RedisMaxmemoryLowered,
    RedisMemoryFull,
    RedisStall,
    redis_client,
)
from tests.kafka_io import consume_all
from tests.fault_watch import Seen, TopicWatch
from tests.services.mariadb import MariadbServer, running_mariadb
from tests.services.postgresql import PostgresServer, running_postgresql
from tests.services.pipeline import (
    LOG_WINDOW_S,
    RHYTHM,
    WARMUP_WINDOWS,
    WINDOW_S,
    naming,
    running_worker,
    since,
)
from tests.services.redis import RedisServer, start_redis

pytestmark = pytest.mark.kafka

DETECT_BOUND_S = 30.0
RESOLVE_BOUND_S = 60.0
PROPOSAL_BOUND_S = 15.0
CLEAN_RUN_S = DETECT_BOUND_S
SETTLE_S = 4.0
# Metric detection runs at the stream's defaults (threshold 0.7; a metric anomaly under 0.9 opens an incident
# only with another signal of its resource): the clean runs must stay quiet with it on.
TARGETS = {"redis": "cache-faults", "mysql": "shop-mariadb", "postgresql": "shop-pg"}
# Logs: the agent tails each server's own log with its plugin's format. PostgreSQL logs connections and the load
# opens a new session about every second (an application without a pool), so its log has steady, routine traffic
# from the start; the log stage is warm WARMUP_WINDOWS windows after its first line, before the log fault.
PG_LOGGING = {"log_connections": "on"}
NEW_SESSION_EVERY = 5
"""Load rounds between two new PostgreSQL sessions."""
WARM_MARGIN_S = 5.0


@dataclass
class Outcome:
    fault: str
    expects: str
    seconds: float | None = None
    ended: str = ""
    """"resolved", or "cleared" (its findings cleared; anomaly members keep it open until a quiet period)"""
    ended_s: float | None = None
    first: bool = False
    named: bool = False
    """The incident came to list the signal the fault should raise."""
    title: str = ""
    signals: str = ""
    cause: str = ""
    """The first hypothesis of the incident's last root-cause report."""
    diagnosed: bool = False
    """A report named the fault's resource and an accepted cause first."""
    runbook: str = ""
    proposals: list[str] = field(default_factory=list)
    rca_ms: float | None = None
    """From the incident revision to its root-cause report."""


@dataclass
class Harness:
    redis: RedisServer
    mariadb: MariadbServer
    postgres: PostgresServer
    watch: TopicWatch
    resources: dict[str, ResourceRef]
    worker: subprocess.Popen
    worker_output: deque
    agent_started: datetime
    outcomes: list[Outcome] = field(default_factory=list)

    async def exercise(self, fault: Fault) -> tuple[Outcome, Incident | None]:
        """Inject, wait for an incident naming the resource, restore, then wait for the incident to resolve, or
        (when anomalies are among its members, which only a quiet period resolves) for its findings to clear."""
        assert await self.settle(), f"not healthy and quiet before {fault.name}: {self.diagnosis()}"
        key = self.resources[fault.kind].key
        outcome = Outcome(fault.name, fault.expects)
        self.outcomes.append(outcome)
        started = datetime.now(timezone.utc)
        try:
            await fault.inject()
            hit = await self.watch.wait_for(lambda s: naming(s, key, started), DETECT_BOUND_S - since(started))
            if hit is not None:  # hold the fault until the incident carries the signal it should raise
                outcome.named = bool(await self.watch.wait_for(
                    lambda s: carrying(s, hit.incident_id, fault.expects), DETECT_BOUND_S - since(started)))
                await self.diagnosed(outcome, fault, hit.incident_id, key, DETECT_BOUND_S - since(started))
        finally:
            await fault.restore()
        if hit is None:
            return outcome, None
        restored = datetime.now(timezone.utc)
        outcome.seconds = (hit.ts - started).total_seconds()
        outcome.first = hit.resources[0].key == key and f"{fault.kind}/{fault.target}" in hit.title
        outcome.title = hit.title

        def over(seen: Seen) -> str | None:
            if hit.incident_id not in seen.open_incidents():
                return "resolved"
            anomalies = {a.event_id for a in seen.anomalies}
            members = {m for i in seen.incidents if i.incident_id == hit.incident_id for m in i.member_event_ids}
            if members & anomalies and not seen.unhealthy(self.resources.values()):
                return "cleared"
            return None

        outcome.ended = await self.watch.wait_for(over, RESOLVE_BOUND_S) or ""

        def proposed(seen: Seen) -> list[str] | None:  # a stall's proposal follows its reopening by the slowlog
            return sorted({p.action for p in seen.proposals if p.incident_id == hit.incident_id}) or None

        outcome.proposals = await self.watch.wait_for(proposed, PROPOSAL_BOUND_S) or []
        outcome.ended_s = since(restored) if outcome.ended else None
        outcome.signals = [i for i in self.watch.seen.incidents if i.incident_id == hit.incident_id
                           and i.status != IncidentStatus.RESOLVED][-1].summary
        return outcome, hit

    async def diagnosed(self, outcome: Outcome, fault: Fault, incident_id: str, key: str, timeout_s: float) -> None:
        """Wait (while the fault holds) for a root-cause report naming the fault's resource and cause first."""

        def right(seen: Seen) -> RcaReport | None:
            return next((r for r in seen.reports if r.incident_id == incident_id and r.hypotheses[0].component == key
                         and r.hypotheses[0].cause.startswith(fault.accepted_causes)), None)

        report = await self.watch.wait_for(right, max(timeout_s, 5.0))
        reports = [r for r in self.watch.seen.reports if r.incident_id == incident_id]
        report = report or (reports[-1] if reports else None)
        if report is None:
            return
        outcome.diagnosed = right(self.watch.seen) is not None
        outcome.cause = report.hypotheses[0].cause
        outcome.runbook = ",".join(report.hypotheses[0].runbooks[:1])
        revision = next((i for i in self.watch.seen.incidents if f"{i.event_id}-rca" == report.event_id), None)
        outcome.rca_ms = (report.ts - revision.ts).total_seconds() * 1000 if revision else None

    async def settle(self) -> bool:
        """Wait until every resource's latest health report is clean and no incident can absorb the next fault's
        signals (none is open, or no signal came for a correlation window), held for ``SETTLE_S``: a finding can
        follow the report that cleared the last one (a stall's slowlog)."""
        loop = asyncio.get_running_loop()
        deadline, calm_since = loop.time() + RESOLVE_BOUND_S + WINDOW_S, None
        while loop.time() < deadline:
            seen = self.watch.seen
            absorbing = seen.open_incidents() and seen.last_signal_age() <= WINDOW_S + 2
            if absorbing or seen.unhealthy(self.resources.values()):
                calm_since = None
            elif calm_since is None:
                calm_since = loop.time()
            elif loop.time() - calm_since >= SETTLE_S:
                return True
            await asyncio.sleep(0.25)
        return False

    async def topic_counts(self) -> str:
        kafka = self.watch.kafka
        names = [spec.qualified(kafka.topic_prefix) for spec in (METRICS, HEALTH, ANOMALIES, INCIDENTS, DEAD_LETTER)]
        counts = {n: len(await consume_all(kafka, n, f"diag-{secrets.token_hex(4)}", timeout_s=10)) for n in names}
        return f"\nrecords per topic: {counts}"

    def diagnosis(self) -> str:
        seen = self.watch.seen
        latest = {}
        for report in seen.health:
            latest[report.resource.key] = [f.rule_id for f in report.findings]
        incidents = [f"{i.ts:%H:%M:%S} {i.status.value} {i.incident_id} {i.title} [{i.summary[:300]}]"
                     for i in seen.incidents[-15:]]
        return (f"\nlatest findings: {latest}\nincidents: {incidents}\nworker: {''.join(self.worker_output)[-3000:]}")


def summary(outcomes: list[Outcome], load: Load, seen: Seen) -> str:
    """The table ``pytest -s`` shows: per fault, time to incident, whether it names the resource first."""
    rows = [f"{'fault':<24} {'expects':<30} {'incident':>8} {'first':>5} {'after restore':>18}  signals"]
    for o in outcomes:
        seconds = f"{o.seconds:.1f}s" if o.seconds is not None else "missed"
        ended = f"{o.ended} {o.ended_s:.1f}s" if o.ended_s is not None else "-"
        first = ("yes" if o.first else "no") + ("" if o.named else "*")
        rows.append(f"{o.fault:<24} {o.expects:<30} {seconds:>8} {first:>5} {ended:>18}"
                    f"  {o.signals[:120]}")
    rows.append(f"\n{'fault':<24} {'root cause (first hypothesis)':<46} {'right':>5} {'rca ms':>7}  runbook; proposals")
    for o in outcomes:
        rca_ms = f"{o.rca_ms:.0f}" if o.rca_ms is not None else "-"
        rows.append(f"{o.fault:<24} {o.cause[:46]:<46} {'yes' if o.diagnosed else 'no':>5} {rca_ms:>7}  "
                    f"{o.runbook or '-'}; {', '.join(o.proposals) or '-'}")
    right = [o for o in outcomes if o.diagnosed]
    rows.append(f"root cause ranked first: {len(right)}/{len(outcomes)}")
    detected = [o for o in outcomes if o.seconds is not None]
    opened = {i.incident_id for i in seen.incidents}
    metric = sum(a.detector.startswith("metric") for a in seen.anomalies)
    signals = len(seen.anomalies) + sum(f.severity != Severity.INFO for h in seen.health for f in h.findings)
    rows.append(f"recall {len(detected)}/{len(outcomes)} (* never listed its signal); "
                f"{signals} signals became {len(opened)} incident(s): compression {signals / max(len(opened), 1):.0f}; "
                f"{metric} metric anomalies, {len(seen.anomalies) - metric} other; "
                f"load: {load.rounds} rounds, {len(load.errors)} errors")
    return "\n" + "\n".join(rows)


def carrying(seen: Seen, incident_id: str, signal: str) -> Incident | None:
    return next((i for i in seen.incidents if i.incident_id == incident_id and signal in i.summary), None)


# --- the harness: servers, worker, agent, light load -------------------------------------------------


class Load(threading.Thread):
    """Light, steady traffic on the three servers, so a healthy run looks like one."""

    def __init__(self, harness_servers: tuple[RedisServer, MariadbServer, PostgresServer]) -> None:
        super().__init__(name="fault-load", daemon=True)
        self.servers = harness_servers
        self.stopping = threading.Event()
        self.rounds = 0
        self.errors: list[str] = []

    def run(self) -> None:
        cache, mariadb, postgres = self.servers
        with redis_client(cache) as r, mariadb.admin() as m, postgres.admin() as p:
            while not self.stopping.wait(0.2):
                try:
                    r.incr("load:rounds")
                    r.set(f"load:{self.rounds % 50}", "v" * 100)
                    with m.cursor() as cur:
                        cur.execute("SELECT qty FROM shop.stock WHERE id = 2")
                    p.execute("SELECT qty FROM stock WHERE id = 2").fetchone()
                    if self.rounds % NEW_SESSION_EVERY == 0:
                        with postgres.admin() as session:
                            session.execute("SELECT qty FROM stock WHERE id = 2").fetchone()
                    self.rounds += 1
                except (redis.RedisError, pymysql.MySQLError, psycopg.Error) as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")


def _seed(mariadb: MariadbServer, postgres: PostgresServer) -> None:
    with mariadb.admin() as admin, admin.cursor() as cur:
        cur.execute("CREATE TABLE shop.stock (id INT PRIMARY KEY, qty INT) ENGINE=InnoDB")
        cur.execute("INSERT INTO shop.stock VALUES (1, 100), (2, 100)")
    with postgres.admin() as admin:
        admin.execute("CREATE TABLE stock (id int PRIMARY KEY, qty int)")
        admin.execute("INSERT INTO stock VALUES (1, 100), (2, 100)")


def _agent_config(name: str, cache: RedisServer, mariadb: MariadbServer, postgres: PostgresServer) -> AgentConfig:
    common = {"timeout_s": 2}
    return AgentConfig.model_validate({
        "agent": {"name": name, "metrics_listen": None},
        "targets": [
            {"type": "redis", "name": TARGETS["redis"], **RHYTHM, "labels": {"service": "cache"},
             "config": {"host": cache.host, "port": cache.port, "password": {"value": cache.password},
                        "slowlog_window_s": 3, "log_path": str(cache.log_path), **common}},
            {"type": "mysql", "name": TARGETS["mysql"], **RHYTHM, "labels": {"service": "shop"},
             "config": {"host": mariadb.host, "port": mariadb.port, "user": mariadb.user,
                        "password": {"value": mariadb.password}, "lock_wait_min_s": 1,
                        "log_path": str(mariadb.log_path), **common}},
            {"type": "postgresql", "name": TARGETS["postgresql"], **RHYTHM, "labels": {"service": "orders"},
             "config": {"host": postgres.host, "port": postgres.port, "dbname": postgres.dbname,
                        "user": postgres.user, "password": {"value": postgres.password}, "lock_wait_s": 1,
                        "log_path": str(postgres.log_path), **common}},
        ],
    })


async def _warm(watch: TopicWatch, resources: dict[str, ResourceRef]) -> None:
    keys = {r.key for r in resources.values()}
    reported = await watch.wait_for(lambda s: keys <= {h.resource.key for h in s.health if h.reachable}, 60)
    assert reported, f"not every target reported health: {[h.resource.key for h in watch.seen.health]}"


@pytest.fixture(scope="module")
async def harness(kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("faults")
    unique = secrets.token_hex(5)
    settings = Settings(home=base / "home", kafka=kafka.model_copy(update={"topic_prefix": f"faults.{unique}."}))
    with contextlib.ExitStack() as stack:
        redis_proc, cache = start_redis("cache", base, secrets.token_hex(8), "--maxmemory", "64mb",
                                        "--maxmemory-policy", "allkeys-lru", "--enable-debug-command", "local")
        stack.callback(redis_proc.stop)
        (base / "mariadb").mkdir()
        mariadb = stack.enter_context(running_mariadb(base / "mariadb"))
        postgres = stack.enter_context(running_postgresql("faults-pg", max_connections="20", **PG_LOGGING))
        _seed(mariadb, postgres)
        await ensure_topics(settings.kafka)
        watch = TopicWatch(settings.kafka)
        await watch.start()
        worker, output = stack.enter_context(running_worker(settings.kafka, f"faults-worker-{unique}", base / "worker"))
        config = _agent_config(f"faults-{unique}", cache, mariadb, postgres)
        agent = Agent(config, settings)
        resources = {c.resource.kind: c.resource for c in agent.collectors}
        load = Load((cache, mariadb, postgres))
        load.start()
        stop = asyncio.Event()
        agent_started = datetime.now(timezone.utc)
        running = asyncio.create_task(agent.run(stop), name="fault-agent")
        harness = Harness(cache, mariadb, postgres, watch, resources, worker, output, agent_started)
        try:
            await _warm(watch, resources)
            yield harness
        finally:
            load.stopping.set()
            stop.set()
            await running
            await watch.stop()
            load.join(timeout=30)
            print(summary(harness.outcomes, load, watch.seen))


# --- the tests ------------------------------------------------------------------------------------------


async def test_clean_run_produces_no_incident(harness: Harness) -> None:
    started = datetime.now(timezone.utc)
    await asyncio.sleep(CLEAN_RUN_S)  # the observation window itself, not a wait for something
    seen = harness.watch.seen
    window = [h for h in seen.health if h.ts >= started]
    for kind, resource in harness.resources.items():
        reports = [h for h in window if h.resource.key == resource.key]
        assert len(reports) >= CLEAN_RUN_S / 2, f"{kind} reported health only {len(reports)} times"
        loud = {f.rule_id for h in reports for f in h.findings if f.severity != Severity.INFO}
        assert not loud, f"{kind} is not healthy at rest: {loud}"
    assert seen.incidents == [], harness.diagnosis()


FAULTS = {
    "redis-memory-full": lambda h: RedisMemoryFull("redis-memory-full", "redis", TARGETS["redis"],
                                                   "redis.memory_near_limit", server=h.redis),
    "redis-stall": lambda h: RedisStall("redis-stall", "redis", TARGETS["redis"], "agent.target_down",
                                        server=h.redis),
    "mariadb-connections": lambda h: MariadbConnectionsExhausted(
        "mariadb-connections", "mysql", TARGETS["mysql"], "mysql.connections_near_max", server=h.mariadb,
        causes=("mysql.connections_near_max", "mysql.max_connections_cut")),  # the fault cuts max_connections
    "mariadb-row-lock": lambda h: MariadbRowLock("mariadb-row-lock", "mysql", TARGETS["mysql"],
                                                 "mysql.row_lock_waits", server=h.mariadb),
    "postgres-row-lock": lambda h: PostgresRowLock("postgres-row-lock", "postgresql", TARGETS["postgresql"],
                                                   "postgresql.lock_wait", server=h.postgres),
    "postgres-connections": lambda h: PostgresConnectionsExhausted(
        "postgres-connections", "postgresql", TARGETS["postgresql"], "postgresql.connections_near_max",
        server=h.postgres),
}


@pytest.mark.parametrize("name", list(FAULTS))
async def test_fault_becomes_an_incident_naming_its_resource(harness: Harness, name: str) -> None:
    fault = FAULTS[name](harness)
    outcome, incident = await harness.exercise(fault)
    assert incident is not None, f"no incident on {fault.kind}/{fault.target} within {DETECT_BOUND_S:g}s" \
                                 + harness.diagnosis() + await harness.topic_counts()
    assert outcome.first, f"the incident names another resource first: {incident.title} {incident.resources}"
    assert outcome.named, f"{incident.incident_id} never listed {fault.expects}" + harness.diagnosis()
    assert outcome.ended, f"{incident.incident_id} neither resolved nor cleared" + harness.diagnosis()
    assert_diagnosed(outcome, fault)


def assert_diagnosed(outcome: Outcome, fault: Fault) -> None:
    assert outcome.diagnosed, f"the root-cause report names {outcome.cause!r} first, not {fault.accepted_causes}"
    assert outcome.runbook, f"no runbook matches {outcome.cause!r}"
    assert outcome.proposals, f"nothing proposed for {outcome.cause!r}"


async def test_lowered_maxmemory_is_an_incident_with_its_config_risk(harness: Harness) -> None:
    fault = RedisMaxmemoryLowered("redis-maxmemory-lowered", "redis", TARGETS["redis"], "redis.maxmemory_lowered",
                                  server=harness.redis)
    outcome, incident = await harness.exercise(fault)
    assert incident is not None, "no incident for the lowered maxmemory" + harness.diagnosis()
    assert outcome.first, f"the incident names another resource first: {incident.title} {incident.resources}"
    assert outcome.named, f"{incident.incident_id} never listed {fault.expects}" + harness.diagnosis()
    key = harness.resources["redis"].key

    def risk_member(seen: Seen) -> str | None:
        risks = {a.event_id for a in seen.anomalies
                 if a.detector == "config-risk" and a.signal == fault.expects and a.resource.key == key}
        members = {m for i in seen.incidents if i.incident_id == incident.incident_id for m in i.member_event_ids}
        return next(iter(risks & members), None)

    assert await harness.watch.wait_for(risk_member, 5), "the config-risk anomaly is not a member of the incident"
    assert_diagnosed(outcome, fault)
    assert "redis.set_maxmemory" in outcome.proposals, "undoing the change is proposed"


async def test_clean_run_with_warm_logs_produces_no_incident(harness: Harness) -> None:
    """Once the PostgreSQL log source is warm its routine lines (sessions, checkpoints) raise nothing, and no log
    anomaly came out of the warm-up, faults included: new templates while a source starts do not alert."""
    warm_at = harness.agent_started + timedelta(seconds=WARMUP_WINDOWS * LOG_WINDOW_S + WARM_MARGIN_S)
    await asyncio.sleep(max(0.0, (warm_at - datetime.now(timezone.utc)).total_seconds()))  # the warm-up itself
    assert await harness.settle(), f"not healthy and quiet once warm: {harness.diagnosis()}"
    started = datetime.now(timezone.utc)
    await asyncio.sleep(CLEAN_RUN_S)  # the observation window itself
    seen = harness.watch.seen
    shipped = seen.log_lines(harness.resources["postgresql"].key, started)
    assert len(shipped) >= CLEAN_RUN_S / 2, f"only {len(shipped)} PostgreSQL log lines reached the worker"
    from_logs = [f"{a.ts:%H:%M:%S} {a.resource.key} {a.detector} {a.score} {a.details.get('line')}"
                 for a in seen.anomalies if a.detector.startswith(DETECTOR_PREFIX)]
    assert from_logs == [], "the log stage alerted on normal server logs:\n" + "\n".join(from_logs)
    assert [i for i in seen.incidents_since(started) if i.status != IncidentStatus.RESOLVED] == [], \
        harness.diagnosis()


async def test_failed_logins_are_an_incident_found_in_the_postgres_log(harness: Harness) -> None:
    fault = PostgresAuthFailures("postgres-failed-logins", "postgresql", TARGETS["postgresql"], DETECTOR_PREFIX,
                                 server=harness.postgres)
    outcome, incident = await harness.exercise(fault)
    assert incident is not None, f"no incident for the failed logins within {DETECT_BOUND_S:g}s" \
                                 + harness.diagnosis() + await harness.topic_counts()
    assert outcome.first, f"the incident names another resource first: {incident.title} {incident.resources}"
    assert outcome.named, f"{incident.incident_id} never listed a log signal" + harness.diagnosis()
    key = harness.resources["postgresql"].key

    def log_member(seen: Seen) -> Anomaly | None:
        members = {m for i in seen.incidents if i.incident_id == incident.incident_id for m in i.member_event_ids}
        return next((a for a in seen.anomalies if a.event_id in members and a.resource.key == key
                     and a.detector.startswith(DETECTOR_PREFIX)
                     and "password authentication failed" in a.details["line"]), None)

    member = await harness.watch.wait_for(log_member, 5)
    assert member, "no log anomaly about the failed logins is a member of the incident" + harness.diagnosis()
    assert outcome.ended, f"{incident.incident_id} neither resolved nor cleared" + harness.diagnosis()
    assert_diagnosed(outcome, fault)


async def test_worker_survives_every_fault(harness: Harness) -> None:
    assert harness.worker.poll() is None, "the worker stopped during the faults" + harness.diagnosis()
