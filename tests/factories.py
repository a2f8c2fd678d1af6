"""One valid instance of every contract model, for round-trip and schema tests."""

from __future__ import annotations

from datetime import timedelta

from kubestack.contract.base import Event, ResourceRef, Source, utcnow
from kubestack.contract.events import (
    Anomaly,
    AuditEntry,
    AuditRecord,
    ConfigChange,
    ConfigDiff,
    ConfigSnapshot,
    DeadLetter,
    Decision,
    Finding,
    HealthReport,
    Hypothesis,
    Incident,
    LogBatch,
    LogLine,
    MetricBatch,
    Notification,
    Prediction,
    RcaReport,
    RemediationDecision,
    RemediationProposal,
    RemediationResult,
    ResultStatus,
    Risk,
    Sample,
    Severity,
    Silence,
)
from kubestack.contract.topics import TopicSpec

SOURCE = Source(agent="agent", host="db-1", cluster="prod-eu")
REDIS = ResourceRef(kind="redis", name="cache-1", namespace="shop", cluster="prod-eu")


def example(spec: TopicSpec, resource: ResourceRef = REDIS) -> Event:
    now = utcnow()
    common = {"source": SOURCE, "resource": resource, "tenant": "acme"}
    model = spec.model
    if model is MetricBatch:
        return MetricBatch(**common, interval_s=10, samples=[
            Sample(name="redis_used_memory_bytes", value=1.5e9, ts=now, labels={"role": "master"}),
            Sample(name="redis_connected_clients", value=42, ts=now),
        ])
    if model is LogBatch:
        return LogBatch(**common, lines=[LogLine(ts=now, line="# Background saving started", path="/var/log/redis.log",
                                                  offset=1024)])
    if model is ConfigSnapshot:
        return ConfigSnapshot(**common, config={"maxmemory": "2gb", "maxmemory-policy": "allkeys-lru"}, digest="ab" * 32)
    if model is ConfigChange:
        return ConfigChange(**common, previous_digest="ab" * 32, digest="cd" * 32,
                            changes=[ConfigDiff(key="maxmemory", old="2gb", new="1gb")])
    if model is HealthReport:
        return HealthReport(**common, rules_checked=["redis.no_maxmemory"], findings=[
            Finding(rule_id="redis.no_maxmemory", severity=Severity.WARNING, message="maxmemory is 0 (unlimited)",
                    evidence={"maxmemory": 0, "used_memory": 1048576}, query="CONFIG GET maxmemory; INFO memory")])
    if model is Anomaly:
        return Anomaly(**common, detector="robust-seasonal", signal="redis_used_memory_bytes", score=0.97,
                       value=1.9e9, expected=1.2e9, window_start=now - timedelta(minutes=5), window_end=now)
    if model is Prediction:
        return Prediction(**common, signal="redis_used_memory_bytes", capacity=2e9, confidence=0.8, model="holt",
                          exhaustion_at=now + timedelta(hours=9), exhaustion_lower_bound=now + timedelta(hours=6))
    if model is Incident:
        return Incident(**common, title="Redis memory pressure", severity=Severity.CRITICAL, opened_at=now,
                        resources=[resource], member_event_ids=["a1", "a2"])
    if model is RcaReport:
        return RcaReport(**common, incident_id="inc-1", narrative="maxmemory was lowered at 10:02 [e1]",
                         hypotheses=[Hypothesis(rank=1, component=resource.key, cause="maxmemory lowered",
                                                confidence=0.9, evidence_ids=["e1"], runbooks=["redis/memory"])])
    if model is RemediationProposal:
        return RemediationProposal(**common, incident_id="inc-1", action="redis.config_set",
                                   params={"maxmemory": "2gb"}, risk=Risk.LOW, rollback="CONFIG SET maxmemory 1gb")
    if model is RemediationResult:
        return RemediationResult(**common, proposal_id="p-1", incident_id="inc-1", status=ResultStatus.EXECUTED,
                                 actor="policy:auto", output="OK")
    if model is Notification:
        return Notification(**common, channel="slack", subject_id="inc-1", severity=Severity.CRITICAL,
                            title="Redis memory pressure", delivered=True)
    if model is RemediationDecision:
        return RemediationDecision(**common, proposal_id="p-1", incident_id="inc-1", decision=Decision.APPROVE,
                                   actor="alice", reason="checked the host has the memory")
    if model is AuditEntry:
        return AuditEntry(**common, actor="alice", action="proposal.approved", subject_id="p-1")
    if model is AuditRecord:
        return AuditRecord(**common, actor="alice", action="proposal.approved", subject_id="p-1", seq=0,
                           entry_id="e-1", prev_hash="0" * 64, hash="f" * 64)
    if model is DeadLetter:
        return DeadLetter(**common, original_topic="kubestack.metrics.v1", partition=0, offset=7, payload="{",
                          reason="not JSON", error_type="EventDecodeError", stage="intake")
    if model is Silence:
        return Silence(**common, silence_id="s-1", matchers_resources=[resource.key], starts_at=now,
                       schedule="Sun 02:00-04:00", timezone="Europe/Berlin", created_by="alice",
                       comment="weekly patching")
    raise AssertionError(f"no example for {model.__name__}: add one when adding a topic")
