"""The notifier against real local Slack, PagerDuty and webhook receivers (tests/services/receivers.py)."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import datetime, timezone

import httpx

from kubestack.contract.events import AuditEntry, IncidentStatus, Notification, ResultStatus
from kubestack.notifysettings import NotifySettings
from kubestack.pipeline.notify.notifier import Notifier
from kubestack.pipeline.notify.webhook import verify_webhook_signature
from kubestack.notifysettings import RetrySettings
from kubestack.pipeline.notify.send import backoff_s, retry_after_s
from tests.notify_events import incident, proposal, rca, result, signal
from tests.services.receivers import WEBHOOK_SECRET, Receivers, Reply


class Sleeps:
    """The notifier's sleep: records what it was asked for and sleeps a hundredth of it."""

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


def notifier(receivers: Receivers, sleeps: Sleeps | None = None, clock: Clock | None = None,
             **overrides: object) -> Notifier:
    settings = NotifySettings.model_validate(receivers.notify_config(**overrides))
    return Notifier(settings, sleep=sleeps or Sleeps(), clock=clock or Clock(), rng=random.Random(7))


def of(events: list, kind: type) -> list:
    return [event for event in events if isinstance(event, kind)]


async def test_an_incident_reaches_every_channel_with_notifications_and_audit(receivers: Receivers) -> None:
    async with notifier(receivers) as notify:
        events = await notify.handle(incident())
    notes = of(events, Notification)
    assert sorted(n.channel for n in notes) == ["pagerduty", "slack", "webhook:ops"]
    assert all(n.delivered and n.attempts == 1 and n.error is None and n.subject_id == "inc-1" for n in notes)
    audits = of(events, AuditEntry)
    assert [(a.actor, a.action) for a in audits] == [("stage:notify", "notification.sent")] * 3
    assert {a.details["notification_id"] for a in audits} == {n.event_id for n in notes}
    assert receivers.slack.received[0]["blocks"][0]["type"] == "header"
    assert receivers.pagerduty.alerts["inc-1"]["status"] == "triggered"
    (hook,) = receivers.webhook.received
    assert (hook["webhook"], hook["type"], hook["event"]["incident_id"]) == ("ops", "incident.open", "inc-1")


async def test_pagerduty_follows_one_incident_by_one_dedup_key(receivers: Receivers) -> None:
    async with notifier(receivers, webhooks=[], slack={}) as notify:
        await notify.handle(incident(revision=1))
        await notify.handle(rca())
        await notify.handle(incident(revision=2, status=IncidentStatus.UPDATED,
                                     signals=[signal(), signal("mysql.slow_queries", minutes=3)]))
        await notify.handle(incident(revision=3, status=IncidentStatus.RESOLVED))
    received = receivers.pagerduty.received
    assert [(e["event_action"], e["dedup_key"]) for e in received] == \
        [("trigger", "inc-1")] * 3 + [("resolve", "inc-1")]
    assert received[1]["payload"]["custom_details"]["rca"]["hypotheses"][0]["cause"] == "maxmemory lowered"
    assert "likely cause: maxmemory lowered" in received[2]["payload"]["summary"]
    assert receivers.pagerduty.alerts["inc-1"] | {"summary": ""} == \
        {"status": "resolved", "opened": 1, "triggers": 3, "severity": "critical", "summary": ""}


async def test_webhook_signature_verifies_and_a_tampered_body_does_not(receivers: Receivers) -> None:
    async with notifier(receivers, slack={}, pagerduty={}) as notify:
        await notify.handle(incident())
    (request,) = receivers.webhook.requests
    assert request.status == 204
    timestamp, signature = request.headers["X-KubeStack-Timestamp"], request.headers["X-KubeStack-Signature"]
    assert verify_webhook_signature(WEBHOOK_SECRET, request.body, timestamp, signature)
    tampered = request.body.replace(b'"severity":"critical"', b'"severity":"info"')
    assert tampered != request.body
    assert not verify_webhook_signature(WEBHOOK_SECRET, tampered, timestamp, signature)
    async with httpx.AsyncClient() as client:
        refused = await client.post(receivers.webhook.url_for("ops"), content=tampered,
                                    headers={"X-KubeStack-Timestamp": timestamp, "X-KubeStack-Signature": signature})
    assert refused.status_code == 401
    assert len(receivers.webhook.received) == 1


