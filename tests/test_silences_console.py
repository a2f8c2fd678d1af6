"""The console's silences and acknowledgements in headless Chromium (Debian's, driven by Playwright) against the
real API: an operator silences a service through the page and ends it, a silenced incident shows the mark, an
incident is acknowledged and un-acknowledged from its card; a viewer gets no buttons. Screenshots land in the test
artifacts (``KUBESTACK_ARTIFACTS``, default the pytest temp folder)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from kubestack.contract.events import AuditEntry
from kubestack.contract.topics import AUDIT_ENTRIES, INCIDENTS
from tests.services.kubestack_api import ApiServer, incident
from tests.test_console import browser, open_console  # noqa: F401 (the module's Chromium fixture)
from tests.test_silences_api import on_topic

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio(loop_scope="session")]


def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("KUBESTACK_ARTIFACTS", tmp_path)) / "console"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_operator_silences_and_acks_through_the_page(api_server: ApiServer, browser: Browser,  # noqa: F811
                                                          tmp_path: Path) -> None:
    service = f"svc-{uuid.uuid4().hex[:6]}"
    inc = incident(title=f"Redis memory pressure {uuid.uuid4().hex[:6]}").model_copy(
        update={"silenced_by": ["maint-42"]})
    await api_server.publish(INCIDENTS, inc)
    await api_server.wait_for(f"/api/v1/incidents/{inc.incident_id}", lambda r: r.status_code == 200)
    page = await open_console(browser, api_server, "otto")
    await page.fill("#silence-services", service)
    await page.fill("#silence-for", "90")
    await page.fill("#silence-comment", "console maintenance")
    await page.click("#silence-form button[type=submit]")
    await expect(page.locator("#status")).to_contain_text("in force now")
    row = page.locator("tr.silence", has_text=f"service={service}")
    await expect(row.locator(".silence-state")).to_have_text("in force")
    await expect(row).to_contain_text("console maintenance")
    card = page.locator(f"article.incident[data-incident-id='{inc.incident_id}']")
    await expect(card.locator(".silenced")).to_have_text(" silenced")
    await card.locator("button.ack").click()
    await expect(page.locator("#status")).to_contain_text(f"Incident {inc.incident_id} acknowledged by otto")
    await expect(card.locator(".ack-state")).to_contain_text("Acknowledged by otto (console)")
    await page.screenshot(path=str(artifacts(tmp_path) / "silences-and-ack.png"), full_page=True)
    await card.locator("button.unack").click()
    await expect(card.locator(".ack-state")).to_have_text("Not acknowledged")
    await row.locator("button.end").click()
    await expect(page.locator("#status")).to_contain_text("ended")
    await expect(row).to_have_count(0)
    await page.close()
    audited = await on_topic(api_server, AUDIT_ENTRIES, AuditEntry, subject_id=inc.incident_id)
    assert [(e.action, e.details["via"]) for e in audited] == [("incident.acknowledged", "console"),
                                                               ("incident.unacknowledged", "console")]


async def test_viewer_sees_silences_without_buttons(api_server: ApiServer, browser: Browser) -> None:  # noqa: F811
    async with api_server.client("otto") as client:
        created = await client.post("/api/v1/silences", json={"resources": ["db-viewer"], "for_s": 600,
                                                              "comment": "viewer can read this"})
    silence_id = created.json()["silence"]["silence_id"]
    page = await open_console(browser, api_server, "vera")
    row = page.locator(f"tr.silence[data-silence-id='{silence_id}']")
    await expect(row).to_contain_text("viewer can read this")
    await expect(row.locator("button")).to_have_count(0)
    await expect(page.locator("#silence-form")).to_be_hidden()
    await page.close()
