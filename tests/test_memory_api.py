"""Incident memory over the real API, broker and headless Chromium: the same fault twice, the second incident's report
recalls the first (as the worker's ``pipeline.memory`` makes it from the audited remediation results) with what was
done and whether it worked. Shown by ``GET /incidents/{id}/similar`` (tenant-scoped) and the console's incident card
(screenshot in the test artifacts) and the MCP server's show_incident tool (the SDK's client over streamable HTTP);
an operator marks the cause right from the console and from Slack's signed callback, a viewer and another tenant's
user cannot, and every verdict and refusal is audited."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, expect

from kubestack.contract.base import utcnow
from kubestack.contract.events import AuditEntry, Incident, RcaReport, RemediationProposal, ResultStatus
from kubestack.contract.topics import AUDIT_ENTRIES, INCIDENTS, RCA_REPORTS, REMEDIATION_PROPOSALS, REMEDIATION_RESULTS
from kubestack.mcp.http import http_app
from kubestack.mcp.server import build_server
from kubestack.pipeline import memory
from kubestack.pipeline.audit import AuditChain
from kubestack.pipeline.remediation import audit_result, result
from tests.services.kubestack_api import SOURCE, ApiServer, incident, proposal, rca
from tests.test_api_slack import form, recorded_press, signed
from tests.services.process import free_port
from tests.test_console import browser, open_console  # noqa: F401 (the module's Chromium fixture)
from tests.test_mcp import over_http, payload
from tests.test_silences_api import on_topic
from tests.test_silences_console import artifacts

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio(loop_scope="session")]

COORDINATOR_COPY = Path("/work/helpers/A-console-similar.png")
"""Where the coordinator's note picks the screenshot up, when that folder exists (not in CI)."""


async def twice(server: ApiServer) -> tuple[Incident, Incident, RemediationProposal]:
    """The same fault three days apart: the first fixed by redis.config_set, approved by otto and verified; the
    second's report names the first as similar, made as the worker makes it from the audit trail."""
    tag = uuid.uuid4().hex[:6]
    first = incident(title=f"Redis memory pressure {tag}")
    first = first.model_copy(update={"opened_at": first.opened_at - timedelta(days=3)})
    fixed = proposal(first)
    outcomes = [result(fixed, ResultStatus.APPROVED, "approved via console", SOURCE, utcnow(), actor="otto"),
                result(fixed, ResultStatus.EXECUTED, "OK", SOURCE, utcnow()),
                result(fixed, ResultStatus.VERIFIED, "redis.maxmemory_lowered cleared", SOURCE, utcnow())]
    chain = AuditChain(seq=20_000 + uuid.uuid4().int % 10_000)
    done: dict[str, memory.KeptAction] = {}
    for outcome in outcomes:
        record = chain.link(audit_result(fixed, outcome))
        done[record.subject_id] = memory.fold_action(done.get(record.subject_id), record)
    again = incident(title=f"Redis memory pressure {tag}")
    report = rca(again)
    similar = memory.similar(memory.remember(again, report), [memory.remember(first, rca(first))], done.values())
    await server.publish(INCIDENTS, first, again)
    await server.publish(RCA_REPORTS, rca(first), report.model_copy(update={"similar": similar}))
    await server.publish(REMEDIATION_PROPOSALS, fixed)
    await server.publish(REMEDIATION_RESULTS, *outcomes)
    await server.wait_for(f"/api/v1/incidents/{again.incident_id}",
                          lambda r: r.status_code == 200 and r.json()["rca"] and r.json()["rca"]["similar"],
                          timeout_s=60)
    return first, again, fixed


async def test_the_second_occurrence_shows_the_first_and_what_fixed_it(api_server: ApiServer) -> None:
    first, again, fixed = await twice(api_server)
    path = f"/api/v1/incidents/{again.incident_id}/similar"
    async with api_server.client("vera") as viewer:
        listed = (await viewer.get(path)).json()["items"]
        view = (await viewer.get(f"/api/v1/incidents/{again.incident_id}")).json()
    async with api_server.client("acme-viewer") as other:
        assert (await other.get(path)).status_code == 404, "another tenant's incident"
    assert [s["incident_id"] for s in listed] == [first.incident_id]
    assert listed[0]["similarity"] == 1.0 and listed[0]["title"] == first.title
    assert listed[0]["actions"] == [{"proposal_id": fixed.proposal_id, "action": "redis.config_set",
                                     "status": "verified", "approved_by": "otto"}]
    assert listed[0]["outcome"] == "fixed by redis.config_set (verified), approved by otto"
    assert RcaReport.model_validate(view["rca"]).similar[0].incident_id == first.incident_id


