"""The online detectors on small synthetic series: they see anomalies, never look ahead, and resume exactly."""

from __future__ import annotations

import itertools
import math
import random
import struct
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kubestack.models.counters import CounterRate, is_counter
from kubestack.models.detector import MetricDetector
from kubestack.models.gaussian import WindowedGaussian
from kubestack.models.multivariate import InstanceDetector
from kubestack.models.recurrence import Recurrence
from kubestack.models.registry import DETECTORS, create, restore
from kubestack.models.values import ValueTable

STEP = 300.0


def series(n: int = 1500, seed: int = 3, spike_at: int | None = None, shift_at: int | None = None
           ) -> list[tuple[float, float]]:
    """5-minute samples with a daily cycle and noise, optionally a spike or a level shift."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        v = 40 + 15 * math.sin(2 * math.pi * i / 288) + rnd.gauss(0, 1.5)
        if i == spike_at:
            v += 25
        if shift_at is not None and i >= shift_at:
            v += 20
        out.append((1_700_000_000 + STEP * i, v))
    return out


def scores(det, points) -> list[float]:
    return [det.update(t, v) for t, v in points]


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_scores_are_in_unit_interval_and_deterministic(name: str) -> None:
    points = series(spike_at=1000)
    first, second = scores(create(name, 0.5), points), scores(create(name, 0.5), points)
    assert first == second
    assert all(0.0 <= s <= 1.0 for s in first)


def test_a_spike_scores_above_every_clean_point() -> None:
    out = scores(MetricDetector(), series(spike_at=1200))
    clean = out[300:1200] + out[1400:]
    assert out[1200] > max(clean)
    assert out[1200] >= 0.5


def test_a_level_shift_is_detected_within_a_few_points_and_only_then() -> None:
    out = scores(MetricDetector(), series(shift_at=1100))
    assert max(out[1100:1105]) >= 0.5
    assert max(out[300:1100]) < max(out[1100:1105])


def test_a_repeat_is_damped_but_a_larger_event_soon_after_an_alert_still_alerts() -> None:
    points = series(spike_at=1000)
    echo = [(t, v + 25 * (i == 1050)) for i, (t, v) in enumerate(points)]
    bigger = [(t, v + 80 * (i == 1050)) for i, (t, v) in enumerate(points)]
    out_echo, out_bigger = scores(MetricDetector(), echo), scores(MetricDetector(), bigger)
    assert out_echo[1000] >= 0.5 and out_echo[1050] < 0.5          # the same again: quiet period
    assert out_bigger[1050] >= 0.5                                  # far stronger evidence gets through


def test_a_stuck_sensor_is_detected() -> None:
    points = series()
    stuck = points[:1000] + [(t, points[999][1]) for t, _ in points[1000:1040]] + points[1040:]
    out = scores(MetricDetector(), stuck)
    assert max(out[1000:1040]) >= 0.5 > max(out[300:1000])


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_no_look_ahead_scores_of_a_prefix_equal_the_full_run(name: str) -> None:
    points = series(spike_at=900)
    full = scores(create(name, 0.5), points)
    assert scores(create(name, 0.5), points[:950]) == full[:950]


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_a_restored_detector_continues_exactly(name: str) -> None:
    points = series(spike_at=1300)
    full = scores(create(name, 0.5), points)
    det = create(name, 0.5)
    head = scores(det, points[:1000])
    state = det.to_state()
    assert isinstance(state, bytes)
    resumed = restore(name, state, 0.5)
    assert head + scores(resumed, points[1000:]) == full


@pytest.mark.parametrize(("name", "other"), list(itertools.permutations(sorted(DETECTORS), 2)))
def test_a_state_of_another_detector_is_refused(name: str, other: str) -> None:
    """The worker relearns a series when ``worker.anomaly_detector`` changes: no detector may resume from the
    bytes of another as if they were its own."""
    det = create(other, 0.5)
    scores(det, series(n=400))
    with pytest.raises((ValueError, struct.error)):
        restore(name, det.to_state(), 0.5)


@pytest.mark.parametrize("name", sorted(set(DETECTORS) - {"gaussian"}))   # the reference keeps its window
def test_state_stays_under_four_kilobytes_once_warm(name: str) -> None:
    det = create(name, 0.5)
    scores(det, series(n=1500))
    assert len(det.to_state()) <= 4096


def test_metric_detector_state_is_about_a_kilobyte() -> None:
    det = MetricDetector()
    scores(det, series(n=600))
    assert len(det.to_state()) <= 4096


def test_counters_become_rates_and_survive_resets() -> None:
    assert is_counter("redis_commands_processed_total") and not is_counter("redis_used_memory_bytes")
    c = CounterRate()
    assert math.isnan(c.update(0.0, 100.0))
    assert c.update(10.0, 150.0) == 5.0
    assert c.update(20.0, 30.0) == 3.0            # restart: the counter began again from zero
    assert math.isnan(c.update(20.0, 40.0))       # same timestamp: no rate
    restored = CounterRate.from_state(c.to_state())
    assert restored.update(30.0, 60.0) == 2.0


def test_instance_detector_flags_a_combination_normal_on_each_axis() -> None:
    rnd = random.Random(1)
    det = InstanceDetector({"cpu": (0.0, 100.0), "qps": (0.0, 2000.0)})
    out = []
    for i in range(1500):
        load = rnd.random()
        x = {"cpu": 10 + 60 * load + rnd.gauss(0, 3), "qps": 100 + 1500 * load + rnd.gauss(0, 50)}
        if i == 1200:
            x = {"cpu": 85.0, "qps": 150.0}       # busy CPU with no traffic: each value seen before
        out.append(det.update(float(i), x))
    assert out[1200] > max(out[300:1200])
    resumed = InstanceDetector.from_state(det.to_state())
    assert resumed.update(1500.0, {"cpu": 40.0, "qps": 800.0}) == det.update(1500.0, {"cpu": 40.0, "qps": 800.0})


def test_windowed_gaussian_is_the_plain_z_score() -> None:
    det = WindowedGaussian(window=100, step=10)
    out = scores(det, [(float(i), float(i % 2)) for i in range(200)] + [(200.0, 10.0)])
    assert out[-1] > 0.999 and max(out[10:200]) < 0.9


def test_a_series_constant_since_its_start_never_alerts() -> None:
    from kubestack.models.detector import MetricDetector

    detector = MetricDetector()
    assert max(detector.update(i * 10.0, 5.0) for i in range(500)) == 0.0


def counter_rate_at_rest(seed: int, n: int = 900, per_s: float = 5.0, own: int = 3,
                         jump_at: int | None = None) -> list[tuple[float, float]]:
    """What the stream sees of a counter at rest sampled every ~1 s (the agent's own queries plus a light
    load): a small whole number of events over an interval that jitters, as a rate; ``jump_at`` on, 10x more."""
    rnd = random.Random(seed)
    rate, t, total, out = CounterRate(), 1_700_000_000.0, 1000.0, []
    for i in range(n):
        dt = 1.0 + rnd.uniform(-0.05, 0.05)
        t += dt
        load = per_s * (10 if jump_at is not None and i >= jump_at else 1)
        total += own + int(load * dt + rnd.random())
        value = rate.update(t, total)
        if not math.isnan(value):
            out.append((t, value))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_a_jittery_counter_rate_at_rest_never_alerts_after_warmup(seed: int) -> None:
    detector = MetricDetector()
    out = scores(detector, counter_rate_at_rest(seed))
    assert max(out[detector.warmup:]) < 0.5


def test_a_tenfold_rate_jump_alerts_at_once() -> None:
    out = scores(MetricDetector(), counter_rate_at_rest(1, jump_at=600))
    assert max(out[598:603]) >= 0.7
    assert max(out[100:598]) < 0.5


def test_one_event_more_or_less_is_the_resolution_of_a_rate() -> None:
    """A rate of whole events over jittering intervals: the smallest change is noise, a change of many is not."""
    points = counter_rate_at_rest(2, per_s=2.0, own=0)
    detector = MetricDetector()
    out = scores(detector, points)
    assert max(out[detector.warmup:]) < 0.5
    t, value = points[-1]
    assert detector.update(t + 1.0, value + 48.0) >= 0.5


def test_metric_detector_state_round_trips_byte_for_byte() -> None:
    detector = MetricDetector()
    scores(detector, counter_rate_at_rest(3, n=300))
    raw = detector.to_state()
    assert len(raw) <= 4096
    assert MetricDetector.from_state(raw).to_state() == raw


RECORDED = Path(__file__).resolve().parents[1] / "bench" / "anomaly" / "recorded" / "clean"
AT_REST_RATES = ("mysql__mysql_com_select_total", "mysql__mysql_queries_total",
                 "postgresql__postgresql_db_commits_total_db=shop", "postgresql__postgresql_db_commits_total_db=postgres",
                 "redis__redis_commands_processed_total")


AT_REST_LIVELY = ("redis__redis_used_memory_bytes", "redis__redis_mem_fragmentation",
                  "redis__redis_cpu_sys_seconds_total", "postgresql__postgresql_checkpoint_buffers_written_total",
                  "postgresql__postgresql_db_xid_age_db=shop")


@pytest.mark.parametrize("name", AT_REST_RATES + AT_REST_LIVELY)
def test_real_series_recorded_at_rest_raise_no_incident(name: str) -> None:
    """Series recorded from real servers at rest every 1 s (bench/anomaly/record.py): rates that are jittery
    small whole numbers of the agent's own queries and a light load (which used to cross 0.7 every few tens of
    seconds), a memory gauge that sits still at its usual value for half a minute, a CPU rate at 0 between
    ticks, checkpoint writes that are 0 for minutes, a transaction-id age that steps once and stays."""
    rows = [line.split(",") for line in (RECORDED / f"{name}.csv").read_text().splitlines()[1:]]
    points = [(datetime.fromisoformat(t).replace(tzinfo=timezone.utc).timestamp(), float(v)) for t, v in rows]
    detector = MetricDetector()
    out = scores(detector, points)
    assert len(out) > 400
    assert max(out[detector.warmup:]) < 0.7


def test_metric_detector_rejects_a_state_of_another_version() -> None:
    """The stream relearns a series whose saved state does not fit (pipeline/detection.py): it must not resume
    from bytes of another layout as if they were its own."""
    with pytest.raises(ValueError):
        MetricDetector.from_state(bytes(1106))


def test_value_table_knows_the_values_a_gauge_keeps_and_how_long_it_stays() -> None:
    table, total, prev = ValueTable(), 0.0, None
    rnd = random.Random(4)
    for _ in range(2000):
        x = 2.0 if rnd.random() < 0.9 else rnd.choice((1.0, 3.0))
        table.observe(x, x == prev, 1.0, total + 1e-9)
        total, prev = total + 1.0, x
    assert 0.85 < table.observe(2.0, True, 1.0, total) < 0.95
    assert 0.02 < table.observe(3.0, False, 1.0, total + 1.0) < 0.08
    assert table.observe(40.0, False, 1.0, total + 2.0) == 0.0                    # never seen
    assert 0.85 < table.stay(2.0, 0.5, 1.0) < 0.95
    restored = ValueTable()
    assert restored.restore(table.to_state()) == len(table.to_state())
    assert restored.stay(2.0, 0.5, 1.0) == table.stay(2.0, 0.5, 1.0)


def test_a_continuous_series_never_makes_a_value_familiar() -> None:
    table, rnd = ValueTable(), random.Random(5)
    shares = [table.observe(rnd.gauss(0, 1), False, 1.0, float(i + 1)) for i in range(3000)]
    assert max(shares) == 0.0


def test_recurrence_finds_the_clock_of_bursts_and_outlives_one_off_the_beat() -> None:
    clock = Recurrence()
    verdicts = [clock.burst(t, 1.0, 80.0) for t in (7.0, 67.0, 127.2, 186.9, 247.0, 306.8)]
    assert verdicts[:3] == [False, False, False] and verdicts[4:] == [True, True]
    assert clock.burst(307.8, 1.0, 80.0)                       # the same burst, one point later
    assert not clock.burst(337.0, 1.0, 80.0)                   # off the beat
    assert clock.burst(426.9, 1.0, 80.0)                       # the clock is still there
    assert not clock.burst(486.9, 1.0, 400.0)                  # on the beat but five times larger
    assert Recurrence.from_state(clock.to_state()).to_state() == clock.to_state()


def minute_bursts(n: int = 1200, seed: int = 6, extra: dict[int, float] | None = None) -> list[tuple[float, float]]:
    """A rate sampled every ~1 s that jumps a hundredfold for one point every minute (PostgreSQL's tuple rates
    when the statistics collector flushes)."""
    rnd = random.Random(seed)
    out, t = [], 1_700_000_000.0
    for i in range(n):
        t += 1.0 + rnd.uniform(-0.03, 0.03)
        v = 5.0 + rnd.gauss(0, 0.08) + (880.0 + rnd.gauss(0, 20) if i % 60 == 17 else 0.0)
        out.append((round(t, 3), v + (extra or {}).get(i, 0.0)))
    return out


def test_minute_periodic_bursts_stop_alerting_and_a_burst_off_the_beat_still_alerts() -> None:
    detector = MetricDetector()
    out = scores(detector, minute_bursts())
    assert max(out[400:]) < 0.5
    off_beat = scores(MetricDetector(), minute_bursts(extra={1000: 900.0}))
    assert off_beat[1000] >= 0.7


def test_a_gauge_between_a_few_values_raises_nothing_but_a_jump_far_out_does() -> None:
    """Connection counts at rest: mostly 2, now and then 1 or 3 for a while; then 40 (connections pile up)."""
    rnd = random.Random(8)
    points, level = [], 2.0
    for i in range(1500):
        if rnd.random() < 0.02:
            level = rnd.choice((1.0, 2.0, 2.0, 3.0))
        points.append((1_700_000_000 + 10.0 * i, 40.0 if i >= 1400 else level))
    out = scores(MetricDetector(), points)
    assert max(out[100:1400]) < 0.5
    assert max(out[1400:1403]) >= 0.7
