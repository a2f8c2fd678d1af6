import json
from datetime import datetime, timedelta, timezone

from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import Anomaly, Finding, HealthReport, IncidentStatus, Peer, PeerRole, Severity
from kubestack.pipeline.correlation import Correlator, related, signals_from_anomaly, signals_from_health

SRC = Source(agent="worker/correlate", host="w1")
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
REDIS = ResourceRef(kind="redis", name="cache-1", host="db-1", labels={"service": "checkout"})
MYSQL = ResourceRef(kind="mysql", name="orders", host="db-2", labels={"service": "checkout"})
PG = ResourceRef(kind="postgresql", name="billing", host="db-3")
HOST1 = ResourceRef(kind="host", name="db-1", host="db-1")


def report(resource, *rules, at=T0, severity=Severity.WARNING, peers=()):
    return HealthReport(source=SRC, resource=resource, ts=at, peers=list(peers),
                        findings=[Finding(rule_id=r, severity=severity, message=f"{r} fired") for r in rules])


def feed(correlator, rep):
    """What the correlate stage does with a health report."""
    correlator.learn(rep)
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


def test_a_signal_soon_after_the_resolution_reopens_the_incident_of_its_resource() -> None:
    """A stall clears, and its slowlog entry follows a report later: one incident, reopened, not two."""
    c = Correlator("acme", reopen=timedelta(minutes=2))
    [opened] = feed(c, report(REDIS, "agent.target_down", severity=Severity.CRITICAL))
    [resolved] = feed(c, report(REDIS, at=T0 + timedelta(seconds=30)))
    assert resolved.status == IncidentStatus.RESOLVED and not c.open
    [reopened] = feed(c, report(REDIS, "redis.slow_commands", at=T0 + timedelta(seconds=31)))
    assert reopened.incident_id == opened.incident_id and reopened.status == IncidentStatus.UPDATED
    assert reopened.event_id == f"{opened.incident_id}-r3"
    assert {s.name for s in reopened.signals} == {"agent.target_down", "redis.slow_commands"}
    [again] = feed(c, report(REDIS, at=T0 + timedelta(seconds=40)))
    assert again.status == IncidentStatus.RESOLVED and again.event_id == f"{opened.incident_id}-r4"
    assert Correlator("acme", state=json.loads(json.dumps(c.to_state()))).resolved.keys() == {opened.incident_id}


def test_a_later_or_unrelated_signal_opens_a_new_incident_after_a_resolution() -> None:
    c = Correlator("acme", reopen=timedelta(minutes=2))
    [opened] = feed(c, report(REDIS, "redis.evictions"))
    feed(c, report(REDIS, at=T0 + timedelta(seconds=30)))
    [other] = feed(c, report(PG, "postgresql.lock_waits", at=T0 + timedelta(seconds=40)))
    [late] = feed(c, report(REDIS, "redis.evictions", at=T0 + timedelta(minutes=5)))
    assert len({opened.incident_id, other.incident_id, late.incident_id}) == 3
    never = Correlator("acme", reopen=timedelta(0))
    [first] = feed(never, report(REDIS, "redis.evictions"))
    feed(never, report(REDIS, at=T0 + timedelta(seconds=30)))
    [second] = feed(never, report(REDIS, "redis.evictions", at=T0 + timedelta(seconds=31)))
    assert second.incident_id != first.incident_id and second.status == IncidentStatus.OPEN


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


# --- the learned dependency graph -------------------------------------------------------------------------

APP = ResourceRef(kind="service", name="checkout-api", host="app-1")
APP2 = ResourceRef(kind="service", name="billing-api", host="app-2")
CACHE = ResourceRef(kind="redis", name="sessions", host="cache-1", labels={"address": "10.0.0.5:6379"})
CACHE_REPLICA = ResourceRef(kind="redis", name="sessions-replica", host="cache-2")
CLIENTS = [Peer(role=PeerRole.CLIENT, address="app-1", count=20), Peer(role=PeerRole.CLIENT, address="app-2")]


def anomaly(resource, signal, at):
    return Anomaly(source=SRC, resource=resource, ts=at, detector="hst", signal=signal, score=0.9,
                   window_start=at, window_end=at)


def add_anomaly(correlator, event):
    return [i for s in signals_from_anomaly(event) for i in correlator.add(s, SRC)]


def test_without_observed_connections_other_hosts_open_their_own_incidents() -> None:
    c = Correlator("acme")
    feed(c, report(CACHE, "redis.memory_high"))
    add_anomaly(c, anomaly(APP, "http_latency_seconds", T0 + timedelta(minutes=1)))
    assert len(c.open) == 2 and not related(APP, CACHE, c.topology)


