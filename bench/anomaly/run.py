"""Score the detectors on the labelled development set, NAB style, side by side with the windowed Gaussian.

    .venv/bin/python bench/anomaly/run.py                  # dev and holdout, table on stdout
    .venv/bin/python bench/anomaly/run.py --by-kind        # plus recall per anomaly kind (dev)
    .venv/bin/python bench/anomaly/run.py --detectors metric --groups nab --params '{"quiet": 300}'
    .venv/bin/python bench/anomaly/run.py --detectors metric --groups recorded   # the old default: read "at 0.70"

Scores are given for all synthetic series, for the operations series ("ops"), for the NAB-like families
("nab") and for the real series recorded from Redis, MariaDB and PostgreSQL ("recorded", ``realdata.py``;
not part of "all"), each group with its own threshold, as NAB picks one threshold for its own corpus. For the
recorded group the false alarms per series-hour on its clean (at rest) series are printed too, at the
stream's threshold (``worker.anomaly_threshold``, 0.5, which the detectors alert and quiet at), at the previous
one (0.7) and at the score that opens an incident on its own (``worker.metric_alone_score``, 0.9); so are the
windows of the real faults caught.

The threshold is chosen on the dev split (best NAB standard score) and applied unchanged to the holdout,
which is also reported at its own best threshold for reference. Nothing here is tuned on the holdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import Series, make_split  # noqa: E402
from realdata import GROUP as RECORDED  # noqa: E402
from realdata import false_alarms, recorded_split  # noqa: E402
from scorer import LOW_FN, LOW_FP, STANDARD, evaluate, probation, windows  # noqa: E402

from kubestack.models.registry import create  # noqa: E402
from kubestack.settings import WorkerSettings  # noqa: E402


def score_series(args: tuple[str, dict, Series, float]) -> np.ndarray:
    name, params, series, threshold = args
    det = create(name, threshold, **params)
    update = det.update
    return np.fromiter((update(t, v) for t, v in zip(series.ts.tolist(), series.values.tolist())),
                       dtype=float, count=len(series.values))


def score_split(name: str, params: dict, data: list[Series], pool: ProcessPoolExecutor,
                threshold: float) -> list[np.ndarray]:
    return list(pool.map(score_series, [(name, params, s, threshold) for s in data], chunksize=2))


def recall_by_kind(scores: list[np.ndarray], data: list[Series], threshold: float) -> dict[str, str]:
    hit, total = Counter(), Counter()
    for sc, s in zip(scores, data):
        start = probation(len(sc))
        for (lo, hi), kind in zip(windows(len(sc), s.anomalies), s.kinds):
            total[kind] += 1
            hit[kind] += bool(np.any(sc[max(lo, start):hi + 1] >= threshold))
    return {k: f"{hit[k]}/{total[k]}" for k in sorted(total)}


GROUPS = ("all", "ops", "nab", RECORDED)
THRESHOLD = WorkerSettings().anomaly_threshold      # the stream's: the detectors alert and quiet at it
ALONE = WorkerSettings().metric_alone_score          # an incident on its own
PREVIOUS = 0.7                                       # the stream's threshold before the likelihood detector


def subset(group: str, data: list[Series], scores: list[np.ndarray]) -> tuple[list[Series], list[np.ndarray]]:
    keep = [i for i, s in enumerate(data) if group == s.group or (group == "all" and s.group != RECORDED)]
    return [data[i] for i in keep], [scores[i] for i in keep]


def report(name: str, group: str, dev: tuple, hold: tuple, by_kind: bool, stream: tuple[float, ...]) -> float:
    """Rows for one detector on one group of series: threshold from that group's dev series."""
    (dev_data, dev_sc), (hold_data, hold_sc) = dev, hold
    best = evaluate(dev_sc, [s.anomalies for s in dev_data])
    for split, sc, data in (("dev", dev_sc, dev_data), ("holdout", hold_sc, hold_data)):
        on = [s.anomalies for s in data]
        r = evaluate(sc, on, STANDARD, best.threshold)
        lfp = evaluate(sc, on, LOW_FP).score
        lfn = evaluate(sc, on, LOW_FN).score
        print(f"{name:<10} {group:<4} {split:<8} {r.score:8.1f} {lfp:7.1f} {lfn:7.1f} {r.threshold:8.4f} "
              f"{r.recall:7.2f} {r.precision:6.2f} {r.false_positives:5d} {r.clean_series_alerting:7d}")
    own = evaluate(hold_sc, [s.anomalies for s in hold_data])
    print(f"{name:<10} {group:<4} holdout at its own best threshold {own.threshold:.4f}: {own.score:.1f}")
    if by_kind:
        print(f"  recall by kind (dev): {recall_by_kind(dev_sc, dev_data, best.threshold)}")
    if group == RECORDED:
        for split, sc, data in (("dev", dev_sc, dev_data), ("holdout", hold_sc, hold_data)):
            rates = []
            for th in (best.threshold, *stream):
                alerts, hours = false_alarms(sc, data, th)
                rates.append(f"{alerts / max(hours, 1e-9):.2f} at {th:.2f}")
            print(f"  false alarms per series-hour on clean recorded series ({split}, {hours:.2f} h): "
                  + ", ".join(rates))
        caught = [windows_caught(dev_sc + hold_sc, dev_data + hold_data, th) for th in stream]
        print("  real-fault windows caught (both splits): "
              + ", ".join(f"{hit} of {total} at {th:.2f}" for (hit, total), th in zip(caught, stream)))
    return best.score


