"""The forecaster's early bound on daily cycles and on accelerating fills: on a fill with a strong daily swing
the notice comes for the peak that will reach the capacity, not one a day before it; on a fill whose writer
speeds up, the online widening (learned from the upper edge's misses) moves the early bound before the real
exhaustion more often than the fixed z does; both resume exactly from a saved state."""

from __future__ import annotations

import math
import random

from kubestack.models.forecast import ExhaustionForecaster, ForecastParams
from kubestack.models.forecast_fit import DAY
from kubestack.models.notice import NoticePolicy

STEP = 300.0
T0 = 1_700_006_400.0
HOUR = 3600.0


def daily_fill(days_to_full: float = 5.0, amplitude: float = 10.0, seed: int = 7) -> tuple[list, float]:
    """A trend reaching the capacity at a daily peak (the swing's mean reaches it a day later or more)."""
    rnd, out = random.Random(seed), []
    rate = (100 - 25 - amplitude) / (days_to_full * DAY)
    for i in range(int(14 * DAY / STEP)):
        t = i * STEP
        value = 25 + rate * t + amplitude * math.sin(2 * math.pi * t / DAY) + rnd.gauss(0, 0.5)
        if value >= 100:
            return out, T0 + t
        out.append((T0 + t, value))
    raise AssertionError("the series never fills")


def accelerating_fill(power: float = 2.6, days: float = 5.0, seed: int = 5) -> tuple[list, float]:
    rnd, out = random.Random(seed), []
    for i in range(int(12 * DAY / STEP)):
        t = i * STEP
        value = 20 + 80 * (t / (days * DAY)) ** power + rnd.gauss(0, 0.4)
        if value >= 100:
            return out, T0 + t
        out.append((T0 + t, value))
    raise AssertionError("the series never fills")


def first_notice(samples, forecaster: ExhaustionForecaster) -> float | None:
    policy = NoticePolicy()
    for t, v in samples:
        if policy.step(t, forecaster.update(t, v, 100.0)).status == "new":
            return t
    return None


def coverage(samples, full_at: float, forecaster: ExhaustionForecaster) -> tuple[float, float]:
    """(share of the early bounds not after the exhaustion, the largest widening on the way)"""
    bounds, widest = [], 1.0
    for t, v in samples:
        fc = forecaster.update(t, v, 100.0)
        widest = max(widest, forecaster.widen)
        if fc.lower_bound is not None:
            bounds.append(fc.lower_bound)
    return sum(b <= full_at for b in bounds) / len(bounds), widest


def test_a_daily_cycle_is_warned_within_the_horizon_of_the_peak_that_fills_it() -> None:
    for seed, amplitude in ((7, 10.0), (8, 6.0), (9, 8.0)):
        samples, full_at = daily_fill(amplitude=amplitude, seed=seed)
        opened = first_notice(samples, ExhaustionForecaster())
        assert opened is not None, "no notice before the fill"
        assert 12 * HOUR <= full_at - opened <= 36 * HOUR, (seed, (full_at - opened) / HOUR)


def test_online_widening_covers_an_accelerating_fill_better_than_a_fixed_z() -> None:
    samples, full_at = accelerating_fill(power=3.0, seed=6)
    fixed, _ = coverage(samples, full_at, ExhaustionForecaster(ForecastParams(calib_max=1.0)))
    widened, widest = coverage(samples, full_at, ExhaustionForecaster())
    assert widest > 1.0
    assert widened > fixed, (widened, fixed)


def test_widening_and_pending_checks_resume_exactly_from_the_state() -> None:
    samples, _ = accelerating_fill(power=3.0, seed=6)
    half = len(samples) * 3 // 4
    a = ExhaustionForecaster()
    for t, v in samples[:half]:
        a.update(t, v, 100.0)
    assert a.pending and a.widen >= 1.0
    b = ExhaustionForecaster.from_state(a.to_state())
    assert (b.widen, b.calib_at, b.pending) == (a.widen, a.calib_at, a.pending)
    assert [a.update(t, v, 100.0) for t, v in samples[half:]] == [b.update(t, v, 100.0) for t, v in samples[half:]]