def test_a_report_whose_peers_link_two_hosts_joins_their_signals() -> None:
    c = Correlator("acme")
    [opened] = add_anomaly(c, anomaly(APP, "http_latency_seconds", T0))
    [joined] = feed(c, report(CACHE, "redis.memory_high", at=T0 + timedelta(minutes=1), peers=CLIENTS))
    assert joined.incident_id == opened.incident_id and joined.status == IncidentStatus.UPDATED
    assert {r.key for r in joined.resources} == {APP.key, CACHE.key}
    replica_report = report(CACHE_REPLICA, "redis.replica_link_down", at=T0 + timedelta(minutes=2),
                            peers=[Peer(role=PeerRole.PRIMARY, address="10.0.0.5:6379")])
    assert feed(c, replica_report)[0].incident_id == opened.incident_id, "the replica follows that cache"
    assert len(c.open) == 1


def test_two_clients_of_one_cache_are_not_related_through_it() -> None:
    c = Correlator("acme")
    c.learn(report(CACHE, peers=CLIENTS))
    add_anomaly(c, anomaly(APP, "http_latency_seconds", T0))
    add_anomaly(c, anomaly(APP2, "http_errors_total", T0 + timedelta(minutes=1)))
    assert len(c.open) == 2, "direct neighbours only"


def test_the_learned_graph_is_part_of_the_state() -> None:
    c = Correlator("acme")
    c.learn(report(CACHE, peers=CLIENTS))
    restored = Correlator("acme", state=json.loads(json.dumps(c.to_state())))
    [opened] = add_anomaly(restored, anomaly(CACHE, "redis_used_memory_bytes", T0))
    [joined] = add_anomaly(restored, anomaly(APP2, "http_errors_total", T0 + timedelta(minutes=1)))
    assert joined.incident_id == opened.incident_id


def prediction(resource, status, at, hours=None, early=None, pid="pred-1"):
    from kubestack.contract.events import Prediction, PredictionStatus

    return Prediction(source=SRC, resource=resource, ts=at, prediction_id=pid, signal="redis_used_memory_bytes",
                      capacity=1e9, exhaustion_at=None if hours is None else at + timedelta(hours=hours),
                      exhaustion_lower_bound=None if early is None else at + timedelta(hours=early), confidence=0.7,
                      model="forecast/holt", status=PredictionStatus(status), severity=Severity.WARNING)


def test_a_prediction_joins_the_incident_of_its_resource_says_when_and_resolves_when_withdrawn() -> None:
    from kubestack.pipeline.correlation import signals_from_prediction

    c = Correlator("acme", quiet=timedelta(minutes=15))
    opened = [i for s in signals_from_prediction(prediction(REDIS, "active", T0, hours=9, early=6))
              for i in c.add(s, SRC)]
    assert [i.status for i in opened] == [IncidentStatus.OPEN]
    assert "will run out" in opened[0].title
    assert "redis_used_memory_bytes runs out in ~9 h (early bound 6 h)" in opened[0].summary
    assert c.expire(T0 + timedelta(hours=2), SRC) == [], "a standing forecast keeps its incident open"

    later = T0 + timedelta(hours=3)
    moved = [i for s in signals_from_prediction(prediction(REDIS, "updated", later, hours=4, early=3))
             for i in c.add(s, SRC)]
    assert [i.status for i in moved] == [IncidentStatus.UPDATED] and "runs out in ~4 h" in moved[0].summary
    joined = feed(c, report(HOST1, "host.memory_pressure", at=later))
    assert [i.incident_id for i in joined] == [opened[0].incident_id], "the same host's finding joins it"

    feed(c, report(HOST1, at=later + timedelta(minutes=1)))  # the finding clears; the forecast still stands
    resolved = c.withdraw(prediction(REDIS, "withdrawn", later + timedelta(minutes=2)), SRC)
    assert [i.status for i in resolved] == [IncidentStatus.RESOLVED]
    assert "no longer holds" in resolved[0].summary


def test_incidents_carry_their_signals_and_how_their_resources_are_related() -> None:
    app = ResourceRef(kind="service", name="checkout", host="app-1")
    cache = ResourceRef(kind="redis", name="cache-9", host="db-9", labels={"address": "10.0.0.9:6379"})
    c = Correlator("acme")
    feed(c, report(cache, "redis.memory_near_limit", peers=[Peer(role=PeerRole.CLIENT, address="app-1", count=3)]))
    later = T0 + timedelta(seconds=30)
    out = feed(c, report(cache, "redis.memory_near_limit", at=T0 + timedelta(seconds=10)))
    assert out == []
    joined = feed(c, report(app, "service.latency_high", at=later))
    incident = joined[-1]
    assert [(s.name, s.resource, s.kind.value) for s in incident.signals] == [
        ("redis.memory_near_limit", cache.key, "finding"), ("service.latency_high", app.key, "finding")]
    first = incident.signals[0]
    assert first.first_seen == T0 and first.last_seen == T0 + timedelta(seconds=10)
    assert [(link.source, link.target, link.reason) for link in incident.links] == [(app.key, cache.key, "client")], \
        "the application calls the cache: the observed client connection gives the direction"


