"""A robust online baseline: what a metric should be now, learnt from its own past, with daily seasonality.

Two predictors run side by side on every point. The plain one is an exponentially weighted level; the seasonal
one adds a time-of-day profile (``BINS`` bins over the day, separate for weekdays and weekends, linearly
interpolated) to its own level. Errors are clipped at a few scales before they move anything, so a spike
does not drag the baseline. The seasonal predictor is trusted once two days have been seen and its running
error is clearly smaller than the plain one's: series without a daily rhythm never pay for the profile.

``update`` returns the standardised residual of the trusted predictor (``(x - expected) / scale``).
"""

from __future__ import annotations

import math
import struct
from array import array

DAY = 86400.0
BINS = 48
CLIP = 4.0
_HEAD = "<3dq7d"


def _weekend(ts: float) -> int:
    return 1 if (int(ts // DAY) + 3) % 7 >= 5 else 0       # 1970-01-01 was a Thursday


class Baseline:
    __slots__ = ("alpha", "scale_alpha", "gamma", "n", "first_ts", "level", "slevel", "scale", "sscale",
                 "profile", "seen", "quantum", "prev")

    def __init__(self, alpha: float = 0.1, scale_alpha: float = 0.02, gamma: float = 0.15) -> None:
        self.alpha = alpha
        self.scale_alpha = scale_alpha
        self.gamma = gamma
        self.n = 0
        self.first_ts = 0.0
        self.level = self.slevel = 0.0
        self.scale = self.sscale = 0.0
        self.profile = array("f", bytes(4 * 2 * BINS))
        self.seen = array("B", bytes(2))          # weekday / weekend profile has been touched
        self.quantum = math.inf                   # smallest change seen: the resolution of the metric
        self.prev = math.nan

    def seasonal(self, ts: float) -> bool:
        return ts - self.first_ts >= 2 * DAY and self.sscale < 0.8 * self.scale

    def update(self, ts: float, x: float) -> float:
        if self.n == 0:
            self.first_ts, self.level, self.slevel, self.prev = ts, x, x, x
            self.n = 1
            return 0.0
        self.n += 1
        d = abs(x - self.prev)
        if 0 < d < self.quantum:
            self.quantum = d
        self.prev = x
        day = _weekend(ts)
        if not self.seen[day]:
            self._copy_profile(1 - day, day)
        pos = (ts % DAY) / DAY * BINS
        b0 = int(pos) % BINS
        w1 = pos - int(pos)
        b1 = (b0 + 1) % BINS
        base = day * BINS
        season = (1 - w1) * self.profile[base + b0] + w1 * self.profile[base + b1]
        floor = self._floor()
        use_seasonal = self.seasonal(ts)
        e = x - self.level
        es = x - self.slevel - season
        resid = es / max(self.sscale, floor) if use_seasonal else e / max(self.scale, floor)
        # learn from clipped errors (the first points learn freely to find the scale)
        warm = self.n < 20
        ce = e if warm else max(-CLIP * self.scale, min(CLIP * self.scale, e))
        ces = es if warm else max(-CLIP * self.sscale, min(CLIP * self.sscale, es))
        self.level += self.alpha * ce
        self.slevel += self.alpha * ces
        g = self.gamma * (1 - self.alpha)
        self.profile[base + b0] += g * (1 - w1) * ces
        self.profile[base + b1] += g * w1 * ces
        a = max(self.scale_alpha, 1.0 / self.n)
        self.scale += a * (min(abs(e), CLIP * self.scale) if not warm else abs(e)) - a * self.scale
        self.sscale += a * (min(abs(es), CLIP * self.sscale) if not warm else abs(es)) - a * self.sscale
        return resid

    def _floor(self) -> float:
        q = self.quantum if self.quantum < math.inf else 0.0
        return max(0.5 * q, 1e-6 * abs(self.level), 1e-12)

    def _copy_profile(self, src: int, dst: int) -> None:
        if self.seen[src]:
            self.profile[dst * BINS:(dst + 1) * BINS] = self.profile[src * BINS:(src + 1) * BINS]
        self.seen[dst] = 1

    def to_state(self) -> bytes:
        head = struct.pack(_HEAD, self.alpha, self.scale_alpha, self.gamma, self.n, self.first_ts, self.level,
                           self.slevel, self.scale, self.sscale, self.quantum, self.prev)
        return head + self.profile.tobytes() + self.seen.tobytes()

    @classmethod
    def from_state(cls, raw: bytes) -> Baseline:
        (alpha, scale_alpha, gamma, n, b_first, level, slevel, scale, sscale, quantum,
         prev) = struct.unpack_from(_HEAD, raw)
        b = cls(alpha, scale_alpha, gamma)
        b.n, b.first_ts, b.level, b.slevel, b.scale, b.sscale, b.quantum, b.prev = (
            n, b_first, level, slevel, scale, sscale, quantum, prev)
        at = struct.calcsize(_HEAD)
        b.profile = array("f")
        b.profile.frombytes(raw[at:at + 4 * 2 * BINS])
        b.seen = array("B", raw[at + 4 * 2 * BINS:at + 4 * 2 * BINS + 2])
        return b

    @staticmethod
    def state_size() -> int:
        return struct.calcsize(_HEAD) + 4 * 2 * BINS + 2
