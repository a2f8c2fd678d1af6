"""The stream's default metric detector: how unusual are this series' recent surprises against their own
long-run record (an anomaly likelihood, as Numenta's over HTM), on three views of the series, then one
alert and a quiet period.

Three raw scores per point, each already small on a series at rest:

- ``surprise``: the largest surprise of :class:`~kubestack.models.detector.MetricDetector`'s tests (point,
  level shift, variance, stuck; its seasonal baseline, familiar values and bursts on a clock), unquieted;
- ``lag``: how far the value is from the one a day earlier, against the typical such distance
  (``min(d / (4 m), 1)``), for series whose day fits in ``LAG_MAX`` points (5-minute data and coarser): a
  missing daily peak, a flat day, a peak of another height;
- ``density``: 1 when the value is beyond 3 standard deviations of an exponentially weighted mean, else 0:
  the rate of such points, which a denser run of spikes raises even when each spike is ordinary.

Beside them, a value beyond the range the series has taken so far by more than ``spatial`` of its width
(HTM's detector on NAB does the same) scores ``spatial_score`` outright: a series that never came near it
has no record to judge it against (on NAB's development part, after its probation, 1 of 22 such points
fell outside a labelled window).

The same view in time: a run of one repeated value longer than any the series has shown (a disk writer
that stopped, a feed that froze) scores ``spatial_score`` once, at the point it passes the record, when the
record has outlived ``still_runs`` shorter runs (a young record is broken by luck: after k runs the next
breaks it about once in k) and lasted as long as ``still_min`` points of a 5-minute series. The stuck test
of the inner detector judges a run by how often the series sits at *that* value, so a rate that is often 0
never looks stuck there, however long it stays.

Each of the three goes through a :class:`Likelihood`: the mean of its last ``short`` values against the
long-run mean and deviation of that mean (exponential memory), as a Gaussian tail ``q``, reported as
``log(q) / log(1e-10)`` (``q = 1e-4`` is 0.4). The score is the largest of all five views. A score at least
``level`` is an alert; it opens a quiet period of ``quiet`` points in which scores are scaled by ``damp``,
so one anomaly is announced once (NAB counts the first detection in a window and charges every later one
outside it; people on call do the same); a score still at the level when the quiet period ends is the same
event, and the next alert waits until the score has been under the level. Nothing is reported in the first
``warmup`` points.

A series sampled faster than ``pace`` (5 minutes) has more chances per hour to look unusual by luck: per
decade faster, its alert level is ``pace_level`` higher and ``pace_surprise`` is taken off each surprise
and a value must leave its range by ``pace_spatial`` more of its width (a series every second: level 0.84
instead of 0.47, surprises under 5 count as none, out of range by 1.39 widths instead of 0.15; an
out-of-range value keeps its place above the alert level), so the false alarms per hour of a series at rest
do not grow with its sampling rate.

The output is the internal score mapped so that the alert level lands on ``threshold``, the score the worker
alerts at (``worker.anomaly_threshold``): the quieting follows the threshold the worker announces, and
whatever threshold a user picks is the one the detector was tuned at (linear below and above ``level``).

Settings were chosen on NAB's development part (artificial series and AWS CloudWatch) and the real series
recorded from our middleware (``bench/anomaly``), never on NAB's held-out categories.
"""

from __future__ import annotations

import math
import struct
from array import array

from kubestack.models.detector import MetricDetector

DAY = 86400.0
LAG_MAX = 300              # a day longer than this many points is left to the seasonal baseline
_LN_FLOOR = math.log(1e-10)
_SQRT2 = math.sqrt(2.0)
_HALF = 3.0                # MetricDetector's score is s / (s + half): turned back into the surprise s
PARAMS = ("threshold", "level", "warmup", "quiet", "damp", "memory", "short", "lag_short", "density_short",
          "lag_k", "density_k", "min_sd", "surprise_min_sd", "pace", "pace_level", "pace_surprise", "spatial",
          "spatial_score", "pace_spatial", "still_min", "still_runs")