async def test_an_operator_marks_the_cause_from_slack_and_others_cannot(api_server: ApiServer) -> None:
    _, again, _ = await twice(api_server)
    answers = {}
    async with api_server.client() as client:
        for user, component in (("U0CA5", again.resource.key), ("UVERA", again.resource.key),
                                ("UACME", again.resource.key), ("U0CA5", "-/x/redis/nowhere")):
            payload = recorded_press("cause_right", "unused", again.incident_id)
            payload["actions"][0]["value"] = f'{{"incident_id": "{again.incident_id}", "component": "{component}", ' \
                                             f'"cause": "maxmemory lowered below used memory"}}'
            payload["user"] = {"id": user, "username": user.lower()}
            body = form(payload)
            answers[user, component] = await client.post("/api/v1/slack/actions", content=body,
                                                         headers=signed(body))
    key = again.resource.key
    assert answers["U0CA5", key].status_code == 200 and answers["U0CA5", key].json() == {
        "ok": True, "message": f"maxmemory lowered below used memory on {key} marked right"}
    assert answers["UVERA", key].status_code == 403 and answers["UVERA", key].json()["detail"] == "role"
    assert answers["UACME", key].json() == {"ok": False, "message": f"incident {again.incident_id} is unknown here"}
    nowhere = answers["U0CA5", "-/x/redis/nowhere"]
    assert nowhere.status_code == 400 and "no signal on -/x/redis/nowhere" in nowhere.json()["detail"]

    audited = await on_topic(api_server, AUDIT_ENTRIES, AuditEntry, subject_id=again.incident_id)
    marked = [e for e in audited if e.action == "rca.feedback"]
    assert [(e.actor, e.details["right"], e.details["via"], e.details["comment"]) for e in marked] == [
        ("slack:U0CA5", True, "slack", "marked right in Slack by u0ca5")]
    assert {(e.actor, e.details["reason"]) for e in audited if e.action == "api.denied"} == {
        ("slack:UVERA", "role"), ("slack:UACME", "tenant")}


async def test_the_console_shows_similar_past_incidents_and_takes_a_verdict(
        api_server: ApiServer, browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    first, again, _ = await twice(api_server)
    page = await open_console(browser, api_server, "otto")
    await page.set_viewport_size({"width": 1200, "height": 900})
    card = page.locator(f"article.incident[data-incident-id='{again.incident_id}']")
    panel = card.locator(".similar")
    await expect(panel.locator("h4")).to_have_text("Similar past incidents (1)")
    row = panel.locator(f"tr.similar-incident[data-incident-id='{first.incident_id}']")
    await expect(row).to_contain_text(first.title)
    await expect(row).to_contain_text("3 days ago")
    await expect(row.locator(".similarity")).to_have_text("100%")
    await expect(row.locator(".status-verified")).to_have_text("verified")
    await expect(row).to_contain_text("approved by otto")
    await expect(row.locator(".outcome")).to_have_text("fixed by redis.config_set (verified), approved by otto")
    shot = artifacts(tmp_path) / "incident-similar-past-incidents.png"
    await card.screenshot(path=str(shot))
    if COORDINATOR_COPY.parent.is_dir():
        shutil.copyfile(shot, COORDINATOR_COPY)

    await card.locator("tr.hypothesis").first.locator("button.cause-right").click()
    await expect(page.locator("#status")).to_contain_text(
        f"maxmemory lowered below used memory on {again.resource.key} marked right by otto")
    await page.close()
    viewer = await open_console(browser, api_server, "vera")
    seen = viewer.locator(f"article.incident[data-incident-id='{again.incident_id}']")
    await expect(seen.locator(".similar h4")).to_have_text("Similar past incidents (1)")
    await expect(seen.locator(".verdict button")).to_have_count(0)
    await viewer.close()

    audited = await on_topic(api_server, AUDIT_ENTRIES, AuditEntry, subject_id=again.incident_id,
                             action="rca.feedback")
    assert [(e.actor, e.details["right"], e.details["via"]) for e in audited] == [("otto", True, "api")]


async def test_the_mcp_show_incident_tool_tells_what_was_done_last_time(api_server: ApiServer) -> None:
    first, again, fixed = await twice(api_server)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(http_app(build_server(api_server.url, books=[]), "127.0.0.1"), host="127.0.0.1",
                                           port=port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        async with over_http(f"http://127.0.0.1:{port}/mcp", api_server.tokens["vera"]) as client:
            shown = payload(await client.call_tool("show_incident", {"incident_id": again.incident_id}))
    finally:
        server.should_exit = True
        await task
    [similar] = shown["similar_past_incidents"]
    assert (similar["incident_id"], similar["similarity"]) == (first.incident_id, 1.0)
    assert similar["actions"] == [{"proposal_id": fixed.proposal_id, "action": "redis.config_set",
                                   "status": "verified", "approved_by": "otto"}]
    assert similar["outcome"] == "fixed by redis.config_set (verified), approved by otto"
