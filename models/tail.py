"""How rare is a value this large, for this series? An exponentially forgetting tail histogram.

A statistic (a residual, a CUSUM, a local variance) is counted against a fixed ladder of levels; the
probability of reaching level ``j`` is the forgetting count of values that did, plus a prior of ``prior``
pseudo-points that follow a reference tail, over the forgetting total. Between levels the probability is
interpolated log-log, past the last level it follows the reference tail. The answer is a *surprise*,
``-log10 p``: the same scale for every statistic and every series, so one threshold fits all. A series whose
noise is heavy-tailed learns that large residuals are ordinary; an event that recurs every few hours
(a garbage collection, a nightly batch) stops being surprising after a few occurrences.

Forgetting is lazy: each new value is counted with a weight that grows by ``1 / decay`` per point, and all
weights are rescaled now and then, so an update touches only the levels the value reached.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from functools import cache

RESCALE = 1e150
_INV_LN10 = 1.0 / math.log(10.0)


class TailModel:
    __slots__ = ("levels", "logp0", "p0", "loglevels", "lo", "top_slope", "prior", "counts", "weight", "total",
                 "decay")

    def __init__(self, levels: tuple[float, ...], logp0: tuple[float, ...], memory: float, prior: float):
        self.levels = levels            # increasing, > 0
        self.lo = levels[0]             # below it, no surprise and nothing to count
        self.logp0 = logp0              # log reference probability of reaching each level
        self.p0, self.loglevels, self.top_slope = _ladder(levels, logp0)
        self.prior = prior
        self.counts = array("d", bytes(8 * len(levels)))
        self.weight = 1.0
        self.total = 0.0
        self.decay = 0.5 ** (1.0 / memory)

    def surprise(self, v: float) -> float:
        if v < self.lo:
            return 0.0
        levels, loglevels = self.levels, self.loglevels
        j = bisect_right(levels, v) - 1
        w = self.weight * self.prior
        counts, p0, total = self.counts, self.p0, self.total + w
        lp = math.log((counts[j] + w * p0[j]) / total)
        if j == len(levels) - 1:
            lp += self.top_slope * (math.log(v) - loglevels[j])
        else:
            frac = (math.log(v) - loglevels[j]) / (loglevels[j + 1] - loglevels[j])
            lp += (math.log((counts[j + 1] + w * p0[j + 1]) / total) - lp) * frac
        return -lp * _INV_LN10 if lp < 0 else 0.0

    def add(self, v: float) -> None:
        w = self.weight = self.weight / self.decay      # older counts age by weighing the new one more
        self.total += w
        if w > RESCALE:
            counts = self.counts
            for j in range(len(counts)):
                counts[j] /= w
            self.total /= w
            self.weight = w = 1.0
        if v >= self.lo:
            counts = self.counts
            for j in range(bisect_right(self.levels, v)):
                counts[j] += w

    def state(self) -> list[float]:
        return [self.weight, self.total, *self.counts]

    def restore(self, values: list[float]) -> None:
        self.weight, self.total = values[0], values[1]
        self.counts = array("d", values[2:])


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
