"""Acknowledge both ways, on the real API server and broker with the PagerDuty receiver (tests/services/receivers):
our ack (API, CLI) acknowledges PagerDuty's alert of the incident's dedup key; a signed PagerDuty v3 webhook acks
and un-acks ours; a bad signature is a 401, audited; every ack is audited."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import uvicorn

from kubestack.api.app import create_app
from kubestack.api.auth import new_token, token_spec
from kubestack.apisettings import ApiSettings
from kubestack.bus import ensure_topics
from kubestack.contract.events import AuditEntry
from kubestack.contract.topics import AUDIT_ENTRIES, INCIDENTS
from kubestack.notifysettings import NotifySettings
from kubestack.settings import KafkaSettings, Settings
from tests.services.kubestack_api import TOKENS, ApiServer, incident
from tests.services.process import free_port
from tests.services.receivers import Receivers, _Server
from tests.services.vendor_receivers import VendorReceivers
from tests.services.vendor_receivers import _Server as _VendorServer
from tests.test_silences_api import on_topic

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio(loop_scope="session")]

PD_SECRET = "whsec-" + "5" * 26


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ack_server(kafka: KafkaSettings, receiver_server: _Server, vendor_receiver_server: _VendorServer,
                     tmp_path_factory) -> AsyncIterator[ApiServer]:
    home = tmp_path_factory.mktemp("ack-home")
    opsgenie = vendor_receiver_server.receivers.notify_config()["opsgenie"]
    notify = NotifySettings.model_validate(receiver_server.receivers.notify_config(opsgenie=opsgenie))
    settings = Settings(home=home, kafka=kafka.model_copy(update={"topic_prefix": f"test.ack.{uuid.uuid4().hex[:8]}."}),
                        notify=notify)
    secrets = {name: new_token() for name in TOKENS}
    api = ApiSettings(port=free_port(), feed_group=f"test-ack-{uuid.uuid4().hex[:8]}",
                      pagerduty_webhook_secret=PD_SECRET,
                      tokens=[token_spec(secrets[n], n, role, tenant) for n, (role, tenant) in TOKENS.items()])
    await ensure_topics(settings.kafka)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, api), host=api.host, port=api.port, log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield ApiServer(url=f"http://{api.host}:{api.port}", settings=settings, api=api, tokens=secrets)
    finally:
        server.should_exit = True
        await task


async def seeded(server: ApiServer, tenant: str = "default"):
    inc = incident(tenant)
    await server.publish(INCIDENTS, inc)
    await server.wait_for(f"/api/v1/incidents/{inc.incident_id}", lambda r: r.status_code == 200)
    return inc


def pd_webhook(event_type: str, incident_id: str, secret: str = PD_SECRET) -> tuple[bytes, dict]:
    body = json.dumps({"event": {
        "id": "01DEN0YHGF2FMHU1DZAGUA0OL8", "event_type": event_type, "resource_type": "incident",
        "occurred_at": "2026-12-07T05:40:00.000Z", "agent": {"id": "PLH1HKV", "type": "user_reference",
                                                             "summary": "Tenex Engineer"},
        "data": {"id": "PGR0VU2", "type": "incident", "number": 2, "status": "acknowledged", "title": "Redis",
                 "incident_key": incident_id, "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2"}}}).encode()
    signature = "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-PagerDuty-Signature": f"v1=deadbeef,{signature}", "Content-Type": "application/json"}


async def test_our_ack_acknowledges_pagerduty_and_opsgenie_and_is_audited(
        ack_server: ApiServer, receivers: Receivers, vendor_receivers: VendorReceivers) -> None:
    inc = await seeded(ack_server)
    receivers.pagerduty.alerts[inc.incident_id] = {"status": "triggered", "triggers": 1, "opened": 1}
    vendor_receivers.opsgenie.alerts[inc.incident_id] = {"status": "open", "count": 1, "message": inc.title,
                                                        "priority": "P1", "notes": [], "opened": 1}
    async with ack_server.client("otto") as client:
        acked = await client.post(f"/api/v1/incidents/{inc.incident_id}/ack", json={"reason": "on it"})
        assert acked.status_code == 200, acked.text
        assert acked.json()["acknowledged"] and acked.json()["pagerduty"] == "sent"
        assert acked.json()["opsgenie"] == "sent"
        assert (await client.post(f"/api/v1/incidents/{inc.incident_id}/ack")).status_code == 409
    assert receivers.pagerduty.alerts[inc.incident_id]["status"] == "acknowledged"
    assert vendor_receivers.opsgenie.alerts[inc.incident_id]["status"] == "acked"
    assert vendor_receivers.opsgenie.alerts[inc.incident_id]["notes"] == ["on it"]
    assert receivers.pagerduty.received[-1] == {"routing_key": receivers.notify_config()["pagerduty"]["routing_key"],
                                                "event_action": "acknowledge", "dedup_key": inc.incident_id}
    async with ack_server.client("vera") as client:
        assert (await client.get(f"/api/v1/incidents/{inc.incident_id}/ack")).json()["actor"] == "otto"
        denied = await client.post(f"/api/v1/incidents/{inc.incident_id}/unack")
        assert denied.status_code == 403
    async with ack_server.client("acme-op") as client:  # another tenant's incident is not there
        assert (await client.post(f"/api/v1/incidents/{inc.incident_id}/unack")).status_code == 404
    async with ack_server.client("otto") as client:
        unacked = await client.post(f"/api/v1/incidents/{inc.incident_id}/unack", json={"via": "console"})
        assert unacked.status_code == 200 and not unacked.json()["acknowledged"]
        assert (await client.post(f"/api/v1/incidents/{inc.incident_id}/unack")).status_code == 409
        assert (await client.post("/api/v1/incidents/nope/ack")).status_code == 404
    audited = await on_topic(ack_server, AUDIT_ENTRIES, AuditEntry, subject_id=inc.incident_id)
    assert [(e.action, e.actor, e.details["via"]) for e in audited] == [
        ("incident.acknowledged", "otto", "api"), ("incident.unacknowledged", "otto", "console")]
    assert audited[0].details["pagerduty"] == "sent" and audited[0].details["reason"] == "on it"


async def test_pagerduty_webhook_acks_and_unacks_ours(ack_server: ApiServer, receivers: Receivers) -> None:
    inc = await seeded(ack_server)
    async with ack_server.client() as client:
        body, headers = pd_webhook("incident.acknowledged", inc.incident_id)
        acked = await client.post("/api/v1/pagerduty/webhook", content=body, headers=headers)
        assert acked.status_code == 200, acked.text
        assert acked.json()["acknowledged"] and acked.json()["actor"] == "pagerduty:Tenex Engineer"
        assert acked.json()["pagerduty"] == "none"  # not echoed back to PagerDuty
        body, headers = pd_webhook("incident.unacknowledged", inc.incident_id)
        unacked = await client.post("/api/v1/pagerduty/webhook", content=body, headers=headers)
        assert unacked.status_code == 200 and not unacked.json()["acknowledged"]
        body, headers = pd_webhook("incident.acknowledged", inc.incident_id, secret="wrong-secret")
        forged = await client.post("/api/v1/pagerduty/webhook", content=body, headers=headers)
        assert forged.status_code == 401 and "X-PagerDuty-Signature" in forged.json()["detail"]
        unsigned = await client.post("/api/v1/pagerduty/webhook", content=body)
        assert unsigned.status_code == 401
        body, headers = pd_webhook("incident.acknowledged", "no-such-incident")
        assert (await client.post("/api/v1/pagerduty/webhook", content=body, headers=headers)).status_code == 404
        body, headers = pd_webhook("incident.priority_updated", inc.incident_id)
        ignored = await client.post("/api/v1/pagerduty/webhook", content=body, headers=headers)
        assert ignored.json() == {"ignored": "incident.priority_updated"}
    assert not receivers.pagerduty.received
    audited = await on_topic(ack_server, AUDIT_ENTRIES, AuditEntry, subject_id=inc.incident_id)
    assert [(e.action, e.actor) for e in audited] == [("incident.acknowledged", "pagerduty:Tenex Engineer"),
                                                      ("incident.unacknowledged", "pagerduty:Tenex Engineer")]
    denied = await on_topic(ack_server, AUDIT_ENTRIES, AuditEntry, action="api.denied", actor="pagerduty")
    assert denied and denied[0].details["reason"] == "signature"


async def test_cli_acks_and_unacks(ack_server: ApiServer) -> None:
    from tests.test_cli_remote import kubestack

    inc = await seeded(ack_server)
    code, text, err = await kubestack(ack_server, "incidents", "ack", inc.incident_id, "--reason", "looking")
    assert code == 0, err
    assert "acknowledged" in text and "PagerDuty: sent" in text
    code, text, err = await kubestack(ack_server, "incidents", "unack", inc.incident_id)
    assert code == 0 and "no longer acknowledged" in text
    code, _, err = await kubestack(ack_server, "incidents", "unack", inc.incident_id)
    assert code != 0 and "409" in err
