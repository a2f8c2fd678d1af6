"""The detector bank (models/bank.py) against the stream's default detector it computes (LikelihoodDetector),
side by side: the same scores to the bit on every point of the recorded middleware series, NAB's development
part and synthetic edge cases, many series per call with different lengths and start times, and a row's state
interchangeable with the detector's in both directions."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import numpy as np
import pytest

from bench.shared import SHARED
from kubestack.models.bank import DetectorBank
from kubestack.models.counters import CounterRate
from kubestack.models.likelihood import LikelihoodDetector

ROOT = Path(__file__).resolve().parents[1]
RECORDED = ROOT / "bench" / "anomaly" / "recorded"
NAB = SHARED / "datasets" / "nab" / "data"
THRESHOLD = 0.5
Series = dict[str, tuple[np.ndarray, np.ndarray]]


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``timestamp,value`` rows (UTC, optional milliseconds) as epoch seconds and values, non-finite values
    dropped as the worker drops them before any detector."""
    stamps, values = np.loadtxt(path, delimiter=",", skiprows=1, dtype=str, unpack=True, ndmin=2)
    ts = np.array([s.replace(" ", "T") for s in stamps], "datetime64[ms]").astype(np.int64) / 1000.0
    values = values.astype(float)
    keep = np.isfinite(values)
    return ts[keep], values[keep]


def reference(series: Series) -> dict[str, np.ndarray]:
    out = {}
    for key, (ts, values) in series.items():
        update = LikelihoodDetector(threshold=THRESHOLD).update
        out[key] = np.array([update(t, v) for t, v in zip(ts.tolist(), values.tolist())])
    return out


def banked(series: Series, seed: int = 0) -> dict[str, np.ndarray]:
    """Every point of every series through one bank in time order (series interleaved as a worker sees them),
    in calls of 1 to 600 points; the scores given back per series."""
    keys = list(series)
    bank = DetectorBank(threshold=THRESHOLD)
    rows = bank.rows(keys)
    row = np.concatenate([np.full(len(series[k][0]), rows[i]) for i, k in enumerate(keys)])
    ts = np.concatenate([series[k][0] for k in keys])
    values = np.concatenate([series[k][1] for k in keys])
    order = np.argsort(ts, kind="stable")
    scores = np.empty(len(ts))
    rnd = random.Random(seed)
    at = 0
    while at < len(order):
        take = order[at:at + rnd.randint(1, 600)]
        scores[take] = bank.update(row[take], ts[take], values[take])
        at += len(take)
    bounds = np.cumsum([0] + [len(series[k][0]) for k in keys])
    return {k: scores[bounds[i]:bounds[i + 1]] for i, k in enumerate(keys)}


def assert_same(series: Series) -> tuple[int, int]:
    """The bank's scores are the detector's, bit for bit; the points and alerts compared."""
    mine, theirs = banked(series), reference(series)
    points = alerts = 0
    for key in series:
        np.testing.assert_array_equal(mine[key], theirs[key], err_msg=key)
        points += len(mine[key])
        alerts += int(np.count_nonzero(theirs[key] >= THRESHOLD))
    return points, alerts


def test_recorded_middleware_series_score_the_same() -> None:
    series = {str(p.relative_to(RECORDED)): read_csv(p) for p in sorted(RECORDED.rglob("*.csv"))}
    points, alerts = assert_same(series)
    assert len(series) >= 200 and points > 300_000 and alerts > 10


def test_nab_development_series_score_the_same() -> None:
    paths = sorted(NAB.rglob("*.csv"))
    series = {}
    for i, path in enumerate(paths):
        ts, values = read_csv(path)
        series[path.name] = (ts + 86400.0 * 3.5 * (i % 5), values)    # other start times, other weekdays
    points, alerts = assert_same(series)
    assert len(series) == 28 and points > 100_000 and alerts > 20


