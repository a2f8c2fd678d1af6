"""The root-cause stage's work on an incident's evidence: the one engine's ranking, runbooks, proposals (pure);
and the same case through the replay and the worker ranks the same."""

import csv
from datetime import datetime, timedelta, timezone

from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import Incident, IncidentLink, IncidentSignal, Risk, Severity, SignalKind
from kubestack.knowledge.runbook import load_runbooks
from kubestack.models.rootcause_case import rank_case, read_case
from kubestack.pipeline.rootcause import call_edges, opening_signal, rank_incident_causes, symptom_signal
from kubestack.pipeline.runbookmatch import RunbookMatcher
from kubestack.plugins.registry import action_specs
from tests.test_rca_replay import ONSET_ROW, write_chain
from tests.test_rca_replay import T0 as REPLAY_T0

SRC = Source(agent="worker", host="w1")
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
CACHE = ResourceRef(kind="redis", name="cache-1", host="db-1")
APP = ResourceRef(kind="service", name="checkout", host="app-1")
DB = ResourceRef(kind="mysql", name="orders", host="db-2")
PG = ResourceRef(kind="postgresql", name="stock", host="db-3")
HOST = ResourceRef(kind="host", name="db-3", host="db-3")
RUNBOOKS = RunbookMatcher(load_runbooks())


def signal(resource, name, at, kind=SignalKind.FINDING, severity=Severity.WARNING, score=None, **details):
    return IncidentSignal(event_id=f"e-{resource.name}-{name}", kind=kind, name=name, resource=resource.key,
                          first_seen=T0 + timedelta(seconds=at), last_seen=T0 + timedelta(seconds=at + 5),
                          severity=severity, summary=f"{name} fired", score=score, details=details)


def incident(resources, signals, links=()):
    return Incident(source=SRC, resource=resources[0], incident_id="inc-1", event_id="inc-1-r2", title="t",
                    severity=Severity.CRITICAL, opened_at=T0, resources=resources,
                    member_event_ids=[s.event_id for s in signals] or ["-"], signals=signals, links=list(links))


def run(inc):
    return rank_incident_causes(inc, SRC, RUNBOOKS, action_specs, T0 + timedelta(minutes=1))


def test_a_risky_change_before_the_symptoms_is_the_cause_and_its_undo_is_proposed() -> None:
    change = [{"key": "maxmemory", "old": "67108864", "new": "1048576"}]
    inc = incident([CACHE], [
        signal(CACHE, "redis.memory_near_limit", 3, severity=Severity.CRITICAL),
        signal(CACHE, "config-risk:redis.maxmemory_lowered", 1, kind=SignalKind.ANOMALY, score=1.0, changes=change),
    ])
    result = run(inc)
    first = result.report.hypotheses[0]
    assert (first.component, first.cause) == (CACHE.key, "redis.maxmemory_lowered")
    assert first.evidence_ids[0] == "e-cache-1-config-risk:redis.maxmemory_lowered" and len(first.evidence_ids) == 2
    assert first.runbooks[0] == "redis/memory-full"
    assert [(p.action, p.params, p.risk) for p in result.proposals] == [
        ("redis.set_maxmemory", {"bytes": "67108864"}, Risk.LOW)]
    assert "restore maxmemory to 67108864" in result.proposals[0].expected_effect
    assert result.proposals[0].verify_rules == ["redis.memory_near_limit"], "the symptom the undo should clear"
    assert result.report.narrative.startswith("Most likely cause: redis.maxmemory_lowered on")
    assert result.report.ts == T0 + timedelta(minutes=1) and result.report.incident_id == "inc-1"


def test_the_callee_that_moved_first_outranks_its_caller() -> None:
    inc = incident([APP, DB], [
        signal(APP, "service.latency_high", 20, severity=Severity.CRITICAL),
        signal(DB, "mysql.row_lock_waits", 5, evidence={"waits": [{"blocking_id": 42, "waiting_id": 7}]}),
    ], links=[IncidentLink(source=APP.key, target=DB.key, reason="client")])
    result = run(inc)
    ranked = [(h.component, h.cause) for h in result.report.hypotheses]
    assert ranked == [(DB.key, "mysql.row_lock_waits"), (APP.key, "service.latency_high")]
    assert result.report.hypotheses[0].runbooks[0] == "mysql/row-lock-waits"
    assert [(p.action, p.params) for p in result.proposals] == [("mysql.kill_connection", {"id": 42})]
    assert sum(h.confidence for h in result.report.hypotheses) <= 1.0


