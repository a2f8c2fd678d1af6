"""The notifier against real local receivers of Microsoft Teams, Opsgenie, Feishu, DingTalk and WeCom
(tests/services/vendor_receivers.py) and a real SMTP server with STARTTLS and AUTH (tests/services/smtp.py):
delivery, retries, dedup, rate limits and redaction as for the first channels."""

from __future__ import annotations

import asyncio
import json
import random

import httpx
import pytest

from kubestack.contract.events import AuditEntry, IncidentStatus, Notification, ResultStatus
from kubestack.notifysettings import NotifySettings
from kubestack.pipeline.notify.notifier import Notifier
from tests.notify_events import incident, proposal, rca, result, signal
from tests.services.receivers import Reply
from tests.services.smtp import SMTP_USER, SmtpServer
from tests.services.vendor_receivers import VendorReceivers

HTTP_CHANNELS = ["teams", "opsgenie", "feishu", "dingtalk", "wecom"]
LEAKY = "replica auth failed: masterauth hunter2, DSN mysql://app:s3cr3t@db-1:3306/orders"


class Sleeps:
    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await asyncio.sleep(seconds / 100)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def notifier(vendors: VendorReceivers, smtp: SmtpServer | None = None, *, sleeps: Sleeps | None = None,
             clock: Clock | None = None, only: list[str] | None = None, **overrides: object) -> Notifier:
    config = vendors.notify_config(**overrides)
    if smtp is not None:
        config["email"] = smtp.email_config()
    if only is not None:
        for name in HTTP_CHANNELS:
            if name not in only:
                config.pop(name, None)
    settings = NotifySettings.model_validate(config)
    return Notifier(settings, sleep=sleeps or Sleeps(), clock=clock or Clock(), rng=random.Random(7))


def of(events: list, kind: type) -> list:
    return [event for event in events if isinstance(event, kind)]


async def test_an_incident_reaches_every_new_channel_as_each_vendor_expects(vendor_receivers: VendorReceivers,
                                                                            smtp: SmtpServer) -> None:
    async with notifier(vendor_receivers, smtp) as notify:
        events = await notify.handle(incident())
    notes = of(events, Notification)
    assert sorted(n.channel for n in notes) == sorted([*HTTP_CHANNELS, "email"])
    assert all(n.delivered and n.attempts == 1 and n.error is None for n in notes), [n.error for n in notes]
    assert [a.action for a in of(events, AuditEntry)] == ["notification.sent"] * 6
    (card,) = vendor_receivers.teams.received
    content = card["attachments"][0]["content"]
    assert content["version"] == "1.4" and content["body"][0]["text"] == "[CRITICAL] Redis memory pressure"
    assert content["actions"] == [{"type": "Action.OpenUrl", "title": "Open in console",
                                   "url": "http://console.kubestack.test/#/incidents/inc-1"}]
    (create,) = vendor_receivers.opsgenie.received
    assert (create["action"], create["alias"], create["priority"]) == ("create", "inc-1", "P1")
    assert vendor_receivers.opsgenie.alerts["inc-1"]["status"] == "open"
    (lark,) = vendor_receivers.feishu.received
    assert lark["msg_type"] == "interactive" and lark["card"]["header"]["template"] == "red"
    (ding,) = vendor_receivers.dingtalk.received
    assert ding["markdown"]["title"] == "[CRITICAL] Redis memory pressure"
    (wecom,) = vendor_receivers.wecom.received
    assert wecom["markdown"]["content"].startswith('### <font color="warning">[CRITICAL] Redis memory pressure')
    (mail,) = smtp.messages
    assert mail.peer_tls and mail.login == SMTP_USER, "STARTTLS, then AUTH"
    assert (mail.sender, mail.recipients) == ("kubestack@ops.example", ["oncall@ops.example"])
    assert mail.message["Subject"] == "[KubeStack] [CRITICAL] Redis memory pressure"
    assert mail.message["In-Reply-To"] == "<incident-inc-1@kubestack>"
    text = mail.message.get_body(("plain",)).get_content()
    html = mail.message.get_body(("html",)).get_content()
    assert "Resources: prod-eu/shop/redis/cache-1, prod-eu/db-1/mysql/orders" in text
    assert '<a href="http://console.kubestack.test/#/incidents/inc-1">Open in console</a>' in html


