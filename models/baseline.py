"""A robust online baseline: what a metric should be now, learnt from its own past, with daily seasonality.

Two predictors run side by side on every point. The plain one is an exponentially weighted level; the seasonal
one adds a time-of-day profile (``BINS`` bins over the day, separate for weekdays and weekends, linearly
interpolated) to its own level. Errors are clipped at a few scales before they move anything, so a spike
does not drag the baseline. The seasonal predictor is trusted once two days have been seen and its running
error is clearly smaller than the plain one's: series without a daily rhythm never pay for the profile.

``update`` returns the standardised residual of the trusted predictor (``(x - expected) / scale``). The scale
never goes below a floor, the largest of: half the smallest change seen (the resolution of the metric);
``rel`` times the level; one event per interval when the series is a rate of whole events (a counter turned
into a rate: its values times the interval are whole numbers, so one event more or less is its resolution,
however the interval jitters); ``slow_k`` times the long-run *unclipped* mean error, so that a series with
regular bursts (a stats flush, a vacuum every minute) does not see each burst grow more surprising while the
clipped scale shrinks to the jitter between them.
"""

from __future__ import annotations

import math
import struct
from array import array

DAY = 86400.0
BINS = 48
CLIP = 4.0
_HEAD = "<4dq11d"
_BINS_PER_S = BINS / DAY
SLOW = 0.005            # memory of the long-run mean error (unclipped: it knows the bursts a series has)
_SLOW_N = 1.0 / SLOW