MAGIC = b"KSLD3"
_PARAMS = f"<{len(PARAMS)}d"
_STATE = "<qqqdddddddddddd"


class Likelihood:
    """The tail probability of the mean of the last ``short`` raw scores, against that mean's own record."""

    __slots__ = ("short", "rate", "buf", "at", "total", "mean", "var", "n", "min_sd")

    def __init__(self, short: int, memory: float, min_sd: float = 0.02) -> None:
        self.short = short
        self.rate = 1.0 / memory
        self.buf = array("d", bytes(8 * short))
        self.at = 0
        self.total = 0.0
        self.mean = self.var = 0.0
        self.n = 0
        self.min_sd = min_sd          # raw scores that never moved are no evidence of a tiny spread

    def update(self, raw: float) -> float:
        """``log(q) / log(1e-10)`` in [0, 1] of the new short mean (0 at or below the long-run mean), then the
        record learns it."""
        buf, at = self.buf, self.at
        self.total = total = self.total + raw - buf[at]
        buf[at] = raw
        self.at = at + 1 if at + 1 < self.short else 0
        mean, var = self.mean, self.var
        d = total / self.short - mean
        self.n = n = self.n + 1
        a = self.rate if n * self.rate > 1.0 else 1.0 / n
        self.mean = mean + a * d
        self.var = (1.0 - a) * (var + a * d * d)
        if d <= 0.0:
            return 0.0
        sd = math.sqrt(var)
        if sd < self.min_sd:
            sd = self.min_sd
        return math.log(0.5 * math.erfc(d / (sd * _SQRT2)) + 1e-10) / _LN_FLOOR

    def to_state(self) -> bytes:
        return struct.pack("<qqddd", self.at, self.n, self.total, self.mean, self.var) + self.buf.tobytes()

    def restore(self, raw: bytes) -> int:
        """State from ``raw``; the number of bytes read."""
        head = struct.calcsize("<qqddd")
        self.at, self.n, self.total, self.mean, self.var = struct.unpack_from("<qqddd", raw)
        self.buf = array("d", raw[head:head + 8 * self.short])
        if len(self.buf) != self.short:
            raise ValueError("likelihood state is cut short")
        return head + 8 * self.short


