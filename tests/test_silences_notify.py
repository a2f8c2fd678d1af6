"""The notify stage during a window, against the real local Slack, PagerDuty and webhook receivers: a silenced
incident (and its report and approval request) reaches nobody and is audited ``notification.silenced``; once the
window is over and it is still open it is notified by the stage's timer (``flush``); one that resolved while held
is never told. The remediation policy auto-approves nothing under a silence."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from kubestack.contract.base import ResourceRef, Source, utcnow
from kubestack.contract.events import AuditEntry, IncidentStatus, ResultStatus, Risk, Silence
from kubestack.notifysettings import NotifySettings
from kubestack.pipeline.notify.notifier import Notifier
from kubestack.pipeline.silences import SilenceBook
from kubestack.settings import RemediationSettings
from tests.notify_events import REDIS, incident, proposal, rca, result
from tests.services.receivers import Receivers
from tests.test_notify_send import Clock, Sleeps

pytestmark = pytest.mark.asyncio

SOURCE = Source(agent="api", host="h")


def window(book: SilenceBook, **fields) -> Silence:
    now = utcnow()
    silence = Silence(**({"source": SOURCE, "resource": ResourceRef(kind="silence", name="s"), "tenant": "acme",
                          "silence_id": "maint-1", "matchers_services": ["checkout"], "created_by": "alice",
                          "comment": "upgrade", "starts_at": now - timedelta(minutes=1),
                          "ends_at": now + timedelta(hours=1)} | fields))
    book.apply(silence)
    return silence


def notifier(receivers: Receivers, book: SilenceBook) -> Notifier:
    settings = NotifySettings.model_validate(receivers.notify_config())
    return Notifier(settings, sleep=Sleeps(), clock=Clock(), rng=random.Random(7), silences=book)


def actions(events: list) -> list[str]:
    return [e.action for e in events if isinstance(e, AuditEntry)]


async def test_silenced_incident_is_held_then_notified_when_the_window_ends(receivers: Receivers) -> None:
    book = SilenceBook()
    silence = window(book)
    async with notifier(receivers, book) as notify:
        out = await notify.handle(incident())
        out += await notify.handle(rca())
        out += await notify.handle(proposal())
        out += await notify.handle(result(ResultStatus.PENDING))
        assert actions(out) == ["notification.silenced"] * 3
        assert out[0].details["silences"] == ["maint-1"]
        assert await notify.flush() == []
        assert not receivers.slack.received and not receivers.pagerduty.received and not receivers.webhook.received
        book.apply(silence.model_copy(update={"ended_at": utcnow(), "ended_by": "bob", "ts": utcnow()}))
        released = await notify.flush()
    assert actions(released)[0] == "notification.released"
    assert "notification.sent" in actions(released)
    alert = receivers.pagerduty.alerts["inc-1"]
    assert alert["status"] == "triggered" and "likely cause" in alert["summary"]  # with the report it held
    assert len(receivers.slack.received) == 1 and len(receivers.webhook.received) == 1


async def test_an_incident_that_resolves_in_the_window_is_never_told(receivers: Receivers) -> None:
    book = SilenceBook()
    window(book)
    async with notifier(receivers, book) as notify:
        out = await notify.handle(incident())
        out += await notify.handle(incident(status=IncidentStatus.RESOLVED, revision=2))
        out += await notify.flush()
    assert actions(out) == ["notification.silenced", "notification.silenced"]
    assert not receivers.pagerduty.received and not receivers.slack.received


async def test_marked_incident_is_held_and_other_tenants_are_not(receivers: Receivers) -> None:
    book = SilenceBook()
    window(book, matchers_services=["billing"])  # matches nothing of these incidents
    async with notifier(receivers, book) as notify:
        marked = await notify.handle(incident().model_copy(update={"silenced_by": ["maint-1"]}))
        other = await notify.handle(incident(incident_id="inc-2", tenant="globex"))
        assert actions(marked) == ["notification.silenced"]
        assert "notification.sent" in actions(other)
        released = await notify.flush()  # the mark was the only thing holding inc-1: no silence in force matches
    assert "notification.released" in actions(released)
    assert set(receivers.pagerduty.alerts) == {"inc-1", "inc-2"}


def test_no_auto_approval_under_a_silence() -> None:
    from kubestack.pipeline.remediation import admit

    settings = RemediationSettings(enabled=True, auto_approve_low=True)
    low = proposal(risk=Risk.LOW).model_copy(update={"action": "redis.set_maxmemory", "params": {"bytes": 1 << 30}})
    free = admit(None, low, settings, SOURCE, utcnow())
    held = admit(None, low, settings, SOURCE, utcnow(), silenced_by=["maint-1"])
    assert free.execute and free.results[0].status == ResultStatus.APPROVED
    assert not held.execute and held.results[0].status == ResultStatus.PENDING
    assert "silenced by maint-1" in held.results[0].output
    assert held.entries[0].details["silenced_by"] == ["maint-1"]
    assert REDIS.labels["service"] == "checkout"
