"""A bounded history of a series at adaptive resolution, for the periodic model refit.

Samples are averaged into buckets of ``step_s`` seconds on a fixed grid; when ``capacity`` buckets are held,
pairs are merged and the step doubles, so the buffer always spans the whole life of the series (or as much
as ``max_step_s`` allows, the oldest buckets then falling off) in at most ``capacity`` points. Empty buckets
are NaN. The grid is anchored at a multiple of the step, so the same samples always give the same buckets.
"""

from __future__ import annotations

import math

import numpy as np


class History:
    __slots__ = ("capacity", "max_step_s", "step_s", "start", "means", "acc_sum", "acc_n")

    def __init__(self, capacity: int = 512, step_s: float = 300.0, max_step_s: float = 3600.0) -> None:
        self.capacity, self.max_step_s, self.step_s = capacity, max_step_s, step_s
        self.start = math.nan          # start time of means[0]
        self.means: list[float] = []   # closed buckets
        self.acc_sum, self.acc_n = 0.0, 0   # the open bucket, at index len(means)

    def add(self, ts: float, value: float) -> None:
        if math.isnan(self.start):
            self.start = math.floor(ts / self.step_s) * self.step_s
        index = int((ts - self.start) // self.step_s)
        open_index = len(self.means)
        if index > open_index:
            self._close()
            self.means.extend([math.nan] * (index - open_index - 1))
            self._shrink()
        if index >= len(self.means):
            self.acc_sum += value
            self.acc_n += 1

    def _close(self) -> None:
        self.means.append(self.acc_sum / self.acc_n if self.acc_n else math.nan)
        self.acc_sum, self.acc_n = 0.0, 0

    def _shrink(self) -> None:
        while len(self.means) >= self.capacity:
            if self.step_s * 2 > self.max_step_s:
                drop = len(self.means) - self.capacity + 1
                self.means = self.means[drop:]
                self.start += drop * self.step_s
                continue
            if int(round(self.start / self.step_s)) % 2:   # keep pairs aligned on the doubled grid
                self.means.insert(0, math.nan)
                self.start -= self.step_s
            if len(self.means) % 2:   # the last closed bucket shares its doubled bucket with the open one
                last = self.means.pop()
                if not math.isnan(last):
                    self.acc_sum, self.acc_n = self.acc_sum + last, self.acc_n + 1
            pairs = np.asarray(self.means, dtype=float).reshape(-1, 2)
            counts = (~np.isnan(pairs)).sum(axis=1)
            sums = np.nansum(pairs, axis=1)
            self.means = [float(s / c) if c else math.nan for s, c in zip(sums, counts)]
            self.step_s *= 2

    def series(self, since: float = -math.inf) -> tuple[np.ndarray, np.ndarray]:
        """Closed buckets from ``since`` on: (bucket mid times, means), gaps filled by interpolation."""
        y = np.asarray(self.means, dtype=float)
        t = self.start + (np.arange(y.size) + 0.5) * self.step_s
        keep = t - self.step_s / 2 >= since
        t, y = t[keep], y[keep]
        ok = ~np.isnan(y)
        if ok.sum() < 2:
            return t[ok], y[ok]
        first, last = np.argmax(ok), y.size - np.argmax(ok[::-1])
        t, y, ok = t[first:last], y[first:last], ok[first:last]
        return t, np.interp(t, t[ok], y[ok])

    def to_tuple(self) -> tuple:
        return (self.step_s, self.start, self.acc_sum, float(self.acc_n), *self.means)

    def load(self, values: tuple) -> None:
        self.step_s, self.start, self.acc_sum, acc_n = values[:4]
        self.acc_n = int(acc_n)
        self.means = list(values[4:])
