"""The windowed-Gaussian baseline: how far is this value from the mean of the last ``window`` values.

The reference point the real detector is compared with, as in NAB's own baseline: statistics over a sliding
window, refreshed every ``step`` points, score ``1 - 2 Q(|x - mean| / std)`` (``Q`` the normal tail). It never
quiets: ``threshold`` (the score the caller alerts at) is kept for the common interface and not saved.
"""

from __future__ import annotations

import math
import struct
from array import array

_HEAD = "<4q2d"
MAGIC = b"KSWG1"                 # a state of another detector fails loudly instead of resuming wrongly


class WindowedGaussian:
    __slots__ = ("window", "step", "buf", "pos", "count", "mean", "std", "threshold")

    def __init__(self, window: int = 6400, step: int = 100, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self.window = window
        self.step = step
        self.buf = array("d")
        self.pos = 0
        self.count = 0
        self.mean = 0.0
        self.std = 1.0

    def update(self, ts: float, value: float) -> float:
        score = 0.0
        if self.count >= 2 and self.std > 0:
            score = math.erf(abs(value - self.mean) / (self.std * math.sqrt(2.0)))
        if len(self.buf) < self.window:
            self.buf.append(value)
        else:
            self.buf[self.pos] = value
            self.pos = (self.pos + 1) % self.window
        self.count += 1
        if self.count % self.step == 0 or self.count < self.step:
            self._refresh()
        return score

    def _refresh(self) -> None:
        n = len(self.buf)
        mean = sum(self.buf) / n
        var = sum((v - mean) ** 2 for v in self.buf) / n
        self.mean, self.std = mean, math.sqrt(var) or 1e-9

    def to_state(self) -> bytes:
        head = struct.pack(_HEAD, self.window, self.step, self.pos, self.count, self.mean, self.std)
        return MAGIC + head + self.buf.tobytes()

    @classmethod
    def from_state(cls, raw: bytes) -> WindowedGaussian:
        if not raw.startswith(MAGIC):
            raise ValueError("not a WindowedGaussian state of this version")
        window, step, pos, count, mean, std = struct.unpack_from(_HEAD, raw, len(MAGIC))
        det = cls(window, step)
        det.buf.frombytes(raw[len(MAGIC) + struct.calcsize(_HEAD):])
        det.pos, det.count, det.mean, det.std = pos, count, mean, std
        return det