class LikelihoodDetector:
    __slots__ = (*PARAMS, "inner", "surprise", "lagged", "dense", "n", "since_alert", "first_ts", "period",
                 "lag", "lag_at", "lag_mean", "ew_mean", "ew_var", "scale", "alert_level", "surprise_shift",
                 "density_k2", "low", "high", "spatial_level", "spatial_tol", "armed", "longest", "outlived",
                 "still_run")

    def __init__(self, threshold: float = 0.5, level: float = 0.47, warmup: int = 250, quiet: int = 300,
                 damp: float = 0.3, memory: float = 5000, short: int = 20, lag_short: int = 20,
                 density_short: int = 30, lag_k: float = 4.0, density_k: float = 3.0, min_sd: float = 0.02,
                 surprise_min_sd: float = 0.08, pace: float = 300.0, pace_level: float = 0.15,
                 pace_surprise: float = 2.0, spatial: float = 0.15, spatial_score: float = 0.6,
                 pace_spatial: float = 0.5, still_min: int = 10, still_runs: int = 50) -> None:
        if not (0.0 < threshold <= 1.0 and 0.0 < level < 1.0):
            raise ValueError(f"threshold {threshold} and level {level} must lie in (0, 1]")
        self.threshold, self.level, self.warmup, self.quiet = threshold, level, int(warmup), int(quiet)
        self.damp, self.memory, self.short, self.lag_short = damp, memory, int(short), int(lag_short)
        self.density_short, self.lag_k, self.density_k = int(density_short), lag_k, density_k
        self.density_k2 = density_k * density_k
        self.min_sd, self.surprise_min_sd = min_sd, surprise_min_sd
        self.pace, self.pace_level, self.pace_surprise = pace, pace_level, pace_surprise
        self.spatial, self.spatial_score, self.pace_spatial = spatial, spatial_score, pace_spatial
        self.still_min, self.still_runs = int(still_min), int(still_runs)
        # the inner detector never alerts (its threshold is above any score): its quieting would hide what the
        # likelihood calibrates
        self.inner = MetricDetector(threshold=2.0, quiet=0, warmup=0)
        self.surprise = Likelihood(self.short, memory, surprise_min_sd)
        self.lagged = Likelihood(self.lag_short, memory, min_sd)
        self.dense = Likelihood(self.density_short, memory, min_sd)
        self.n = 0
        self.since_alert = 1 << 30
        self.armed = True              # False while the score has not been under the level since the last alert
        self.first_ts = math.nan
        self.period = 0                # points per day once the interval is known; -1: no daily lag
        self.lag = array("f")
        self.lag_at = 0
        self.lag_mean = 0.0
        self.ew_mean = math.nan
        self.ew_var = 0.0
        self.low = self.high = math.nan
        self.longest = 0               # the longest run of one repeated value that has ended
        self.outlived = 0              # runs that ended since, each shorter
        self._set_scale(0.0)

    def _set_scale(self, scale: float) -> None:
        """``scale``: decades by which this series is sampled faster than ``pace``; a faster series has more
        chances per hour to look unusual by luck, so its alert level is higher and its surprises count less."""
        self.scale = scale
        self.alert_level = level = min(0.95, self.level + self.pace_level * scale)
        # a value out of range sits as far above the alert level as on a 5-minute series
        self.spatial_level = level + (self.spatial_score - self.level) * (1.0 - level) / (1.0 - self.level)
        self.spatial_tol = self.spatial + self.pace_spatial * scale
        self.surprise_shift = self.pace_surprise * scale
        # a record of stillness counts once it lasted as long as still_min points of a 5-minute series
        self.still_run = self.still_min * 10.0 ** scale

    def update(self, ts: float, value: float) -> float:
        """The score of this point in [0, 1], from this point and the ones before it only."""
        self.n = n = self.n + 1
        if self.period == 0:
            self._first_interval(ts, n)
        inner = self.inner
        ran = inner.run
        sc = inner.update(ts, value)
        run = inner.run
        s = _HALF * sc / (1.0 - sc) - self.surprise_shift if sc < 1.0 else 1e3
        score = self.surprise.update(s if s > 0.0 else 0.0)
        if self.period > 0:
            lagged = self._lagged(value, n)
            if lagged > score:
                score = lagged
        # beyond density_k deviations of an exponentially weighted mean: the rate of such points
        mean, var = self.ew_mean, self.ew_var
        if mean != mean:
            self.ew_mean, beyond = value, 0.0
        else:
            d = value - mean
            beyond = 1.0 if var > 0.0 and d * d > self.density_k2 * var else 0.0
            self.ew_mean = mean + 0.02 * d
            self.ew_var = 0.98 * (var + 0.02 * d * d)
        dense = self.dense.update(beyond)
        if dense > score:
            score = dense
        # beyond the range seen so far by a share of its width: a value this series never came near (a series
        # that has kept one value has no width yet: leaving it is the stuck test's to judge)
        low, high = self.low, self.high
        if value > high:
            if value - high > self.spatial_tol * (high - low) > 0.0 and n > self.warmup:
                score = max(score, self.spatial_level)
            self.high = value
        elif value < low:
            if low - value > self.spatial_tol * (high - low) > 0.0 and n > self.warmup:
                score = max(score, self.spatial_level)
            self.low = value
        elif low != low:
            self.low = self.high = value
        # still for longer than ever, once the record has outlived still_runs shorter runs: the same view in
        # time (a writer that stopped, a feed that froze); run counts the repeats of the current value
        longest = self.longest
        if run == 0:
            if ran > longest:
                self.longest, self.outlived = ran, 0
            elif ran > 0:
                self.outlived += 1
        elif (run == longest + 1 and longest >= self.still_run and self.outlived >= self.still_runs
              and n > self.warmup):
            score = max(score, self.spatial_level)
        if n <= self.warmup:
            return 0.0
        self.since_alert += 1
        level = self.alert_level
        if self.since_alert <= self.quiet:
            score *= self.damp
        elif score < level:
            self.armed = True
        elif self.armed:
            self.since_alert = 0
            self.armed = False
        else:
            # still above the level when the quiet period ends: the same event, not announced again
            score = level * 0.99
        # the alert level onto the worker's threshold, linear on each side
        threshold = self.threshold
        if score < level:
            return threshold * score / level
        return threshold + (1.0 - threshold) * (score - level) / (1.0 - level)

    def _first_interval(self, ts: float, n: int) -> None:
        """The sampling interval from the first two points: the daily lag and the pace of this series."""
        if n == 1:
            self.first_ts = ts
            return
        dt = ts - self.first_ts
        p = round(DAY / dt) if dt > 0 else 0
        self.period = p if 2 <= p <= LAG_MAX else -1
        if self.period > 0:
            self.lag = array("f", [math.nan]) * self.period
        if 0.0 < dt < self.pace:
            self._set_scale(math.log10(self.pace / dt))

    def _lagged(self, value: float, n: int) -> float:
        """The likelihood of the distance to the value a day earlier, 0 until two days are seen. In a quiet
        period the day before is kept as the reference: an anomalous day must not be tomorrow's normal."""
        period, at = self.period, self.lag_at
        old = self.lag[at]
        if old != old or self.since_alert > self.quiet:
            self.lag[at] = value
        self.lag_at = at + 1 if at + 1 < period else 0
        if old != old:
            return 0.0
        d = abs(value - old)
        m = self.lag_mean
        raw = (d / (self.lag_k * m) if d < self.lag_k * m else 1.0) if m > 0.0 else (1.0 if d > 0.0 else 0.0)
        seen = n - period
        self.lag_mean = m + (0.01 * (d - m) if seen > 100 else (d - m) / seen)
        lik = self.lagged.update(raw)
        return lik if n > 2 * period else 0.0

    def to_state(self) -> bytes:
        """Everything needed to resume exactly where this detector is, in about 3 kilobytes."""
        params = struct.pack(_PARAMS, *(float(getattr(self, p)) for p in PARAMS))
        own = struct.pack(_STATE, self.n, min(self.since_alert, 1 << 62), self.period, self.first_ts,
                          float(self.lag_at), self.lag_mean, self.ew_mean, self.ew_var, float(len(self.lag)),
                          self.scale, self.low, self.high, float(self.armed), float(self.longest),
                          float(self.outlived))
        parts = (MAGIC, params, own, self.surprise.to_state(), self.lagged.to_state(), self.dense.to_state(),
                 self.lag.tobytes(), self.inner.to_state())
        return b"".join(parts)

    @classmethod
    def from_state(cls, raw: bytes) -> LikelihoodDetector:
        """The detector ``to_state`` saved; ``ValueError`` (or ``struct.error``) for a state of another layout."""
        if not raw.startswith(MAGIC):
            raise ValueError("not a LikelihoodDetector state of this version")
        at = len(MAGIC)
        det = cls(**dict(zip(PARAMS, struct.unpack_from(_PARAMS, raw, at))))
        at += struct.calcsize(_PARAMS)
        (det.n, det.since_alert, det.period, det.first_ts, lag_at, det.lag_mean, det.ew_mean, det.ew_var,
         lag_len, scale, det.low, det.high, armed, longest, outlived) = struct.unpack_from(_STATE, raw, at)
        det.longest, det.outlived = int(longest), int(outlived)
        det.armed = armed != 0.0
        det.lag_at = int(lag_at)
        det._set_scale(scale)
        at += struct.calcsize(_STATE)
        for lik in (det.surprise, det.lagged, det.dense):
            at += lik.restore(raw[at:])
        size = 4 * int(lag_len)
        det.lag = array("f", raw[at:at + size])
        at += size
        det.inner = MetricDetector.from_state(raw[at:])
        return det
