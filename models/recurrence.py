"""Bursts that come back on a clock: a stats flush, a checkpoint, an autovacuum pass every minute or so.

A live series often has bursts far above its noise that recur with a fixed period (PostgreSQL's tuple and
block rates jump every minute when the statistics collector flushes, checkpoints write every few minutes).
The seasonal profile of :class:`~kubestack.models.baseline.Baseline` only knows the day; the tail models
learn that large residuals happen, but only after many of them. :class:`Recurrence` notices the clock: a
burst is *on time* when the time since the previous burst is the previous gap again, or a small multiple of
it (a burst too small to count in between), within ``max(1.5 intervals, 2%)``. A burst lasting a few points
is one burst: points within ``HOLD`` intervals of the last one continue it and share its verdict.

Five floats and a count are kept, and only bursts touch them.
"""

from __future__ import annotations

import math
import struct

HOLD = 3                 # points closer than this many intervals to the previous burst belong to it
MULTIPLES = 4            # a burst may skip up to this many beats and still be on time
MIN_GAP = 8              # a period shorter than this many intervals is noise, not a clock
MAX_PERIOD = 3600.0      # longer rhythms are the seasonal profile's (seconds)
LARGER = 2.0             # a burst this many times the usual size is not the usual burst
KNOWN = 1                # bursts that must have kept the period before the next one is excused
_STATE = "<5dq"


class Recurrence:
    __slots__ = ("last", "anchor", "gap", "on_time", "beats", "size")

    def __init__(self) -> None:
        self.last = -math.inf        # time of the latest burst point
        self.anchor = -math.inf      # time of the latest burst that kept (or started) the clock
        self.gap = 0.0               # the period the bursts keep, 0 while none is known
        self.on_time = 0.0           # the verdict of the current burst (1.0 on time)
        self.beats = 0               # bursts that kept the period, less the ones that broke it since
        self.size = 0.0              # running mean distance of the bursts from the level

    def burst(self, ts: float, dt: float, size: float) -> bool:
        """A burst point at ``ts`` (``dt``: the series' sampling interval, ``size``: how far it is from the level):
        is it the series' usual burst, on the series' clock?"""
        last, self.last = self.last, ts
        usual = size <= LARGER * self.size
        if ts - last <= HOLD * dt:
            return self.on_time > 0.5 and usual
        g = ts - self.anchor
        gap = self.gap
        m = int(g / gap + 0.5) if gap > 0.0 else 0
        tol = 1.5 * dt if 1.5 * dt > 0.02 * gap else 0.02 * gap
        on = 1 <= m <= MULTIPLES and MIN_GAP * dt <= gap <= MAX_PERIOD and abs(g - m * gap) <= tol
        if on:
            self.beats += 1
            self.anchor = ts
            if m == 1:
                self.gap = gap + 0.25 * (g - gap)
        elif self.beats >= 2:        # an established clock outlives a burst off the beat
            self.beats -= 1
        else:
            self.beats = 0
            self.anchor = ts
            self.gap = g if g < math.inf else 0.0
        self.size = size if self.size == 0.0 else self.size + 0.25 * (size - self.size)
        self.on_time = 1.0 if on and self.beats > KNOWN else 0.0
        return self.on_time > 0.5 and usual

    def to_state(self) -> bytes:
        return struct.pack(_STATE, self.last, self.anchor, self.gap, self.on_time, self.size, self.beats)

    @classmethod
    def from_state(cls, raw: bytes) -> Recurrence:
        r = cls()
        r.last, r.anchor, r.gap, r.on_time, r.size, r.beats = struct.unpack_from(_STATE, raw)
        return r

    @staticmethod
    def state_size() -> int:
        return struct.calcsize(_STATE)
