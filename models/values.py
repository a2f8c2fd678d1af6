"""The few exact values a series keeps coming back to: how familiar is this value, how long does it stay.

Many live series take only a handful of values: connection counts (1, 2, 3), integer levels, rates of rare
events (mostly 0, now and then one event per interval), a memory gauge that sits still between allocations.
For them the distance in standard deviations says little: a value the series has taken a good share of the
time is not surprising however far it is from the baseline, and sitting still at a value the series often
sits on is not a stuck sensor. :class:`ValueTable` keeps ``SLOTS`` values with forgetting weights (the
weights the detector's :class:`~kubestack.models.tail.TailModel` count with) and, per value, the weight of
the points that repeated it. On a continuous series the table only ever holds values seen once
or twice, so it never excuses anything there.

A value not in the table waits as the *probe*, replaced by the next new value, and takes the slot of the least
weighted value only when it comes back: ``observe`` is a dictionary look-up and a few stores, whatever the
series.
"""

from __future__ import annotations

import struct
from array import array

SLOTS = 6                        # a dictionary of up to 6 keys stays at its smallest size
_NAN = float("nan")
_PROBE = "<2d"


class ValueTable:
    __slots__ = ("slot", "weights", "probe", "probe_w")

    def __init__(self) -> None:
        self.slot: dict[float, int] = {}                 # value -> its slot
        self.weights = array("d", bytes(16 * SLOTS))     # per slot: its weight, then (at SLOTS + slot) the
        self.probe = _NAN                                # weight of its repeats; the latest value not in the
        self.probe_w = 0.0                               # table, and its weight

    def observe(self, x: float, same: bool, w: float, total: float) -> float:
        """Count ``x`` with weight ``w`` (``same``: it repeats the previous value; ``total``: the forgetting
        total before this point); return its share of the past, 0 for a value not in the table."""
        j = self.slot.get(x)
        if j is None:
            if x != self.probe:
                self.probe, self.probe_w = x, w
                return 0.0
            j = self._promote(x)
        weights = self.weights
        share = weights[j] / total
        weights[j] += w
        if same:
            weights[SLOTS + j] += w
        return share

    def _promote(self, x: float) -> int:
        """The probe's value came back: it takes the slot of the least weighted value."""
        weights, slot = self.weights, self.slot
        j = min(range(SLOTS), key=weights.__getitem__)
        for key, at in slot.items():
            if at == j:
                del slot[key]
                break
        slot[x] = j
        weights[j] = self.probe_w
        weights[SLOTS + j] = 0.0
        self.probe = _NAN
        return j

    def stay(self, x: float, prior_stay: float, prior_w: float) -> float:
        """Probability that the series repeats ``x`` once at it: its own record, plus ``prior_w`` of weight
        that repeats with probability ``prior_stay``."""
        j = self.slot.get(x)
        if j is None:
            return prior_stay
        weights = self.weights
        return (weights[SLOTS + j] + prior_w * prior_stay) / (weights[j] + prior_w)

    def rescale(self, w: float) -> None:
        weights = self.weights
        for j in range(2 * SLOTS):
            weights[j] /= w
        self.probe_w /= w

    def to_state(self) -> bytes:
        keys = [_NAN] * SLOTS
        for key, j in self.slot.items():
            keys[j] = key
        return array("d", keys).tobytes() + self.weights.tobytes() + struct.pack(_PROBE, self.probe, self.probe_w)

    def restore(self, raw: bytes) -> int:
        """State from ``raw``; the number of bytes read."""
        keys, self.weights = array("d", raw[:8 * SLOTS]), array("d", raw[8 * SLOTS:24 * SLOTS])
        if len(self.weights) != 2 * SLOTS:
            raise ValueError("value table state is cut short")
        self.slot = {k: j for j, k in enumerate(keys) if k == k}
        self.probe, self.probe_w = struct.unpack_from(_PROBE, raw, 24 * SLOTS)
        return 24 * SLOTS + struct.calcsize(_PROBE)
