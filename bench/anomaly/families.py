"""Series families shaped like the public description of the Numenta Anomaly Benchmark's corpus.

Written from that description only (no NAB data or labels are used or recreated): AWS CloudWatch server
metrics (CPU, network bytes, request counts: noisy, benign spikes, occasional level changes), ad-exchange
hourly click rates, Twitter mention volumes (bursty, heavy-tailed), road traffic speed/occupancy (daily
rhythm, irregular sampling), machine temperature (long, smooth, with shutdowns and failures), taxi demand
(half-hourly, daily and weekly rhythm, holidays) and artificial series with and without anomalies. Files are
1,000-20,000 points, mostly 5-minute steps; 0-4 anomalies each, many of them changes of level or behaviour
rather than spikes. ``make_family(name, rng)`` returns (timestamps, values, onsets, kinds).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import lfilter

START = 1_393_632_000.0          # 2014-03-01 00:00 UTC, a Saturday
DAY = 86400.0


def ar1(rng: np.random.Generator, n: int, phi: float, scale: float, df: float | None = None) -> np.ndarray:
    shocks = rng.standard_t(df, n) / math.sqrt(df / (df - 2)) if df else rng.standard_normal(n)
    return lfilter([scale * math.sqrt(1 - phi * phi)], [1.0, -phi], shocks)


def _timestamps(rng: np.random.Generator, n: int, step: int, gaps: float = 0.0) -> np.ndarray:
    steps = np.full(n, float(step))
    if gaps:
        steps += step * rng.geometric(1 - gaps, n) - step          # some samples missing
    steps[0] = 0.0
    return START + rng.integers(0, 30) * DAY + rng.integers(0, 86400 // step) * step + np.cumsum(steps)


def _hour_dow(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (ts % DAY) / 3600.0, ((ts // DAY) + 3) % 7                # dow 0 = Monday


def _bump(hour: np.ndarray, peak: float, width: float) -> np.ndarray:
    d = np.minimum(abs(hour - peak), 24 - abs(hour - peak))
    return np.exp(-0.5 * (d / width) ** 2)


def _count(rng: np.random.Generator, clean: float) -> int:
    if rng.random() < clean:
        return 0
    return int(rng.choice([1, 2, 3, 4], p=[0.4, 0.3, 0.2, 0.1]))


def _onsets(rng: np.random.Generator, n: int, k: int) -> tuple[list[int], int]:
    """k onsets after the probationary period, each in its own slot so windows do not overlap."""
    width = int(0.1 * n / max(k, 1))
    slots = np.linspace(min(0.15 * n, 750) + width // 2 + 1, 0.97 * n, k + 1)
    return [int(rng.uniform(slots[j], max(slots[j] + 1, slots[j + 1] - width))) for j in range(k)], width


def _duration(rng: np.random.Generator, width: int, lo: float = 0.2, hi: float = 3.0) -> int:
    return max(3, int(width * rng.uniform(lo, hi)))


def _level(sig: np.ndarray, a: int, end: int, delta: float, ramp: int = 0) -> None:
    end = min(len(sig), end)
    step = np.full(end - a, delta)
    if ramp:
        step[:ramp] *= np.arange(1, ramp + 1)[: end - a] / ramp
    sig[a:end] += step


def aws_cpu(rng: np.random.Generator) -> tuple:
    n = int(rng.integers(3000, 4600))
    ts = _timestamps(rng, n, 300)
    base = rng.uniform(1, 45)
    sd = base * rng.uniform(0.02, 0.15) + rng.uniform(0.05, 1.0)
    sig = np.full(n, base)
    if rng.random() < 0.4:
        hour, _ = _hour_dow(ts)
        sig += sd * rng.uniform(1, 4) * _bump(hour, rng.uniform(0, 24), rng.uniform(2, 5))
    if rng.random() < 0.4:                                           # a cron job every hour or every day
        every = int(rng.choice([12, 288]))
        sig[int(rng.integers(0, every))::every] += sd * rng.uniform(3, 10)
    noise = ar1(rng, n, rng.uniform(0.2, 0.9), sd, df=float(rng.choice([3.0, 5.0, 30.0])))
    benign = (rng.random(n) < rng.uniform(0, 0.006)) * rng.exponential(sd * 6, n)
    k = _count(rng, 0.12)
    onsets, width = _onsets(rng, n, k)
    kinds = []
    for a in onsets:
        what = str(rng.choice(["level_shift", "spike", "variance_change", "flatline", "spike_burst",
                               "gradual_shift"]))
        _server_anomaly(what, rng, sig, noise, sd, a, width)
        kinds.append(what)
    values = np.clip(sig + noise + benign, 0, 100)
    return ts, np.round(values, 3), onsets, kinds


def _server_anomaly(what: str, rng: np.random.Generator, sig: np.ndarray, noise: np.ndarray, sd: float,
                    a: int, width: int) -> None:
    n = len(sig)
    sign = rng.choice([-1, 1]) if sig[a] > 6 * sd else 1
    if what == "level_shift":
        _level(sig, a, a + _duration(rng, width, 1.0, 20.0), sign * rng.uniform(3, 10) * sd)
    elif what == "gradual_shift":
        _level(sig, a, n, sign * rng.uniform(4, 10) * sd, ramp=int(rng.integers(5, max(6, width // 3))))
    elif what == "spike":
        sig[a:a + int(rng.integers(1, 5))] += rng.uniform(8, 30) * sd
    elif what == "spike_burst":
        end = min(n, a + _duration(rng, width, 0.2, 1.0))
        sig[a:end] += (rng.random(end - a) < 0.3) * rng.uniform(5, 15) * sd * rng.random(end - a)
        sig[a] += rng.uniform(5, 15) * sd
    elif what == "variance_change":
        noise[a:min(n, a + _duration(rng, width, 0.5, 10))] *= rng.uniform(3, 6)
    elif what == "flatline":
        end = min(n, a + _duration(rng, width, 0.1, 1.0))
        sig[a:end] = rng.choice([0.0, sig[a - 1] + noise[a - 1]])
        noise[a:end] = 0.0


def aws_bytes(rng: np.random.Generator) -> tuple:
    """Network in / disk write bytes: lognormal, bursty, a wide range."""
    n = int(rng.integers(3000, 4600))
    ts = _timestamps(rng, n, 300)
    mu = rng.uniform(8, 18)
    sigma = rng.uniform(0.15, 0.7)
    logv = mu + ar1(rng, n, rng.uniform(0.0, 0.8), sigma, df=4.0)
    if rng.random() < 0.5:
        hour, _ = _hour_dow(ts)
        logv += rng.uniform(0.2, 1.0) * _bump(hour, rng.uniform(0, 24), rng.uniform(2, 5))
    logv += (rng.random(n) < rng.uniform(0.002, 0.02)) * rng.exponential(sigma * 1.5, n)
    k = _count(rng, 0.15)
    onsets, width = _onsets(rng, n, k)
    kinds = []
    for a in onsets:
        what = str(rng.choice(["level_shift", "spike", "spike_burst", "flatline", "gradual_shift"]))
        if what == "flatline":
            logv[a:a + _duration(rng, width, 0.1, 1.0)] = -np.inf
        else:
            noise = np.zeros(n)
            _server_anomaly(what, rng, logv, noise, 0.5 * sigma, a, width)
            logv += noise
        kinds.append(what)
    return ts, np.round(np.exp(logv)), onsets, kinds


def aws_requests(rng: np.random.Generator) -> tuple:
    n = int(rng.integers(3000, 4600))
    ts = _timestamps(rng, n, 300)
    hour, dow = _hour_dow(ts)
    rate = rng.uniform(2, 300) * (0.4 + rng.uniform(0, 1) * _bump(hour, rng.uniform(10, 18), 4))
    rate *= np.where(dow >= 5, rng.uniform(0.5, 1.0), 1.0)
    k = _count(rng, 0.15)
    onsets, width = _onsets(rng, n, k)
    kinds = []
    for a in onsets:
        what = str(rng.choice(["surge", "drop", "outage", "spike"]))
        end = min(n, a + _duration(rng, width, 0.1, 4.0))
        if what == "surge":
            rate[a:end] *= rng.uniform(1.8, 4)
        elif what == "drop":
            rate[a:end] *= rng.uniform(0.2, 0.5)
        elif what == "outage":
            rate[a:min(end, a + width // 2)] = 0.0
        else:
            rate[a:a + int(rng.integers(1, 4))] *= rng.uniform(4, 10)
        kinds.append(what)
    return ts, rng.poisson(rate).astype(float), onsets, kinds


def adexchange(rng: np.random.Generator) -> tuple:
    """Hourly cost-per-click / cost-per-mille: positive, noisy, a weak daily rhythm."""
    n = int(rng.integers(1000, 1700))
    ts = _timestamps(rng, n, 3600, gaps=0.02)
    hour, _ = _hour_dow(ts)
    level = rng.uniform(0.05, 3.0)
    sd = level * rng.uniform(0.08, 0.25)
    sig = level * (1 + rng.uniform(0, 0.3) * _bump(hour, rng.uniform(0, 24), 4))
    noise = ar1(rng, n, rng.uniform(0.2, 0.7), sd, df=4.0)
    k = _count(rng, 0.1)
    onsets, width = _onsets(rng, n, k)
    kinds = []
    for a in onsets:
        what = str(rng.choice(["level_shift", "spike", "gradual_shift", "variance_change"]))
        _server_anomaly(what, rng, sig, noise, sd, a, width)
        kinds.append(what)
    return ts, np.round(np.maximum(sig + noise, 0.001), 3), onsets, kinds


def twitter(rng: np.random.Generator) -> tuple:
    """Mentions per 5 minutes: daily rhythm times self-exciting bursts of all sizes."""
    n = int(rng.integers(8000, 16000))
    ts = _timestamps(rng, n, 300)
    hour, _ = _hour_dow(ts)
    base = rng.uniform(3, 60) * (0.3 + _bump(hour, rng.uniform(12, 20), rng.uniform(3, 6)))
    shocks = (rng.random(n) < rng.uniform(0.003, 0.02)) * rng.pareto(rng.uniform(1.8, 3.0), n)
    excite = lfilter([1.0], [1.0, -rng.uniform(0.7, 0.95)], shocks)
    k = _count(rng, 0.1)
    onsets, width = _onsets(rng, n, k)
    kinds = []
    for a in onsets:
        what = str(rng.choice(["viral_burst", "level_shift", "viral_burst"]))
        if what == "viral_burst":
            excite[a:] += lfilter([1.0], [1.0, -rng.uniform(0.9, 0.98)],
                                  np.r_[rng.uniform(8, 25), np.zeros(n - a - 1)])
        else:
            base[a:a + _duration(rng, width, 1.0, 10.0)] *= rng.choice([rng.uniform(2.5, 4), rng.uniform(0.1, 0.3)])
        kinds.append(what)
    return ts, rng.poisson(base * (1 + excite)).astype(float), onsets, kinds


def traffic(rng: np.random.Generator) -> tuple:
    """Road sensor speed (mph) or occupancy (%), irregularly sampled, rush hours on weekdays."""
    n = int(rng.integers(1100, 2600))
    ts = _timestamps(rng, n, 300, gaps=rng.uniform(0.05, 0.3))
    hour, dow = _hour_dow(ts)
    rush = (_bump(hour, 8, 1.2) + _bump(hour, 17.5, 1.5)) * (dow < 5)
    speed = rng.random() < 0.5
    sd = rng.uniform(2, 5) if speed else rng.uniform(1, 4)
    sig = (rng.uniform(55, 70) - rng.uniform(10, 30) * rush) if speed else (rng.uniform(3, 10)
                                                                             + rng.uniform(10, 30) * rush)
    noise = ar1(rng, n, rng.uniform(0.3, 0.8), sd, df=5.0)
    k = _count(rng, 0.1)
    onsets, width = _onsets(rng, n, k)
    kinds = []
    for a in onsets:
        what = str(rng.choice(["incident", "level_shift", "flatline"]))
        end = min(n, a + _duration(rng, width, 0.1, 0.8))
        if what == "incident":
            sig[a:end] += (-1 if speed else 1) * rng.uniform(4, 10) * sd
        elif what == "level_shift":
            _level(sig, a, n, rng.choice([-1, 1]) * rng.uniform(3, 6) * sd)
        else:
            sig[a:end], noise[a:end] = sig[a - 1] + noise[a - 1], 0.0
        kinds.append(what)
    return ts, np.round(np.clip(sig + noise, 0, 100 if not speed else 90)), onsets, kinds


def machine_temp(rng: np.random.Generator) -> tuple:
    """Industrial machine temperature: long, smooth wander, shutdowns, a failure preceded by drift."""
    n = int(rng.integers(8000, 20000))
    ts = _timestamps(rng, n, 300)
    sig = rng.uniform(70, 95) + ar1(rng, n, 0.995, rng.uniform(1.5, 4)) + ar1(rng, n, 0.5, rng.uniform(0.3, 1))
    sd = float(np.std(np.diff(sig))) + 0.2
    k = _count(rng, 0.05)
    onsets, width = _onsets(rng, n, k)
    kinds = []
    for a in onsets:
        what = str(rng.choice(["shutdown", "drift_failure", "variance_change"]))
        if what == "shutdown":
            down, stay = int(rng.integers(5, 40)), int(rng.integers(20, max(21, width)))
            depth = rng.uniform(20, 50)
            shape = np.r_[np.linspace(0, 1, down), np.ones(stay), np.linspace(1, 0, down)]
            end = min(n, a + len(shape))
            sig[a:end] -= depth * shape[:end - a]
        elif what == "drift_failure":
            ramp = min(n - a, int(width * rng.uniform(0.3, 1.0)))
            sig[a:a + ramp] += rng.choice([-1, 1]) * np.linspace(0, rng.uniform(8, 20) * sd, ramp)
            sig[a + ramp:a + ramp + int(rng.integers(10, 60))] -= rng.uniform(20, 40)
        else:
            end = min(n, a + _duration(rng, width))
            sig[a:end] += ar1(rng, end - a, 0.3, rng.uniform(3, 6) * sd)
        kinds.append(what)
    return ts, np.round(sig, 3), onsets, kinds


def taxi(rng: np.random.Generator) -> tuple:
    """Passengers per half hour: strong daily and weekly rhythm; holidays, storms and events break it."""
    n = int(rng.integers(4000, 10400))
    ts = _timestamps(rng, n, 1800)
    hour, dow = _hour_dow(ts)
    weekday = 0.2 + _bump(hour, 8.5, 1.5) * 0.8 + _bump(hour, 19, 3) + 0.3 * _bump(hour, 13, 3)
    weekend = 0.3 + 0.9 * _bump(hour, 14, 5) + 0.6 * _bump(hour, 1, 2.5)
    prof = np.where(dow >= 5, weekend, weekday) * (1 + 0.1 * (dow == 4))
    level = rng.uniform(5000, 30000)
    sig = level * prof * (1 + ar1(rng, n, 0.995, 0.03))
    noise = ar1(rng, n, 0.6, level * rng.uniform(0.02, 0.05))
    k = _count(rng, 0.05)
    onsets, width = _onsets(rng, n, k)
    per_day = 48
    kinds = []
    for a in onsets:
        what = str(rng.choice(["holiday", "storm", "event"]))
        day_end = min(n, a + per_day)
        if what == "holiday":
            sig[a:day_end] = level * weekend[a:day_end] * rng.uniform(0.6, 0.9)
        elif what == "storm":
            sig[a:day_end] *= rng.uniform(0.15, 0.4)
        else:
            sig[a:a + int(rng.integers(4, 12))] *= rng.uniform(1.4, 2.0)
        kinds.append(what)
    return ts, np.round(np.maximum(sig + noise, 0)), onsets, kinds


def artificial(rng: np.random.Generator) -> tuple:
    """Generated on purpose: noise around a level, a daily sine or a square wave; jumps, a flat middle,
    denser spikes, a changed amplitude; 40% have no anomaly."""
    n = 4032
    ts = _timestamps(rng, n, 300)
    base = rng.uniform(20, 80)
    t = np.arange(n)
    pattern = str(rng.choice(["flat", "sine", "square"]))
    amp = rng.uniform(10, 40) if pattern != "flat" else 0.0
    wave = np.sin(2 * np.pi * t / 288) if pattern == "sine" else np.sign(np.sin(2 * np.pi * t / 288))
    sd = rng.uniform(0.5, 5)
    sig = base + amp * wave
    noise = rng.standard_normal(n) * sd
    k = _count(rng, 0.4)
    onsets, width = _onsets(rng, n, k)
    kinds = []
    for a in onsets:
        what = str(rng.choice(["jump", "flat_middle", "spike_density", "amplitude"]))
        end = min(n, a + _duration(rng, width, 0.5, 5))
        if what == "jump" or (what in ("flat_middle", "amplitude") and not amp):
            sig[a:end] += rng.choice([-1, 1]) * rng.uniform(0.3, 1.0) * max(amp, 8 * sd)
        elif what == "flat_middle":
            sig[a:end] = sig[a]
        elif what == "amplitude":
            sig[a:end] = base + (sig[a:end] - base) * rng.choice([0.3, 2.0])
        else:
            noise[a:end] += (rng.random(end - a) < 0.15) * rng.uniform(4, 10) * sd
        kinds.append(what)
    return ts, np.round(sig + noise, 4), onsets, kinds


FAMILIES = {"aws_cpu": aws_cpu, "aws_bytes": aws_bytes, "aws_requests": aws_requests,
            "adexchange": adexchange, "twitter": twitter, "traffic": traffic, "machine_temp": machine_temp,
            "taxi": taxi, "artificial": artificial}


def make_family(name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[int], list[str]]:
    return FAMILIES[name](rng)