def metric_anomaly(resource, metric, at, score=0.8):
    return Anomaly(source=SRC, resource=resource, ts=at, detector="metric/robust", signal=metric, score=score,
                   window_start=at, window_end=at, details={"metric": metric})


def test_a_lone_metric_wobble_waits_for_company_and_joins_what_comes() -> None:
    c = Correlator("acme", window=timedelta(minutes=1))

    def add(event):
        return [i for s in signals_from_anomaly(event) for i in c.add(s, SRC)]

    assert add(metric_anomaly(REDIS, "redis_used_memory_bytes", T0)) == [], "one series alone opens nothing"
    assert add(metric_anomaly(REDIS, "redis_used_memory_bytes", T0 + timedelta(seconds=5))) == [], "nor its repeat"
    assert add(metric_anomaly(PG, "pg_x", T0 + timedelta(seconds=6))) == [], "nor one on an unrelated resource"
    assert add(metric_anomaly(REDIS, "redis_used_memory_bytes", T0 + timedelta(minutes=3))) == [], "it expired"
    opened = add(metric_anomaly(REDIS, "redis_evicted_keys_total", T0 + timedelta(minutes=3, seconds=10)))
    assert [i.status for i in opened] == [IncidentStatus.OPEN], "two series of one resource together do"
    assert {s.name for s in opened[0].signals} == {"metric/robust:redis_used_memory_bytes",
                                                   "metric/robust:redis_evicted_keys_total"}
    assert [i.status for i in add(metric_anomaly(PG, "pg_y", T0 + timedelta(minutes=4), score=0.95))] == \
        [IncidentStatus.OPEN], "a strong one opens alone"
    # a finding opens at once and takes the related wobble held before it as early evidence
    c2 = Correlator("acme", window=timedelta(minutes=1))
    [s] = signals_from_anomaly(metric_anomaly(HOST1, "host_cpu_usage_ratio", T0))
    assert c2.add(s, SRC) == []
    restored = Correlator("acme", window=timedelta(minutes=1), state=json.loads(json.dumps(c2.to_state())))
    out = [i for s in signals_from_health(report(REDIS, "redis.evictions", at=T0 + timedelta(seconds=20)))
           for i in restored.add(s, SRC)]
    assert {(s.resource, s.kind.value) for s in out[0].signals} == {(REDIS.key, "finding"), (HOST1.key, "anomaly")}


# --- bounded state: one busy tenant must not make a record Kafka refuses -----------------------------------------


def _big_report(i: int, at: datetime) -> HealthReport:
    """A finding with 4 KB of evidence on one of many Redis instances of one host (so all are related)."""
    resource = ResourceRef(kind="redis", name=f"cache-{i}", host="db-1")
    return HealthReport(source=SRC, resource=resource, ts=at, tenant="busy", findings=[
        Finding(rule_id="redis.slowlog", severity=Severity.WARNING, message="slow commands",
                evidence={"slowlog": "x" * 4096, "count": i})])


def test_350_reports_with_4_kb_evidence_keep_every_record_and_incident_within_bounds() -> None:
    from kubestack.pipeline.correlation import STATE_RECORD_MAX_BYTES, load_state, record_size, state_records

    records: dict[str, dict] = {}
    largest_incident = 0
    for i in range(350):
        c = Correlator("busy", state=load_state("busy", records.get))
        for event in feed(c, _big_report(i, T0 + timedelta(seconds=i))):
            largest_incident = max(largest_incident, len(event.model_dump_json()))
        records.update(state_records("busy", c.to_state(), c.touched))
    sizes = {key: record_size(value) for key, value in records.items()}
    assert max(sizes.values()) <= STATE_RECORD_MAX_BYTES, sizes
    assert largest_incident < 512 * 1024
    c = Correlator("busy", state=load_state("busy", records.get))
    [incident] = c.open.values()
    assert incident.signals_in == 350 and len(incident.active) == 350
    evidence = next(iter(incident.signals.values()))["details"]["evidence"]
    assert evidence["count"] == 0 and evidence["slowlog"].endswith("(+3584 chars)"), "cut where it entered"


