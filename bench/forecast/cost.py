"""Cost of the exhaustion forecaster: microseconds per sample, milliseconds per refit, bytes of state.

    .venv/bin/python bench/forecast/cost.py [--per-scenario 2]

Runs the dev synthetic series through a forecaster, timing every ``update`` (median and mean: the mean
includes the refits of trending series); then, on the history each forecaster holds at its end, one
parameter search (statsmodels, ``refit``) and one re-run of the smoothing (``refilter``); and reports the
size of ``to_state()`` at the end of each series (largest and median).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.forecast.scenarios import generate  # noqa: E402
from kubestack.models.forecast import ExhaustionForecaster  # noqa: E402
from kubestack.models.forecast_fit import refilter, refit  # noqa: E402


def seconds(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-scenario", type=int, default=2)
    args = parser.parse_args()
    searches: list[float] = []
    reruns: list[float] = []
    updates: list[float] = []
    sizes: list[int] = []
    for series in generate("dev", args.per_scenario):
        f = ExhaustionForecaster()
        for t, v in zip(series.ts.tolist(), series.values.tolist()):
            start = time.perf_counter()
            f.update(t, v, series.capacity)
            updates.append(time.perf_counter() - start)
        sizes.append(len(f.to_state()))
        t, y = f.history.series()
        fit, took = seconds(refit, t, y, f.history.step_s)
        searches.append(took)
        if fit is not None:
            reruns.append(seconds(refilter, fit, t, y, f.history.step_s)[1])
    print(f"samples                  {len(updates)}")
    print(f"us/update median         {statistics.median(updates) * 1e6:.1f}")
    print(f"us/update mean (refits)  {statistics.mean(updates) * 1e6:.1f}")
    print(f"ms/search (statsmodels)  median {statistics.median(searches) * 1e3:.0f}, n={len(searches)}")
    print(f"ms/re-run of smoothing   median {statistics.median(reruns) * 1e3:.2f}, n={len(reruns)}")
    print(f"state bytes              median {statistics.median(sizes):.0f}, max {max(sizes)}")


if __name__ == "__main__":
    main()
