"""Approve / reject from Microsoft Teams: the card's Action.OpenUrl opens the API's decision page, which decides
through ``POST /api/v1/teams/decisions`` with an operator token: signed, role, tenant and audit like Slack's."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright, expect

from kubestack.contract.events import (
    AuditEntry,
    RemediationDecision,
    RemediationProposal,
    RemediationResult,
    ResultStatus,
)
from kubestack.contract.topics import AUDIT_ENTRIES, INCIDENTS, REMEDIATION_DECISIONS, REMEDIATION_PROPOSALS
from kubestack.notifysettings import NotifySettings
from kubestack.pipeline.notify.channels import render
from kubestack.pipeline.notify.notice import Context, notice_for
from tests.kafka_io import consume_all
from tests.notify_events import result
from tests.services.kubestack_api import ApiServer, incident, proposal

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio(loop_scope="session")]

CHROMIUM = "/usr/bin/chromium"  # Debian's package, as in tests/test_console.py


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            await chromium.close()


async def _published(api_server: ApiServer, proposal_id: str, *, wait_s: float = 30.0) -> list[RemediationDecision]:
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        records = await consume_all(api_server.kafka, api_server.topic(REMEDIATION_DECISIONS),
                                    f"t-{uuid.uuid4().hex[:8]}")
        found = [d for d in (RemediationDecision.model_validate_json(r.value) for r in records)
                 if d.proposal_id == proposal_id]
        if found or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.5)


async def _audit(api_server: ApiServer, subject_id: str) -> list[AuditEntry]:
    records = await consume_all(api_server.kafka, api_server.topic(AUDIT_ENTRIES), f"t-{uuid.uuid4().hex[:8]}")
    return [e for e in (AuditEntry.model_validate_json(r.value) for r in records) if e.subject_id == subject_id]


async def _pending(api_server: ApiServer, tenant: str = "default"):
    inc = incident(tenant)
    prop = proposal(inc)
    await api_server.publish(INCIDENTS, inc)
    await api_server.publish(REMEDIATION_PROPOSALS, prop)
    await api_server.wait_for(f"/api/v1/proposals?incident_id={inc.incident_id}", lambda r: r.json()["items"])
    return inc, prop


async def test_the_cards_approve_link_opens_the_decision_page(api_server: ApiServer) -> None:
    inc, prop = await _pending(api_server)
    settings = NotifySettings.model_validate({"console_url": api_server.url,
                                              "teams": {"webhook_url": "https://example.invalid/workflows/x"}})
    notice = notice_for(result_for(prop), Context(incident=inc, proposal=prop))
    card = render(notice, "teams", settings).payload["attachments"][0]["content"]
    approve = next(a["url"] for a in card["actions"] if a["title"] == "Approve")
    async with api_server.client() as client:  # no token: the page asks for one
        page = await client.get(approve)
        script = await client.get("/api/v1/teams/decide.js")
        hostile = await client.get("/api/v1/teams/decide", params={"proposal_id": "<script>", "decision": "approve"})
        snooze = await client.get("/api/v1/teams/decide", params={"proposal_id": "p-1", "decision": "snooze"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f"<code>{prop.proposal_id}</code>" in page.text and 'data-decision="approve"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/api/v1/teams/decide.js"' in page.text and "<script>" not in page.text.replace(
        '<script src="/api/v1/teams/decide.js" defer></script>', "")
    assert script.status_code == 200 and 'fetch("/api/v1/teams/decisions"' in script.text
    assert hostile.status_code == 422 and snooze.status_code == 422


def result_for(prop: RemediationProposal) -> RemediationResult:
    return result(ResultStatus.PENDING, proposal_id=prop.proposal_id, incident_id=prop.incident_id,
                  tenant=prop.tenant)


async def test_an_operator_decides_via_teams_signed_and_audited(api_server: ApiServer) -> None:
    inc, prop = await _pending(api_server)
    body = {"proposal_id": prop.proposal_id, "decision": "approve", "reason": "looks right, approving from Teams"}
    async with api_server.client("otto") as client:
        response = await client.post("/api/v1/teams/decisions", json=body)
        again = await client.post("/api/v1/teams/decisions", json=body)
    assert response.status_code == 202, response.text
    assert response.json()["state"] == "approved"
    assert again.status_code == 409
    (decision,) = await _published(api_server, prop.proposal_id)
    assert (decision.decision, decision.via, decision.actor, decision.role) == ("approve", "teams", "otto",
                                                                               "operator")
    assert decision.reason == "looks right, approving from Teams"
    keys = api_server.app.state.context.decision_keys
    assert keys.problem(decision, decision.ts, 60) is None, "signed as the remediation stage checks it"
    deadline = asyncio.get_running_loop().time() + 20
    while not (approved := [e for e in await _audit(api_server, prop.proposal_id)
                            if e.action == "proposal.approved"]):
        assert asyncio.get_running_loop().time() < deadline, "no proposal.approved audit entry"
        await asyncio.sleep(0.5)
    assert approved[0].actor == "otto" and approved[0].details["via"] == "teams"


async def test_no_token_a_viewer_and_another_tenants_operator_cannot_decide(api_server: ApiServer) -> None:
    inc, prop = await _pending(api_server)  # tenant default
    body = {"proposal_id": prop.proposal_id, "decision": "reject"}
    async with api_server.client() as anonymous:
        nobody = await anonymous.post("/api/v1/teams/decisions", json=body)
    async with api_server.client("vera") as viewer:
        vera = await viewer.post("/api/v1/teams/decisions", json=body)
    async with api_server.client("acme-op") as other:
        acme = await other.post("/api/v1/teams/decisions", json=body)
    async with api_server.client("otto") as operator:
        invalid = await operator.post("/api/v1/teams/decisions", json={**body, "decision": "maybe"})
    assert nobody.status_code == 401
    assert vera.status_code == 403 and vera.json()["detail"] == "role"
    assert acme.status_code == 404 and acme.json()["detail"] == f"no proposal {prop.proposal_id!r}"
    assert invalid.status_code == 422
    assert await _published(api_server, prop.proposal_id, wait_s=1.0) == [], "nobody decided"
    pending = await api_server.wait_for(f"/api/v1/proposals?incident_id={inc.incident_id}", lambda r: True)
    assert pending.json()["items"][0]["state"] == "pending"
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        denied = {(e.actor, e.details["reason"]) for e in await _audit(api_server, prop.proposal_id)
                  if e.action == "api.denied"}
        if len(denied) >= 2 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.5)
    assert denied == {("acme-op", "tenant"), ("vera", "role")}


async def test_the_decision_page_decides_in_a_browser_with_the_token_given(api_server: ApiServer,
                                                                          browser: Browser) -> None:
    """What a person does after pressing Reject on the Teams card: the page (its script under its CSP) sends the
    decision with their token; a viewer's token is refused on the page, an operator's decides."""
    _, prop = await _pending(api_server)
    page = await browser.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    await page.goto(f"{api_server.url}/api/v1/teams/decide?proposal_id={prop.proposal_id}&decision=reject")
    await page.fill("#token", api_server.tokens["vera"])
    await page.click("#submit")
    await expect(page.locator("#outcome")).to_have_text("Refused (403): role")
    await page.fill("#token", api_server.tokens["otto"])
    await page.fill("#reason", "wrong fix for this incident")
    await page.click("#submit")
    await expect(page.locator("#outcome")).to_have_text(f"Done: proposal {prop.proposal_id} is rejected.")
    await expect(page.locator("#submit")).to_be_disabled()
    await page.close()
    (decision,) = await _published(api_server, prop.proposal_id)
    assert (decision.decision, decision.via, decision.actor, decision.reason) == (
        "reject", "teams", "otto", "wrong fix for this incident")
    assert not [e for e in errors if "Content Security Policy" in e], errors
