"""The stream's default detector (models/likelihood.py) on small series: what each view of a series catches,
that its quieting follows the worker's threshold, and that series recorded at rest stay quiet."""

from __future__ import annotations

import math
import random
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kubestack.models.likelihood import Likelihood, LikelihoodDetector
from kubestack.models.registry import DEFAULT, create, restore
from kubestack.settings import WorkerSettings

STEP = 300.0
DAY_POINTS = 288


def daily(days: int = 12, seed: int = 1, missing_day: int | None = None) -> list[tuple[float, float]]:
    """5-minute samples: a flat night and a busy day (a square-ish daily wave) with noise; on ``missing_day``
    the busy part does not come."""
    rnd = random.Random(seed)
    out = []
    for i in range(days * DAY_POINTS):
        day, phase = divmod(i, DAY_POINTS)
        busy = 100 <= phase < 200 and day != missing_day
        out.append((1_700_000_000 + STEP * i, (80.0 if busy else 20.0) + rnd.gauss(0, 1.0)))
    return out


def scores(det, points) -> list[float]:
    return [det.update(t, v) for t, v in points]


def test_the_default_detector_is_the_workers() -> None:
    assert WorkerSettings().anomaly_detector == DEFAULT == "likelihood"


def test_a_missing_daily_peak_is_seen_against_the_day_before_and_only_then() -> None:
    out = scores(LikelihoodDetector(), daily(missing_day=9))
    start = 9 * DAY_POINTS + 100
    assert max(out[start:start + 40]) >= 0.5
    assert max(out[3 * DAY_POINTS:start]) < 0.5


def test_a_daily_wave_without_anomaly_never_alerts() -> None:
    out = scores(LikelihoodDetector(), daily())
    assert max(out) < 0.5


def test_a_level_shift_alerts_once_then_quiets() -> None:
    rnd = random.Random(2)
    points = [(1_700_000_000 + 60.0 * i, 10.0 + (6.0 if i >= 1500 else 0.0) + rnd.gauss(0, 1.0)) for i in range(2000)]
    out = scores(LikelihoodDetector(), points)
    first = next(i for i, s in enumerate(out) if s >= 0.5)
    assert 1500 <= first < 1520
    assert max(out[first + 1:first + 300]) < 0.5          # the same shift is not announced again


@pytest.mark.parametrize("seed", range(3))
def test_independent_noise_never_alerts(seed: int) -> None:
    """The surprises of plain noise come in rare small bursts; their short mean must not look like evidence
    because its long-run spread is tiny (the floor ``surprise_min_sd``)."""
    rnd = random.Random(seed)
    out = scores(LikelihoodDetector(), [(1_700_000_000 + 60.0 * i, 10.0 + rnd.gauss(0, 1.0)) for i in range(3000)])
    assert max(out) < 0.5


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7, 0.9])
def test_the_alert_and_the_quiet_period_follow_the_announced_threshold(threshold: float) -> None:
    """Whatever threshold the worker announces, the detector alerts at it: the same points cross it and the
    scores are a monotone remap of one another."""
    points = daily(missing_day=9)
    base = scores(LikelihoodDetector(threshold=0.5), points)
    other = scores(LikelihoodDetector(threshold=threshold), points)
    assert [s >= 0.5 for s in base] == [s >= threshold for s in other]
    assert any(s >= threshold for s in other)
    order = sorted(range(len(points)), key=base.__getitem__)
    assert all(other[a] <= other[b] for a, b in zip(order, order[1:]))


def test_a_restored_detector_alerts_at_the_threshold_the_worker_now_announces() -> None:
    points = daily(missing_day=9)
    det = create("likelihood", 0.5)
    scores(det, points[:2000])
    resumed = restore("likelihood", det.to_state(), 0.8)
    fresh = LikelihoodDetector(threshold=0.8)
    scores(fresh, points[:2000])
    assert scores(resumed, points[2000:]) == scores(fresh, points[2000:])


def test_the_likelihood_of_a_steady_raw_score_is_low_and_of_a_jump_is_high() -> None:
    lik = Likelihood(short=10, memory=1000)
    rnd = random.Random(3)
    calm = [lik.update(abs(rnd.gauss(0, 0.1))) for _ in range(2000)]
    assert max(calm[500:]) < 0.4
    jump = max(lik.update(1.0) for _ in range(10))
    assert jump > 0.9
    restored = Likelihood(short=10, memory=1000)
    assert restored.restore(lik.to_state()) == len(lik.to_state())
    assert restored.update(0.5) == lik.update(0.5)


def test_a_faster_series_needs_more_surprise_to_alert() -> None:
    """The same shape sampled every second instead of every 5 minutes: more chances per hour to look odd by
    luck, so a higher alert level (mapped onto the same threshold)."""
    rnd = random.Random(4)
    values = [10.0 + rnd.gauss(0, 1.0) for _ in range(600)]
    slow, fast = LikelihoodDetector(), LikelihoodDetector()
    for i, v in enumerate(values):
        slow.update(1_700_000_000 + 300.0 * i, v)
        fast.update(1_700_000_000 + 1.0 * i, v)
    assert slow.alert_level == pytest.approx(slow.level)
    assert fast.alert_level == pytest.approx(slow.level + 0.15 * math.log10(300.0))
    assert slow.alert_level < slow.spatial_level < fast.spatial_level < 1.0


