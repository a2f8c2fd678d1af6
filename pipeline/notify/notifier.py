"""The notification stage's logic: ``Notifier.handle(event)`` routes, renders and delivers, and returns the events
to publish: one ``Notification`` per delivery tried and one ``AuditEntry`` per notice (actor ``stage:notify``,
``notification.sent`` / ``notification.failed``; ``notification.dropped`` when the rate limit's queue overflows;
``notification.channel_down`` / ``notification.channel_restored`` when a channel's outage starts and ends).

It remembers (bounded) the incidents, root-cause reports and proposals it has seen, so a report's or result's
notice can tell which incident, cause and action it is about. A rate-limited notice waits in its channel's queue
(a newer notice about the same subject replaces it) until a token is there: at the next ``handle`` or
``flush`` (call ``flush`` from a timer). A channel that is down gets one attempt per notice, not the retries,
until it delivers again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx

from kubestack.contract.base import Event, Source, utcnow
from kubestack.contract.events import AuditEntry, Incident, Notification, RcaReport, RemediationProposal
from kubestack.notifysettings import NotifySettings
from kubestack.pipeline.notify.channels import render
from kubestack.pipeline.notify.messages import Outgoing, redacted_text
from kubestack.pipeline.notify.notice import ChannelAlert, ChannelState, Context, Notice, channel_notice, notice_for
from kubestack.pipeline.notify.routing import ChannelHealth, Deduplicator, TokenBucket, Transition, route
from kubestack.pipeline.notify.send import Delivery, Sleep, deliver
from kubestack.pipeline.notify.silenced import SilenceHold
from kubestack.pipeline.silences import SilenceBook
from kubestack.redaction import redact

log = logging.getLogger(__name__)

ACTOR = "stage:notify"
MAX_REMEMBERED = 5000


class _Recent(OrderedDict[str, Any]):
    """The last ``MAX_REMEMBERED`` items by key."""

    def keep(self, key: str, value: Any) -> None:
        self.pop(key, None)
        self[key] = value
        while len(self) > MAX_REMEMBERED:
            self.popitem(last=False)


URGENT = frozenset({"approval"})
"""Notices a person must act on: sent ahead of every notice a rate limit holds back, and dropped last."""


class Notifier:
    def __init__(self, settings: NotifySettings, *, source: Source | None = None,
                 client: httpx.AsyncClient | None = None, sleep: Sleep = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None,
                 silences: SilenceBook | None = None) -> None:
        self.settings = settings
        self.hold = SilenceHold(silences or SilenceBook())
        self.source = source or Source(agent="worker/notify", host=socket.gethostname())
        self._client = client
        self._own_client = client is None
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._incidents: _Recent = _Recent()
        self._rcas: _Recent = _Recent()
        self._proposals: _Recent = _Recent()
        self._dedup = Deduplicator(settings.dedup_window_s)
        self._health = ChannelHealth(settings.failing_after)
        now = clock()
        self._buckets = {c: TokenBucket(settings.rate_limit(c), now) for c in settings.channel_names()}
        self._deferred: dict[str, OrderedDict[tuple[str, str, str], Notice]] = {
            c: OrderedDict() for c in settings.channel_names()}

    async def __aenter__(self) -> Notifier:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None and self._own_client:
            await self._client.aclose()
            self._client = None

    @property
    def deferred(self) -> dict[str, int]:
        """Rate-limited notices waiting, per channel."""
        return {channel: len(queue) for channel, queue in self._deferred.items()}

    def is_down(self, channel: str) -> bool:
        return self._health.is_down(channel)

    async def handle(self, event: Event) -> list[Event]:
        """Notices about ``event`` on every channel its routes name, plus whatever waited for a token."""
        context = self._remember(event)
        notice = notice_for(event, context)
        if notice is None:
            return []
        silenced_by = self.hold.silencing(event, context, utcnow())
        if silenced_by:
            log.info("%s %s not sent: silenced by %s", notice.kind, notice.subject_id, ", ".join(silenced_by))
            return [self._audit("notification.silenced", notice, "-", silences=silenced_by)]
        channels = route(notice, self.settings)
        log.debug("%s %s (event %s) goes to %s", notice.kind, notice.subject_id, event.event_id, channels)
        results = await asyncio.gather(*(self._to_channel(channel, notice) for channel in channels))
        return [out for result in results for out in result]

    async def flush(self) -> list[Event]:
        """Send the deferred notices that have a token now, and the incidents a silence held that it holds no more
        (its window passed or it was ended)."""
        results = await asyncio.gather(*(self._drain(channel) for channel in self._deferred))
        released = []
        for incident in self.hold.released(utcnow()):
            log.info("incident %s is no longer silenced and still open: notified now", incident.incident_id)
            released.append(AuditEntry(source=self.source, resource=incident.resource, tenant=incident.tenant,
                                       actor=ACTOR, action="notification.released", subject_id=incident.incident_id,
                                       details={"reason": "no silence holds it any more, still open"}))
            released += await self.handle(incident)
        return [out for result in results for out in result] + released

    def _remember(self, event: Event) -> Context:
        if isinstance(event, Incident):
            self._incidents.keep(event.incident_id, event)
        elif isinstance(event, RcaReport):
            self._rcas.keep(event.incident_id, event)
        elif isinstance(event, RemediationProposal):
            self._proposals.keep(event.proposal_id, event)
        incident_id = getattr(event, "incident_id", None)
        proposal_id = getattr(event, "proposal_id", None)
        return Context(incident=self._incidents.get(incident_id) if incident_id else None,
                       rca=self._rcas.get(incident_id) if incident_id else None,
                       proposal=self._proposals.get(proposal_id) if proposal_id else None)

    async def _to_channel(self, channel: str, notice: Notice) -> list[Event]:
        """An urgent notice is offered before what waits for a token; any other after it, and behind it."""
        if notice.kind in URGENT:
            return await self._offer(channel, notice) + await self._drain(channel)
        return await self._drain(channel) + await self._offer(channel, notice)

    async def _offer(self, channel: str, notice: Notice) -> list[Event]:
        if self._dedup.is_repeat(channel, notice, self._clock()):
            log.debug("%s: %s %s said already", channel, notice.kind, notice.subject_id)
            return []
        behind = self._deferred[channel] and notice.kind not in URGENT
        if behind or not self._buckets[channel].take(self._clock()):
            return self._defer(channel, notice)
        return await self._send(channel, notice)

    async def _drain(self, channel: str) -> list[Event]:
        queue, out = self._deferred[channel], []
        while queue and self._buckets[channel].take(self._clock()):
            _, notice = queue.popitem(last=False)
            if not self._dedup.is_repeat(channel, notice, self._clock()):
                out += await self._send(channel, notice)
        return out

    def _defer(self, channel: str, notice: Notice) -> list[Event]:
        queue = self._deferred[channel]
        key = Deduplicator.key(channel, notice)
        queue.pop(key, None)
        queue[key] = notice
        if notice.kind in URGENT:
            queue.move_to_end(key, last=False)
        log.info("%s is rate-limited: %s %s waits (%d waiting)", channel, notice.kind, notice.subject_id, len(queue))
        dropped = []
        while len(queue) > self.settings.max_deferred:
            victim = next((k for k, n in queue.items() if n.kind not in URGENT), next(iter(queue)))
            oldest = queue.pop(victim)
            log.warning("%s is rate-limited and its queue is full: dropped %s %s", channel, oldest.kind,
                        oldest.subject_id)
            dropped.append(self._audit("notification.dropped", oldest, channel, error="rate limited, queue full"))
        return dropped

    async def _send(self, channel: str, notice: Notice) -> list[Event]:
        outgoing = render(notice, channel, self.settings)
        if outgoing is None:
            return []
        delivery = await self._deliver(outgoing, channel)
        now = self._clock()
        if delivery.delivered:
            self._dedup.delivered(channel, notice, now)
            transition = self._health.delivered(channel, now)
        else:
            transition = self._health.failed(channel, delivery.error, now)
        events = self._record(channel, notice, delivery)
        if transition is not None:
            events += await self._announce(transition)
        return events

    async def _deliver(self, outgoing: Outgoing, channel: str) -> Delivery:
        if self._client is None:
            self._client = httpx.AsyncClient()
        attempts = 1 if self._health.is_down(channel) else self.settings.retry.max_attempts
        return await deliver(self._client, outgoing, self.settings.retry, max_attempts=attempts, sleep=self._sleep,
                             rng=self._rng)

    async def _announce(self, transition: Transition) -> list[Event]:
        """Tell the other working channels, once per outage, that a channel went down or came back."""
        down = transition.state is ChannelState.DOWN
        if down:
            log.error("notification channel %s is down: %d notices in a row failed, last: %s", transition.channel,
                      transition.failures, transition.error)
        else:
            log.info("notification channel %s delivers again after %d failed notices", transition.channel,
                     transition.failures)
        since = utcnow() - timedelta(seconds=max(self._clock() - transition.since, 0.0))
        notice = channel_notice(ChannelAlert(transition.channel, transition.state, transition.failures,
                                             transition.error, since))
        action = "notification.channel_down" if down else "notification.channel_restored"
        events: list[Event] = [self._audit(action, notice, transition.channel, error=transition.error)]
        others = [c for c in self.settings.channel_names() if c != transition.channel and not self.is_down(c)]
        for result in await asyncio.gather(*(self._send(channel, notice) for channel in others)):
            events += result
        return events

    def _record(self, channel: str, notice: Notice, delivery: Delivery) -> list[Event]:
        title, body = redacted_text(notice, self.settings)
        error = redact(delivery.error) if delivery.error else None
        notification = Notification(source=self.source, resource=notice.resource, tenant=notice.tenant,
                                    channel=channel, subject_id=notice.subject_id, severity=notice.severity,
                                    title=title, body=body, delivered=delivery.delivered, attempts=delivery.attempts,
                                    error=error)
        action = "notification.sent" if delivery.delivered else "notification.failed"
        audit = self._audit(action, notice, channel, error=error, attempts=delivery.attempts,
                            notification_id=notification.event_id)
        return [notification, audit]

    def _audit(self, action: str, notice: Notice, channel: str, **details: Any) -> AuditEntry:
        return AuditEntry(source=self.source, resource=notice.resource, tenant=notice.tenant, actor=ACTOR,
                          action=action, subject_id=notice.subject_id,
                          details={"channel": channel, "kind": notice.kind, "status": notice.status, **details})
