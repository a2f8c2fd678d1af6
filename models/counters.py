"""Counters (metric names ending in ``_total``) become per-second rates before a detector sees them.

A counter only grows; what is anomalous is how fast. A drop means the process restarted and the counter
began again from zero: the new value is then the increase since the restart, as Prometheus' ``rate()`` does.
"""

from __future__ import annotations

import math
import struct

_STATE = "<2d"


def is_counter(metric: str) -> bool:
    return metric.endswith("_total")


class CounterRate:
    """``update(ts, value)`` returns the per-second rate since the previous sample, ``nan`` for the first one
    (and for a repeated timestamp): callers skip ``nan``."""

    __slots__ = ("last_ts", "last_value")

    def __init__(self) -> None:
        self.last_ts = math.nan
        self.last_value = math.nan

    def update(self, ts: float, value: float) -> float:
        prev_ts, prev = self.last_ts, self.last_value
        self.last_ts, self.last_value = ts, value
        if math.isnan(prev_ts) or ts <= prev_ts:
            return math.nan
        increase = value - prev if value >= prev else value
        return increase / (ts - prev_ts)

    def to_state(self) -> bytes:
        return struct.pack(_STATE, self.last_ts, self.last_value)

    @classmethod
    def from_state(cls, raw: bytes) -> CounterRate:
        c = cls()
        c.last_ts, c.last_value = struct.unpack(_STATE, raw)
        return c
