"""Synthetic capacity series, deterministic from a seed: the fill-up scenarios of the forecast benchmark.

Every series is sampled every 5 minutes, in units of percent of its capacity (capacity 100). A filling
series stops at the sample where it reaches the capacity (``exhausted_at``); the others run 14 days (21 for
the weekly one) and never reach it (``exhausted_at`` None). Dev seeds are 0..n-1, holdout seeds 1000..;
parameters are drawn from the same ranges in both splits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STEP = 300.0
ORIGIN = 1_700_006_400.0   # 2023-11-15T00:00:00Z, a Wednesday
DAY = 86_400.0
CAPACITY = 100.0


@dataclass(frozen=True)
class Series:
    name: str
    scenario: str
    ts: np.ndarray
    values: np.ndarray
    capacity: float
    exhausted_at: float | None


def _times(days: float) -> np.ndarray:
    return ORIGIN + np.arange(0, days * DAY, STEP)


def _noise(rng: np.random.Generator, n: int, sigma: float, phi: float = 0.7) -> np.ndarray:
    e = rng.normal(0, sigma * np.sqrt(1 - phi * phi), n)
    out = np.empty(n)
    prev = rng.normal(0, sigma)
    for i in range(n):
        prev = phi * prev + e[i]
        out[i] = prev
    return out


def _truncate(name: str, scenario: str, ts: np.ndarray, v: np.ndarray) -> Series:
    full = np.nonzero(v >= CAPACITY)[0]
    if full.size:
        end = int(full[0])
        return Series(name, scenario, ts[:end + 1], np.minimum(v[:end + 1], CAPACITY), CAPACITY, float(ts[end]))
    return Series(name, scenario, ts, v, CAPACITY, None)


def linear_fill(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    ts = _times(12)
    start, days = rng.uniform(15, 45), rng.uniform(3, 8)
    rate = (100 - start) / (days * DAY) * (1 + 0.25 * np.sin(np.cumsum(rng.normal(0, 0.02, ts.size))))
    return ts, start + np.cumsum(rate * STEP) + _noise(rng, ts.size, rng.uniform(0.2, 1.0))


def accelerating_fill(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    ts = _times(12)
    start, days = rng.uniform(15, 40), rng.uniform(3, 7)
    x = (ts - ts[0]) / (days * DAY)
    power = rng.uniform(1.8, 3.0)
    return ts, start + (100 - start) * x ** power + _noise(rng, ts.size, rng.uniform(0.2, 0.8))


def seasonal_trend(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    ts = _times(14)
    start, days, amp = rng.uniform(15, 35), rng.uniform(4, 10), rng.uniform(4, 12)
    phase = rng.uniform(0, 2 * np.pi)
    daily = amp * np.sin(2 * np.pi * (ts - ts[0]) / DAY + phase)
    return ts, start + (100 - start - amp) * (ts - ts[0]) / (days * DAY) + daily + _noise(rng, ts.size, 0.5)


def step_plateau(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    ts = _times(14)
    base, rise = rng.uniform(25, 45), rng.uniform(20, 40)
    at, ramp = rng.uniform(2, 5) * DAY, rng.uniform(4, 16) * 3600
    x = np.clip((ts - ts[0] - at) / ramp, 0, 1)
    return ts, base + rise * x + _noise(rng, ts.size, rng.uniform(0.2, 1.0))


def sawtooth(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    ts = _times(14)
    floor, peak = rng.uniform(5, 20), rng.uniform(40, 70)
    values, t, level = np.empty(ts.size), 0, floor
    cycle = rng.uniform(2, 12) * 3600
    for i in range(ts.size):
        level += (peak - floor) / cycle * STEP * rng.uniform(0.5, 1.5)
        if level >= peak:   # rotation: back to the floor, next cycle a little different
            level, cycle = floor + rng.uniform(0, 3), cycle * rng.uniform(0.8, 1.25)
        values[i] = level
    return ts, values + _noise(rng, ts.size, 0.3)


def noisy_flat(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    ts = _times(14)
    return ts, rng.uniform(40, 75) + _noise(rng, ts.size, rng.uniform(1, 5), phi=rng.uniform(0.5, 0.98))


def weekly(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    ts = _times(21)
    low, high = rng.uniform(10, 25), rng.uniform(55, 85)
    day = (ts - ts[0]) / DAY
    weekday = ((np.floor(day) + 2) % 7) < 5   # ORIGIN is a Wednesday
    hour = (day % 1) * 24
    busy = np.clip(np.sin(np.pi * (hour - 7) / 12), 0, None) * weekday
    return ts, low + (high - low) * busy + _noise(rng, ts.size, rng.uniform(1, 3))


SCENARIOS = {"linear_fill": linear_fill, "accelerating_fill": accelerating_fill, "seasonal_trend": seasonal_trend,
             "step_plateau": step_plateau, "sawtooth": sawtooth, "noisy_flat": noisy_flat, "weekly": weekly}


def generate(split: str, per_scenario: int) -> list[Series]:
    base = 0 if split == "dev" else 1000
    out = []
    for scenario, make in SCENARIOS.items():
        for i in range(per_scenario):
            seed = base + i
            ts, v = make(np.random.default_rng([seed, list(SCENARIOS).index(scenario)]))
            out.append(_truncate(f"{scenario}_{seed}", scenario, ts, v))
    return out
