"""Root cause of an incident from the evidence it carries: ranking, runbooks, proposals (pure)."""

from datetime import datetime, timedelta, timezone

from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import Incident, IncidentLink, IncidentSignal, Risk, Severity, SignalKind
from kubestack.knowledge.runbook import load_runbooks
from kubestack.pipeline.diagnosis import diagnose
from kubestack.pipeline.runbookmatch import RunbookMatcher
from kubestack.plugins.registry import action_specs

SRC = Source(agent="worker", host="w1")
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
CACHE = ResourceRef(kind="redis", name="cache-1", host="db-1")
APP = ResourceRef(kind="service", name="checkout", host="app-1")
DB = ResourceRef(kind="mysql", name="orders", host="db-2")
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
    return diagnose(inc, SRC, RUNBOOKS, action_specs, T0 + timedelta(minutes=1))


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