async def test_a_secret_in_an_incident_never_reaches_any_receiver(vendor_receivers: VendorReceivers,
                                                                  smtp: SmtpServer) -> None:
    leaky = incident(summary=LEAKY, title="Redis auth broken: requirepass hunter2")
    async with notifier(vendor_receivers, smtp) as notify:
        events = await notify.handle(leaky)
    assert all(n.delivered for n in of(events, Notification))
    for receiver in vendor_receivers.all():
        (request,) = receiver.requests
        assert b"hunter2" not in request.body and b"s3cr3t" not in request.body, receiver
        assert b"redacted" in request.body, receiver
    (mail,) = smtp.messages
    raw = mail.message.as_bytes()
    assert b"hunter2" not in raw and b"s3cr3t" not in raw
    assert "requirepass <redacted>" in mail.message["Subject"]
    assert "masterauth &lt;redacted&gt;" in mail.message.get_body(("html",)).get_content()
    assert all("hunter2" not in n.title + n.body for n in of(events, Notification))


async def test_opsgenie_follows_one_incident_by_its_alias(vendor_receivers: VendorReceivers) -> None:
    async with notifier(vendor_receivers, only=["opsgenie"]) as notify:
        await notify.handle(incident(revision=1))
        await notify.handle(rca())
        await notify.handle(incident(revision=2, status=IncidentStatus.UPDATED,
                                     signals=[signal(), signal("mysql.slow_queries", minutes=3)]))
        await notify.handle(proposal())
        await notify.handle(result(ResultStatus.PENDING))
        await notify.handle(result(ResultStatus.APPROVED, actor="teams:otto"))
        acked = dict(vendor_receivers.opsgenie.alerts["inc-1"])
        await notify.handle(incident(revision=3, status=IncidentStatus.RESOLVED))
    received = vendor_receivers.opsgenie.received
    assert [(r["action"], r.get("alias") or r["identifier"]) for r in received] == [
        ("create", "inc-1"), ("notes", "inc-1"), ("create", "inc-1"), ("notes", "inc-1"),
        ("acknowledge", "inc-1"), ("close", "inc-1")]
    assert all(r["identifierType"] == "alias" for r in received[1:2] + received[3:])
    assert acked["status"] == "acked" and acked["count"] == 2
    alert = vendor_receivers.opsgenie.alerts["inc-1"]
    assert alert["status"] == "closed" and alert["opened"] == 1
    assert "maxmemory lowered" in alert["notes"][0]
    assert "decision=approve" in alert["notes"][1], "the approval note carries the decision links"
    assert received[0]["responders"] == [{"type": "team", "name": "SRE"}]
    assert received[0]["details"]["tenant"] == "acme"


async def test_a_pending_proposal_offers_approve_and_reject_links_in_every_chat(vendor_receivers: VendorReceivers,
                                                                                smtp: SmtpServer) -> None:
    async with notifier(vendor_receivers, smtp, only=["teams", "feishu", "dingtalk", "wecom"]) as notify:
        await notify.handle(incident())
        await notify.handle(proposal())
        events = await notify.handle(result(ResultStatus.PENDING))
    assert {n.channel for n in of(events, Notification) if n.delivered} == {"teams", "feishu", "dingtalk", "wecom",
                                                                             "email"}
    approve = "http://console.kubestack.test/api/v1/teams/decide?proposal_id=prop-1&decision=approve"
    card = vendor_receivers.teams.received[1]["attachments"][0]["content"]
    assert card["actions"][:2] == [
        {"type": "Action.OpenUrl", "title": "Approve", "url": approve, "style": "positive"},
        {"type": "Action.OpenUrl", "title": "Reject", "url": approve.replace("approve", "reject"),
         "style": "destructive"}]
    buttons = vendor_receivers.feishu.received[1]["card"]["elements"][-2]["actions"]
    assert [(b["text"]["content"], b["url"]) for b in buttons[:1]] == [("Approve", approve)]
    assert f"[Approve]({approve})" in vendor_receivers.dingtalk.received[1]["markdown"]["text"]
    assert f"[Approve]({approve})" in vendor_receivers.wecom.received[1]["markdown"]["content"]
    assert approve in smtp.messages[1].message.get_body(("plain",)).get_content()