class Baseline:
    __slots__ = ("alpha", "scale_alpha", "gamma", "rel", "n", "first_ts", "level", "slevel", "scale", "sscale",
                 "profile", "seen", "quantum", "prev", "prev_ts", "counted", "slow_k", "slow", "scale_n",
                 "day_start", "day_base", "day_last")

    def __init__(self, alpha: float = 0.1, scale_alpha: float = 0.02, gamma: float = 0.15, rel: float = 1e-6,
                 slow_k: float = 0.0) -> None:
        self.alpha = alpha
        self.scale_alpha = scale_alpha
        self.scale_n = 1.0 / scale_alpha          # the scale learns as a plain mean until then
        self.gamma = gamma
        self.rel = rel                            # the smallest scale, relative to the level
        self.slow_k = slow_k                      # the smallest scale, relative to the long-run mean error
        self.slow = 0.0
        self.n = 0
        self.first_ts = 0.0
        self.level = self.slevel = 0.0
        self.scale = self.sscale = 0.0
        self.profile = array("f", bytes(4 * 2 * BINS))
        self.seen = array("B", bytes(2))          # weekday / weekend profile has been touched
        self.quantum = math.inf                   # smallest change seen: the resolution of the metric
        self.prev = math.nan
        self.prev_ts = math.nan
        self.counted = 0.0                        # running share of points that are a whole number of events
        self.day_start = math.inf                 # the day of the last point (derived from it, not saved)
        self.day_base = self.day_last = 0

    def seasonal(self, ts: float) -> bool:
        return ts - self.first_ts >= 2 * DAY and self.sscale < 0.8 * self.scale

    def update(self, ts: float, x: float) -> float:
        n = self.n
        if n == 0:
            self.first_ts, self.level, self.slevel, self.prev, self.prev_ts = ts, x, x, x, ts
            self.n = 1
            return 0.0
        self.n = n = n + 1
        d = x - self.prev
        if d < 0:
            d = -d
        q = self.quantum
        if 0 < d < q:
            self.quantum = q = d
        self.prev = x
        level, slevel, scale, sscale = self.level, self.slevel, self.scale, self.sscale
        # the floor of the scale: half the resolution, a share of the level, a share of the long-run error
        floor = 0.5 * q if q < math.inf else 0.0
        lf = self.rel * (level if level >= 0 else -level)
        if lf > floor:
            floor = lf
        slow = self.slow
        lf = self.slow_k * slow
        if lf > floor:
            floor = lf
        # a rate of a counter is a whole number of events over the interval: one event more or less is its
        # resolution, however much the interval jitters (the smallest change then says nothing)
        dt = ts - self.prev_ts
        self.prev_ts = ts
        if dt > 0:
            count = x * dt
            off = count % 1.0
            near = (off if off < 0.5 else 1.0 - off) <= 0.02 + 0.002 * (count if count >= 0 else -count)
            self.counted = counted = self.counted + (near - self.counted) * (0.02 if n > 50 else 1.0 / n)
            if counted > 0.9 and floor < 1.0 / dt:
                floor = 1.0 / dt
        if floor < 1e-12:
            floor = 1e-12
        pos = (ts - self.day_start) * _BINS_PER_S
        if not 0.0 <= pos < BINS:
            pos = self._new_day(ts)
        b0 = int(pos)
        w1 = pos - b0
        b0 += self.day_base
        b1 = b0 + 1 if b0 != self.day_last else b0 + 1 - BINS
        profile = self.profile
        e = x - level
        es = x - slevel - ((1 - w1) * profile[b0] + w1 * profile[b1])
        if sscale < 0.8 * scale and ts - self.first_ts >= 2 * DAY:
            resid = es / (sscale if sscale > floor else floor)
        else:
            resid = e / (scale if scale > floor else floor)
        ae = e if e >= 0 else -e
        aes = es if es >= 0 else -es
        self.slow = slow + (ae - slow) * (SLOW if n > _SLOW_N else 1.0 / n)
        # learn from clipped errors (the first points learn freely to find the scale)
        if n >= 20:
            c = CLIP * scale
            if ae > c:
                ae = c
                e = c if e > 0 else -c
            c = CLIP * sscale
            if aes > c:
                aes = c
                es = c if es > 0 else -c
        alpha = self.alpha
        self.level = level + alpha * e
        self.slevel = slevel + alpha * es
        g = self.gamma * (1 - alpha) * es
        profile[b0] += g * (1 - w1)
        profile[b1] += g * w1
        a = 1.0 / n if n < self.scale_n else self.scale_alpha
        self.scale = scale + a * (ae - scale)
        self.sscale = sscale + a * (aes - sscale)
        return resid

    def _new_day(self, ts: float) -> float:
        """Another day than the last point's: which profile it uses; the position of ``ts`` in it, in bins."""
        start = (ts // DAY) * DAY
        day = 1 if (int(ts // DAY) + 3) % 7 >= 5 else 0       # 1970-01-01 was a Thursday
        if not self.seen[day]:
            self._copy_profile(1 - day, day)
        self.day_start, self.day_base, self.day_last = start, day * BINS, day * BINS + BINS - 1
        return (ts - start) * _BINS_PER_S

    def _copy_profile(self, src: int, dst: int) -> None:
        if self.seen[src]:
            self.profile[dst * BINS:(dst + 1) * BINS] = self.profile[src * BINS:(src + 1) * BINS]
        self.seen[dst] = 1

    def to_state(self) -> bytes:
        head = struct.pack(_HEAD, self.alpha, self.scale_alpha, self.gamma, self.rel, self.n, self.first_ts, self.level,
                           self.slevel, self.scale, self.sscale, self.quantum, self.prev, self.prev_ts,
                           self.counted, self.slow_k, self.slow)
        return head + self.profile.tobytes() + self.seen.tobytes()

    @classmethod
    def from_state(cls, raw: bytes) -> Baseline:
        (alpha, scale_alpha, gamma, rel, n, b_first, level, slevel, scale, sscale, quantum,
         prev, prev_ts, counted, slow_k, slow) = struct.unpack_from(_HEAD, raw)
        b = cls(alpha, scale_alpha, gamma, rel, slow_k)
        b.slow = slow
        b.n, b.first_ts, b.level, b.slevel, b.scale, b.sscale, b.quantum, b.prev, b.prev_ts, b.counted = (
            n, b_first, level, slevel, scale, sscale, quantum, prev, prev_ts, counted)
        at = struct.calcsize(_HEAD)
        b.profile = array("f")
        b.profile.frombytes(raw[at:at + 4 * 2 * BINS])
        b.seen = array("B", raw[at + 4 * 2 * BINS:at + 4 * 2 * BINS + 2])
        return b

    @staticmethod
    def state_size() -> int:
        return struct.calcsize(_HEAD) + 4 * 2 * BINS + 2
