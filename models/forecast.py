"""Time-to-exhaustion forecasts for capacity-like series (disk, memory vs limit, connections, xid age, lag).

One ``ExhaustionForecaster`` per series; pure and deterministic (same samples, same forecasts), its state a
few kilobytes of bytes::

    f = ExhaustionForecaster()
    fc = f.update(ts, used, capacity)      # -> Forecast; capacity may change from one sample to the next
    fc.exhaustion_at, fc.lower_bound       # epoch seconds (likely time, early bound) or None
    f2 = ExhaustionForecaster.from_state(f.to_state())

Per sample (microseconds): a drawdown detector finds periodic emptying (log rotation, compaction, cache
expiry) and restarts the short trend at each reset; two exponentially weighted least-squares lines
(``tau_s``, ``tau_long_s``) and the mean step on each time scale say whether the series is rising
(``trending``): on both time scales, the slope t-statistic deflated for autocorrelated residuals, or the
mean step's t-statistic, is at least ``t_min``. A seasonal series (a daily or weekly season found in the
history, looked for once a day) is rising when its deseasonalised slope is. The samples go into a bounded
history at adaptive resolution (<= ``history_points`` buckets).

A series that is not trending gets no forecast at all. A trending one is refitted with statsmodels (Holt /
damped Holt / seasonal, see :mod:`kubestack.models.forecast_fit`): a parameter search every
``search_every_s``, the fitted smoothing re-run over new data every ``refit_every_s``; between refits its
closed-form path is re-anchored on the recent samples. The likely exhaustion is where the mean path meets
the capacity, the early bound where the upper edge of the prediction interval (``z`` standard deviations)
does, or earlier where the early bound of either online line falls (the fit's interval knows the noise,
not how much the rate itself swings); both only within ``reach_s``, nothing before ``min_history_s``.

A series that has emptied before is trusted to empty again: no forecast ("sawtooth") while its smoothed
level stays at or below the peaks it turned back at, unless its longest cycle is already 1.5 times overdue
(the rotation broke: then it is an ordinary fill again).

``confidence`` = (early bound - now) / (likely time - now): 1 when the interval is tight, near 0 when the
early bound is close while the likely time is far (or the likely time is out of reach).
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from kubestack.models.forecast_fit import Fit, refilter, refit, seasonal_period
from kubestack.models.forecast_history import History
from kubestack.models.forecast_trend import EwDrift, EwTrend, Line, ResetDetector

HOUR = 3600.0
STATE_VERSION = 1
MODELS = ("holt", "damped", "ets-seasonal")
GRID_POINTS = 256
CALIB_PENDING = 8   # checks of the upper edge waiting for their time (6 at the defaults)


@dataclass(frozen=True)
class Forecast:
    exhaustion_at: float | None   # likely time the series reaches its capacity
    lower_bound: float | None     # early bound of that time (prediction interval)
    confidence: float             # in [0, 1]
    model: str                    # "trend", "holt", "damped", "ets-seasonal", "sawtooth"
    trending: bool


@dataclass(frozen=True)
class ForecastParams:
    """Defaults chosen on the dev split of bench/forecast (see its README)."""

    tau_s: float = 6 * HOUR            # time constant of the short line
    tau_long_s: float = 24 * HOUR      # ... of the long line
    t_min: float = 4.0                 # t-statistic of a significant rise
    z: float = 2.33                    # early bound: upper edge of the interval (99% one-sided)
    min_history_s: float = 24 * HOUR   # no forecast before a day of data (a daily swing looks like a fill)
    reach_s: float = 96 * HOUR         # no exhaustion foreseen further out than this
    refit_every_s: float = 1 * HOUR    # re-run of the fitted smoothing over new data
    search_every_s: float = 24 * HOUR  # parameter search (statsmodels) and look for a season
    reset_sigma: float = 8.0           # a reset falls by more than this many step-noise units...
    reset_frac: float = 0.5            # ... and by more than this share of its cycle's height
    history_points: int = 512
    step_s: float = 300.0              # first resolution of the history, doubled as it fills...
    max_step_s: float = 4800.0         # ... up to this (512 x 80 min = 28 days)
    anchor_alpha: float = 0.2          # smoothing of the fitted path's offset to the newest samples
    accel_t: float = 3.0               # t-statistic of an acceleration the early bound extrapolates
    accel_gain: float = 1.0            # ... and its multiple the bound allows for (it keeps growing)
    calib_h_s: float = 6 * HOUR        # horizon at which the early bound's upper edge is checked online...
    calib_every_s: float = 1 * HOUR    # ... from an origin this often while rising
    calib_rate: float = 0.5            # the widening grows by exp(rate) at a miss, shrinks by exp(rate * alpha)
    calib_max: float = 4.0             # ... and stays within [1, this] times z


NOTHING = Forecast(None, None, 0.0, "trend", False)


class ExhaustionForecaster:
    def __init__(self, params: ForecastParams | None = None) -> None:
        self.params = p = params or ForecastParams()
        self.trend = EwTrend(p.tau_s)
        self.long = EwTrend(p.tau_long_s)
        self.drift, self.long_drift = EwDrift(p.tau_s), EwDrift(p.tau_long_s)
        self.resets = ResetDetector(p.reset_sigma, p.reset_frac)
        self.history = History(p.history_points, p.step_s, p.max_step_s)
        self.fit: Fit | None = None
        self.first_ts = math.nan
        self.last_ts = math.nan
        self.offset = 0.0   # EW residual of the samples against the fitted path since the refit
        self.searched_at = -math.inf   # last parameter search (a full statsmodels fit)
        self.trend_since = math.nan    # first sample of the short line (the last reset)
        self.checked_at = -math.inf    # last look for a season
        self.rising = False            # the last sample found the series rising
        self.widen = 1.0               # the interval's width, learned online from its misses (>= 1: z is the floor)
        self.calib_at = -math.inf      # last origin of a check of the upper edge
        self.pending: list[tuple[float, float, float]] = []   # (due time, mean, upper edge) to check

    def update(self, ts: float, value: float, capacity: float) -> Forecast:
        p = self.params
        self._observe(ts, value)
        seasonal = self.fit is not None and bool(self.fit.period_s)
        if value >= capacity:
            return Forecast(ts, ts, 1.0, self.fit.model if self.fit else "trend", True)
        line = self.trend.line()
        young = ts - self.first_ts < p.min_history_s or ts - self.trend_since < p.tau_s / 2
        self.rising = not young and line is not None and self._rising(line)
        if not self.rising:
            if self.fit is not None and not self.fit.period_s and ts - self.fit.t0 > 4 * p.refit_every_s:
                self.fit = None
            return NOTHING
        if not seasonal and self._sawtooth(ts, line.level):
            self.rising = False
            return Forecast(None, None, 0.0, "sawtooth", False)
        likely, lower = self._linear(ts, line, capacity)
        if self.fit is None or ts - self.fit.t0 >= p.refit_every_s:
            self._refit(ts)
        model = "trend"
        bounds = [lower, self._accelerating(ts, line, self.long.line(), capacity)]
        if self.fit is not None:
            likely, lower = self._crossings(ts, capacity)
            model = self.fit.model
            # the fit's interval knows its noise, not how fast the rate itself swings: the early bound is
            # also no later than where the recent lines would fill (a rate picking up again), nor than
            # where they would if the rate kept picking up as it has (an accelerating writer)
            if self.fit.period_s:   # the long line under the daily peaks, not its mean through the swing
                bounds = [lower, self._peak_line(ts, self.long.line(), capacity)]
            else:
                bounds += [lower] + [self._linear(ts, x, capacity)[1] for x in [self.long.line()]
                                     if x is not None and x.slope > 0]
        bounds = [b for b in bounds if b is not None]
        lower = min(bounds) if bounds else None
        if likely is not None and lower is not None:
            lower = min(lower, likely)
        if likely is None or lower is None:
            return Forecast(None, None, 0.0, model, True)
        confidence = min(1.0, max(0.0, (lower - ts) / max(likely - ts, 1e-9)))
        self._schedule_check(ts, line)
        return Forecast(likely, lower, confidence, model, True)

    def _z(self) -> float:
        """z, widened by what the misses taught; not on a seasonal fit, whose bound is its peaks' (its checks
        would widen it by the profile's own misfit and bring the notice a peak too early)."""
        seasonal = self.fit is not None and bool(self.fit.period_s)
        return self.params.z * (1.0 if seasonal else self.widen)

    def _schedule_check(self, ts: float, line: Line) -> None:
        """From an origin every ``calib_every_s`` while rising: where the mean and the upper edge (of the fit, or
        of the short line, whichever is higher; none on a seasonal fit) put the series ``calib_h_s`` ahead, checked when that time comes."""
        p = self.params
        if ts - self.calib_at < p.calib_every_s or len(self.pending) >= CALIB_PENDING:
            return
        if self.fit is not None and self.fit.period_s:
            return
        self.calib_at, due, h = ts, ts + p.calib_h_s, p.calib_h_s
        mean = self.predict(due)
        uppers = [line.level + p.z * line.sigma + (line.slope + p.z * line.slope_se) * h]
        if self.fit is not None:
            fit_mean, sd = self.fit.path(np.asarray([due]))
            uppers.append(float(fit_mean[0]) + self.offset + p.z * float(sd[0]))
        if mean is not None and max(uppers) > mean:
            self.pending.append((due, mean, max(uppers)))

    def _calibrate(self, ts: float, value: float) -> None:
        """Adaptive conformal-style widening: a value above its upper edge (scaled by the current widening)
        widens the interval by exp(rate), every check it stays under narrows it by exp(rate * alpha), alpha the
        nominal miss rate of z: misses come at the nominal rate once the widening fits (writers that speed up
        make the online lines' intervals too narrow)."""
        p = self.params
        due = [c for c in self.pending if c[0] <= ts]
        if not due:
            return
        self.pending = [c for c in self.pending if c[0] > ts]
        alpha = 0.5 * math.erfc(p.z / math.sqrt(2))
        for _, mean, upper in due:
            missed = value > mean + self.widen * (upper - mean)
            self.widen *= math.exp(p.calib_rate * ((1.0 if missed else 0.0) - alpha))
            self.widen = min(max(self.widen, 1.0), p.calib_max)

    def _observe(self, ts: float, value: float) -> None:
        """The per-sample part: resets, lines, history, the fitted path's anchor, the daily season check."""
        p = self.params
        if math.isnan(self.first_ts):
            self.first_ts = self.trend_since = ts
        self.last_ts = ts
        seasonal = self.fit is not None and bool(self.fit.period_s)
        if self.resets.update(ts, value) and not seasonal:   # a seasonal fit already expects the falls
            self.trend.clear()   # the long line keeps the whole story: across cycles it stays flat
            self.drift.clear()
            self.fit = None
            self.trend_since = ts
        self.trend.update(ts, value)
        self.long.update(ts, value)
        self.drift.update(ts, value)
        self.long_drift.update(ts, value)
        self.history.add(ts, value)
        self._calibrate(ts, value)
        if self.fit is not None:   # re-anchor the fitted path on the samples that came after it
            mean, _ = self.fit.path(np.asarray([ts]))
            self.offset += p.anchor_alpha * (value - float(mean[0]) - self.offset)
        if ts - self.checked_at >= p.search_every_s and ts - self.first_ts >= p.min_history_s:
            self._season_check(ts)
        elif seasonal and ts - self.fit.t0 >= p.refit_every_s:
            self._refit(ts)   # a seasonal fit is kept current even while the series is not rising

    def predict(self, ts: float) -> float | None:
        """The forecast mean at a future ``ts``: the fitted path (a seasonal fit, or any fit while rising),
        the short line while rising without a fit, else the smoothed level (no trend claimed)."""
        if self.fit is not None and (self.rising or self.fit.period_s):
            mean, _ = self.fit.path(np.asarray([ts]))
            return float(mean[0]) + self.offset
        line = self.trend.line()
        if line is None:
            return None
        return line.level + (line.slope * (ts - self.last_ts) if self.rising else 0.0)

    def _rising(self, line: Line) -> bool:
        """A significant rise. A seasonal series: the deseasonalised slope of the fit. Otherwise both lines,
        each slope's t-statistic deflated by the lag-1 autocorrelation of its residuals (estimated from the
        step noise against the residual spread) so that a wandering series (AR noise, a smooth swing) does
        not pass for a trend, or else the mean step significant (a smooth but steady fill)."""
        if self.fit is not None and self.fit.period_s:   # the short line would only follow the swing's phase
            return self.fit.trend > 0 and self.fit.trend_t >= self.params.t_min
        long = self.long.line()
        return (line.n_eff >= 6 and long is not None and self._significant(line, self.drift)
                and self._significant(long, self.long_drift))

    def _significant(self, line: Line, drift: EwDrift) -> bool:
        """The line rises significantly: its slope, or the mean step (``drift``), at ``t_min``."""
        if line.slope <= 0:
            return False
        if drift.t() >= self.params.t_min:
            return True
        step_var = (1.2533 * self.resets.noise) ** 2
        rho = min(max(1.0 - step_var / (2 * line.sigma * line.sigma), 0.0), 0.99) if line.sigma > 0 else 0.0
        return line.slope >= self.params.t_min * line.slope_se * math.sqrt((1 + rho) / (1 - rho))

    def _season_check(self, ts: float) -> None:
        """Once a day: look for a daily or weekly season in the history, and fit it when found (before the
        series looks like rising: the season decides what rising means)."""
        self.checked_at = ts
        if self.fit is not None and self.fit.period_s:
            return
        t, y = self.history.series()
        if y.size >= 12 and seasonal_period(y, self.history.step_s):
            self.searched_at = -math.inf
            self._refit(ts)

    def _linear(self, ts: float, line: Line, capacity: float) -> tuple[float | None, float | None]:
        p = self.params
        room = capacity - line.level
        likely = ts + room / line.slope
        z = self._z()
        lower = ts + max(room - z * line.sigma, 0.0) / (line.slope + z * line.slope_se)
        return (likely if likely - ts <= p.reach_s else None), (lower if lower - ts <= p.reach_s else None)

    def _accelerating(self, ts: float, short: Line, long: Line | None, capacity: float) -> float | None:
        """Early bound of a fill whose rate picks up: the EW least-squares slope of a quadratic lags its
        derivative by 2 tau (and its level by accel tau^2), so the two lines' slopes give the acceleration
        and the current rate; the bound is where the upper edge of the extrapolated parabola meets the
        capacity. Only a significant acceleration counts (a wandering rate is covered by the lines)."""
        p = self.params
        if long is None or short.slope <= 0 or long.slope <= 0:
            return None
        gap = 2 * (p.tau_long_s - p.tau_s)
        accel = (short.slope - long.slope) / gap
        accel_se = math.hypot(short.slope_se, long.slope_se) / gap
        if accel <= p.accel_t * accel_se:
            return None
        z = self._z()
        rate = short.slope + 2 * accel * p.tau_s + z * short.slope_se
        accel = p.accel_gain * accel + z * accel_se   # the acceleration itself grows on a power-law fill
        room = capacity - (short.level + accel * p.tau_s ** 2) - z * short.sigma
        if room <= 0:
            return ts
        h = 2 * room / (rate + math.sqrt(rate * rate + 2 * accel * room))   # root of room = rate h + accel h^2/2
        return ts + h if h <= p.reach_s else None

    def _peak_line(self, ts: float, long: Line | None, capacity: float) -> float | None:
        """Early bound of a seasonal series from the long line, at the daily (weekly) peaks rather than
        through the swing's mean: the swing's share of the line (the same weighted fit of the profile over
        the past) comes off its level and slope, the profile is added back along the path, and the spread is
        the fit's (the line's own residuals are mostly the swing)."""
        if long is None:
            return None
        p = self.params
        ages = np.arange(0.0, 6 * p.tau_long_s, self.fit.step_s)
        w, x = np.exp(-ages / p.tau_long_s), -ages
        swing = self.fit.seasonal(ts + x)
        xm, sm = np.average(x, weights=w), np.average(swing, weights=w)
        slope = float(np.sum(w * (x - xm) * (swing - sm)) / np.sum(w * (x - xm) ** 2))
        level = sm - slope * xm
        rate = long.slope - slope
        if rate <= 0:
            return None
        noise = math.sqrt(self.fit.sigma2)   # the line's own spread is mostly the swing
        dt = max(self.fit.step_s, p.reach_s / GRID_POINTS)
        h = dt * np.arange(0, int(p.reach_s / dt) + 1)
        z = self._z()
        upper = long.level - level + z * noise + (rate + z * long.slope_se) * h + self.fit.seasonal(ts + h)
        return _first_crossing(ts + h, upper, capacity)

    def _sawtooth(self, ts: float, level: float) -> bool:
        """True while the series behaves as one that empties: reset within 1.5 of its longest cycle and the
        smoothed level not above the peaks it turned back at."""
        if not self.resets.resets:
            return False
        last_reset, longest = self.resets.resets[-1][0], self.resets.longest_cycle()
        if ts - last_reset > 1.5 * longest:
            return False   # overdue: the emptying stopped
        return level <= max(peak for _, peak, _ in self.resets.resets)

    def _refit(self, ts: float) -> None:
        since = self.resets.resets[-1][0] if self.resets.resets else -math.inf
        t, y = self.history.series()
        if self.fit is not None and ts - self.searched_at < self.params.search_every_s:
            keep = t >= since if not self.fit.period_s else np.ones(t.size, dtype=bool)
            self.fit = refilter(self.fit, t[keep], y[keep], self.history.step_s) if keep.sum() >= 4 else None
        else:
            self.fit = refit(t, y, self.history.step_s, since) if y.size else None
            self.searched_at = ts
        self.offset = 0.0
        if self.fit is not None:   # anchor on the samples after the last closed bucket at once
            mean, _ = self.fit.path(np.asarray([ts]))
            self.offset = self.trend.line().level - float(mean[0]) if self.trend.line() else 0.0

    def _crossings(self, ts: float, capacity: float) -> tuple[float | None, float | None]:
        fit, p = self.fit, self.params
        dt = max(fit.step_s, p.reach_s / GRID_POINTS)
        grid = ts + dt * np.arange(0, int(p.reach_s / dt) + 1)
        mean, sd = fit.path(grid)
        mean = mean + self.offset
        return _first_crossing(grid, mean, capacity), _first_crossing(grid, mean + self._z() * sd, capacity)

    def to_state(self) -> bytes:
        fit = self.fit
        fit_part = () if fit is None else (
            float(MODELS.index(fit.model)), fit.t0, fit.step_s, fit.level, fit.trend, fit.alpha, fit.beta,
            fit.phi, fit.sigma2, fit.period_s, fit.trend_t, *fit.profile)
        parts = (self.trend.to_tuple(), self.long.to_tuple(), self.drift.to_tuple() + self.long_drift.to_tuple(),
                 self.resets.to_tuple(), self.history.to_tuple(), fit_part,
                 (self.first_ts, self.last_ts, self.offset, self.searched_at, self.trend_since, self.checked_at,
                  float(self.rising), self.widen, self.calib_at, *(x for check in self.pending for x in check)))
        out = bytearray(struct.pack("<B", STATE_VERSION))
        for part in parts:
            out += struct.pack(f"<H{len(part)}d", len(part), *part)
        return zlib.compress(bytes(out), 6)

    @classmethod
    def from_state(cls, data: bytes, params: ForecastParams | None = None) -> ExhaustionForecaster:
        raw = zlib.decompress(data)
        if raw[0] != STATE_VERSION:
            raise ValueError(f"forecaster state version {raw[0]} is not {STATE_VERSION}")
        parts, pos = [], 1
        for _ in range(7):
            (n,) = struct.unpack_from("<H", raw, pos)
            parts.append(struct.unpack_from(f"<{n}d", raw, pos + 2))
            pos += 2 + 8 * n
        self = cls(params)
        self.trend.load(parts[0])
        self.long.load(parts[1])
        self.drift.load(parts[2][:6])
        self.long_drift.load(parts[2][6:])
        self.resets.load(parts[3])
        self.history.load(parts[4])
        f = parts[5]
        self.fit = None if not f else Fit(MODELS[int(f[0])], *f[1:10], tuple(f[11:]), f[10])
        (self.first_ts, self.last_ts, self.offset, self.searched_at, self.trend_since,
         self.checked_at, rising) = parts[6][:7]
        self.rising = bool(rising)
        if len(parts[6]) > 7:   # a state from before the online widening has none
            self.widen, self.calib_at = parts[6][7:9]
            rest = parts[6][9:]
            self.pending = [tuple(rest[i:i + 3]) for i in range(0, len(rest), 3)]
        return self


def _first_crossing(grid: np.ndarray, values: np.ndarray, capacity: float) -> float | None:
    above = values >= capacity
    if not above.any():
        return None
    i = int(np.argmax(above))
    if i == 0:
        return float(grid[0])
    v0, v1 = values[i - 1], values[i]
    return float(grid[i - 1] + (grid[i] - grid[i - 1]) * (capacity - v0) / (v1 - v0))
