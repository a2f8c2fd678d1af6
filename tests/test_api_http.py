"""The API over real HTTP (uvicorn) and a real broker: the feed fills the read model from the topics, roles and
tenants are enforced, decisions and audit entries land on Kafka, bad input is a clear 4xx."""

from __future__ import annotations

import uuid

import pytest

from kubestack.contract.events import AuditEntry, DeadLetter, Prediction, RemediationDecision, Risk
from kubestack.contract.topics import (
    AUDIT_ENTRIES,
    DEAD_LETTER,
    INCIDENTS,
    PREDICTIONS,
    RCA_REPORTS,
    REMEDIATION_DECISIONS,
    REMEDIATION_PROPOSALS,
)
from tests.kafka_io import consume_all, produce
from tests.services.kubestack_api import ApiServer, incident, proposal, rca

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio(loop_scope="session")]


async def seed(server: ApiServer, tenant: str = "default", risk: Risk = Risk.LOW):
    """An incident with its report and a pending proposal, published and read back by the feed."""
    inc = incident(tenant)
    prop = proposal(inc, risk)
    await server.publish(INCIDENTS, inc)
    await server.publish(RCA_REPORTS, rca(inc))
    await server.publish(REMEDIATION_PROPOSALS, prop)
    await server.wait_for(f"/api/v1/proposals?incident_id={inc.incident_id}", lambda r: r.json()["items"])
    return inc, prop


async def entries(server: ApiServer, spec, model, **match):
    records = await consume_all(server.kafka, server.topic(spec), f"test-read-{uuid.uuid4().hex[:8]}")
    events = [model.model_validate_json(r.value) for r in records]
    return [e for e in events if all(getattr(e, k) == v for k, v in match.items())]


async def test_health_needs_no_token_and_reports_kafka(api_server: ApiServer) -> None:
    async with api_server.client() as client:
        response = await client.get("/api/v1/health")
    async with api_server.client("vera") as client:
        detailed = await client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["kafka_reachable"] is True and body["status"] == "ok"
    assert set(detailed.json()["read_model"]) >= {"incidents", "proposals", "audit"}


