"""POST /api/v1/incidents/{id}/feedback over real HTTP and a real broker: an operator's verdict on a ranked cause
is audited (``rca.feedback``, with the incident's signature), a viewer is refused, another tenant's incident is not
found, a component without signals is a clear 400; once chained into the audit trail it is listed by GET."""

from __future__ import annotations

import uuid

import pytest

from kubestack.contract.events import AuditEntry
from kubestack.contract.topics import AUDIT, AUDIT_ENTRIES, INCIDENTS, RCA_REPORTS
from kubestack.pipeline.audit import AuditChain
from kubestack.pipeline.feedback import CauseVerdict
from tests.kafka_io import consume_all
from tests.services.kubestack_api import ApiServer, incident, rca

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio(loop_scope="session")]


async def test_an_operator_marks_a_cause_and_it_is_audited_kept_and_listed(api_server: ApiServer) -> None:
    inc = incident()
    await api_server.publish(INCIDENTS, inc)
    await api_server.publish(RCA_REPORTS, rca(inc))
    await api_server.wait_for(f"/api/v1/incidents/{inc.incident_id}", lambda r: r.status_code == 200)
    path = f"/api/v1/incidents/{inc.incident_id}/feedback"
    body = {"component": inc.resource.key, "verdict": "right", "comment": "it was the maxmemory change"}
    async with api_server.client("vera") as viewer:
        assert (await viewer.post(path, json=body)).status_code == 403
    async with api_server.client("acme-op") as other:
        assert (await other.post(path, json=body)).status_code == 404, "another tenant's incident"
    async with api_server.client("otto") as client:
        missing = await client.post(path, json=body | {"component": "-/x/redis/nowhere"})
        assert missing.status_code == 400 and "no signal on -/x/redis/nowhere" in missing.json()["detail"]
        bad = await client.post(path, json=body | {"verdict": "maybe"})
        assert bad.status_code == 422
        given = await client.post(path, json=body)
    assert given.status_code == 202, given.text
    made = CauseVerdict.model_validate(given.json())
    assert made.right and made.actor == "otto" and made.cause == "redis.maxmemory_lowered" and made.kind == "redis"
    assert "redis:redis.maxmemory_lowered" in made.signature

    records = await consume_all(api_server.kafka, api_server.topic(AUDIT_ENTRIES), f"t-{uuid.uuid4().hex[:8]}")
    audited = [e for e in (AuditEntry.model_validate_json(r.value) for r in records)
               if e.action == "rca.feedback" and e.subject_id == inc.incident_id]
    assert len(audited) == 1 and audited[0].actor == "otto"
    assert audited[0].details["comment"] == "it was the maxmemory change"

    chained = AuditChain(seq=10_000 + uuid.uuid4().int % 10_000).link(audited[0])  # as the worker's audit stage
    await api_server.publish(AUDIT, chained)
    listed = await api_server.wait_for(path, lambda r: r.status_code == 200 and r.json()["items"], name="vera")
    assert [CauseVerdict.model_validate(v).component for v in listed.json()["items"]] == [inc.resource.key]


async def test_the_cli_marks_a_cause_wrong_and_a_viewer_cannot(api_server: ApiServer) -> None:
    from tests.test_cli_remote import kubestack

    inc = incident()
    await api_server.publish(INCIDENTS, inc)
    await api_server.wait_for(f"/api/v1/incidents/{inc.incident_id}", lambda r: r.status_code == 200)
    code, text, err = await kubestack(api_server, "incidents", "feedback", "-c", "not the cause", "--",
                                      inc.incident_id, inc.resource.key, "wrong")
    assert code == 0, err
    assert f"marked redis.maxmemory_lowered on {inc.resource.key} wrong as otto" in " ".join(text.split())
    code, text, err = await kubestack(api_server, "incidents", "feedback", "--", inc.incident_id, inc.resource.key,
                                      "right", token="vera")
    assert code != 0 and ("403" in err + text or "forbidden" in (err + text).lower()), err + text
    code, _, err = await kubestack(api_server, "incidents", "feedback", "--", inc.incident_id, inc.resource.key,
                                   "maybe")
    assert code != 0 and "verdict must be 'right' or 'wrong'" in " ".join(err.split())
