"""Cost of the detectors per sample and per series, side by side with the windowed Gaussian in one run.

    .venv/bin/python bench/anomaly/cost.py

Time: amortised over a long 5-minute series (seasonal profile active). Memory: ``tracemalloc`` growth for
1000 warmed-up detectors, divided by 1000; state: the size of ``to_state()``.
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import make_series  # noqa: E402

from kubestack.models.registry import DETECTORS, create  # noqa: E402


def per_sample_us(name: str, points: list[tuple[float, float]], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        update = create(name, 0.5).update
        t0 = time.perf_counter()
        for t, v in points:
            update(t, v)
        best = min(best, (time.perf_counter() - t0) / len(points) * 1e6)
    return best


def bare_loop_us(points: list[tuple[float, float]]) -> float:
    def update(t: float, v: float) -> float:
        return v
    t0 = time.perf_counter()
    for t, v in points:
        update(t, v)
    return (time.perf_counter() - t0) / len(points) * 1e6


def bytes_per_series(name: str, points: list[tuple[float, float]], count: int = 1000) -> tuple[float, int]:
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    dets = []
    for _ in range(count):
        det = create(name, 0.5)
        for t, v in points:
            det.update(t, v)
        dets.append(det)
    used = (tracemalloc.get_traced_memory()[0] - before) / count
    tracemalloc.stop()
    return used, len(dets[0].to_state())


def main() -> None:
    s = make_series("dev", 0)
    points = list(zip(s.ts.tolist(), s.values.tolist()))
    warm = points[:700]
    print(f"{len(points)} samples per timing run; memory after {len(warm)} samples per series")
    print(f"{'detector':<10} {'us/sample':>9} {'ratio':>6} {'bytes/series (heap)':>20} {'state bytes':>12}")
    bare = bare_loop_us(points)
    for name in DETECTORS:
        us = per_sample_us(name, points)
        heap, state = bytes_per_series(name, warm, 200 if name == "gaussian" else 1000)
        print(f"{name:<10} {us:9.2f} {us / bare:6.1f} {heap:20.0f} {state:12d}")
    print(f"{'(call)':<10} {bare:9.2f} {1.0:6.1f}   <- an empty Python function call, for scale")


if __name__ == "__main__":
    main()