def test_evidence_is_cut_where_it_enters_keeping_small_values() -> None:
    from kubestack.pipeline.correlation import EVIDENCE_MAX_BYTES, bounded

    small = {"evidence": {"pid": 42, "query": "SELECT 1"}, "query": "INFO"}
    assert bounded(small) is small
    huge = {"evidence": {"pid": 42, "rows": list(range(5000)), "text": "y" * 9000,
                         **{f"k{i}": "v" * 100 for i in range(40)}}, "query": "SHOW PROCESSLIST"}
    cut = bounded(huge)
    assert len(json.dumps(cut)) <= EVIDENCE_MAX_BYTES
    assert cut["evidence"]["pid"] == 42 and cut["query"] == "SHOW PROCESSLIST"
    assert cut["evidence"]["rows"][-1] == "... +4980 more" and "truncated" in cut["evidence"]


def test_past_the_open_incident_cap_signals_join_the_tenants_overflow_incident(monkeypatch) -> None:
    from kubestack.pipeline import correlation

    monkeypatch.setattr(correlation, "MAX_OPEN", 3)
    c = Correlator("acme")
    events = []
    for i in range(6):
        resource = ResourceRef(kind="redis", name=f"r{i}", host=f"h{i}")
        events += feed(c, report(resource, "redis.evictions", at=T0 + timedelta(seconds=i)))
    assert len(c.open) == 4
    overflow = [e for e in events if e.incident_id.startswith("inc-overflow-")]
    assert overflow and "more than 3 open incidents in tenant acme" in overflow[-1].title
    assert {r.name for r in overflow[-1].resources} == {"r3", "r4", "r5"}


def test_a_missing_or_broken_incident_record_is_left_out_not_fatal() -> None:
    from kubestack.pipeline.correlation import incident_key, load_state, state_records

    c = Correlator("acme")
    first = feed(c, report(REDIS, "redis.evictions"))[0]
    records = state_records("acme", c.to_state())
    records[incident_key("acme", first.incident_id)] = {"garbage": True}
    restored = Correlator("acme", state=load_state("acme", records.get))
    assert restored.open == {}
    assert feed(restored, report(PG, "postgresql.lock_waits", at=T0 + timedelta(minutes=1)))[0].status == \
        IncidentStatus.OPEN


def test_a_state_written_whole_before_the_split_is_read_and_then_split() -> None:
    from kubestack.pipeline.correlation import incident_key, load_state, state_records

    c = Correlator("acme")
    first = feed(c, report(REDIS, "redis.evictions"))[0]
    old = {"acme": json.loads(json.dumps(c.to_state()))}
    restored = Correlator("acme", state=load_state("acme", old.get))
    feed(restored, report(PG, "postgresql.lock_waits", at=T0 + timedelta(minutes=1)))
    written = state_records("acme", restored.to_state(), restored.touched)
    assert incident_key("acme", first.incident_id) in written and len(written["acme"]["open"]) == 2


def test_a_signal_read_again_after_its_state_was_saved_sends_the_same_revision_again() -> None:
    """A worker killed after its state reached the changelog and before its offset was committed (perhaps before the
    revision was sent): the next owner reads the signal again on the saved state, and the revision goes out again,
    the very same event, counted once."""
    from kubestack.pipeline.correlation import load_state, state_records

    c = Correlator("acme")
    feed(c, report(REDIS, "redis.evictions"))
    second = report(HOST1, "host.memory_pressure", at=T0 + timedelta(minutes=1))
    sent = feed(c, second)
    saved = state_records("acme", c.to_state())
    again = Correlator("acme", state=load_state("acme", saved.get))
    resent = feed(again, second)
    assert [e.event_id for e in resent] == [e.event_id for e in sent] and sent[0].event_id.endswith("-r2")
    assert resent[0].model_dump(exclude={"ts"}) == sent[0].model_dump(exclude={"ts"})
    assert again.to_state() == c.to_state(), "nothing counted twice"
    later = feed(again, report(MYSQL, "mysql.connections_high", at=T0 + timedelta(minutes=2)))
    assert [e.event_id for e in later] == [sent[0].event_id[:-1] + "3"]


def test_the_index_is_written_after_the_incidents_it_names() -> None:
    """A worker stopped while writing a tenant's records leaves no index naming an incident record never written."""
    from kubestack.pipeline.correlation import state_records

    c = Correlator("acme")
    feed(c, report(REDIS, "redis.evictions"))
    feed(c, report(PG, "postgresql.lock_waits", at=T0 + timedelta(minutes=1)))
    assert list(state_records("acme", c.to_state(), graph=True))[-1] == "acme"