async def test_server_errors_and_timeouts_are_retried_with_backoff_until_delivered(receivers: Receivers) -> None:
    receivers.slack.script(Reply.error(500), Reply.hang(1.0), Reply.error(503))
    sleeps = Sleeps()
    retry = {"max_attempts": 4, "backoff_base_s": 1.0, "backoff_max_s": 3.0, "timeout_s": 0.3}
    async with notifier(receivers, sleeps, webhooks=[], pagerduty={}, retry=retry) as notify:
        (note, audit) = await notify.handle(incident())
    assert (note.delivered, note.attempts, note.error) == (True, 4, None)
    assert [r.status for r in receivers.slack.requests] == [500, 200, 503, 200]
    assert len(receivers.slack.received) == 1
    assert len(sleeps.asked) == 3
    for attempt, asked in enumerate(sleeps.asked, start=1):
        ceiling = min(3.0, 2 ** (attempt - 1))
        assert ceiling / 2 <= asked <= ceiling
    assert audit.action == "notification.sent" and audit.details["attempts"] == 4


async def test_retries_give_up_with_the_last_error(receivers: Receivers) -> None:
    receivers.pagerduty.script(*[Reply.error(502, "bad gateway")] * 3)
    async with notifier(receivers, webhooks=[], slack={}) as notify:
        (note, audit) = await notify.handle(incident())
    assert (note.delivered, note.attempts, note.error) == (False, 3, "HTTP 502: bad gateway")
    assert (audit.action, audit.details["error"]) == ("notification.failed", "HTTP 502: bad gateway")
    assert receivers.pagerduty.alerts == {}


async def test_429_waits_as_long_as_retry_after_says(receivers: Receivers) -> None:
    receivers.pagerduty.script(Reply.rate_limited(2))
    sleeps = Sleeps()
    async with notifier(receivers, sleeps, webhooks=[], slack={}) as notify:
        (note, _) = await notify.handle(incident())
        assert (note.delivered, note.attempts) == (True, 2)
        assert sleeps.asked == [2.0]
        receivers.pagerduty.script(Reply.rate_limited(3600))
        (late, _) = await notify.handle(incident(incident_id="inc-2"))
    assert (late.delivered, late.attempts) == (False, 1)
    assert "Retry-After 3600s exceeds retry_after_max_s" in late.error
    assert sleeps.asked == [2.0]


async def test_a_4xx_is_not_retried_and_its_body_is_the_error(receivers: Receivers) -> None:
    receivers.slack.script(Reply.error(400, "invalid_blocks"))
    sleeps = Sleeps()
    async with notifier(receivers, sleeps, webhooks=[], pagerduty={}) as notify:
        (note, audit) = await notify.handle(incident())
    assert (note.delivered, note.attempts, note.error) == (False, 1, "HTTP 400: invalid_blocks")
    assert audit.action == "notification.failed"
    assert len(receivers.slack.requests) == 1 and sleeps.asked == []


