"""How rare is a value this large, for this series? An exponentially forgetting tail histogram.

A statistic (a residual, a CUSUM, a local variance) is counted against a fixed ladder of levels; the
probability of reaching level ``j`` is the forgetting count of values that did, plus a prior of ``prior``
pseudo-points that follow a reference tail, over the forgetting total. Between levels the probability is
interpolated log-log, past the last level it follows the reference tail. The answer is a *surprise*,
``-log10 p``: the same scale for every statistic and every series, so one threshold fits all. A series whose
noise is heavy-tailed learns that large residuals are ordinary; an event that recurs every few hours
(a garbage collection, a nightly batch) stops being surprising after a few occurrences.

Forgetting is lazy and shared: the detector gives each new point a weight that grows by ``1 / decay`` per
point, and every model of the detector counts with that same weight against the same forgetting total; all
weights are rescaled now and then. An update touches only the levels the value reached, and a value
below the first level touches nothing (callers skip ``add`` for it).
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from functools import cache

RESCALE = 1e150
_INV_LN10 = 1.0 / math.log(10.0)


class TailModel:
    __slots__ = ("levels", "p0", "loglevels", "lo", "top_slope", "prior", "counts")

    def __init__(self, levels: tuple[float, ...], logp0: tuple[float, ...], prior: float):
        self.levels = levels            # increasing, > 0
        self.lo = levels[0]             # below it, no surprise and nothing to count
        self.p0, self.loglevels, self.top_slope = _ladder(levels, logp0)
        self.prior = prior
        self.counts = array("d", bytes(8 * len(levels)))

    def surprise(self, v: float, weight: float, total: float) -> float:
        """``-log10`` of the chance of reaching ``v`` (``v >= lo``), for the forgetting ``total`` of the points
        seen and the ``weight`` of the newest."""
        levels, loglevels = self.levels, self.loglevels
        j = bisect_right(levels, v) - 1
        w = weight * self.prior
        counts, p0 = self.counts, self.p0
        total += w
        lp = math.log((counts[j] + w * p0[j]) / total)
        if j == len(levels) - 1:
            lp += self.top_slope * (math.log(v) - loglevels[j])
        else:
            frac = (math.log(v) - loglevels[j]) / (loglevels[j + 1] - loglevels[j])
            lp += (math.log((counts[j + 1] + w * p0[j + 1]) / total) - lp) * frac
        return -lp * _INV_LN10 if lp < 0 else 0.0

    def add(self, v: float, w: float) -> None:
        """Count ``v`` (``v >= lo``) with the weight ``w`` of the newest point."""
        counts = self.counts
        for j in range(bisect_right(self.levels, v)):
            counts[j] += w

    def rescale(self, w: float) -> None:
        counts = self.counts
        for j in range(len(counts)):
            counts[j] /= w

    def to_state(self) -> bytes:
        return self.counts.tobytes()

    def restore(self, raw: bytes) -> int:
        """Counts from ``raw``; the number of bytes read."""
        size = 8 * len(self.levels)
        self.counts = array("d", raw[:size])
        if len(self.counts) != len(self.levels):
            raise ValueError(f"tail state holds {len(self.counts)} counts, the ladder {len(self.levels)}")
        return size


@cache
def _ladder(levels: tuple[float, ...], logp0: tuple[float, ...]) -> tuple[tuple[float, ...], tuple[float, ...], float]:
    """Constants of a ladder, shared by every model on it: reference probabilities, log levels, the log-log
    slope of the reference tail past the last level."""
    loglevels = tuple(math.log(lv) for lv in levels)
    slope = (logp0[-1] - logp0[-2]) / (loglevels[-1] - loglevels[-2])
    return tuple(math.exp(lp) for lp in logp0), loglevels, slope


def laplace_tail(levels: tuple[float, ...], scale: float, shift: float = 0.0) -> tuple[float, ...]:
    """log P(X >= level) for a Laplace-like tail ``exp(-(level - shift) / scale)``."""
    return tuple(min(0.0, -(lv - shift) / scale) for lv in levels)
