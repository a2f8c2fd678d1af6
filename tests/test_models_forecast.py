"""The exhaustion forecaster and the notice policy on small synthetic series: fills are foreseen early with
the early bound before the likely time; sawtooth, noisy flat and weekly series never notify; state resumes
exactly; a raised capacity withdraws the notice."""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from kubestack.models.forecast import ExhaustionForecaster, Forecast
from kubestack.models.forecast_fit import DAY, refit, seasonal_period
from kubestack.models.forecast_history import History
from kubestack.models.notice import NoticeParams, NoticePolicy

RECORDED = Path(__file__).resolve().parents[1] / "bench" / "forecast" / "recorded"
META = json.loads((RECORDED / "meta.json").read_text())
STEP = 300.0
T0 = 1_700_006_400.0   # a Wednesday, 00:00 UTC
HOUR = 3600.0


def linear_fill(days_to_full: float = 4.0, start: float = 30.0, noise: float = 0.5, seed: int = 1
                ) -> tuple[list[tuple[float, float]], float]:
    """5-minute samples rising from ``start`` to 100 in ``days_to_full`` days; (samples, exhaustion time)."""
    rnd = random.Random(seed)
    rate = (100 - start) / (days_to_full * DAY)
    full_at = T0 + days_to_full * DAY
    n = int(days_to_full * DAY / STEP)
    return [(T0 + i * STEP, start + rate * i * STEP + rnd.gauss(0, noise)) for i in range(n)], full_at


def sawtooth(days: int = 10, seed: int = 2) -> list[tuple[float, float]]:
    """A log filling from 10% to ~55% of its disk in ~6 h, then rotated (emptied), again and again."""
    rnd, out, level = random.Random(seed), [], 10.0
    for i in range(int(days * DAY / STEP)):
        level += 45 / (6 * HOUR) * STEP * rnd.uniform(0.6, 1.4)
        if level >= 55:
            level = 10 + rnd.uniform(0, 3)
        out.append((T0 + i * STEP, level + rnd.gauss(0, 0.3)))
    return out


def noisy_flat(days: int = 10, seed: int = 3, phi: float = 0.95, sigma: float = 4.0) -> list[tuple[float, float]]:
    rnd, out, e = random.Random(seed), [], 0.0
    for i in range(int(days * DAY / STEP)):
        e = phi * e + rnd.gauss(0, sigma * math.sqrt(1 - phi * phi))
        out.append((T0 + i * STEP, 65 + e))
    return out


