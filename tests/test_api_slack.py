"""Slack button callbacks: signature and timestamp checks (pure, and against the running API), and a verified
press becoming a RemediationDecision via slack on the real topic."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest

from pydantic import ValidationError

from kubestack.api import slack
from kubestack.api.auth import token_spec
from kubestack.apisettings import ApiSettings, Role
from kubestack.api.errors import BadRequestError, UnauthorizedError
from kubestack.contract.events import AuditEntry, RemediationDecision
from kubestack.contract.topics import AUDIT_ENTRIES, INCIDENTS, REMEDIATION_DECISIONS, REMEDIATION_PROPOSALS
from tests.kafka_io import consume_all
from tests.services.kubestack_api import SLACK_SECRET, ApiServer, incident, proposal

RECORDED = Path(__file__).parent / "data" / "api" / "slack_block_actions.json"
# Slack's documented example: secret, timestamp, body and the signature Slack computed for them.
DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DOC_TIMESTAMP = "1531420618"
DOC_BODY = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&"
            b"channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&"
            b"response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
            b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def form(payload: dict) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def recorded_press(action_id: str, proposal_id: str, incident_id: str) -> dict:
    payload = json.loads(RECORDED.read_text())
    payload["actions"][0]["action_id"] = action_id
    payload["actions"][0]["value"] = json.dumps({"proposal_id": proposal_id, "incident_id": incident_id})
    return payload


def test_signature_matches_slacks_documented_example() -> None:
    assert slack.sign(DOC_SECRET, DOC_TIMESTAMP, DOC_BODY) == DOC_SIGNATURE
    slack.verify(DOC_SECRET, DOC_TIMESTAMP, DOC_SIGNATURE, DOC_BODY, now=int(DOC_TIMESTAMP) + 10)


@pytest.mark.parametrize(("timestamp", "signature", "now", "why"), [
    (DOC_TIMESTAMP, DOC_SIGNATURE.replace("a2", "b2", 1), int(DOC_TIMESTAMP), "bad_signature"),
    (DOC_TIMESTAMP, DOC_SIGNATURE, int(DOC_TIMESTAMP) + 301, "stale_timestamp"),
    (DOC_TIMESTAMP, DOC_SIGNATURE, int(DOC_TIMESTAMP) - 301, "stale_timestamp"),
])
def test_forged_or_stale_signatures_are_refused(timestamp: str, signature: str, now: int, why: str) -> None:
    with pytest.raises(UnauthorizedError) as caught:
        slack.verify(DOC_SECRET, timestamp, signature, DOC_BODY, now=now)
    assert caught.value.detail == why


def test_missing_headers_and_bad_timestamps_are_refused() -> None:
    for timestamp, signature in ((None, DOC_SIGNATURE), (DOC_TIMESTAMP, None), ("yesterday", DOC_SIGNATURE)):
        with pytest.raises(UnauthorizedError):
            slack.verify(DOC_SECRET, timestamp, signature, DOC_BODY, now=int(DOC_TIMESTAMP))


def test_button_press_reads_the_recorded_block_actions_payload() -> None:
    press = slack.button_press(form(json.loads(RECORDED.read_text())))
    assert (press.decision, press.proposal_id, press.incident_id) == ("approve", "p-42", "inc-7")
    assert press.actor == "slack:U0CA5" and press.reason == "approve button in Slack by ana"


@pytest.mark.parametrize(("body", "message"), [
    (b"text=hello", "no 'payload' field"),
    (urlencode({"payload": "{not json"}).encode(), "payload is not JSON"),
    (form({"type": "view_submission"}), "only block_actions"),
    (form(recorded_press("snooze", "p", "i")), "action_id must be approve or reject"),
    (form(json.loads(RECORDED.read_text()) | {"user": {}}), "no user.id"),
])
def test_button_press_names_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(BadRequestError, match=message):
        slack.button_press(body)


def test_a_slack_user_is_who_api_slack_users_says() -> None:
    api = ApiSettings(tokens=[token_spec("t1", "acme-op", Role.OPERATOR, "acme"), token_spec("t2", "vera", Role.VIEWER)],
                      slack_users={"UA": {"token": "acme-op"}, "UV": {"token": "vera"},
                                   "UO": {"role": "admin", "tenants": ["acme", "globex"]}, "UE": {"role": "operator"}})
    assert slack.approver(api, "UA") == slack.SlackApprover(Role.OPERATOR, frozenset({"acme"}))
    assert slack.approver(api, "UV").role == Role.VIEWER and slack.approver(api, "UV").sees("acme")
    assert slack.approver(api, "UO").sees("globex") and not slack.approver(api, "UO").sees("default")
    assert slack.approver(api, "UE").sees("anything") and slack.approver(api, "U-nobody") is None
    with pytest.raises(ValidationError, match="api.tokens does not have"):
        ApiSettings(slack_users={"UX": {"token": "ghost"}})
    with pytest.raises(ValidationError, match="either token"):
        ApiSettings(slack_users={"UX": {"tenants": ["acme"]}})


def test_button_value_without_ids_is_refused() -> None:
    payload = json.loads(RECORDED.read_text())
    payload["actions"][0]["value"] = json.dumps({"proposal_id": "p-1"})
    with pytest.raises(BadRequestError, match="proposal_id and incident_id"):
        slack.button_press(form(payload))


def signed(body: bytes, timestamp: int | None = None, secret: str = SLACK_SECRET) -> dict[str, str]:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": slack.sign(secret, ts, body),
            "Content-Type": "application/x-www-form-urlencoded"}


@pytest.mark.kafka
@pytest.mark.asyncio(loop_scope="session")
async def test_forged_and_stale_callbacks_are_401_and_audited(api_server: ApiServer) -> None:
    body = form(recorded_press("approve", "p-forged", "inc-forged"))
    async with api_server.client() as client:
        forged = await client.post("/api/v1/slack/actions", content=body, headers=signed(body, secret="guessed"))
        stale = await client.post("/api/v1/slack/actions", content=body,
                                  headers=signed(body, timestamp=int(time.time()) - 600))
        unsigned = await client.post("/api/v1/slack/actions", content=body)
    assert forged.status_code == 401 and forged.json()["detail"] == "bad_signature"
    assert stale.status_code == 401 and stale.json()["detail"] == "stale_timestamp"
    assert unsigned.status_code == 401
    records = await consume_all(api_server.kafka, api_server.topic(AUDIT_ENTRIES), f"t-{uuid.uuid4().hex[:8]}")
    denied = [AuditEntry.model_validate_json(r.value) for r in records]
    reasons = [e.details["reason"] for e in denied if e.action == "api.denied" and e.details.get("via") == "slack"]
    assert "bad_signature" in reasons and "stale_timestamp" in reasons


@pytest.mark.kafka
@pytest.mark.asyncio(loop_scope="session")
async def test_verified_button_press_becomes_a_decision_via_slack(api_server: ApiServer) -> None:
    inc = incident()
    prop = proposal(inc)
    await api_server.publish(INCIDENTS, inc)
    await api_server.publish(REMEDIATION_PROPOSALS, prop)
    await api_server.wait_for(f"/api/v1/proposals?incident_id={inc.incident_id}", lambda r: r.json()["items"])
    body = form(recorded_press("reject", prop.proposal_id, inc.incident_id))
    async with api_server.client() as client:
        response = await client.post("/api/v1/slack/actions", content=body, headers=signed(body))
    assert response.status_code == 200 and response.json()["ok"] is True

    decisions: list[RemediationDecision] = []
    for _ in range(60):
        records = await consume_all(api_server.kafka, api_server.topic(REMEDIATION_DECISIONS),
                                    f"t-{uuid.uuid4().hex[:8]}")
        decisions = [d for d in (RemediationDecision.model_validate_json(r.value) for r in records)
                     if d.proposal_id == prop.proposal_id]
        if decisions:
            break
        await asyncio.sleep(0.5)
    assert len(decisions) == 1
    assert (decisions[0].decision, decisions[0].via, decisions[0].actor) == ("reject", "slack", "slack:U0CA5")
    assert decisions[0].reason == "reject button in Slack by ana"
    assert decisions[0].role == "operator", "the role U0CA5 is mapped to"
    keys = api_server.app.state.context.decision_keys
    assert keys.problem(decisions[0], decisions[0].ts, 60) is None, "signed as the remediation stage checks it"

    async with api_server.client() as client:
        again = await client.post("/api/v1/slack/actions", content=body, headers=signed(body))
    assert again.status_code == 200 and again.json() == {
        "ok": False, "message": f"proposal {prop.proposal_id} is already rejected"}


async def _decisions_on(api_server: ApiServer, proposal_id: str, wait_s: float) -> list[RemediationDecision]:
    records = await consume_all(api_server.kafka, api_server.topic(REMEDIATION_DECISIONS), f"t-{uuid.uuid4().hex[:8]}")
    await asyncio.sleep(wait_s)
    records += await consume_all(api_server.kafka, api_server.topic(REMEDIATION_DECISIONS), f"t-{uuid.uuid4().hex[:8]}")
    return [d for d in (RemediationDecision.model_validate_json(r.value) for r in records)
            if d.proposal_id == proposal_id]


@pytest.mark.kafka
@pytest.mark.asyncio(loop_scope="session")
async def test_an_unmapped_user_a_viewer_and_another_tenants_user_cannot_decide(api_server: ApiServer) -> None:
    inc = incident()  # tenant default
    prop = proposal(inc)
    await api_server.publish(INCIDENTS, inc)
    await api_server.publish(REMEDIATION_PROPOSALS, prop)
    await api_server.wait_for(f"/api/v1/proposals?incident_id={inc.incident_id}", lambda r: r.json()["items"])
    answers = {}
    async with api_server.client() as client:
        for user in ("U-NOBODY", "UVERA", "UACME"):
            payload = recorded_press("approve", prop.proposal_id, inc.incident_id)
            payload["user"] = {"id": user, "username": user.lower()}
            body = form(payload)
            answers[user] = await client.post("/api/v1/slack/actions", content=body, headers=signed(body))
    assert answers["U-NOBODY"].status_code == 403 and answers["U-NOBODY"].json()["detail"] == "slack_user_unmapped"
    assert answers["UVERA"].status_code == 403 and answers["UVERA"].json()["detail"] == "role"
    assert answers["UACME"].status_code == 200 and answers["UACME"].json() == {
        "ok": False, "message": f"proposal {prop.proposal_id} is unknown here"}
    assert await _decisions_on(api_server, prop.proposal_id, 1.0) == [], "nobody decided"
    pending = await api_server.wait_for(f"/api/v1/proposals?incident_id={inc.incident_id}", lambda r: True)
    assert pending.json()["items"][0]["state"] == "pending"

    records = await consume_all(api_server.kafka, api_server.topic(AUDIT_ENTRIES), f"t-{uuid.uuid4().hex[:8]}")
    denied = {(e.actor, e.details["reason"]) for e in (AuditEntry.model_validate_json(r.value) for r in records)
              if e.action == "api.denied" and e.subject_id == prop.proposal_id}
    assert denied == {("slack:U-NOBODY", "slack_user_unmapped"), ("slack:UVERA", "role"), ("slack:UACME", "tenant")}