@pytest.mark.parametrize("channel", HTTP_CHANNELS)
async def test_server_errors_and_429_are_retried_then_delivered(vendor_receivers: VendorReceivers,
                                                                channel: str) -> None:
    receiver = getattr(vendor_receivers, channel)
    receiver.script(Reply.error(503, "busy"), Reply.rate_limited(2))
    sleeps = Sleeps()
    async with notifier(vendor_receivers, sleeps=sleeps, only=[channel]) as notify:
        (note, audit) = await notify.handle(incident())
    assert (note.channel, note.delivered, note.attempts) == (channel, True, 3)
    assert [r.status for r in receiver.requests][:2] == [503, 429]
    assert len(receiver.received) == 1 and sleeps.asked[1] == 2.0, "Retry-After is obeyed"
    assert audit.details["attempts"] == 3


@pytest.mark.parametrize(("channel", "answer", "error"), [
    ("feishu", {"code": 11232, "msg": "frequency limited"}, "code 11232: frequency limited"),
    ("dingtalk", {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}, "code 130101"),
    ("wecom", {"errcode": 45009, "errmsg": "api freq out of limit"}, "code 45009: api freq out of limit"),
])
async def test_a_vendor_rate_limit_in_a_200_body_is_retried(vendor_receivers: VendorReceivers, channel: str,
                                                            answer: dict, error: str) -> None:
    receiver = getattr(vendor_receivers, channel)
    receiver.script(Reply(200, json.dumps(answer), {"Content-Type": "application/json"}))
    async with notifier(vendor_receivers, only=[channel]) as notify:
        (note, _) = await notify.handle(incident())
        assert (note.delivered, note.attempts) == (True, 2)
        receiver.script(*[Reply(200, json.dumps(answer), {"Content-Type": "application/json"})] * 3)
        (failed, audit) = await notify.handle(incident(incident_id="inc-2"))
    assert (failed.delivered, failed.attempts) == (False, 3) and error in failed.error
    assert audit.action == "notification.failed"


async def test_a_bad_signature_or_key_is_the_vendors_error_and_not_retried(vendor_receivers: VendorReceivers) -> None:
    wrong = vendor_receivers.notify_config()
    wrong["feishu"]["secret"] = "not-the-bots-secret"
    wrong["dingtalk"]["secret"] = "SECnot-the-robots-secret"
    wrong["wecom"]["webhook_url"] = vendor_receivers.wecom.url.replace("key=", "key=x")
    wrong["opsgenie"]["api_key"] = "wrong-key"
    wrong["teams"]["webhook_url"] = vendor_receivers.teams.url.replace("sig=", "sig=x")
    sleeps = Sleeps()
    async with Notifier(NotifySettings.model_validate(wrong), sleep=sleeps, clock=Clock()) as notify:
        events = await notify.handle(incident())
    errors = {n.channel: (n.delivered, n.attempts, n.error) for n in of(events, Notification)}
    assert errors["feishu"] == (False, 1, "code 19021: sign match fail or timestamp is not within one hour from "
                                          "current time")
    assert errors["dingtalk"][:2] == (False, 1) and errors["dingtalk"][2].startswith("code 310000: sign not match")
    assert errors["wecom"][:2] == (False, 1) and errors["wecom"][2].startswith("code 93000: invalid webhook url")
    assert errors["opsgenie"][:2] == (False, 1) and '"message": "Could not authenticate"' in errors["opsgenie"][2]
    assert errors["teams"][:2] == (False, 1) and "DirectApiInvalidAuthorizationSignature" in errors["teams"][2]
    assert sleeps.asked == [] and all(not r.received for r in vendor_receivers.all())
    assert "wrong-key" not in json.dumps([n.error for n in of(events, Notification)])


