"""The installation endpoints against the running API: metrics, OpenAPI, targets, diagnose, plugins, audit."""

from __future__ import annotations

import uuid

import pytest
from fastapi.routing import APIRoute
from prometheus_client.parser import text_string_to_metric_families

from kubestack.api.app import ROUTERS
from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import AuditEntry, AuditRecord, HealthReport
from kubestack.contract.topics import AUDIT, AUDIT_ENTRIES, HEALTH
from tests.kafka_io import consume_all
from tests.services.kubestack_api import LABEL_WITH_SECRET, TARGET_PASSWORD, ApiServer

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio(loop_scope="session")]


async def test_metrics_parse_and_count_requests_rows_and_feed(api_server: ApiServer) -> None:
    async with api_server.client("vera") as client:
        await client.get("/api/v1/incidents")
        text = (await client.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = [s for s in families["kubestack_api_requests"].samples if s.name.endswith("_total")]
    assert any(s.labels == {"route": "/api/v1/incidents", "method": "GET", "status": "200"} and s.value >= 1
               for s in requests)
    rows = {s.labels["kind"]: s.value for s in families["kubestack_api_readmodel_rows"].samples}
    assert set(rows) == {"incidents", "rca_reports", "proposals", "results", "predictions", "health", "audit"}
    assert "kubestack_api_feed_lag_records" in families
    assert "kubestack_api_feed_last_event_age_seconds" in families
    assert "kubestack_api_decisions" in families


async def test_openapi_documents_every_route_with_models_and_tags(api_server: ApiServer) -> None:
    async with api_server.client() as client:
        spec = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
    assert docs.status_code == 200
    routes = [r for router in (*ROUTERS, api_server.app) for r in router.routes if isinstance(r, APIRoute)]
    assert len(routes) >= 15
    for route in routes:
        assert route.include_in_schema, route.path
        for method in route.methods:
            operation = spec["paths"][route.path][method.lower()]
            assert operation["tags"], f"{method} {route.path} has no tag"
            ok = operation["responses"][str(route.status_code or 200)]
            if route.path in ("/", "/metrics"):
                continue
            if "application/json" in ok["content"]:
                assert "$ref" in str(ok["content"]["application/json"]["schema"]), f"{method} {route.path}"
            else:  # a page or its script (the Teams decision page): its media type documented, nothing else
                assert set(ok["content"]) <= {"text/html", "text/javascript"}, f"{method} {route.path}"
    schemas = spec["components"]["schemas"]
    assert {"IncidentView", "ProposalView", "DecisionResponse", "ErrorBody", "RemediationDecision"} <= set(schemas)


async def test_targets_list_config_targets_without_secrets_and_seen_resources(api_server: ApiServer) -> None:
    report = HealthReport(source=Source(agent="agent/t", host="h"), resource=ResourceRef(kind="redis", name="r9",
                                                                                         host="h9"))
    await api_server.publish(HEALTH, report)
    response = await api_server.wait_for("/api/v1/targets", lambda r: r.json()["resources"], name="vera")
    body = response.json()
    assert [t["name"] for t in body["targets"]] == ["this-host", "cache-nowhere"]
    assert body["resources"][0]["resource"] == report.resource.key and body["resources"][0]["findings"] == 0
    assert TARGET_PASSWORD not in response.text and "password" not in response.text
    assert "label-s3cret-Pw" not in response.text, "a viewer sees target labels redacted"
    assert "wiki.example" in body["targets"][1]["labels"]["wiki"]
    async with api_server.client("otto") as client:
        operator = (await client.get("/api/v1/targets")).json()
    assert operator["targets"][1]["labels"]["wiki"] == LABEL_WITH_SECRET


async def test_diagnose_runs_a_targets_checks_now_and_is_audited(api_server: ApiServer) -> None:
    async with api_server.client("otto") as client:
        host = await client.post("/api/v1/diagnose", json={"target": "this-host"})
        down = await client.post("/api/v1/diagnose", json={"target": "cache-nowhere"})
        unknown = await client.post("/api/v1/diagnose", json={"target": "nope"})
        empty = await client.post("/api/v1/diagnose", json={"target": ""})
    async with api_server.client("vera") as client:
        viewer = await client.post("/api/v1/diagnose", json={"target": "this-host"})
    assert host.status_code == 200 and host.json()["error"] is None and host.json()["kind"] == "host"
    assert isinstance(host.json()["findings"], list)
    assert down.status_code == 200 and down.json()["error"]  # unreachable: said, not raised
    assert TARGET_PASSWORD not in down.text
    assert unknown.status_code == 404 and "known: this-host, cache-nowhere" in unknown.json()["detail"]
    assert empty.status_code == 422 and empty.json()["detail"][0]["loc"] == "body.target"
    assert viewer.status_code == 403
    records = await consume_all(api_server.kafka, api_server.topic(AUDIT_ENTRIES), f"t-{uuid.uuid4().hex[:8]}")
    diagnosed = [e for e in (AuditEntry.model_validate_json(r.value) for r in records)
                 if e.action == "target.diagnosed"]
    assert {e.details["target"] for e in diagnosed} >= {"this-host", "cache-nowhere"}
    assert all(e.actor == "otto" for e in diagnosed)


async def test_plugins_and_whoami(api_server: ApiServer) -> None:
    async with api_server.client("acme-op") as client:
        plugins = (await client.get("/api/v1/plugins")).json()
        me = (await client.get("/api/v1/me")).json()
    redis = next(p for p in plugins["plugins"] if p["name"] == "redis")
    assert redis["actions"] and all(a["id"].startswith("redis.") for a in redis["actions"])
    assert me == {"name": "acme-op", "role": "operator", "tenant": "acme"}


async def test_audit_trail_admin_sees_all_tenants_others_their_own(api_server: ApiServer) -> None:
    def record(seq: int, tenant: str) -> AuditRecord:
        return AuditRecord(source=Source(agent="worker/audit", host="h"), resource=ResourceRef(kind="api", name="a"),
                           tenant=tenant, actor="otto", action="proposal.approved", subject_id=f"p-{seq}", seq=seq,
                           entry_id=uuid.uuid4().hex, prev_hash="0" * 64, hash=f"{seq:064x}")

    await api_server.publish(AUDIT, record(1, "default"), record(2, "acme"))
    admin = await api_server.wait_for("/api/v1/audit", lambda r: len(r.json()["items"]) >= 2)
    assert [r["seq"] for r in admin.json()["items"]][:2] == [2, 1]
    async with api_server.client("acme-viewer") as client:
        acme = (await client.get("/api/v1/audit")).json()["items"]
    async with api_server.client("vera") as client:
        unbound_viewer = (await client.get("/api/v1/audit")).json()["items"]
    assert {r["tenant"] for r in acme} == {"acme"}
    assert {r["tenant"] for r in unbound_viewer} == {"default"}
