"""Incident memory through the real worker (the session's ``pipeline``): an incident is ranked and remembered, the
fix of it is audited (approved by otto, verified) and chained by the worker's audit stage, and when the same fault
comes back the worker's root-cause report names the first incident with that fix. A tenant of its own keeps other
tests' incidents, and its earned-autonomy records, apart."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from kubestack.contract.base import ResourceRef, utcnow
from kubestack.contract.events import IncidentStatus, RcaReport, ResultStatus
from kubestack.contract.topics import AUDIT_ENTRIES, INCIDENTS
from kubestack.pipeline.remediation import audit_result, result
from tests.kafka_io import produce
from tests.services.kubestack_api import SOURCE, incident, proposal
from tests.services.pipeline import Pipeline

pytestmark = [pytest.mark.kafka]


async def test_the_worker_recalls_the_first_occurrence_and_its_verified_fix(pipeline: Pipeline) -> None:
    tag = uuid.uuid4().hex[:8]
    tenant, cache = f"memory-{tag}", ResourceRef(kind="redis", name=f"cache-{tag}", host="db-1")
    kafka = pipeline.settings.kafka

    async def publish(spec, *events) -> None:
        await produce(kafka, spec.qualified(kafka.topic_prefix), [spec.encode(e) for e in events])

    def report_on(incident_id: str, ready=lambda r: True):
        return lambda seen: next((r for r in seen.reports if r.incident_id == incident_id and ready(r)), None)

    first = incident(tenant, res=cache, title=f"Redis memory pressure on cache-{tag}")
    first = first.model_copy(update={"opened_at": first.opened_at - timedelta(hours=5)})
    again_id = uuid.uuid4().hex
    try:
        await publish(INCIDENTS, first)
        assert await pipeline.watch.wait_for(report_on(first.incident_id), 60), pipeline.diagnosis()
        fixed = proposal(first)
        await publish(AUDIT_ENTRIES, *(audit_result(fixed, result(fixed, status, "", SOURCE, utcnow(), actor=actor))
                                       for status, actor in ((ResultStatus.APPROVED, "otto"),
                                                             (ResultStatus.VERIFIED, "stage:remediation"))))
        chained = await pipeline.watch.wait_for(lambda seen: any(
            r.subject_id == fixed.proposal_id and r.action == "proposal.verified" for r in seen.audit), 60)
        assert chained, "the worker's audit stage chained the fix"

        def recalled(report: RcaReport) -> bool:
            return any(s.incident_id == first.incident_id and any(
                a.status == ResultStatus.VERIFIED for a in s.actions) for s in report.similar)

        found = None
        for revision in range(1, 7):  # the fold of the audit may come a moment after the chain: a revision asks again
            await publish(INCIDENTS, incident(tenant, res=cache, incident_id=again_id, revision=revision,
                                              title=f"Redis memory pressure on cache-{tag}"))
            found = await pipeline.watch.wait_for(report_on(again_id, recalled), 10)
            if found:
                break
        assert found, f"no report recalled {first.incident_id}: " + str(
            [r.similar for r in pipeline.watch.seen.reports if r.incident_id == again_id])
        [similar] = found.similar
        assert (similar.incident_id, similar.title, similar.similarity) == (first.incident_id, first.title, 1.0)
        assert similar.cause == "redis.maxmemory_lowered" and similar.component == cache.key
        assert [(a.proposal_id, a.action, a.status, a.approved_by) for a in similar.actions
                if a.proposal_id == fixed.proposal_id] == [(fixed.proposal_id, "redis.config_set",
                                                            ResultStatus.VERIFIED, "otto")]
        assert similar.outcome.startswith("fixed by redis.config_set (verified), approved by otto")
        first_report = await pipeline.watch.wait_for(report_on(first.incident_id), 1)
        assert first_report.similar == [], "nothing came before the first"
    finally:
        await publish(INCIDENTS, incident(tenant, res=cache, incident_id=first.incident_id, revision=9,
                                          status=IncidentStatus.RESOLVED),
                      incident(tenant, res=cache, incident_id=again_id, revision=99, status=IncidentStatus.RESOLVED))