async def test_repeats_are_deduplicated_per_channel_but_a_resolution_goes(vendor_receivers: VendorReceivers,
                                                                          smtp: SmtpServer) -> None:
    async with notifier(vendor_receivers, smtp) as notify:
        assert len(of(await notify.handle(incident(revision=1)), Notification)) == 6
        assert await notify.handle(incident(revision=2, signals=[signal(minutes=2)])) == []
        resolved = await notify.handle(incident(revision=3, status=IncidentStatus.RESOLVED))
    assert len(of(resolved, Notification)) == 6
    assert [len(r.received) for r in vendor_receivers.all()] == [2] * 5 and len(smtp.messages) == 2
    assert vendor_receivers.opsgenie.alerts["inc-1"]["status"] == "closed"
    assert smtp.messages[1].message["Subject"].startswith("[KubeStack] [OK] Resolved: Redis memory pressure")


async def test_each_channel_has_its_own_rate_limit_and_stays_under_the_vendors(vendor_receivers: VendorReceivers
                                                                               ) -> None:
    """DingTalk and WeCom take 20 messages a minute per robot (the receivers count in real time): the default
    limits (a burst of 5, then 15 a minute) send 20 in the minute and hold the rest back, none refused."""
    clock = Clock()
    async with notifier(vendor_receivers, clock=clock, only=["dingtalk", "wecom"], max_deferred=100) as notify:
        for n in range(30):
            await notify.handle(incident(incident_id=f"inc-{n}"))
        assert notify.deferred == {"dingtalk": 25, "wecom": 25}, "burst 5"
        flushed = []
        for _ in range(15):  # a minute, 4 s at a time
            clock.now += 4
            flushed += of(await notify.flush(), Notification)
        assert notify.deferred == {"dingtalk": 10, "wecom": 10}
    assert len(flushed) == 2 * 15 and all(n.delivered and n.attempts == 1 for n in flushed)
    assert len(vendor_receivers.dingtalk.received) == len(vendor_receivers.wecom.received) == 20
    assert [r.status for r in vendor_receivers.dingtalk.requests + vendor_receivers.wecom.requests] == [200] * 40


async def test_wecom_content_stays_within_4096_bytes_with_its_links(vendor_receivers: VendorReceivers) -> None:
    long = incident(summary="数据库连接数超过上限。" * 600)  # 3 bytes a character: far over 4096 bytes
    async with notifier(vendor_receivers, only=["wecom", "feishu", "dingtalk", "teams"]) as notify:
        events = await notify.handle(long)
    assert all(n.delivered for n in of(events, Notification)), [n.error for n in of(events, Notification)]
    content = vendor_receivers.wecom.received[0]["markdown"]["content"]
    assert 4000 < len(content.encode()) <= 4096
    assert content.endswith("KubeStack-AI · incident inc-1 · tenant acme")
    assert "[Open in console](http://console.kubestack.test/#/incidents/inc-1)" in content


async def test_smtp_transient_errors_are_retried_and_bad_credentials_are_not(vendor_receivers: VendorReceivers,
                                                                             smtp: SmtpServer) -> None:
    smtp.script("451 4.3.0 try again later")
    sleeps = Sleeps()
    async with notifier(vendor_receivers, smtp, sleeps=sleeps, only=[]) as notify:
        (note, _) = await notify.handle(incident())
    assert (note.channel, note.delivered, note.attempts) == ("email", True, 2) and len(sleeps.asked) == 1
    assert len(smtp.messages) == 1

    config = vendor_receivers.notify_config()
    for name in HTTP_CHANNELS:
        config.pop(name)
    config["email"] = smtp.email_config(password="wrong-password")
    async with Notifier(NotifySettings.model_validate(config), sleep=sleeps, clock=Clock()) as notify:
        (refused, audit) = await notify.handle(incident(incident_id="inc-2"))
    assert (refused.delivered, refused.attempts) == (False, 1)
    assert refused.error.startswith("AUTH refused: 535") and "wrong-password" not in refused.error
    assert audit.action == "notification.failed" and len(smtp.messages) == 1


