"""Silences and maintenance windows, pure: when one is in force, what it matches, and the set every stage keeps.

A ``Silence`` (the contract event, latest per ``silence_id`` on a compacted topic) is in force from ``starts_at``
until ``ends_at`` (if any) or until it is ended (``ended_at``); with a ``schedule`` only inside its recurring
windows, read in its ``timezone``:

- weekly: ``"Sun 02:00-04:00"``, ``"Sat,Sun 22:00-02:00"`` (an end at or before the start runs past midnight into
  the next day), ``"Mon-Fri 12:00-13:00"``, ``"daily 03:00-03:30"``; the times are wall-clock times, so across a
  DST change a window is an hour shorter or longer (a start that does not exist that day, 02:00 on a spring-forward
  Sunday in Europe/Berlin, is read with the offset before the change: the window opens at 03:00 CEST);
- cron: five fields (minute hour day-of-month month day-of-week: ``*``, lists, ranges, ``*/n`` steps; day of week
  0-7, 0 and 7 are Sunday; both days restricted means either) with ``duration_s``, the real length of each window.

It matches a resource of its tenant when every criterion it names holds: the resource's key or name is one of
``matchers_resources``, its ``service`` label one of ``matchers_services``, and it carries every label of
``matchers_labels``; one naming none matches the whole tenant. An incident is silenced while any of its resources
is matched by a silence in force.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kubestack.contract.base import ResourceRef
from kubestack.contract.events import Incident, Silence
from kubestack.errors import ScheduleError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DURATION = timedelta(days=31)
_WEEKLY = re.compile(r"^\s*(?P<days>[A-Za-z,\-*]+)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$")
_CRON_RANGES = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
                ("day of week", 0, 7))


@dataclass(frozen=True)
class Weekly:
    days: frozenset[int]
    """Days the window starts on, Monday 0 .. Sunday 6."""
    start: time
    end: time

    def window(self, day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The window starting on ``day``, in UTC."""
        end_day = day if self.end > self.start else day + timedelta(days=1)
        return _utc(day, self.start, zone), _utc(end_day, self.end, zone)

    def windows_around(self, now: datetime, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
        today = now.astimezone(zone).date()
        days = (today - timedelta(days=1), today)
        return [self.window(day, zone) for day in days if day.weekday() in self.days]


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    month_days: frozenset[int] | None
    """None: ``*``."""
    months: frozenset[int]
    week_days: frozenset[int] | None
    """Monday 0 .. Sunday 6; None: ``*``."""
    duration: timedelta

    def starts_on(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_month_day = self.month_days is not None and day.day in self.month_days
        by_week_day = self.week_days is not None and day.weekday() in self.week_days
        if self.month_days is None and self.week_days is None:
            return True
        if self.month_days is None:
            return by_week_day
        if self.week_days is None:
            return by_month_day
        return by_month_day or by_week_day

    def windows_around(self, now: datetime, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
        first = (now - self.duration).astimezone(zone).date()
        last = now.astimezone(zone).date()
        found = []
        day = first
        while day <= last:
            if self.starts_on(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        start = _utc(day, time(hour, minute), zone)
                        if start <= now < start + self.duration:
                            found.append((start, start + self.duration))
            day += timedelta(days=1)
        return found


Schedule = Weekly | Cron


def _utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone).astimezone(timezone.utc)


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin or UTC") from exc


def parse_schedule(spec: str, duration_s: int | None = None) -> Schedule:
    """A weekly window (``duration_s`` must be None: the times say it) or a cron spec with ``duration_s``."""
    weekly = _WEEKLY.match(spec)
    if weekly is not None:
        if duration_s is not None:
            raise ScheduleError(f"schedule {spec!r} names its end time: give no duration_s with it")
        start, end = _clock(weekly["start"], spec), _clock(weekly["end"], spec)
        if start == end:
            raise ScheduleError(f"schedule {spec!r}: the window starts and ends at {weekly['start']}")
        return Weekly(_days(weekly["days"], spec), start, end)
    fields = spec.split()
    if len(fields) != 5:
        raise ScheduleError(f"schedule {spec!r} is neither a weekly window ('Sun 02:00-04:00') nor a cron spec of "
                            "5 fields (minute hour day-of-month month day-of-week)")
    if duration_s is None or duration_s <= 0:
        raise ScheduleError(f"cron schedule {spec!r} needs duration_s, the length of each window in seconds")
    duration = timedelta(seconds=duration_s)
    if duration > MAX_DURATION:
        raise ScheduleError(f"duration_s {duration_s} is longer than {MAX_DURATION.days} days")
    minutes, hours, month_days, months, week_days = (
        _cron_field(text, name, low, high, spec) for text, (name, low, high) in zip(fields, _CRON_RANGES))
    week = None if week_days is None else frozenset((d - 1) % 7 for d in week_days)  # cron Sunday 0/7 → 6
    return Cron(minutes or frozenset(range(60)), hours or frozenset(range(24)), month_days,
                months or frozenset(range(1, 13)), week, duration)


def _clock(text: str, spec: str) -> time:
    hour, minute = (int(part) for part in text.split(":"))
    if hour > 23 or minute > 59:
        raise ScheduleError(f"schedule {spec!r}: {text} is not a time of day (00:00-23:59)")
    return time(hour, minute)


def _days(text: str, spec: str) -> frozenset[int]:
    if text.lower() in ("*", "daily"):
        return frozenset(range(7))
    days: set[int] = set()
    for part in text.lower().split(","):
        ends = part.split("-")
        if len(ends) > 2 or any(end[:3] not in DAYS or len(end) < 3 for end in ends):
            raise ScheduleError(f"schedule {spec!r}: {part!r} is not a day or a range of days (Mon..Sun, Mon-Fri, "
                                "daily)")
        first, last = DAYS.index(ends[0][:3]), DAYS.index(ends[-1][:3])
        days.update(range(first, last + 1) if first <= last else [*range(first, 7), *range(0, last + 1)])
    return frozenset(days)


def _cron_field(text: str, name: str, low: int, high: int, spec: str) -> frozenset[int] | None:
    """The values of one cron field; None for a bare ``*``."""
    if text == "*":
        return None
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if body == "*":
                first, last = low, high
            elif "-" in body:
                first, last = (int(v) for v in body.split("-", 1))
            else:
                first = last = int(body)
        except ValueError:
            raise ScheduleError(f"cron schedule {spec!r}: {part!r} is not a valid {name} (numbers, ranges, */n)") \
                from None
        if step < 1 or not low <= first <= last <= high:
            raise ScheduleError(f"cron schedule {spec!r}: {part!r} is outside the {name} range {low}-{high}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def check(silence: Silence) -> None:
    """``ScheduleError`` saying what is wrong with a silence's times, schedule or zone."""
    zone_of(silence.timezone)
    if silence.schedule is not None:
        parse_schedule(silence.schedule, silence.duration_s)
    elif silence.duration_s is not None:
        raise ScheduleError("duration_s goes with a cron schedule; a one-off window gives ends_at")
    elif silence.ends_at is None:
        raise ScheduleError("a one-off silence needs ends_at (or a schedule to recur on)")
    if silence.ends_at is not None and silence.ends_at <= silence.starts_at:
        raise ScheduleError(f"ends_at {silence.ends_at.isoformat()} is not after starts_at "
                            f"{silence.starts_at.isoformat()}")


def current_window(silence: Silence, now: datetime) -> tuple[datetime, datetime] | None:
    """The window in force at ``now`` (UTC start and end; a one-off's own bounds), or None."""
    if silence.ended_at is not None and silence.ended_at <= now:
        return None
    if now < silence.starts_at or (silence.ends_at is not None and now >= silence.ends_at):
        return None
    if silence.schedule is None:
        return silence.starts_at, silence.ends_at
    try:
        windows = parse_schedule(silence.schedule, silence.duration_s).windows_around(now, zone_of(silence.timezone))
    except ScheduleError:
        return None  # checked where it was made; a broken one silences nothing
    inside = [(start, end) for start, end in windows if start <= now < end]
    return max(inside, key=lambda w: w[1]) if inside else None


def in_force(silence: Silence, now: datetime) -> bool:
    return current_window(silence, now) is not None


def is_over(silence: Silence, now: datetime) -> bool:
    """Ended, or past its last window: it will never silence anything again."""
    return (silence.ended_at is not None and silence.ended_at <= now) or \
        (silence.ends_at is not None and silence.ends_at <= now)


def matches(silence: Silence, ref: ResourceRef, tenant: str) -> bool:
    if silence.tenant != tenant:
        return False
    if silence.matchers_resources and ref.key not in silence.matchers_resources \
            and ref.name not in silence.matchers_resources:
        return False
    if silence.matchers_services and ref.labels.get("service") not in silence.matchers_services:
        return False
    return all(ref.labels.get(k) == v for k, v in silence.matchers_labels.items())


class SilenceBook:
    """The latest state of every silence, by id (what the compacted topic holds)."""

    def __init__(self) -> None:
        self._by_id: dict[str, Silence] = {}

    def apply(self, silence: Silence) -> bool:
        """Keep ``silence`` unless a later state of it is kept already; True when it is now the one."""
        kept = self._by_id.get(silence.silence_id)
        if kept is not None and (kept.ended_at is not None and silence.ended_at is None or kept.ts > silence.ts):
            return False
        self._by_id[silence.silence_id] = silence
        return True

    def get(self, silence_id: str) -> Silence | None:
        return self._by_id.get(silence_id)

    def all(self, tenant: str | None = None) -> list[Silence]:
        found = [s for s in self._by_id.values() if tenant is None or s.tenant == tenant]
        return sorted(found, key=lambda s: (s.starts_at, s.silence_id))

    def for_resource(self, ref: ResourceRef, tenant: str, now: datetime) -> list[str]:
        """Ids of the silences in force at ``now`` that match ``ref``."""
        return sorted(s.silence_id for s in self._by_id.values() if matches(s, ref, tenant) and in_force(s, now))

    def for_incident(self, incident: Incident, now: datetime) -> list[str]:
        refs = [incident.resource, *incident.resources]
        return sorted({sid for ref in refs for sid in self.for_resource(ref, incident.tenant, now)})


def mark(incidents: list[Incident], book: SilenceBook, now: datetime) -> list[Incident]:
    """Each incident with ``silenced_by`` set to the silences in force that match it now."""
    return [incident.model_copy(update={"silenced_by": book.for_incident(incident, now)}) for incident in incidents]