def counter_rates(ts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rate = CounterRate()
    rates = np.array([rate.update(t, c) for t, c in zip(ts.tolist(), counts.tolist())])
    keep = ~np.isnan(rates)
    return ts[keep], rates[keep]


def synthetic() -> Series:
    rng = np.random.default_rng(7)
    start = 1_700_000_000.0
    second = start + np.arange(4000.0)
    five = start + 300.0 * np.arange(12 * 288)                        # twelve days: the daily lag and weekends
    wave = 50 + 30 * np.sin(2 * np.pi * np.arange(len(five)) / 288) + rng.normal(0, 1, len(five))
    wave[9 * 288 + 100:9 * 288 + 200] = 50.0                           # a day without its peak
    gappy = rng.normal(20, 2, 3000)
    gappy[rng.random(3000) < 0.1] = np.nan
    bursts = rng.normal(100, 3, 4000)
    bursts[::60] += 400                                               # a burst on a clock, then one off it
    bursts[3333] += 400
    irregular = start + 7.0 + np.cumsum(rng.uniform(0.0, 20.0, 3000))
    irregular[1] = irregular[0]                                       # the first interval is 0: no daily lag
    counts = np.cumsum(rng.poisson(3, 4000)).astype(float)
    counts[2500:] -= counts[2500]                                     # a restart: the counter begins again
    steps = np.repeat(rng.integers(0, 4, 400), rng.integers(1, 30, 400))[:4000].astype(float)
    return {
        "constant": (second[:3000] + 0.5, np.full(3000, 3.0)),
        "one second": (second, rng.normal(10, 1, 4000) + (np.arange(4000) >= 3000) * 8),
        "five minutes": (five, wave),
        "nan gaps dropped": (second[:3000][np.isfinite(gappy)] + 11, gappy[np.isfinite(gappy)]),
        "bursts on a clock": (second, bursts),
        "irregular": (irregular, rng.lognormal(2, 0.5, 3000)),
        "counter rate": counter_rates(start + 10.0 * np.arange(4000), counts),
        "few values, stuck": (second[:len(steps)] + 100, np.r_[steps[:3000], np.full(len(steps) - 3000, 2.0)]),
        "short": (second[:40] + 3, rng.normal(0, 1, 40)),
        "negative, hourly": (start + 3600.0 * np.arange(600), -rng.exponential(5, 600)),
    }


def test_synthetic_edge_cases_score_the_same() -> None:
    _, alerts = assert_same(synthetic())
    assert alerts > 3


def test_a_row_and_a_detector_take_over_from_each_other() -> None:
    """Midway every series changes hands both ways: the bank adopts the detector's state, the detector is
    restored from the bank's export (byte for byte the detector's own), and they still agree to the end."""
    series = synthetic()
    bank = DetectorBank(threshold=THRESHOLD)
    for key, (ts, values) in series.items():
        half = len(ts) // 2
        det = LikelihoodDetector(threshold=THRESHOLD)
        row = bank.rows([key])
        first = [det.update(t, v) for t, v in zip(ts[:half].tolist(), values[:half].tolist())]
        np.testing.assert_array_equal(bank.update(np.repeat(row, half), ts[:half], values[:half]), first)
        exported = bank.export(key)
        assert exported == det.to_state(), key
        assert bank.adopt(key, det.to_state()) == row[0]
        det = LikelihoodDetector.from_state(exported)
        rest = [det.update(t, v) for t, v in zip(ts[half:].tolist(), values[half:].tolist())]
        np.testing.assert_array_equal(bank.update(np.repeat(row, len(ts) - half), ts[half:], values[half:]), rest)
        assert bank.export(key) == det.to_state(), key


def test_an_adopted_state_crosses_the_rescale_of_the_weights() -> None:
    """The forgetting weights are rescaled past 1e150 (after ~400,000 points): a state brought near it."""
    rng = np.random.default_rng(3)
    ts, values = 1_700_000_000.0 + np.arange(3000.0), rng.normal(5, 1, 3000)
    det = LikelihoodDetector(threshold=THRESHOLD)
    for t, v in zip(ts[:1000].tolist(), values[:1000].tolist()):
        det.update(t, v)
    inner = det.inner
    scale = 3e149 / inner.weight
    inner.weight, inner.total, inner.values.probe_w = 3e149, inner.total * scale, inner.values.probe_w * scale
    for tail in (inner.point, inner.shift, inner.spread, inner.stuck):
        tail.counts = type(tail.counts)("d", [c * scale for c in tail.counts])
    inner.values.weights = type(inner.values.weights)("d", [w * scale for w in inner.values.weights])
    bank = DetectorBank(threshold=THRESHOLD)
    row = bank.adopt("near", det.to_state())
    expected = [det.update(t, v) for t, v in zip(ts[1000:].tolist(), values[1000:].tolist())]
    np.testing.assert_array_equal(bank.update(np.full(2000, row), ts[1000:], values[1000:]), expected)
    assert det.inner.weight < 1e10 and bank.export("near") == det.to_state()


def test_a_state_saved_at_another_threshold_alerts_at_the_banks() -> None:
    ts, values = synthetic()["one second"]
    det = LikelihoodDetector(threshold=0.7)
    for t, v in zip(ts[:2000].tolist(), values[:2000].tolist()):
        det.update(t, v)
    bank = DetectorBank(threshold=THRESHOLD)
    row = bank.adopt("s", det.to_state())
    det.threshold = THRESHOLD                   # what registry.restore does with the worker's threshold
    expected = [det.update(t, v) for t, v in zip(ts[2000:3000].tolist(), values[2000:3000].tolist())]
    np.testing.assert_array_equal(bank.update(np.full(1000, row), ts[2000:3000], values[2000:3000]), expected)
    det.threshold = bank.threshold = 0.8        # and the worker's threshold may change again
    expected = [det.update(t, v) for t, v in zip(ts[3000:].tolist(), values[3000:].tolist())]
    np.testing.assert_array_equal(bank.update(np.full(1000, row), ts[3000:], values[3000:]), expected)
    assert max(expected) >= 0.8 and bank.export("s") == det.to_state()
    with pytest.raises(ValueError, match="threshold"):
        bank.threshold = 0.0


def test_a_state_of_other_parameters_or_layout_is_refused_and_changes_nothing() -> None:
    bank = DetectorBank(threshold=THRESHOLD)
    row = bank.rows(["a"])
    bank.update(row, np.array([1.0]), np.array([2.0]))
    before = bank.export("a")
    other = LikelihoodDetector(threshold=THRESHOLD, warmup=10).to_state()
    with pytest.raises(ValueError, match="parameters"):
        bank.adopt("a", other)
    with pytest.raises((ValueError, struct.error)):
        bank.adopt("a", before[:len(before) // 2])
    with pytest.raises(ValueError, match="LikelihoodDetector"):
        bank.adopt("a", b"KSMD3" + before[5:])
    with pytest.raises(IndexError):
        bank.update(np.array([0, 1]), np.array([2.0, 2.0]), np.array([2.0, 2.0]))
    assert bank.export("a") == before and len(bank) == 1 and "b" not in bank


def test_a_bank_of_other_parameters_scores_as_its_detector() -> None:
    params = {"warmup": 50, "quiet": 100, "short": 10, "density_short": 12, "memory": 2000, "level": 0.4}
    series = {k: v for k, v in synthetic().items() if k in ("one second", "five minutes", "few values, stuck")}
    bank = DetectorBank(threshold=0.6, capacity=1, **params)
    rows = bank.rows(series)
    for key, (ts, values) in series.items():
        det = LikelihoodDetector(threshold=0.6, **params)
        expected = [det.update(t, v) for t, v in zip(ts.tolist(), values.tolist())]
        i = rows[list(series).index(key)]
        np.testing.assert_array_equal(bank.update(np.full(len(ts), i), ts, values), expected)
        assert bank.export(key) == det.to_state()



def test_the_stages_detection_through_the_bank_is_the_per_series_detectors() -> None:
    """``ResourceDetectors`` (the worker's detection) with the bank and with one detector per series: the same
    anomalies from recorded batches, and table states that each restores from the other mid-way."""
    from datetime import datetime, timezone

    from kubestack.contract.base import ResourceRef, Source
    from kubestack.contract.events import MetricBatch
    from kubestack.pipeline.detection import ResourceDetectors

    source = Source(agent="test", host="h")
    series = [read_csv(p) for p in sorted(RECORDED.rglob("*.csv"))[:12]]
    rounds = min(len(ts) for ts, _ in series)
    bank, single = ResourceDetectors(0.5), ResourceDetectors(0.5, banked=False)
    assert bank.bank is not None and single.bank is None
    found: dict[str, list] = {"bank": [], "single": []}
    for r in range(rounds):
        start = float(series[0][0][r])
        batch = MetricBatch(source=source, resource=ResourceRef(kind="redis", name="r", host="h"),
                            ts=datetime.fromtimestamp(start, timezone.utc),
                            names=[f"s{i}_value" for i in range(len(series))], values=[float(v[r]) for _, v in series],
                            offsets_s=[float(ts[r]) - start for ts, _ in series])
        found["bank"] += [(a.signal, a.score) for a in bank.observe(batch, source)]
        found["single"] += [(a.signal, a.score) for a in single.observe(batch, source)]
        if r == rounds // 2:
            assert bank.to_state() == single.to_state()
            bank, single = (ResourceDetectors.from_state(single.to_state(), 0.5),
                            ResourceDetectors.from_state(bank.to_state(), 0.5, banked=False))
    assert found["bank"] == found["single"]
    assert found["bank"], "the recorded series raise anomalies"
    assert bank.to_state() == single.to_state()