def weekly(days: int = 21, seed: int = 4) -> list[tuple[float, float]]:
    """Busy weekday hours up to ~80%, quiet nights and weekends, no trend."""
    rnd, out = random.Random(seed), []
    for i in range(int(days * DAY / STEP)):
        t = i * STEP
        weekday = (int(t // DAY) + 2) % 7 < 5
        hour = (t % DAY) / HOUR
        busy = max(math.sin(math.pi * (hour - 7) / 12), 0.0) if weekday else 0.0
        out.append((T0 + t, 15 + 65 * busy + rnd.gauss(0, 2)))
    return out


def replay(samples, capacity: float = 100.0, forecaster: ExhaustionForecaster | None = None) -> list[Forecast]:
    forecaster = forecaster or ExhaustionForecaster()
    return [forecaster.update(t, v, capacity) for t, v in samples]


def notices(samples, forecasts: list[Forecast]) -> list[tuple[float, str, str | None]]:
    policy = NoticePolicy()
    out = []
    for (t, _), fc in zip(samples, forecasts):
        decision = policy.step(t, fc)
        if decision.status != "unchanged":
            out.append((t, decision.status, decision.severity))
    return out


def test_linear_fill_is_foreseen_a_day_ahead_with_the_early_bound_first() -> None:
    samples, full_at = linear_fill()
    forecasts = replay(samples)
    foreseen = [(t, fc) for (t, _), fc in zip(samples, forecasts) if fc.exhaustion_at is not None]
    first_t, _ = foreseen[0]
    assert full_at - first_t >= 30 * HOUR                # well before the day of the warning horizon
    assert all(fc.lower_bound <= fc.exhaustion_at for _, fc in foreseen)
    assert all(0.0 <= fc.confidence <= 1.0 and fc.trending for _, fc in foreseen)
    late = [fc for t, fc in foreseen if full_at - 24 * HOUR <= t <= full_at - 4 * HOUR]
    errors = [abs(fc.exhaustion_at - full_at) for fc in late]
    assert max(errors) <= 3 * HOUR                        # the likely time is right within 3 h the last day
    assert {fc.model for fc in late} <= {"holt", "damped"}   # the statsmodels refit, not the online line


def test_linear_fill_notice_opens_early_escalates_and_is_never_withdrawn() -> None:
    samples, full_at = linear_fill(days_to_full=5, noise=1.0, seed=7)
    events = notices(samples, replay(samples))
    statuses = [status for _, status, _ in events]
    assert statuses[0] == "new" and events[0][2] == "warning"
    assert full_at - events[0][0] >= 24 * HOUR
    assert "withdrawn" not in statuses
    critical = [t for t, _, severity in events if severity == "critical"]
    assert critical and full_at - critical[0] >= 4 * HOUR


@pytest.mark.parametrize("seed", [2, 12, 22])
def test_sawtooth_never_notifies(seed: int) -> None:
    samples = sawtooth(seed=seed)
    forecasts = replay(samples)
    assert notices(samples, forecasts) == []
    assert all(fc.exhaustion_at is None for fc in forecasts)


@pytest.mark.parametrize("seed", [3, 13, 23])
def test_noisy_flat_and_weekly_series_never_notify(seed: int) -> None:
    for samples in (noisy_flat(seed=seed), weekly(seed=seed)):
        assert notices(samples, replay(samples)) == []


def test_state_round_trips_exactly_and_is_deterministic() -> None:
    samples, _ = linear_fill(days_to_full=3, seed=5)
    half = len(samples) * 2 // 3
    a = ExhaustionForecaster()
    replay(samples[:half], forecaster=a)
    state = a.to_state()
    b = ExhaustionForecaster.from_state(state)
    assert b.to_state() == state
    assert replay(samples[half:], forecaster=a) == replay(samples[half:], forecaster=b)
    again = ExhaustionForecaster()
    replay(samples[:half], forecaster=again)
    assert again.to_state() == state
    assert len(state) < 8192


def test_raised_capacity_moves_the_forecast_and_withdraws_the_notice() -> None:
    samples, full_at = linear_fill(days_to_full=4, seed=9)
    forecaster, policy = ExhaustionForecaster(), NoticePolicy()
    raised_at = full_at - 18 * HOUR
    statuses, before, after = [], None, None
    for t, v in samples:
        capacity = 100.0 if t < raised_at else 400.0     # e.g. maxmemory raised
        fc = forecaster.update(t, v, capacity)
        statuses.append(policy.step(t, fc).status)
        if t < raised_at:
            before = fc
        else:
            after = fc
    assert before.exhaustion_at is not None and abs(before.exhaustion_at - full_at) < 4 * HOUR
    assert after.exhaustion_at is None or after.exhaustion_at > full_at + 3 * DAY
    assert "new" in statuses and statuses.index("withdrawn") > statuses.index("new")
    assert policy.severity is None


def test_notice_policy_hysteresis_updates_and_state() -> None:
    params = NoticeParams(confirm_s=1800, clear_s=3 * HOUR)
    policy = NoticePolicy(params)
    t = T0

    def step(likely: float | None, lower: float | None) -> str:
        fc = Forecast(likely, lower, 0.5, "holt", likely is not None)
        return policy.step(t, fc).status

    assert step(t + 30 * HOUR, t + 20 * HOUR) == "unchanged"          # not yet confirmed
    t += 1800
    assert step(t + 30 * HOUR, t + 20 * HOUR) == "new" and policy.severity == "warning"
    t += 300
    assert step(t + 29.5 * HOUR, t + 20 * HOUR) == "unchanged"        # moved by less than 10% and 1 h
    t += 300
    assert step(t + 20 * HOUR, t + 15 * HOUR) == "updated"            # moved by 10 h
    for _ in range(12):                                             # a forecast gap shorter than clear_s
        t += 300
        assert step(None, None) == "unchanged"
    t += 300
    assert step(t + 5 * HOUR, t + 3 * HOUR) == "updated" and policy.severity == "critical"
    restored = NoticePolicy.from_state(json.loads(json.dumps(policy.to_state())), params)
    assert restored.to_state() == policy.to_state()
    gone_at = t
    for _ in range(48):
        t += 300
        if step(None, None) == "withdrawn":
            break
    assert t - gone_at == 3 * HOUR + 300 and policy.severity is None   # 3 h after the first miss


def test_history_downsamples_to_a_bounded_buffer_over_the_whole_life() -> None:
    history = History(capacity=64, step_s=300, max_step_s=4800)
    for i in range(5000):
        history.add(T0 + i * 300.0, float(i))
    t, y = history.series()
    assert len(history.means) < 64 and history.step_s == 4800
    assert t[-1] - t[0] >= 60 * 4800                  # the oldest buckets fell off only at the largest step
    assert T0 + 5000 * 300 - t[-1] <= 2 * 4800
    assert np.allclose(np.diff(y), 16.0)              # bucket means of a line are a line (16 samples a bucket)


def test_daily_season_is_found_and_fitted_with_its_profile() -> None:
    t = T0 + np.arange(0, 4 * DAY, 1200.0)
    y = 40 + 0.5 * (t - T0) / HOUR + 10 * np.sin(2 * np.pi * (t - T0) / DAY)
    assert seasonal_period(y, 1200.0) == DAY
    assert seasonal_period(40 + 0.5 * (t - T0) / HOUR + 0.001 * ((t - T0) / HOUR) ** 2, 1200.0) == 0.0
    fit = refit(t, y, 1200.0)
    assert fit is not None and fit.model == "ets-seasonal"
    ahead = t[-1] + np.arange(1, 73) * 1200.0
    mean, sd = fit.path(ahead)
    truth = 40 + 0.5 * (ahead - T0) / HOUR + 10 * np.sin(2 * np.pi * (ahead - T0) / DAY)
    assert np.max(np.abs(mean - truth)) < 3.0 and np.all(np.diff(sd) >= 0)


def recorded(name: str) -> list[tuple[float, float]]:
    with (RECORDED / name).open() as handle:
        return [(float(row["timestamp"]), float(row["value"])) for row in csv.DictReader(handle)]


@pytest.mark.parametrize("name", sorted(META))
def test_real_recordings_notify_before_full_and_never_on_rotation_or_expiry(name: str) -> None:
    """Real runs (bench/forecast/record.py): a tmpfs and a Redis filled by writers at varying rates, the
    same tmpfs with its log rotated, Redis keys expiring in waves; 1 real second = 5 minutes."""
    meta, samples = META[name], recorded(name)
    events = notices(samples, replay(samples, capacity=meta["capacity"]))
    if meta["exhausted_at"] is None:
        assert events == []
        return
    full_at = meta["exhausted_at"]
    assert events[0][1] == "new" and full_at - events[0][0] >= 20 * HOUR
    assert all(status != "withdrawn" for t, status, _ in events if t < full_at)
