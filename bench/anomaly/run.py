"""Score the detectors on the labelled development set, NAB style, side by side with the windowed Gaussian.

    .venv/bin/python bench/anomaly/run.py                  # dev and holdout, table on stdout
    .venv/bin/python bench/anomaly/run.py --by-kind        # plus recall per anomaly kind (dev)

The threshold is chosen on the dev split (best NAB standard score) and applied unchanged to the holdout,
which is also reported at its own best threshold for reference. Nothing here is tuned on the holdout.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import Series, make_split  # noqa: E402
from scorer import LOW_FN, LOW_FP, STANDARD, evaluate, probation, windows  # noqa: E402

from kubestack.models.registry import DETECTORS  # noqa: E402


def score_series(args: tuple[str, dict, Series]) -> np.ndarray:
    name, params, series = args
    det = DETECTORS[name](**params)
    update = det.update
    return np.fromiter((update(t, v) for t, v in zip(series.ts.tolist(), series.values.tolist())),
                       dtype=float, count=len(series.values))


def score_split(name: str, params: dict, data: list[Series], pool: ProcessPoolExecutor) -> list[np.ndarray]:
    return list(pool.map(score_series, [(name, params, s) for s in data], chunksize=2))


def recall_by_kind(scores: list[np.ndarray], data: list[Series], threshold: float) -> dict[str, str]:
    hit, total = Counter(), Counter()
    for sc, s in zip(scores, data):
        start = probation(len(sc))
        for (lo, hi), kind in zip(windows(len(sc), s.anomalies), s.kinds):
            total[kind] += 1
            hit[kind] += bool(np.any(sc[max(lo, start):hi + 1] >= threshold))
    return {k: f"{hit[k]}/{total[k]}" for k in sorted(total)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--by-kind", action="store_true")
    parser.add_argument("--detectors", default="gaussian,metric")
    args = parser.parse_args()
    dev, hold = make_split("dev"), make_split("holdout")
    n_points = sum(len(s.values) for s in dev + hold)
    print(f"dev {len(dev)} series, holdout {len(hold)} series, {n_points} points")
    header = (f"{'detector':<10} {'split':<8} {'standard':>8} {'low_FP':>7} {'low_FN':>7} {'thresh':>8} "
              f"{'recall':>7} {'prec':>6} {'FP':>5} {'clean>0':>7}")
    print(header)
    with ProcessPoolExecutor(2) as pool:
        for name in args.detectors.split(","):
            t0 = time.perf_counter()
            sd = score_split(name, {}, dev, pool)
            sh = score_split(name, {}, hold, pool)
            secs = time.perf_counter() - t0
            best = evaluate(sd, [s.anomalies for s in dev])
            for split, sc, data in (("dev", sd, dev), ("holdout", sh, hold)):
                on = [s.anomalies for s in data]
                r = evaluate(sc, on, STANDARD, best.threshold)
                lfp = evaluate(sc, on, LOW_FP).score
                lfn = evaluate(sc, on, LOW_FN).score
                print(f"{name:<10} {split:<8} {r.score:8.1f} {lfp:7.1f} {lfn:7.1f} {r.threshold:8.4f} "
                      f"{r.recall:7.2f} {r.precision:6.2f} {r.false_positives:5d} {r.clean_series_alerting:7d}")
            own = evaluate(sh, [s.anomalies for s in hold])
            print(f"{name:<10} holdout at its own best threshold {own.threshold:.4f}: {own.score:.1f}   "
                  f"({secs:.1f} s for both splits)")
            if args.by_kind:
                print(f"  recall by kind (dev): {recall_by_kind(sd, dev, best.threshold)}")


if __name__ == "__main__":
    main()