def test_deterministic_and_empty_incidents_give_nothing() -> None:
    inc = incident([CACHE], [signal(CACHE, "agent.target_down", 0, severity=Severity.CRITICAL)])
    assert run(inc).report == run(inc).report
    assert run(inc).report.hypotheses[0].runbooks[0] == "host/target-down"
    assert run(inc).proposals == [], "no action without the evidence to parameterise it"
    assert run(incident([CACHE], [])) is None


def test_a_limit_being_reached_gets_room_proposed_within_the_plugin_actions() -> None:
    evidence = {"maxmemory": 1000, "used_memory": 990, "maxmemory_policy": "noeviction"}
    result = run(incident([CACHE], [signal(CACHE, "redis.noeviction_memory_high", 0, evidence=evidence)]))
    assert [(p.action, p.params) for p in result.proposals] == [
        ("redis.set_maxmemory", {"bytes": "1250"}), ("redis.set_maxmemory_policy", {"policy": "allkeys-lru"})]
    assert result.proposals[0].rollback.startswith("CONFIG SET maxmemory") and result.proposals[0].preconditions
    pg = ResourceRef(kind="postgresql", name="orders", host="db-3")
    busy = {"by_state": {"active": 3, "idle in transaction": 12}, "max_connections": 20}
    result = run(incident([pg], [signal(pg, "postgresql.connections_near_max", 0, evidence=busy)]))
    assert [(p.action, p.params) for p in result.proposals] == [
        ("postgresql.terminate_idle_in_transaction", {"min_idle_s": "60"})]


def test_idle_sessions_holding_the_slots_are_proposed_for_closing() -> None:
    pg = ResourceRef(kind="postgresql", name="orders", host="db-3")
    idle = {"by_state": {"active": 1, "idle": 18}, "max_connections": 20}
    result = run(incident([pg], [signal(pg, "postgresql.connections_near_max", 0, severity=Severity.CRITICAL,
                                        evidence=idle)]))
    assert [(p.action, p.params) for p in result.proposals] == [
        ("postgresql.terminate_idle_sessions", {"min_idle_s": "300"})]
    assert "18 idle now" in result.proposals[0].expected_effect


def test_the_client_that_stalled_redis_is_proposed_for_disconnecting_once_the_slowlog_names_it() -> None:
    down = signal(CACHE, "agent.target_down", 0, severity=Severity.CRITICAL)
    assert run(incident([CACHE], [down])).proposals == []
    entries = [
        {"id": 7, "started_at": 1, "duration_us": 8_000_000, "command": "DEBUG SLEEP 8", "client": "10.0.0.7:5100"},
        {"id": 8, "started_at": 2, "duration_us": 20_000, "command": "KEYS *", "client": "10.0.0.9:6100"}]
    slow = signal(CACHE, "redis.slow_commands", 9, evidence={"entries": entries})
    result = run(incident([CACHE], [down, slow]))
    assert result.report.hypotheses[0].cause == "agent.target_down"
    assert [(p.action, p.params, p.risk) for p in result.proposals] == [
        ("redis.client_kill", {"addr": "10.0.0.7:5100"}, Risk.MEDIUM)]
    assert "DEBUG SLEEP 8" in result.proposals[0].expected_effect


def test_an_undo_proposed_before_any_symptom_is_verified_by_what_the_action_answers() -> None:
    change = [{"key": "maxmemory", "old": "67108864", "new": "1048576"}]
    inc = incident([CACHE], [
        signal(CACHE, "config-risk:redis.maxmemory_lowered", 1, kind=SignalKind.ANOMALY, score=1.0, changes=change)])
    [undo] = run(inc).proposals
    assert undo.params == {"bytes": "67108864"}
    assert "redis.memory_near_limit" in undo.verify_rules, "never a run with nothing to verify it by"


def test_password_guessing_on_a_role_proposes_locking_it_with_approval() -> None:
    pg = ResourceRef(kind="postgresql", name="orders", host="db-3")
    line = '2026-11-23 10:00:01.123 UTC [4242] app@shop FATAL:  password authentication failed for user "app"'
    failed = signal(pg, "log/new-template:7", 0, kind=SignalKind.ANOMALY, score=1.0, line=line,
                    template='<*> FATAL: password authentication failed for user "<*>"')
    result = run(incident([pg], [failed]))
    assert [(p.action, p.params, p.risk) for p in result.proposals] == [
        ("postgresql.lock_role", {"name": "app"}, Risk.HIGH)]
    assert "locked out too" in result.proposals[0].expected_effect