def test_a_value_far_out_of_the_range_seen_alerts_once_and_one_just_past_it_does_not() -> None:
    """A plain noisy level: a value a tenth of the range above the highest seen alerts (at the detector's
    out-of-range score), the new range then holds it; a value barely past the old maximum is no alert."""
    rnd = random.Random(5)
    points = [(1_700_000_000 + STEP * i, 50.0 + rnd.uniform(-5.0, 5.0)) for i in range(1000)]
    det = LikelihoodDetector()
    out = scores(det, points)
    assert max(out[det.warmup:]) < 0.5
    high, low = det.high, det.low
    t = points[-1][0]
    assert det.update(t + STEP, high + 0.02 * (high - low)) < 0.5
    jump = det.update(t + 2 * STEP, high + 0.3 * (high - low))
    assert jump >= 0.5
    assert det.update(t + 3 * STEP, high + 0.3 * (high - low)) < 0.5


RECORDED = Path(__file__).resolve().parents[1] / "bench" / "anomaly" / "recorded" / "clean"
AT_REST = ("mysql__mysql_com_select_total", "mysql__mysql_queries_total",
           "postgresql__postgresql_db_commits_total_db=shop", "postgresql__postgresql_db_commits_total_db=postgres",
           "redis__redis_commands_processed_total", "redis__redis_used_memory_bytes", "redis__redis_mem_fragmentation",
           "redis__redis_cpu_sys_seconds_total", "postgresql__postgresql_db_xid_age_db=shop")


@pytest.mark.parametrize("name", AT_REST)
def test_real_series_recorded_at_rest_do_not_alert(name: str) -> None:
    """Series recorded from real servers at rest every second (bench/anomaly/record.py): jittery small rates,
    a memory gauge that ramps now and then, a CPU rate at 0 between ticks, a transaction-id age that steps."""
    rows = [line.split(",") for line in (RECORDED / f"{name}.csv").read_text().splitlines()[1:]]
    points = [(datetime.fromisoformat(t).replace(tzinfo=timezone.utc).timestamp(), float(v)) for t, v in rows]
    out = scores(LikelihoodDetector(), points)
    assert len(out) > 400
    assert max(out) < 0.5


def test_an_event_still_scoring_when_its_quiet_period_ends_is_not_announced_again() -> None:
    """Values that keep leaving their range (doubling each point) score at the level throughout: one alert,
    none when each quiet period ends; after the score has been under the level, a new event alerts again."""
    rnd = random.Random(6)
    det = LikelihoodDetector(warmup=20, quiet=3)
    t = iter(1_700_000_000 + STEP * i for i in range(1000))
    assert max(det.update(next(t), rnd.uniform(0.0, 1.0)) for _ in range(60)) < 0.5
    growing = [det.update(next(t), 2.0 ** k) for k in range(1, 16)]
    assert sum(s >= 0.5 for s in growing) == 1
    calm = [det.update(next(t), rnd.uniform(0.0, 1.0)) for _ in range(10)]
    assert max(calm) < 0.5
    assert det.update(next(t), 2.0 ** 20) >= 0.5


def idle_writer(step: float, runs: int, seed: int = 7) -> tuple[list[tuple[float, float]], int]:
    """A writer idle at 0 between bursts of 3-6 busy points, idle for 5-40 points at a time, ``runs`` times;
    then idle for good. Also the longest idle run before the last (its repeats: one point less)."""
    rnd = random.Random(seed)
    values: list[float] = []
    longest = 0
    for _ in range(runs):
        values += [rnd.uniform(1e5, 9e5) for _ in range(rnd.randint(3, 6))]
        idle = rnd.randint(5, 40)
        longest = max(longest, idle - 1)
        values += [0.0] * idle
    values += [rnd.uniform(1e5, 9e5)] + [0.0] * 200
    return [(1_700_000_000 + step * i, v) for i, v in enumerate(values)], longest


def test_a_writer_idle_for_longer_than_ever_alerts_once_as_it_passes_its_record() -> None:
    """Idle runs at 0 are the writer's most common value, so the stuck test does not hear the last one; the
    run that passes the record, once the record has outlived many shorter runs, does."""
    points, longest = idle_writer(STEP, runs=120)
    det = LikelihoodDetector()
    out = scores(det, points)
    passed = len(points) - 200 + longest + 1           # the first 0 repeated once more than in the record
    assert det.longest == longest and det.outlived >= det.still_runs
    assert max(out[passed - longest:passed]) < 0.5
    assert out[passed] >= 0.5
    assert max(out[passed + 1:]) < 0.5
    unheard = scores(LikelihoodDetector(still_runs=10**6), points)
    assert unheard[passed] < 0.5


def test_a_young_record_of_stillness_or_one_of_a_fast_series_is_no_alert() -> None:
    """After a few runs a record is broken by luck; a series sampled every second must have been still for
    as long as a 5-minute one (50 minutes) before its record counts."""
    points, _ = idle_writer(STEP, runs=20)
    assert max(scores(LikelihoodDetector(), points)) < 0.5
    fast, _ = idle_writer(1.0, runs=120)
    assert max(scores(LikelihoodDetector(), fast)[-200:]) < 0.5


def test_a_state_of_the_previous_version_is_refused() -> None:
    det = LikelihoodDetector()
    scores(det, daily(days=1))
    with pytest.raises(ValueError):
        LikelihoodDetector.from_state(b"KSLD2" + det.to_state()[5:])
