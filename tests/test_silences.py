"""Silences and maintenance windows, pure: schedules (weekly, overnight, cron, across DST), matching, the book."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import Incident, Severity, Silence
from kubestack.errors import ScheduleError
from kubestack.pipeline.silences import (
    SilenceBook,
    check,
    current_window,
    in_force,
    is_over,
    mark,
    matches,
    parse_schedule,
)

SOURCE = Source(agent="api", host="h")
UTC = timezone.utc
CACHE = ResourceRef(kind="redis", name="cache-1", host="db-1", labels={"service": "checkout", "env": "prod"})
OTHER = ResourceRef(kind="mysql", name="orders", host="db-2", labels={"service": "orders"})


def silence(**fields) -> Silence:
    base = {"source": SOURCE, "resource": ResourceRef(kind="silence", name="s"), "created_by": "alice",
            "comment": "patching", "starts_at": datetime(2026, 1, 1, tzinfo=UTC)}
    return Silence(**(base | fields))


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_weekly_window_in_berlin_on_a_winter_sunday() -> None:
    s = silence(schedule="Sun 02:00-04:00", timezone="Europe/Berlin")
    # 2026-01-04 is a Sunday; Berlin is UTC+1 in winter
    assert not in_force(s, utc(2026, 1, 4, 0, 59))
    assert current_window(s, utc(2026, 1, 4, 1, 0)) == (utc(2026, 1, 4, 1, 0), utc(2026, 1, 4, 3, 0))
    assert in_force(s, utc(2026, 1, 4, 2, 59))
    assert not in_force(s, utc(2026, 1, 4, 3, 0))
    assert not in_force(s, utc(2026, 1, 5, 1, 30))  # Monday


def test_weekly_window_across_dst_changes() -> None:
    s = silence(schedule="Sun 02:00-04:00", timezone="Europe/Berlin")
    # 2026-03-29: clocks jump 02:00 CET -> 03:00 CEST; 02:00 does not exist: the window is 03:00-04:00 CEST, 1 h
    assert current_window(s, utc(2026, 3, 29, 1, 30)) == (utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 2, 0))
    assert not in_force(s, utc(2026, 3, 29, 0, 59))
    assert not in_force(s, utc(2026, 3, 29, 2, 0))
    # 2026-10-25: clocks fall back 03:00 CEST -> 02:00 CET: 02:00 CEST (00:00 UTC) to 04:00 CET (03:00 UTC), 3 h
    assert current_window(s, utc(2026, 10, 25, 0, 0)) == (utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 3, 0))
    assert in_force(s, utc(2026, 10, 25, 2, 59))
    assert not in_force(s, utc(2026, 10, 25, 3, 0))


def test_overnight_window_runs_into_the_next_day() -> None:
    s = silence(schedule="Sat,Sun 22:00-02:00", timezone="UTC")
    # 2026-01-03 is a Saturday
    assert in_force(s, utc(2026, 1, 3, 23, 0))
    assert in_force(s, utc(2026, 1, 4, 1, 59))  # Saturday's window, on Sunday
    assert not in_force(s, utc(2026, 1, 4, 2, 0))
    assert in_force(s, utc(2026, 1, 5, 0, 30))  # Sunday's window, on Monday
    assert not in_force(s, utc(2026, 1, 5, 22, 30))  # Monday starts none
    assert not in_force(s, utc(2026, 1, 2, 23, 0))  # Friday


def test_day_ranges_and_daily() -> None:
    workdays = parse_schedule("Mon-Fri 12:00-13:00")
    assert workdays.days == frozenset(range(5))
    assert parse_schedule("Fri-Mon 00:00-01:00").days == frozenset({4, 5, 6, 0})
    assert parse_schedule("daily 03:00-03:30").days == frozenset(range(7))


def test_cron_with_duration() -> None:
    s = silence(schedule="30 1 * * 0", duration_s=5400, timezone="America/New_York")  # Sunday 01:30 for 1.5 h
    # 2026-01-04 Sunday, New York is UTC-5: 06:30-08:00 UTC
    assert not in_force(s, utc(2026, 1, 4, 6, 29))
    assert current_window(s, utc(2026, 1, 4, 7, 0)) == (utc(2026, 1, 4, 6, 30), utc(2026, 1, 4, 8, 0))
    assert not in_force(s, utc(2026, 1, 4, 8, 0))
    every_15 = silence(schedule="*/15 * * * *", duration_s=300)
    assert in_force(every_15, utc(2026, 1, 7, 10, 47)) and not in_force(every_15, utc(2026, 1, 7, 10, 50))
    overnight = silence(schedule="0 23 1 * *", duration_s=4 * 3600)  # the 1st of each month, 23:00, 4 h
    assert in_force(overnight, utc(2026, 2, 2, 2, 0)) and not in_force(overnight, utc(2026, 2, 2, 3, 0))


def test_cron_day_of_month_or_week_when_both_are_given() -> None:
    cron = parse_schedule("0 0 13 * 5", 60)
    assert cron.starts_on(datetime(2026, 2, 13).date())  # the 13th
    assert cron.starts_on(datetime(2026, 2, 6).date())  # a Friday
    assert not cron.starts_on(datetime(2026, 2, 7).date())


def test_one_off_bounds_and_ending() -> None:
    s = silence(starts_at=utc(2026, 5, 1, 10), ends_at=utc(2026, 5, 1, 12))
    assert not in_force(s, utc(2026, 5, 1, 9, 59)) and in_force(s, utc(2026, 5, 1, 10))
    assert not in_force(s, utc(2026, 5, 1, 12))
    ended = s.model_copy(update={"ended_at": utc(2026, 5, 1, 11), "ended_by": "bob"})
    assert in_force(ended, utc(2026, 5, 1, 10, 59)) and not in_force(ended, utc(2026, 5, 1, 11))
    assert is_over(ended, utc(2026, 5, 1, 11)) and not is_over(s, utc(2026, 5, 1, 11))


@pytest.mark.parametrize(("fields", "words"), [
    ({"schedule": "Sun 02:00-04:00", "duration_s": 60}, "no duration_s"),
    ({"schedule": "Sun 25:00-04:00"}, "not a time of day"),
    ({"schedule": "Funday 02:00-04:00"}, "not a day"),
    ({"schedule": "0 2 * *", "duration_s": 60}, "neither a weekly window"),
    ({"schedule": "0 2 * * 0"}, "needs duration_s"),
    ({"schedule": "61 2 * * 0", "duration_s": 60}, "outside the minute range"),
    ({"schedule": "a 2 * * 0", "duration_s": 60}, "not a valid minute"),
    ({"schedule": "0 2 * * 0", "duration_s": 40 * 86400}, "longer than 31 days"),
    ({"schedule": "Sun 02:00-04:00", "timezone": "Mars/Olympus"}, "unknown time zone"),
    ({}, "needs ends_at"),
    ({"ends_at": datetime(2025, 1, 1, tzinfo=UTC)}, "not after starts_at"),
    ({"ends_at": datetime(2027, 1, 1, tzinfo=UTC), "duration_s": 60}, "goes with a cron schedule"),
])
def test_bad_silences_are_refused_with_the_reason(fields: dict, words: str) -> None:
    with pytest.raises(ScheduleError, match=words):
        check(silence(**fields))


def test_matching_by_resource_service_labels_and_tenant() -> None:
    assert matches(silence(), CACHE, "default") and not matches(silence(), CACHE, "acme")  # the whole tenant
    assert matches(silence(matchers_resources=["cache-1"]), CACHE, "default")
    assert matches(silence(matchers_resources=[CACHE.key]), CACHE, "default")
    assert not matches(silence(matchers_resources=["cache-1"]), OTHER, "default")
    assert matches(silence(matchers_services=["checkout"]), CACHE, "default")
    assert not matches(silence(matchers_services=["checkout"]), OTHER, "default")
    assert matches(silence(matchers_labels={"env": "prod"}), CACHE, "default")
    assert not matches(silence(matchers_labels={"env": "prod", "zone": "a"}), CACHE, "default")
    both = silence(matchers_services=["checkout"], matchers_resources=["orders"])  # every criterion must hold
    assert not matches(both, CACHE, "default") and not matches(both, OTHER, "default")


def test_book_keeps_the_latest_state_and_marks_incidents() -> None:
    now = utc(2026, 5, 1, 11)
    book = SilenceBook()
    s = silence(silence_id="s1", matchers_services=["checkout"], starts_at=utc(2026, 5, 1, 10),
                ends_at=utc(2026, 5, 1, 12), ts=utc(2026, 5, 1, 9))
    assert book.apply(s)
    incident = Incident(source=SOURCE, resource=OTHER, title="t", severity=Severity.WARNING, opened_at=now,
                        resources=[OTHER, CACHE], member_event_ids=["e"])
    assert mark([incident], book, now)[0].silenced_by == ["s1"]
    assert mark([incident], book, utc(2026, 5, 1, 12))[0].silenced_by == []
    ended = s.model_copy(update={"ended_at": utc(2026, 5, 1, 10, 30), "ts": utc(2026, 5, 1, 10, 30)})
    assert book.apply(ended) and not book.apply(s)  # a replayed older state does not revive it
    assert book.for_incident(incident, now) == []
    assert [x.silence_id for x in book.all("default")] == ["s1"] and book.all("acme") == []