@pytest.mark.parametrize("header", [None, "Bearer not-a-token", "Basic dXNlcjpwYXNz", "Bearer"])
async def test_missing_or_unknown_token_is_401(api_server: ApiServer, header: str | None) -> None:
    async with api_server.client() as client:
        response = await client.get("/api/v1/incidents", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert "Bearer" in response.json()["detail"] or "token" in response.json()["detail"]
    assert response.headers["www-authenticate"] == "Bearer"


async def test_feed_fills_read_model_from_real_topics(api_server: ApiServer) -> None:
    inc = incident(revision=1)
    later = incident(revision=3, incident_id=inc.incident_id, title="Redis memory pressure and evictions")
    older = incident(revision=2, incident_id=inc.incident_id, title="stale revision")
    await api_server.publish(INCIDENTS, inc, later, older)
    await api_server.publish(RCA_REPORTS, rca(inc))
    prop = proposal(inc)
    await api_server.publish(REMEDIATION_PROPOSALS, prop)
    from tests.factories import example

    forecast = example(PREDICTIONS)
    await api_server.publish(PREDICTIONS, forecast)

    response = await api_server.wait_for(f"/api/v1/incidents/{inc.incident_id}",
                                         lambda r: r.status_code == 200 and r.json()["rca"] and r.json()["proposals"])
    body = response.json()
    assert body["revision"] == 3 and body["title"] == "Redis memory pressure and evictions"
    assert body["rca"]["hypotheses"][0]["cause"] == "maxmemory lowered below used memory"
    assert [s["event_id"] for s in body["signals"]] == ["e1", "e2"]  # timeline: by first_seen
    assert body["proposals"][0]["proposal"]["proposal_id"] == prop.proposal_id
    assert body["proposals"][0]["state"] == "pending"

    listed = await api_server.wait_for("/api/v1/predictions", lambda r: r.json()["items"])
    assert Prediction.model_validate(listed.json()["items"][0]).signal == forecast.signal
    async with api_server.client("vera") as client:
        open_ids = [i["incident_id"] for i in (await client.get("/api/v1/incidents?status=open")).json()["items"]]
        resolved = (await client.get("/api/v1/incidents?status=resolved")).json()["items"]
    assert inc.incident_id in open_ids
    assert inc.incident_id not in [i["incident_id"] for i in resolved]


async def test_undecodable_record_is_dead_lettered_and_the_feed_goes_on(api_server: ApiServer) -> None:
    await produce(api_server.kafka, api_server.topic(INCIDENTS), [(b"bad", b'{"title": "no ids"}')])
    after = incident()
    await api_server.publish(INCIDENTS, after)
    await api_server.wait_for(f"/api/v1/incidents/{after.incident_id}", lambda r: r.status_code == 200)
    letters = await entries(api_server, DEAD_LETTER, DeadLetter, stage="api-feed")
    assert any(letter.original_topic == api_server.topic(INCIDENTS) and "not a valid Incident" in letter.reason
               and letter.payload == '{"title": "no ids"}' for letter in letters)


async def test_tenant_bound_token_sees_only_its_tenant(api_server: ApiServer) -> None:
    mine, _ = await seed(api_server, tenant="acme")
    theirs, their_proposal = await seed(api_server, tenant="default")
    async with api_server.client("acme-viewer") as client:
        listed = (await client.get("/api/v1/incidents")).json()["items"]
        hidden = await client.get(f"/api/v1/incidents/{theirs.incident_id}")
        shown = await client.get(f"/api/v1/incidents/{mine.incident_id}")
    assert {i["tenant"] for i in listed} == {"acme"}
    assert mine.incident_id in [i["incident_id"] for i in listed]
    assert hidden.status_code == 404 and hidden.json() == {"error": "not_found",
                                                          "detail": f"no incident {theirs.incident_id!r}"}
    assert shown.status_code == 200
    async with api_server.client("acme-op") as client:
        denied = await client.post(f"/api/v1/proposals/{their_proposal.proposal_id}/approve", json={"reason": "x"})
    assert denied.status_code == 404  # another tenant's proposal is not revealed


async def test_viewer_cannot_approve_and_the_refusal_is_audited(api_server: ApiServer) -> None:
    _, prop = await seed(api_server)
    async with api_server.client("vera") as client:
        response = await client.post(f"/api/v1/proposals/{prop.proposal_id}/approve", json={"reason": "looks fine"})
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden" and "operator" in response.json()["detail"]
    denied = await entries(api_server, AUDIT_ENTRIES, AuditEntry, subject_id=prop.proposal_id, action="api.denied")
    assert denied and denied[0].actor == "vera" and denied[0].details["role"] == "viewer"
    assert not await entries(api_server, REMEDIATION_DECISIONS, RemediationDecision, proposal_id=prop.proposal_id)


async def test_operator_approval_lands_on_kafka_and_a_second_one_conflicts(api_server: ApiServer) -> None:
    _, prop = await seed(api_server)
    async with api_server.client("otto") as client:
        first = await client.post(f"/api/v1/proposals/{prop.proposal_id}/approve", json={"reason": "safe, tested"})
        second = await client.post(f"/api/v1/proposals/{prop.proposal_id}/approve", json={"reason": "again"})
        view = (await client.get(f"/api/v1/proposals?incident_id={prop.incident_id}")).json()["items"][0]
    assert first.status_code == 202, first.text
    assert first.json()["decision"]["actor"] == "otto" and first.json()["state"] == "approved"
    assert second.status_code == 409
    assert second.json() == {"error": "conflict",
                             "detail": f"proposal {prop.proposal_id} is approved, not pending: it was already decided"}
    assert view["state"] == "approved" and view["decision"]["reason"] == "safe, tested"

    decisions = await entries(api_server, REMEDIATION_DECISIONS, RemediationDecision, proposal_id=prop.proposal_id)
    assert len(decisions) == 1
    assert (decisions[0].decision, decisions[0].actor, decisions[0].via) == ("approve", "otto", "api")
    assert decisions[0].tenant == prop.tenant and decisions[0].incident_id == prop.incident_id
    audited = await entries(api_server, AUDIT_ENTRIES, AuditEntry, subject_id=prop.proposal_id)
    approved = [e for e in audited if e.action == "proposal.approved"]
    assert len(approved) == 1 and approved[0].actor == "otto"
    assert approved[0].details["reason"] == "safe, tested" and approved[0].details["role"] == "operator"


async def test_admin_rejects_and_forbidden_proposals_cannot_be_decided(api_server: ApiServer) -> None:
    _, prop = await seed(api_server)
    _, forbidden = await seed(api_server, risk=Risk.FORBIDDEN)
    async with api_server.client("ada") as client:
        rejected = await client.post(f"/api/v1/proposals/{prop.proposal_id}/reject", json={"reason": "too risky"})
        refused = await client.post(f"/api/v1/proposals/{forbidden.proposal_id}/approve", json={"reason": "do it"})
    assert rejected.status_code == 202 and rejected.json()["state"] == "rejected"
    assert refused.status_code == 409 and "forbidden" in refused.json()["detail"]
    audited = await entries(api_server, AUDIT_ENTRIES, AuditEntry, subject_id=prop.proposal_id,
                            action="proposal.rejected")
    assert audited and audited[0].details["role"] == "admin" and audited[0].details["reason"] == "too risky"


async def test_bad_input_gets_a_clear_4xx_never_a_500(api_server: ApiServer) -> None:
    _, prop = await seed(api_server)
    approve = f"/api/v1/proposals/{prop.proposal_id}/approve"
    async with api_server.client("otto") as client:
        malformed = await client.post(approve, content=b'{"reason": ', headers={"Content-Type": "application/json"})
        no_reason = await client.post(approve, json={})
        blank = await client.post(approve, json={"reason": "   "})
        extra = await client.post(approve, json={"reason": "ok", "force": True})
        bad_state = await client.get("/api/v1/proposals?state=maybe")
        bad_status = await client.get("/api/v1/incidents?status=closed")
        too_many = await client.get("/api/v1/incidents?limit=100000")
        zero = await client.get("/api/v1/predictions?limit=0")
        unknown = await client.post("/api/v1/proposals/no-such-proposal/approve", json={"reason": "x"})
        no_incident = await client.get("/api/v1/incidents/no-such-incident")
        no_route = await client.get("/api/v1/nothing-here")
        wrong_method = await client.delete("/api/v1/incidents")
        metrics = (await client.get("/metrics")).text

    assert malformed.status_code == 400 and malformed.json()["error"] == "malformed_json"
    assert "not valid JSON" in malformed.json()["detail"]

    def problem(response) -> str:
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "invalid_request"
        return "; ".join(f"{d['loc']}: {d['msg']}" for d in response.json()["detail"])

    assert problem(no_reason) == "body.reason: Field required"
    assert "reason must not be blank" in problem(blank)
    assert problem(extra) == "body.force: Extra inputs are not permitted"
    assert problem(bad_state).startswith("query.state: Input should be 'pending', 'approved'")
    assert problem(bad_status) == "query.status: Input should be 'open' or 'resolved'"
    assert problem(too_many) == "query.limit: Input should be less than or equal to 500"
    assert problem(zero) == "query.limit: Input should be greater than or equal to 1"
    assert unknown.status_code == 404 and unknown.json()["detail"] == "no proposal 'no-such-proposal'"
    assert no_incident.status_code == 404 and no_incident.json()["error"] == "not_found"
    assert no_route.status_code == 404 and no_route.json()["detail"] == "no route GET /api/v1/nothing-here"
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "method_not_allowed"
    assert 'status="500"' not in metrics  # nothing above reached the internal-error handler


async def test_a_viewer_sees_evidence_redacted_and_an_operator_as_it_came(api_server: ApiServer) -> None:
    inc = incident(title="Redis auth failures")
    leaky = inc.signals[1].model_copy(update={
        "summary": "masterauth changed by CONFIG SET masterauth V1ewerPw",
        "details": {"dsn": "redis://:V1ewerUrl@cache-1:6379", "lines": ["-----BEGIN RSA PRIVATE KEY-----",
                                                                          "V1ewerKeyBody", "-----END RSA PRIVATE KEY-----"]}})
    inc = inc.model_copy(update={"signals": [inc.signals[0], leaky]})
    await api_server.publish(INCIDENTS, inc)
    await api_server.publish(RCA_REPORTS, rca(inc, cause="CONFIG SET requirepass V1ewerRca"))
    await api_server.wait_for(f"/api/v1/incidents/{inc.incident_id}", lambda r: r.status_code == 200 and r.json()["rca"])
    async with api_server.client("vera") as viewer, api_server.client("otto") as operator:
        seen = (await viewer.get(f"/api/v1/incidents/{inc.incident_id}")).text
        listed = (await viewer.get("/api/v1/incidents")).text
        raw = (await operator.get(f"/api/v1/incidents/{inc.incident_id}")).text
    assert "V1ewer" not in seen and "V1ewer" not in listed
    assert "redis://:<redacted>@cache-1:6379" in seen and "Redis auth failures" in seen
    assert all(secret in raw for secret in ("V1ewerPw", "V1ewerUrl", "V1ewerKeyBody", "V1ewerRca"))