async def test_a_failing_channel_is_announced_once_per_outage_on_the_others(receivers: Receivers) -> None:
    receivers.slack.script(*[Reply.error(500)] * 6)
    async with notifier(receivers, failing_after=2, retry={"max_attempts": 2, "backoff_base_s": 0.01}) as notify:
        first = await notify.handle(incident(incident_id="inc-0"))  # 2 attempts, one failed notice
        assert not notify.is_down("slack") and of(first, AuditEntry)[0].action != "notification.channel_down"
        second = await notify.handle(incident(incident_id="inc-1"))
        assert notify.is_down("slack")
        later = [await notify.handle(incident(incident_id=f"inc-{n}")) for n in (2, 3)]
        restored = await notify.handle(incident(incident_id="inc-4"))
    assert [r.status for r in receivers.slack.requests] == [500] * 6 + [200]  # one try per notice while down
    downs = [a for a in of(second, AuditEntry) if a.action == "notification.channel_down"]
    assert len(downs) == 1 and downs[0].details["channel"] == "slack"
    assert not any(a.action == "notification.channel_down" for events in later for a in of(events, AuditEntry))
    alerts = [h for h in receivers.webhook.received if h["type"].startswith("channel.")]
    assert [(h["type"], h["event"]["channel"]) for h in alerts] == [("channel.down", "slack"),
                                                                     ("channel.restored", "slack")]
    assert receivers.pagerduty.alerts["kubestack-channel-slack"]["status"] == "resolved"
    assert receivers.pagerduty.alerts["kubestack-channel-slack"]["triggers"] == 1
    assert any(a.action == "notification.channel_restored" for a in of(restored, AuditEntry))
    (delivered,) = receivers.slack.received
    assert "`inc-4`" in json.dumps(delivered)


async def test_the_rate_limit_defers_then_drops_and_a_flush_sends_what_waited(receivers: Receivers) -> None:
    clock = Clock()
    slack_only = {"webhook_url": receivers.slack.url, "rate_limit": {"burst": 2, "per_minute": 1}}
    async with notifier(receivers, clock=clock, slack=slack_only, pagerduty={}, webhooks=[],
                        max_deferred=1) as notify:
        sent = [await notify.handle(incident(incident_id=f"inc-{n}")) for n in range(2)]
        waiting = await notify.handle(incident(incident_id="inc-2"))
        dropping = await notify.handle(incident(incident_id="inc-3"))
        assert notify.deferred == {"slack": 1}
        assert await notify.flush() == []  # no token yet
        clock.now += 60
        flushed = await notify.flush()
        assert notify.deferred == {"slack": 0}
    assert [len(events) for events in sent] == [2, 2] and waiting == []
    (dropped,) = dropping
    assert (dropped.action, dropped.subject_id, dropped.details["error"]) == \
        ("notification.dropped", "inc-2", "rate limited, queue full")
    assert [n.subject_id for n in of(flushed, Notification)] == ["inc-3"]
    ids = [json.dumps(m) for m in receivers.slack.received]
    assert [next(f"inc-{n}" for n in range(4) if f"`inc-{n}`" in text) for text in ids] == ["inc-0", "inc-1", "inc-3"]


async def test_repeats_are_not_sent_again_but_news_is(receivers: Receivers) -> None:
    async with notifier(receivers, webhooks=[], pagerduty={}) as notify:
        assert len(await notify.handle(incident(revision=1))) == 2
        assert await notify.handle(incident(revision=2, signals=[signal(minutes=2)])) == []
        assert len(await notify.handle(incident(revision=3, status=IncidentStatus.RESOLVED))) == 2
    assert len(receivers.slack.received) == 2


