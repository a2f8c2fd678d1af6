"""The web console in headless Chromium (Debian's, driven by Playwright) against the running API: it shows an
open incident with its root cause, and approving a pending proposal through the page lands a decision."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from kubestack.contract.events import RemediationDecision
from kubestack.contract.topics import INCIDENTS, RCA_REPORTS, REMEDIATION_DECISIONS, REMEDIATION_PROPOSALS
from tests.kafka_io import consume_all
from tests.services.kubestack_api import ApiServer, incident, proposal, rca

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio(loop_scope="session")]

CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright's own download is never used


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            await chromium.close()


async def open_console(browser: Browser, server: ApiServer, token_name: str) -> Page:
    page = await browser.new_page()
    await page.goto(server.url + "/")
    await page.fill("#token", server.tokens[token_name])
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#who")).to_contain_text(token_name)
    return page


async def seeded(server: ApiServer):
    inc = incident(title=f"Redis memory pressure {uuid.uuid4().hex[:6]}")
    prop = proposal(inc)
    await server.publish(INCIDENTS, inc)
    await server.publish(RCA_REPORTS, rca(inc))
    await server.publish(REMEDIATION_PROPOSALS, prop)
    await server.wait_for(f"/api/v1/incidents/{inc.incident_id}",
                          lambda r: r.status_code == 200 and r.json()["rca"] and r.json()["proposals"])
    return inc, prop


async def test_console_shows_an_incident_with_its_root_cause(api_server: ApiServer, browser: Browser) -> None:
    inc, _ = await seeded(api_server)
    page = await open_console(browser, api_server, "vera")
    card = page.locator(f"article.incident[data-incident-id='{inc.incident_id}']")
    await expect(card).to_contain_text(inc.title)
    first = card.locator("tr.hypothesis").first
    await expect(first).to_contain_text("maxmemory lowered below used memory")
    await expect(first.locator(".confidence")).to_have_text("87%")
    await expect(first.locator(".runbooks")).to_have_text("redis/maxmemory")
    await expect(card.locator(".narrative")).to_contain_text("then memory pressure [e2]")
    await expect(card.locator(".timeline summary")).to_have_text("Timeline (2 signals)")
    await card.locator(".timeline summary").click()
    rows = card.locator(".timeline tr")
    await expect(rows.first).to_contain_text("redis.maxmemory_lowered")  # earliest signal first
    await page.close()


async def test_viewer_gets_no_decision_buttons(api_server: ApiServer, browser: Browser) -> None:
    _, prop = await seeded(api_server)
    page = await open_console(browser, api_server, "vera")
    card = page.locator(f"article.proposal[data-proposal-id='{prop.proposal_id}']")
    await expect(card).to_contain_text("Viewers cannot decide.")
    await expect(card.locator("button")).to_have_count(0)
    await page.close()


async def test_approving_through_the_page_lands_a_decision(api_server: ApiServer, browser: Browser) -> None:
    _, prop = await seeded(api_server)
    page = await open_console(browser, api_server, "otto")
    page.once("dialog", lambda dialog: dialog.accept("approved from the console"))
    card = page.locator(f"article.proposal[data-proposal-id='{prop.proposal_id}']")
    await card.locator("button.approve").click()
    await expect(page.locator("#status")).to_contain_text(f"Proposal {prop.proposal_id} approved by otto")
    await expect(card).to_have_count(0)  # no longer pending
    records = await consume_all(api_server.kafka, api_server.topic(REMEDIATION_DECISIONS), f"t-{uuid.uuid4().hex}")
    decisions = [d for d in (RemediationDecision.model_validate_json(r.value) for r in records)
                 if d.proposal_id == prop.proposal_id]
    assert len(decisions) == 1
    assert (decisions[0].decision, decisions[0].actor, decisions[0].reason, decisions[0].via) == (
        "approve", "otto", "approved from the console", "api")
    await page.close()


async def test_a_refused_token_returns_to_the_login(api_server: ApiServer, browser: Browser) -> None:
    page = await browser.new_page()
    await page.goto(api_server.url + "/")
    await page.fill("#token", "not-a-token")
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#login-error")).to_contain_text("unknown or revoked token")
    await expect(page.locator("#main")).to_be_hidden()
    await page.close()