async def test_smtp_refuses_to_send_to_an_unverified_server(vendor_receivers: VendorReceivers,
                                                            smtp: SmtpServer) -> None:
    config = vendor_receivers.notify_config()
    for name in HTTP_CHANNELS:
        config.pop(name)
    config["email"] = smtp.email_config(ca_file=None)  # the system CAs do not know the test certificate
    async with Notifier(NotifySettings.model_validate(config), sleep=Sleeps(), clock=Clock()) as notify:
        (note, _) = await notify.handle(incident())
    assert (note.delivered, note.attempts) == (False, 1)
    assert note.error.startswith("TLS: the SMTP server's certificate does not verify")
    assert smtp.messages == []


async def test_the_receivers_answer_like_the_vendors(vendor_receivers: VendorReceivers) -> None:
    v = vendor_receivers
    good_card = {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                                     "content": {"type": "AdaptiveCard", "version": "1.4",
                                                                 "body": [{"type": "TextBlock", "text": "hi"}]}}]}
    http_card = json.loads(json.dumps(good_card))
    http_card["attachments"][0]["content"]["actions"] = [{"type": "Action.Http", "title": "Approve",
                                                          "method": "POST", "url": "https://x"}]
    genie = {"Authorization": "GenieKey eb243592-faa2-4ba2-a551q-1afdf565c889"}
    async with httpx.AsyncClient() as client:
        teams_ok = await client.post(v.teams.url, json=good_card)
        teams_http = await client.post(v.teams.url, json=http_card)
        teams_unsigned = await client.post(v.teams.url.split("&sig=")[0], json=good_card)
        genie_ok = await client.post(f"{v.opsgenie.url}/v2/alerts", json={"message": "disk full", "alias": "a1"},
                                     headers=genie)
        genie_bad = await client.post(f"{v.opsgenie.url}/v2/alerts", json={"message": "", "priority": "P9"},
                                      headers=genie)
        genie_anon = await client.post(f"{v.opsgenie.url}/v2/alerts", json={"message": "x"})
        genie_close = await client.post(f"{v.opsgenie.url}/v2/alerts/a1/close?identifierType=alias", json={},
                                        headers=genie)
        lark_unsigned = await client.post(v.feishu.url, json={"msg_type": "text", "content": {"text": "hi"}})
        ding_unsigned = await client.post(v.dingtalk.url, json={"msgtype": "text", "text": {"content": "hi"}})
        wecom_long = await client.post(v.wecom.url, json={"msgtype": "markdown", "markdown": {"content": "字" * 1400}})
        wecom_ok = await client.post(v.wecom.url, json={"msgtype": "markdown", "markdown": {"content": "字" * 1365}})
    assert (teams_ok.status_code, teams_ok.text) == (202, "")
    assert teams_http.status_code == 400 and teams_http.json()["error"]["code"] == "InvalidRequestContent"
    assert "Action.Http" in teams_http.json()["error"]["message"]
    assert teams_unsigned.status_code == 401
    assert genie_ok.status_code == 202 and genie_ok.json()["result"] == "Request will be processed"
    assert set(genie_ok.json()) == {"result", "took", "requestId"}
    assert genie_bad.status_code == 422 and set(genie_bad.json()["errors"]) == {"message", "priority"}
    assert genie_anon.status_code == 401 and genie_anon.json()["message"] == "Could not authenticate"
    assert genie_close.status_code == 202 and v.opsgenie.alerts["a1"]["status"] == "closed"
    assert lark_unsigned.json()["code"] == 19021 and ding_unsigned.json()["errcode"] == 310000
    assert wecom_long.json()["errcode"] == 40058 and wecom_ok.json() == {"errcode": 0, "errmsg": "ok"}
