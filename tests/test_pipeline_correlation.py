from datetime import datetime, timedelta, timezone

from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import Finding, HealthReport, IncidentStatus, Severity
from kubestack.pipeline.correlation import Correlator, signals_from_health

SRC = Source(agent="worker/correlate", host="w1")
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
REDIS = ResourceRef(kind="redis", name="cache-1", host="db-1", labels={"service": "checkout"})
MYSQL = ResourceRef(kind="mysql", name="orders", host="db-2", labels={"service": "checkout"})
PG = ResourceRef(kind="postgresql", name="billing", host="db-3")
HOST1 = ResourceRef(kind="host", name="db-1", host="db-1")


def report(resource, *rules, at=T0, severity=Severity.WARNING):
    return HealthReport(source=SRC, resource=resource, ts=at,
                        findings=[Finding(rule_id=r, severity=severity, message=f"{r} fired") for r in rules])


def feed(correlator, rep):
    out = []
    for signal in signals_from_health(rep):
        out += correlator.add(signal, SRC)
    return out + correlator.clear(rep, SRC)


def test_related_signals_become_one_incident_and_repeats_are_compressed() -> None:
    c = Correlator("acme")
    opened = feed(c, report(REDIS, "redis.evictions"))
    assert [e.status for e in opened] == [IncidentStatus.OPEN]
    assert feed(c, report(REDIS, "redis.evictions", at=T0 + timedelta(minutes=1))) == [], "a repeat tells nothing"
    same_host = feed(c, report(HOST1, "host.memory_pressure", at=T0 + timedelta(minutes=2)))
    same_service = feed(c, report(MYSQL, "mysql.connections_high", at=T0 + timedelta(minutes=3)))
    assert [e.status for e in same_host + same_service] == [IncidentStatus.UPDATED, IncidentStatus.UPDATED]
    incident = same_service[-1]
    assert incident.incident_id == opened[0].incident_id
    assert {r.key for r in incident.resources} == {REDIS.key, HOST1.key, MYSQL.key}
    assert len(c.open) == 1 and c.signals_in == 4 and c.incidents_out == 1


def test_unrelated_or_late_signals_open_their_own_incident() -> None:
    c = Correlator("acme", window=timedelta(minutes=5))
    first = feed(c, report(REDIS, "redis.evictions"))
    other = feed(c, report(PG, "postgresql.lock_waits", at=T0 + timedelta(minutes=1)))
    late = feed(c, report(HOST1, "host.disk_full", at=T0 + timedelta(minutes=30)))
    ids = {first[0].incident_id, other[0].incident_id, late[0].incident_id}
    assert len(ids) == 3


def test_incident_resolves_when_its_findings_clear() -> None:
    c = Correlator("acme")
    feed(c, report(REDIS, "redis.evictions", "redis.blocked_clients"))
    partly = feed(c, report(REDIS, "redis.evictions", at=T0 + timedelta(minutes=1)))
    assert partly == []
    cleared = feed(c, report(REDIS, at=T0 + timedelta(minutes=2)))
    assert [e.status for e in cleared] == [IncidentStatus.RESOLVED] and not c.open


def test_quiet_incidents_expire() -> None:
    c = Correlator("acme", quiet=timedelta(minutes=15))
    feed(c, report(REDIS, "redis.evictions"))
    assert c.expire(T0 + timedelta(minutes=14), SRC) == []
    [resolved] = c.expire(T0 + timedelta(minutes=16), SRC)
    assert resolved.status == IncidentStatus.RESOLVED and "no signal" in resolved.summary


def test_ids_are_deterministic_and_state_round_trips() -> None:
    a, b = Correlator("acme"), Correlator("acme")
    replayed = report(REDIS, "redis.evictions")
    first = feed(a, replayed)[0]
    assert feed(b, replayed)[0].incident_id == first.incident_id, "a worker re-reading a signal makes the same id"
    restored = Correlator("acme", state=a.to_state())
    update = feed(restored, report(HOST1, "host.swap", at=T0 + timedelta(minutes=1)))
    assert update[0].incident_id == first.incident_id and update[0].event_id.endswith("-r2")


def test_severity_escalation_is_an_update() -> None:
    c = Correlator("acme")
    feed(c, report(REDIS, "redis.memory_high"))
    worse = feed(c, report(REDIS, "redis.memory_high", at=T0 + timedelta(minutes=1), severity=Severity.CRITICAL))
    assert worse[0].severity == Severity.CRITICAL


def test_a_report_naming_its_rules_clears_only_those() -> None:
    c = Correlator("acme")
    feed(c, report(REDIS, "agent.target_down", "redis.slow_commands"))
    back = HealthReport(source=SRC, resource=REDIS, ts=T0 + timedelta(seconds=5), rules_checked=["agent.target_down"])
    assert c.clear(back, SRC) == [], "slow commands still stand"
    [resolved] = feed(c, report(REDIS, at=T0 + timedelta(minutes=1)))
    assert resolved.status == IncidentStatus.RESOLVED