def test_a_limit_reached_outranks_the_slow_commands_it_causes_on_the_same_resource() -> None:
    slow = signal(CACHE, "redis.slow_commands", 0)
    full = signal(CACHE, "redis.memory_near_limit", 2, evidence={"maxmemory": 1000, "used_memory": 990})
    result = run(incident([CACHE], [slow, full]))
    assert result.report.hypotheses[0].cause == "redis.memory_near_limit"
    assert result.proposals[0].verify_rules == ["redis.memory_near_limit"], "watch what the action answers"


def test_the_callee_of_a_callee_is_the_cause_the_symptom_it_opened_with_its_victim() -> None:
    """checkout -> cache -> stock: the checkout's critical latency alert opened the incident and weighs most of
    all the signals, the cache's latency moved 10 s before it, and a lock wait on the database 20 s before that.
    Along the calls, the database explains both of its callers and moved first."""
    alert = signal(APP, "service.latency_high", 30, severity=Severity.CRITICAL)
    inc = incident([APP, CACHE, PG], [
        alert,
        signal(APP, "metric/likelihood:latency_p99", 31, kind=SignalKind.ANOMALY, score=0.9, metric="latency_p99"),
        signal(CACHE, "metric/likelihood:latency_ms", 20, kind=SignalKind.ANOMALY, score=0.8, metric="latency_ms"),
        signal(PG, "postgresql.lock_wait", 0, evidence={"blocked_pid": 7, "blocking_pid": 42, "wait_s": 12.0}),
    ], links=[IncidentLink(source=APP.key, target=CACHE.key, reason="client"),
              IncidentLink(source=CACHE.key, target=PG.key, reason="depends_on")])
    inc = inc.model_copy(update={"opened_at": alert.first_seen})
    assert opening_signal(inc) is inc.signals[0]
    result = run(inc)
    ranked = [(h.component, h.cause) for h in result.report.hypotheses]
    assert ranked[0] == (PG.key, "postgresql.lock_wait"), ranked
    assert ranked[1][0] == APP.key and ranked[2][0] == CACHE.key, "the cache calls the database: its victim"
    first = result.report.hypotheses[0]
    assert first.evidence_ids == ["e-stock-postgresql.lock_wait"]
    assert result.report.hypotheses[1].evidence_ids == ["e-checkout-service.latency_high",
                                                        "e-checkout-metric/likelihood:latency_p99"]
    assert abs(sum(h.confidence for h in result.report.hypotheses) - 1.0) < 0.01
    assert "fired. Explains 2 of 3 anomalous components upstream" in result.report.narrative
    assert all(p.resource.key == PG.key for p in result.proposals)


def test_a_config_change_on_a_peer_outranks_the_symptoms_own_finding() -> None:
    """MariaDB's connections near the maximum opened the incident (critical); half a minute earlier maxmemory was
    lowered on the Redis sharing its host. Related without a direction, either may have moved the other: the risky
    change, earlier and weightier, is the cause, and its undo is proposed."""
    host_db = ResourceRef(kind="mysql", name="orders", host="db-1")
    full = signal(host_db, "mysql.connections_near_max", 30, severity=Severity.CRITICAL,
                  evidence={"threads_connected": 148, "max_connections": 151})
    change = [{"key": "maxmemory", "old": "67108864", "new": "1048576"}]
    inc = incident([host_db, CACHE], [
        full,
        signal(CACHE, "config-risk:redis.maxmemory_lowered", 0, kind=SignalKind.ANOMALY, score=1.0, changes=change),
    ], links=[IncidentLink(source=host_db.key, target=CACHE.key, reason="same_host")])
    inc = inc.model_copy(update={"opened_at": full.first_seen})
    result = run(inc)
    ranked = [(h.component, h.cause) for h in result.report.hypotheses]
    assert ranked == [(CACHE.key, "redis.maxmemory_lowered"), (host_db.key, "mysql.connections_near_max")]
    assert result.report.hypotheses[0].confidence > 0.6
    assert [(p.action, p.params) for p in result.proposals] == [("redis.set_maxmemory", {"bytes": "67108864"})]
    alone = incident([host_db], [full])
    assert run(alone).report.hypotheses[0].cause == "mysql.connections_near_max", "the finding, when alone"


def test_links_become_calls_with_their_direction_and_undirected_ones_both_ways() -> None:
    inc = incident([APP, CACHE, PG, HOST], [signal(APP, "service.latency_high", 0)], links=[
        IncidentLink(source=APP.key, target=CACHE.key, reason="client"),
        IncidentLink(source=HOST.key, target=PG.key, reason="same_host"),
        IncidentLink(source=CACHE.key, target=PG.key, reason="service")])
    assert call_edges(inc) == [(APP.key, CACHE.key), (PG.key, HOST.key), (CACHE.key, PG.key), (PG.key, CACHE.key)]