def windows_caught(scores: list[np.ndarray], data: list[Series], threshold: float) -> tuple[int, int]:
    """Windows of the labelled recorded faults with a score at or above ``threshold`` after the probation."""
    hit = total = 0
    for sc, s in zip(scores, data):
        start = probation(len(sc))
        for lo, hi in windows(len(sc), s.anomalies):
            total += 1
            hit += bool(np.any(sc[max(lo, start):hi + 1] >= threshold))
    return hit, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--by-kind", action="store_true")
    parser.add_argument("--detectors", default="gaussian,metric,likelihood")
    parser.add_argument("--groups", default=",".join(GROUPS), help="all, ops (operations), nab (NAB-like)")
    parser.add_argument("--params", default="{}", help="JSON keyword arguments for every detector")
    parser.add_argument("--threshold", type=float, default=THRESHOLD,
                        help="the threshold the detectors alert and quiet at (default: worker.anomaly_threshold)")
    args = parser.parse_args()
    params = json.loads(args.params)
    dev, hold = make_split("dev"), make_split("holdout")
    if RECORDED in args.groups.split(","):
        dev, hold = dev + recorded_split("dev"), hold + recorded_split("holdout")
    n_points = sum(len(s.values) for s in dev + hold)
    print(f"dev {len(dev)} series, holdout {len(hold)} series, {n_points} points")
    print(f"{'detector':<10} {'set':<4} {'split':<8} {'standard':>8} {'low_FP':>7} {'low_FN':>7} {'thresh':>8} "
          f"{'recall':>7} {'prec':>6} {'FP':>5} {'clean>0':>7}")
    with ProcessPoolExecutor(2) as pool:
        for name in args.detectors.split(","):
            t0 = time.perf_counter()
            sd = score_split(name, params, dev, pool, args.threshold)
            sh = score_split(name, params, hold, pool, args.threshold)
            secs = time.perf_counter() - t0
            for group in args.groups.split(","):
                report(name, group, subset(group, dev, sd), subset(group, hold, sh), args.by_kind,
                       (args.threshold, PREVIOUS, ALONE))
            print(f"{name:<10} ({secs:.1f} s to score both splits)")


if __name__ == "__main__":
    main()
