"""Incident memory as incidents resolve: ``kubestack knowledge follow`` reads the real broker's incidents and
root-cause reports and the next search finds the resolved incident."""

import pytest

from kubestack.bus import ensure_topics
from kubestack.contract.base import ResourceRef, utcnow
from kubestack.contract.events import (
    Hypothesis,
    Incident,
    IncidentSignal,
    IncidentStatus,
    RcaReport,
    Severity,
    SignalKind,
)
from kubestack.contract.topics import INCIDENTS, RCA_REPORTS
from kubestack.knowledge.follow import Memory
from kubestack.knowledge.index import build
from kubestack.knowledge.retrieve import KnowledgeBase
from tests.cli import cli_env, run
from tests.factories import SOURCE
from tests.kafka_io import produce

CACHE = ResourceRef(kind="redis", name="cache-7", host="db-7")


def incident(status: IncidentStatus, unique: str) -> Incident:
    now = utcnow()
    signal = IncidentSignal(event_id="e1", kind=SignalKind.ANOMALY, name="config-risk:redis.maxmemory_lowered",
                            resource=CACHE.key, first_seen=now, last_seen=now, severity=Severity.CRITICAL)
    return Incident(source=SOURCE, resource=CACHE, incident_id=f"inc-{unique}", title="zanzibar eviction storm",
                    status=status, severity=Severity.CRITICAL, opened_at=now, resources=[CACHE],
                    member_event_ids=["e1"], signals=[signal])


def report(unique: str) -> RcaReport:
    return RcaReport(source=SOURCE, resource=CACHE, incident_id=f"inc-{unique}", narrative="maxmemory was cut",
                     hypotheses=[Hypothesis(rank=1, component=CACHE.key, cause="redis.maxmemory_lowered",
                                            confidence=0.8, evidence_ids=["e1"], runbooks=["redis/memory-full"])])


def test_memory_keeps_the_last_report_until_the_incident_resolves() -> None:
    memory = Memory()
    memory.on_report(report("a"))
    assert memory.on_incident(incident(IncidentStatus.OPEN, "a")) is None
    rca, signals = memory.on_incident(incident(IncidentStatus.RESOLVED, "a"))
    assert rca.narrative == "maxmemory was cut" and signals == ["redis.maxmemory_lowered"]
    assert memory.reports == {}


@pytest.mark.kafka
async def test_follow_remembers_resolved_incidents_in_the_index(kafka, unique, tmp_path) -> None:
    prefix = f"follow.{unique}."
    await ensure_topics(kafka.model_copy(update={"topic_prefix": prefix}))
    await produce(kafka, RCA_REPORTS.qualified(prefix), [RCA_REPORTS.encode(report(unique))])
    await produce(kafka, INCIDENTS.qualified(prefix), [INCIDENTS.encode(incident(IncidentStatus.OPEN, unique)),
                                                       INCIDENTS.encode(incident(IncidentStatus.RESOLVED, unique))])
    folder = tmp_path / "knowledge"
    build(folder)
    env = cli_env(KUBESTACK_KAFKA__BOOTSTRAP=kafka.bootstrap, KUBESTACK_KAFKA__TOPIC_PREFIX=prefix,
                  KUBESTACK_HOME=str(tmp_path / "home"))
    result = run("knowledge", "follow", "--idle-exit", "5", "--dir", str(folder), env=env, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "1 resolved incident(s) remembered" in result.stderr
    hits = KnowledgeBase.open(folder).search("zanzibar eviction storm", k=3)
    assert hits[0].id == f"incident/inc-{unique}" and hits[0].kind == "incident"
    assert (folder / "incidents" / f"inc-{unique}.md").read_text().count("redis.maxmemory_lowered") >= 1
