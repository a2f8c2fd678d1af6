"""The detector bank against the stream's default detector it computes, side by side in one run.

    .venv/bin/python -m bench.detector.bank [--rounds N] [--repeats K] [--json]

For 20, 200 and 2000 series per call (a resource's batch, or a worker's round over many resources), the same
series (the recorded middleware series of ``bench/anomaly/recorded``, cycled) are scored by one
``LikelihoodDetector`` per series and by one ``DetectorBank`` call per round; both are warmed past their
warm-up first, untimed. Reported per sample, the best of ``K`` blocks of new points: the detectors, the bank's
``update`` alone, and ``rows(keys)`` plus ``update`` (what the worker would call); the state's export per
series beside ``to_state``; and the compile time of the bank's kernel at its first call in a fresh process,
with an empty on-disk cache and again with the cache the first process left.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from kubestack.models.likelihood import LikelihoodDetector

RECORDED = Path(__file__).resolve().parents[1] / "anomaly" / "recorded"
SIZES = (20, 200, 2000)
WARM = 300
FIRST_CALL = """
import time, numpy as np
t0 = time.perf_counter()
from kubestack.models.bank import DetectorBank
t1 = time.perf_counter()
bank = DetectorBank()
bank.update(bank.rows(["a"]), np.array([1.0]), np.array([2.0]))
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def recorded(count: int, length: int) -> list[np.ndarray]:
    """``count`` value series of ``length`` points from the recorded series (cycled, each read once)."""
    paths = sorted(RECORDED.rglob("*.csv"))
    cache: dict[Path, np.ndarray] = {}
    out = []
    for i in range(count):
        path = paths[i % len(paths)]
        if path not in cache:
            cache[path] = np.loadtxt(path, delimiter=",", skiprows=1, usecols=1)
        values = cache[path]
        out.append(np.resize(values, length))
    return out


def per_sample(size: int, rounds: int, repeats: int) -> dict[str, float]:
    """µs per sample of each way, the best of ``repeats`` blocks of ``rounds`` rounds of ``size`` series (each
    block new points, the same for every way), after ``WARM`` untimed rounds."""
    from kubestack.models.bank import DetectorBank

    series = np.stack(recorded(size, WARM + repeats * rounds), axis=1)     # rounds x series
    stamps = 1_700_000_000.0 + np.arange(len(series), dtype=float)
    keys = [f"series{i}" for i in range(size)]
    detectors = [LikelihoodDetector() for _ in keys]
    bank, looked_up = DetectorBank(capacity=size), DetectorBank(capacity=size)
    rows = bank.rows(keys)
    looked_up.rows(keys)
    for r in range(WARM):
        bank.update(rows, np.full(size, stamps[r]), series[r])
        looked_up.update(rows, np.full(size, stamps[r]), series[r])
        for det, v in zip(detectors, series[r].tolist()):
            det.update(float(stamps[r]), v)
    best = [np.inf] * 5
    for block in range(repeats):
        timed = range(WARM + block * rounds, WARM + (block + 1) * rounds)
        t0 = time.perf_counter()
        for r in timed:
            ts = float(stamps[r])        # a Python float, as the worker passes
            for det, v in zip(detectors, series[r].tolist()):
                det.update(ts, v)
        t1 = time.perf_counter()
        for r in timed:
            bank.update(rows, np.full(size, stamps[r]), series[r])
        t2 = time.perf_counter()
        for r in timed:
            looked_up.update(looked_up.rows(keys), np.full(size, stamps[r]), series[r])
        t3 = time.perf_counter()
        [det.to_state() for det in detectors]
        t4 = time.perf_counter()
        [bank.export(key) for key in keys]
        t5 = time.perf_counter()
        best = [min(b, t) for b, t in zip(best, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4))]
    samples = size * rounds
    detector, update, lookup, to_state, export = best
    return {"series": size, "samples_per_block": samples, "detector_us": 1e6 * detector / samples,
            "bank_update_us": 1e6 * update / samples, "bank_rows_update_us": 1e6 * lookup / samples,
            "ratio": detector / update, "ratio_with_rows": detector / lookup,
            "to_state_us_per_series": 1e6 * to_state / size, "export_us_per_series": 1e6 * export / size}


def first_calls() -> dict[str, float]:
    """Import and first call of the bank in two fresh processes sharing one on-disk cache, empty at first."""
    with tempfile.TemporaryDirectory(prefix="bench-bank-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        out = {}
        for name in ("empty_cache", "warm_cache"):
            run = subprocess.run([sys.executable, "-c", FIRST_CALL], env=env, capture_output=True, text=True,
                                 check=True)
            imported, first = (float(x) for x in run.stdout.split())
            out[f"import_s_{name}"], out[f"first_call_s_{name}"] = imported, first
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=0, help="rounds per block (default: 50,000 samples)")
    parser.add_argument("--repeats", type=int, default=3, help="blocks per size, the best one reported")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = {"compile": first_calls(), "sizes": []}
    for size in SIZES:
        result["sizes"].append(per_sample(size, args.rounds or max(25, 50_000 // size), args.repeats))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    c = result["compile"]
    print(f"first call (compile): {c['first_call_s_empty_cache']:.2f} s with an empty cache, "
          f"{c['first_call_s_warm_cache']:.2f} s with the cache of a previous process "
          f"(import {c['import_s_empty_cache']:.2f} / {c['import_s_warm_cache']:.2f} s)")
    print(f"{'series':>7} {'detector µs':>12} {'bank µs':>8} {'rows+bank µs':>13} {'ratio':>6} "
          f"{'ratio, rows':>11} {'to_state µs':>12} {'export µs':>10}")
    for s in result["sizes"]:
        print(f"{s['series']:>7} {s['detector_us']:>12.2f} {s['bank_update_us']:>8.3f} "
              f"{s['bank_rows_update_us']:>13.3f} {s['ratio']:>6.1f} {s['ratio_with_rows']:>11.1f} "
              f"{s['to_state_us_per_series']:>12.1f} {s['export_us_per_series']:>10.1f}")


if __name__ == "__main__":
    main()