async def test_a_pending_proposal_reaches_slack_with_buttons(receivers: Receivers) -> None:
    async with notifier(receivers, webhooks=[], pagerduty={}) as notify:
        await notify.handle(incident())
        assert await notify.handle(proposal()) == []  # remembered; the pending result asks people
        (note, _) = await notify.handle(result(ResultStatus.PENDING))
        await notify.handle(result(ResultStatus.APPROVED, actor="slack:U123"))
    assert note.subject_id == "prop-1" and note.title.startswith("Approval needed: redis.config_set")
    approval, approved = receivers.slack.received[1:]
    (actions,) = [b for b in approval["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions["elements"]] == ["approve", "reject"]
    assert "Remediation approved" in approved["blocks"][0]["text"]["text"]


async def test_a_password_in_a_summary_never_reaches_slack(receivers: Receivers) -> None:
    leaky = incident(summary="replica auth failed: masterauth hunter2, DSN mysql://app:s3cr3t@db-1:3306/orders")
    async with notifier(receivers, webhooks=[], pagerduty={}) as notify:
        (note, _) = await notify.handle(leaky)
    (request,) = receivers.slack.requests
    assert b"hunter2" not in request.body and b"s3cr3t" not in request.body
    assert "masterauth &lt;redacted&gt;" in json.dumps(receivers.slack.received[0])
    assert "hunter2" not in note.body and "<redacted>" in note.body


def test_retry_after_and_backoff_arithmetic() -> None:
    assert retry_after_s("7") == 7.0
    assert retry_after_s("soon") is None and retry_after_s(None) is None
    now = datetime(2025, 3, 1, 10, 0, tzinfo=timezone.utc)
    assert retry_after_s("Sat, 01 Mar 2025 10:00:30 GMT", now) == 30.0
    retry = RetrySettings(backoff_base_s=1, backoff_max_s=5)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 5), (5, 5)]:
        assert ceiling / 2 <= backoff_s(attempt, retry, rng) <= ceiling


async def test_the_receivers_answer_like_the_real_services(receivers: Receivers) -> None:
    async with httpx.AsyncClient() as client:
        slack = [await client.post(receivers.slack.url, content=body) for body in
                 (b"{not json", b"{}", json.dumps({"blocks": [{"type": "header", "text": {"type": "mrkdwn",
                                                                                         "text": "x"}}]}).encode(),
                  json.dumps({"text": "hello"}).encode())]
        unknown = await client.post(receivers.slack.url.replace("XXXX", "YYYY"), json={"text": "hi"})
        bad_pd = await client.post(receivers.pagerduty.url, json={"routing_key": "short", "event_action": "resolve"})
        good_pd = await client.post(receivers.pagerduty.url, json={
            "routing_key": "R0UT1NGKEY0123456789abcdefABCDEF", "event_action": "trigger",
            "payload": {"summary": "disk full", "source": "db-1", "severity": "error"}})
    assert [(r.status_code, r.text) for r in slack] == [(400, "invalid_payload"), (400, "no_text"),
                                                        (400, "invalid_blocks"), (200, "ok")]
    assert (unknown.status_code, unknown.text) == (404, "no_service")
    assert bad_pd.status_code == 400 and bad_pd.json()["status"] == "invalid event"
    assert bad_pd.json()["errors"] == ["'routing_key' must be a 32-character integration key",
                                       "'dedup_key' is required to resolve"]
    assert good_pd.status_code == 202
    assert good_pd.json() | {"dedup_key": "x"} == {"status": "success", "message": "Event processed", "dedup_key": "x"}
    assert receivers.pagerduty.alerts[good_pd.json()["dedup_key"]]["status"] == "triggered"
    assert receivers.slack.received == [{"text": "hello"}]


async def test_an_approval_request_goes_ahead_of_what_the_rate_limit_holds_back(receivers: Receivers) -> None:
    """People waiting to approve a fix should not wait behind informational notices."""
    clock = Clock()
    slack_only = {"webhook_url": receivers.slack.url, "rate_limit": {"burst": 2, "per_minute": 1}}
    async with notifier(receivers, clock=clock, slack=slack_only, pagerduty={}, webhooks=[],
                        max_deferred=2) as notify:
        for n in range(4):  # two sent, two held back
            await notify.handle(incident(incident_id=f"inc-{n}"))
        await notify.handle(proposal())
        (dropped,) = await notify.handle(result(ResultStatus.PENDING))
        assert (dropped.action, dropped.subject_id) == ("notification.dropped", "inc-2"), "room made, approval kept"
        assert notify.deferred == {"slack": 2}
        clock.now += 60
        (first,) = of(await notify.flush(), Notification)
    assert first.subject_id == "prop-1" and first.title.startswith("Approval needed")
