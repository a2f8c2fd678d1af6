"""Who hears about what, and how often: routes, de-duplication, rate limits, channel health. Pure: the time is
always passed in (seconds, any monotonic clock), nothing sleeps.

- Routes: with none configured every configured channel gets every notice; otherwise the union of the channels
  of every route the notice matches (severity at least ``min_severity``, any ``services`` glob matching one of
  its resource kinds, keys or 'service' labels, any ``tenants`` glob matching its tenant, its kind in ``kinds``).
- De-duplication per (channel, kind, subject): the same fingerprint within the window is a repeat; a status
  change always goes. Only a delivered notice counts, so a failed one is tried again next time.
- Rate limits: one token bucket per channel.
- Channel health: after ``failing_after`` failed notices in a row a channel is down, which is said once per
  outage; the first delivered notice after that ends the outage.
"""

from __future__ import annotations

import fnmatch
from collections import OrderedDict
from dataclasses import dataclass

from kubestack.notifysettings import NotifySettings, RateLimitSettings, RouteSettings
from kubestack.pipeline.notify.notice import ChannelState, Notice, severity_rank

MAX_REMEMBERED = 20_000


def glob_any(patterns: list[str], values: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns for value in values)


def route_matches(route: RouteSettings, notice: Notice) -> bool:
    return (severity_rank(notice.severity) >= severity_rank(route.min_severity)
            and (not route.services or glob_any(route.services, notice.services))
            and (not route.tenants or glob_any(route.tenants, [notice.tenant]))
            and (not route.kinds or notice.kind in route.kinds))


def route(notice: Notice, settings: NotifySettings) -> list[str]:
    """The configured channels the notice goes to, in configuration order."""
    configured = settings.channel_names()
    if not settings.routes:
        return configured
    patterns = [p for r in settings.routes if route_matches(r, notice) for p in r.channels]
    return [channel for channel in configured if glob_any(patterns, [channel])]


@dataclass(frozen=True)
class _Sent:
    status: str
    fingerprint: str
    at: float


class Deduplicator:
    """Remembers what each channel last delivered about each subject."""

    def __init__(self, window_s: float, max_remembered: int = MAX_REMEMBERED) -> None:
        self.window_s = window_s
        self.max_remembered = max_remembered
        self._sent: OrderedDict[tuple[str, str, str], _Sent] = OrderedDict()

    @staticmethod
    def key(channel: str, notice: Notice) -> tuple[str, str, str]:
        return channel, notice.kind, notice.subject_id

    def is_repeat(self, channel: str, notice: Notice, now: float) -> bool:
        last = self._sent.get(self.key(channel, notice))
        return (last is not None and last.status == notice.status and last.fingerprint == notice.fingerprint
                and now - last.at < self.window_s)

    def delivered(self, channel: str, notice: Notice, now: float) -> None:
        key = self.key(channel, notice)
        self._sent.pop(key, None)
        self._sent[key] = _Sent(notice.status, notice.fingerprint, now)
        while len(self._sent) > self.max_remembered:
            self._sent.popitem(last=False)


class TokenBucket:
    """``burst`` tokens, refilled continuously at ``per_minute`` per minute; a notice takes one."""

    def __init__(self, limit: RateLimitSettings, now: float) -> None:
        self.capacity = float(limit.burst)
        self.rate_s = limit.per_minute / 60.0
        self.tokens = self.capacity
        self.at = now

    def _refill(self, now: float) -> None:
        if now > self.at:
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate_s)
            self.at = now

    def take(self, now: float) -> bool:
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait_s(self, now: float) -> float:
        """How long until a token is there."""
        self._refill(now)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate_s


@dataclass
class _Health:
    failures: int = 0
    down: bool = False
    since: float | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class Transition:
    channel: str
    state: ChannelState
    failures: int
    error: str | None
    since: float


class ChannelHealth:
    """Consecutive failures per channel; returns a ``Transition`` only when a channel goes down or comes back."""

    def __init__(self, failing_after: int) -> None:
        self.failing_after = failing_after
        self._channels: dict[str, _Health] = {}

    def is_down(self, channel: str) -> bool:
        return self._channels.get(channel, _Health()).down

    def failed(self, channel: str, error: str | None, now: float) -> Transition | None:
        health = self._channels.setdefault(channel, _Health())
        health.failures += 1
        health.last_error = error
        if health.since is None:
            health.since = now
        if health.down or health.failures < self.failing_after:
            return None
        health.down = True
        return Transition(channel, ChannelState.DOWN, health.failures, error, health.since)

    def delivered(self, channel: str, now: float) -> Transition | None:
        health = self._channels.pop(channel, None)
        if health is None or not health.down:
            return None
        return Transition(channel, ChannelState.RESTORED, health.failures, health.last_error, now)
