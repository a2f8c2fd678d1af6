"""Events the notifier tests (and the end-to-end test) feed it: one incident's story from open to resolved."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import (
    Hypothesis,
    Incident,
    IncidentSignal,
    IncidentStatus,
    Prediction,
    PredictionStatus,
    RcaReport,
    RemediationProposal,
    RemediationResult,
    ResultStatus,
    Risk,
    Severity,
    SignalKind,
)

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=timezone.utc)
SOURCE = Source(agent="worker/correlate", host="worker-1")
REDIS = ResourceRef(kind="redis", name="cache-1", namespace="shop", cluster="prod-eu", labels={"service": "checkout"})
MYSQL = ResourceRef(kind="mysql", name="orders", host="db-1", cluster="prod-eu")


def signal(name: str = "redis.maxmemory_lowered", resource: ResourceRef = REDIS, *, minutes: int = 0,
           severity: Severity = Severity.CRITICAL,
           summary: str = "maxmemory lowered from 2gb to 1gb") -> IncidentSignal:
    at = T0 + timedelta(minutes=minutes)
    return IncidentSignal(event_id=f"sig-{name}-{minutes}", kind=SignalKind.ANOMALY, name=name, resource=resource.key,
                          first_seen=T0, last_seen=at, severity=severity, summary=summary,
                          details={"old": "2gb", "new": "1gb"})


def incident(*, incident_id: str = "inc-1", status: IncidentStatus = IncidentStatus.OPEN,
             severity: Severity = Severity.CRITICAL, summary: str = "Redis evicts keys after a config change",
             signals: list[IncidentSignal] | None = None, tenant: str = "acme", revision: int = 1,
             title: str = "Redis memory pressure") -> Incident:
    signals = signals if signals is not None else [signal()]
    return Incident(event_id=f"{incident_id}-r{revision}", ts=T0 + timedelta(minutes=revision), source=SOURCE,
                    resource=REDIS, tenant=tenant, incident_id=incident_id, title=title, status=status,
                    severity=severity, opened_at=T0, resources=[REDIS, MYSQL],
                    member_event_ids=[s.event_id for s in signals] or ["sig-0"], summary=summary, signals=signals)


def rca(*, incident_id: str = "inc-1", tenant: str = "acme") -> RcaReport:
    return RcaReport(source=SOURCE, resource=REDIS, tenant=tenant, incident_id=incident_id,
                     narrative="maxmemory was lowered at 10:02 [e1], then evictions rose [e2].",
                     hypotheses=[Hypothesis(rank=1, component=REDIS.key, cause="maxmemory lowered", confidence=0.9,
                                            evidence_ids=["e1"], runbooks=["redis/memory-pressure"]),
                                 Hypothesis(rank=2, component=MYSQL.key, cause="slow queries", confidence=0.3,
                                            evidence_ids=["e2"])])


def proposal(*, proposal_id: str = "prop-1", incident_id: str = "inc-1", risk: Risk = Risk.MEDIUM,
             tenant: str = "acme") -> RemediationProposal:
    return RemediationProposal(source=SOURCE, resource=REDIS, tenant=tenant, proposal_id=proposal_id,
                               incident_id=incident_id, action="redis.config_set", params={"maxmemory": "2gb"},
                               risk=risk, preconditions=["used_memory < 2gb"],
                               expected_effect="evictions stop within a minute",
                               rollback="CONFIG SET maxmemory 1gb", dry_run="would run CONFIG SET maxmemory 2gb")


def result(status: ResultStatus, *, proposal_id: str = "prop-1", incident_id: str = "inc-1", output: str = "",
           actor: str = "policy:manual", tenant: str = "acme") -> RemediationResult:
    return RemediationResult(source=SOURCE, resource=REDIS, tenant=tenant, proposal_id=proposal_id,
                             incident_id=incident_id, status=status, actor=actor, output=output)


def prediction(*, status: PredictionStatus = PredictionStatus.ACTIVE, hours: float = 6.0,
               prediction_id: str = "pred-1") -> Prediction:
    withdrawn = status is PredictionStatus.WITHDRAWN
    return Prediction(source=SOURCE, resource=MYSQL, tenant="acme", ts=T0, prediction_id=prediction_id,
                      signal="disk_used_bytes", capacity=1e11, confidence=0.8, model="holt", status=status,
                      exhaustion_at=None if withdrawn else T0 + timedelta(hours=hours + 3),
                      exhaustion_lower_bound=None if withdrawn else T0 + timedelta(hours=hours),
                      severity=Severity.WARNING)