def test_the_replay_and_the_worker_rank_the_same_case_alike(tmp_path) -> None:
    """frontend -> api -> db, the database slowing first: ``kubestack rca replay`` on the case folder, and the
    worker on an incident carrying the same series, graph, onset and symptom (the detector's anomalies of those
    series are columns, not priors) rank the same components in the same order."""
    folder = write_chain(tmp_path / "chain", start=True, symptom=True)
    replayed = rank_case(read_case(folder))
    with (folder / "metrics.csv").open() as handle:
        rows = list(csv.reader(handle))
    series = {tuple(name.split("|")): [(float(row[0]), float(row[j])) for row in rows[1:]]
              for j, name in enumerate(rows[0]) if j > 0}
    onset = datetime.fromtimestamp(REPLAY_T0 + 10 * ONSET_ROW, timezone.utc)
    refs = {name: ResourceRef(kind="service", name=name, host="h") for name in ("frontend", "api", "db")}
    signals = [IncidentSignal(event_id=f"e-{name}", kind=SignalKind.ANOMALY, name="metric/likelihood:latency_ms",
                              resource=ref.key, first_seen=onset, last_seen=onset, severity=Severity.WARNING,
                              score=0.8, details={"metric": "latency_ms"}) for name, ref in refs.items()]
    inc = Incident(source=SRC, resource=refs["frontend"], incident_id="inc-chain", title="t",
                   severity=Severity.WARNING, opened_at=onset, resources=list(refs.values()),
                   member_event_ids=[s.event_id for s in signals], signals=signals,
                   links=[IncidentLink(source=refs["frontend"].key, target=refs["api"].key, reason="client"),
                          IncidentLink(source=refs["api"].key, target=refs["db"].key, reason="client")])
    keyed = {(refs[component].key, metric): points for (component, metric), points in series.items()}
    live = rank_incident_causes(inc, SRC, RUNBOOKS, action_specs, onset, series=keyed, step=10.0)
    assert [h.component for h in live.report.hypotheses] == [refs[c.component].key for c in replayed.causes]
    assert live.top_cause == f"{refs['db'].key}|metric/likelihood:latency_ms"
    assert live.report.hypotheses[0].evidence_ids == ["e-db"], "a series' anomaly is cited, though not a prior"


def test_on_one_host_the_callers_view_decides_the_symptom_is_what_clients_felt_and_the_host_is_a_callee() -> None:
    """A shop and its order-writer on one machine with their two databases and the machine itself. MariaDB's
    lock waits open the incident (the shop holds its row while it waits on PostgreSQL, whose lock waits show two
    seconds later); each database saw clients at the machine's own address, which names no one (the links that
    makes between the two databases and from the host are no calls). The symptom is the shop's error, the first felt
    by a part that calls MariaDB (the order-writer's came earlier but never reaches it); PostgreSQL, called by both
    parts, is the cause."""
    on = {name: ResourceRef(kind=kind, name=name, host="vm") for kind, name in (
        ("mysql", "orders-db"), ("http", "shop"), ("postgresql", "shop-db"), ("http", "order-writer"),
        ("host", "vm"))}
    shop, writer, orders, stock, vm = (on[n] for n in ("shop", "order-writer", "orders-db", "shop-db", "vm"))
    inc = incident(list(on.values()), [
        signal(orders, "mysql.row_lock_waits", 0),
        signal(writer, "http.error_ratio", 1, severity=Severity.CRITICAL),
        signal(stock, "postgresql.lock_wait", 2),
        signal(shop, "http.error_ratio", 3, severity=Severity.CRITICAL),
    ], links=[IncidentLink(source=shop.key, target=orders.key, reason="server"),
              IncidentLink(source=stock.key, target=orders.key, reason="client"),
              IncidentLink(source=shop.key, target=stock.key, reason="server"),
              IncidentLink(source=writer.key, target=stock.key, reason="server"),
              IncidentLink(source=vm.key, target=stock.key, reason="client")])
    edges = call_edges(inc)
    assert (stock.key, orders.key) not in edges and not [e for e in edges if e[0] == vm.key]
    assert {(r.key, vm.key) for r in (shop, writer, orders, stock)} <= set(edges)
    assert symptom_signal(inc).resource == shop.key and opening_signal(inc).resource == orders.key
    ranked = [h.component for h in run(inc).report.hypotheses]
    assert ranked[0] == stock.key and ranked[1] == orders.key, ranked
