"""Labelled synthetic operations metrics: the development set of the anomaly detectors.

Each series is built from a seeded ``numpy`` generator, so a (split, index) pair always gives the same series.
Shapes resemble what the collectors see: CPU with business hours and quiet weekends, lognormal latency with
heavy tails, Poisson request rates, memory that grows and is collected, bursty queues, 10-second gauges over a
few hours, hourly business counters. Benign noise is part of the shape (heavy tails, bursts, quantisation);
labels mark only injected anomalies, at their onset, as NAB does. After those operations series each split
holds series of the NAB-like families of ``families.py`` (AWS server metrics, ad exchange, Twitter, traffic,
machine temperature, taxi demand, artificial), ``group == "nab"``.

    python bench/anomaly/generate.py OUT_DIR [--split dev|holdout]   # CSVs + labels.json, NAB-like layout
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from families import FAMILIES, make_family

SPLIT_SEEDS = {"dev": 1000, "holdout": 7000}
SPLIT_SIZES = {"dev": 64, "holdout": 32}          # operations series (the first indices of a split)
NAB_SIZES = {"dev": 54, "holdout": 27}            # NAB-like series (families.py), after them
KINDS = ("spike", "dip", "level_shift", "trend_change", "variance_change", "seasonality_break",
         "slow_drift", "flatline")
START = datetime(2024, 3, 4, tzinfo=timezone.utc).timestamp()


@dataclass
class Series:
    name: str
    ts: np.ndarray                      # epoch seconds
    values: np.ndarray
    anomalies: list[int] = field(default_factory=list)   # onset indices
    kinds: list[str] = field(default_factory=list)
    group: str = "ops"                                   # "ops" or "nab" (the NAB-like families)


def _ar1(rng: np.random.Generator, n: int, phi: float, scale: float, df: float | None = None) -> np.ndarray:
    shocks = rng.standard_t(df, n) / math.sqrt(df / (df - 2)) if df else rng.standard_normal(n)
    shocks *= scale * math.sqrt(1 - phi * phi)
    out = np.empty(n)
    acc = 0.0
    for i in range(n):
        acc = phi * acc + shocks[i]
        out[i] = acc
    return out


def _daily(ts: np.ndarray, rng: np.random.Generator, weekly: bool) -> np.ndarray:
    """A business-day profile in [0, 1]: rises in the morning, peaks, falls at night; weekends lower."""
    hour = (ts % 86400) / 3600.0
    peak = rng.uniform(11, 16)
    width = rng.uniform(3, 5)
    prof = np.exp(-0.5 * ((hour - peak) / width) ** 2)
    if weekly:
        dow = ((ts // 86400) + 3) % 7        # 1970-01-01 was a Thursday: 0 = Monday
        prof = prof * np.where(dow >= 5, rng.uniform(0.2, 0.6), 1.0)
    return prof


def _shape(kind: str, ts: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """(clean signal, noise, noise scale) for one archetype; the anomaly injection works on both."""
    n = len(ts)
    if kind == "cpu":
        base, amp = rng.uniform(5, 30), rng.uniform(10, 45)
        sig = base + amp * _daily(ts, rng, weekly=rng.random() < 0.7)
        noise = _ar1(rng, n, rng.uniform(0.3, 0.8), rng.uniform(1, 4), df=rng.choice([None, 4.0]))
        return sig, noise, float(np.std(noise))
    if kind == "latency":
        mu = math.log(rng.uniform(5, 200))
        sig = mu + rng.uniform(0, 0.4) * _daily(ts, rng, weekly=rng.random() < 0.5)
        noise = _ar1(rng, n, rng.uniform(0.0, 0.6), rng.uniform(0.05, 0.25), df=3.0)
        return sig, noise, float(np.std(noise))       # exp() applied after injection
    if kind == "requests":
        rate = rng.uniform(20, 2000) * (0.25 + _daily(ts, rng, weekly=True))
        return rate, np.zeros(n), float(np.sqrt(rate.mean()))
    if kind == "memory":
        period = int(rng.integers(150, 900))
        growth = rng.uniform(0.5, 3.0)
        phase = np.arange(n) % period
        sig = rng.uniform(500, 4000) + growth * phase * (rng.random() < 0.6)
        noise = _ar1(rng, n, 0.9, rng.uniform(2, 15))
        return sig, noise, float(np.std(noise)) + growth
    if kind == "queue":
        bursts = (rng.random(n) < rng.uniform(0.01, 0.05)) * rng.exponential(rng.uniform(5, 40), n)
        kernel = np.exp(-np.arange(12) / rng.uniform(1, 4))
        sig = np.convolve(bursts, kernel)[:n]
        return sig, np.zeros(n), float(np.std(sig)) + 1.0
    if kind == "gauge10s":
        level = rng.uniform(10, 500)
        walk = np.cumsum(rng.standard_normal(n)) * level * 0.001
        cycle = level * rng.uniform(0, 0.1) * np.sin(2 * np.pi * np.arange(n) / rng.integers(60, 180))
        noise = _ar1(rng, n, rng.uniform(0, 0.9), level * rng.uniform(0.01, 0.05))
        return level + walk + cycle, noise, float(np.std(noise))
    # hourly business counter: clear daily and weekly cycle
    base = rng.uniform(50, 500)
    sig = base * (0.3 + _daily(ts, rng, weekly=True))
    noise = _ar1(rng, n, 0.3, base * rng.uniform(0.03, 0.1))
    return sig, noise, float(np.std(noise))


ARCHETYPES = {  # kind -> (sampling interval s, (min points, max points))
    "cpu": (300, (2880, 6048)), "latency": (300, (2880, 6048)), "requests": (300, (2880, 6048)),
    "memory": (300, (2016, 4032)), "queue": (60, (2000, 5000)), "gauge10s": (10, (1440, 4320)),
    "hourly": (3600, (1000, 2000)),
}


def _inject(kind: str, sig: np.ndarray, noise: np.ndarray, scale: float, a: int, width: int,
            rng: np.random.Generator, ts: np.ndarray) -> None:
    """Change ``sig``/``noise`` in place from onset ``a``; finite anomalies end inside the label window."""
    n = len(sig)
    short = max(3, min(width // 3, int(rng.integers(3, 60))))
    big = rng.uniform(6, 20) * scale
    if kind == "spike":
        sig[a:a + int(rng.integers(1, 4))] += big
    elif kind == "dip":
        sig[a:a + int(rng.integers(1, 4))] -= min(big, 0.9 * abs(sig[a]) + scale)
    elif kind == "level_shift":
        sig[a:] += rng.choice([-1, 1]) * rng.uniform(4, 10) * scale
    elif kind == "trend_change":
        ramp = np.minimum(np.arange(n - a), width * 2) * (rng.uniform(4, 10) * scale / width)
        sig[a:] += rng.choice([-1, 1]) * ramp
    elif kind == "variance_change":
        end = n if rng.random() < 0.5 else a + short * 2
        noise[a:end] *= rng.uniform(3, 8)
    elif kind == "seasonality_break":
        end = min(n, a + int(86400 / (ts[1] - ts[0])))
        sig[a:end] = np.roll(sig, int(rng.integers(3, 9) * 3600 / (ts[1] - ts[0])))[a:end]
    elif kind == "slow_drift":
        ramp = np.arange(n - a) * (rng.uniform(6, 12) * scale / (width * 3))
        sig[a:] += rng.choice([-1, 1]) * ramp
    elif kind == "flatline":
        end = min(n, a + max(short, 12))
        stuck = sig[a - 1] + noise[a - 1]
        sig[a:end] = stuck
        noise[a:end] = 0.0


def make_series(split: str, index: int) -> Series:
    seed = SPLIT_SEEDS[split] + index
    rng = np.random.default_rng(seed)
    if index >= SPLIT_SIZES[split]:
        family = list(FAMILIES)[(index - SPLIT_SIZES[split]) % len(FAMILIES)]
        ts, values, onsets, kinds = make_family(family, rng)
        return Series(f"{split}/{family}_{index:03d}", ts, values, onsets, kinds, "nab")
    names = list(ARCHETYPES)
    kind = names[index % len(names)]
    step, (lo, hi) = ARCHETYPES[kind]
    n = int(rng.integers(lo, hi))
    ts = START + rng.integers(0, 86400 // step) * step + step * np.arange(n, dtype=float)
    sig, noise, scale = _shape(kind, ts, rng)
    n_anom = 0 if rng.random() < 0.2 else int(rng.integers(1, 4))
    width = int(0.1 * n / max(n_anom, 1))
    onsets: list[int] = []
    kinds: list[str] = []
    pool = [k for k in KINDS if k != "seasonality_break" or kind in ("cpu", "requests", "hourly", "latency")]
    slots = np.linspace(0.25 * n, 0.95 * n, n_anom + 1)
    for j in range(n_anom):
        a = int(rng.uniform(slots[j], slots[j + 1] - width))
        what = str(rng.choice(pool))
        _inject(what, sig, noise, scale, a, width, rng, ts)
        onsets.append(a)
        kinds.append(what)
    values = _finish(kind, sig, noise, rng)
    return Series(f"{split}/{kind}_{index:03d}", ts, values, onsets, kinds)


def _finish(kind: str, sig: np.ndarray, noise: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if kind == "latency":
        return np.round(np.exp(sig + noise), 2)
    if kind == "requests":
        return rng.poisson(np.maximum(sig, 0)).astype(float)
    if kind == "queue":
        return np.round(np.maximum(sig + noise, 0))
    if kind == "cpu":
        return np.round(np.clip(sig + noise, 0, 100), 1)
    return np.round(sig + noise, 3)


def make_split(split: str) -> list[Series]:
    return [make_series(split, i) for i in range(SPLIT_SIZES[split] + NAB_SIZES[split])]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def write_split(split: str, out: Path) -> int:
    """CSV per series (``timestamp,value``) and one ``labels.json`` of anomaly timestamps, like NAB's layout."""
    labels: dict[str, list[str]] = {}
    for s in make_split(split):
        path = out / f"{s.name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = ["timestamp,value", *(f"{_iso(t)},{v:g}" for t, v in zip(s.ts, s.values))]
        path.write_text("\n".join(lines) + "\n")
        labels[f"{s.name}.csv"] = [_iso(s.ts[a]) for a in s.anomalies]
    (out / f"labels-{split}.json").write_text(json.dumps(labels, indent=2) + "\n")
    return len(labels)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--split", choices=sorted(SPLIT_SEEDS), default="dev")
    args = parser.parse_args()
    print(f"{write_split(args.split, args.out)} series written under {args.out}")
