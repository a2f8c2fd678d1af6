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

RESCALE = 1e150


class TailModel:
    __slots__ = ("levels", "logp0", "prior", "counts", "weight", "total", "decay")

    def __init__(self, levels: tuple[float, ...], logp0: tuple[float, ...], memory: float, prior: float):
        self.levels = levels            # increasing, > 0
        self.logp0 = logp0              # log reference probability of reaching each level
        self.prior = prior
        self.counts = array("d", bytes(8 * len(levels)))
        self.weight = 1.0
        self.total = 0.0
        self.decay = 0.5 ** (1.0 / memory)

    def surprise(self, v: float) -> float:
        levels = self.levels
        if v < levels[0]:
            return 0.0
        j = 0
        last = len(levels) - 1
        while j < last and v >= levels[j + 1]:
            j += 1
        lp = self._logp(j)
        if j == last:
            slope = (self.logp0[j] - self.logp0[j - 1]) / math.log(levels[j] / levels[j - 1])
            lp += slope * math.log(v / levels[j])
        else:
            frac = math.log(v / levels[j]) / math.log(levels[j + 1] / levels[j])
            lp += (self._logp(j + 1) - lp) * frac
        return -lp / math.log(10.0) if lp < 0 else 0.0

    def _logp(self, j: int) -> float:
        w = self.weight * self.prior
        return math.log((self.counts[j] + w * math.exp(self.logp0[j])) / (self.total + w))

    def add(self, v: float) -> None:
        self.weight /= self.decay
        w = self.weight
        self.total += w
        counts = self.counts
        for j, level in enumerate(self.levels):
            if v < level:
                break
            counts[j] += w
        if w > RESCALE:
            for j in range(len(counts)):
                counts[j] /= w
            self.total /= w
            self.weight = 1.0

    def state(self) -> list[float]:
        return [self.weight, self.total, *self.counts]

    def restore(self, values: list[float]) -> None:
        self.weight, self.total = values[0], values[1]
        self.counts = array("d", values[2:])


def laplace_tail(levels: tuple[float, ...], scale: float, shift: float = 0.0) -> tuple[float, ...]:
    """log P(X >= level) for a Laplace-like tail ``exp(-(level - shift) / scale)``."""
    return tuple(min(0.0, -(lv - shift) / scale) for lv in levels)
