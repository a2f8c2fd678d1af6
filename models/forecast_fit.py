"""The periodic refit of the exhaustion forecaster: seasonality detection and a statsmodels ETS fit.

``refit(t, y, step_s)`` takes the bucketed history (evenly spaced) and returns a ``Fit``: a handful of numbers
from which the mean path and its prediction interval are computed in closed form at any horizon, so that
the fit is cheap to keep in a state and to re-apply at every sample until the next refit.

- Seasonality: the linearly detrended series is seasonal with period P (a week, then a day, when at least
  two periods are held) if differencing at lag P leaves much less variance than differencing at P/2. A
  smooth non-seasonal curve fails this (its differences grow with the lag), a daily swing passes it.
- A seasonal series is deseasonalised by its phase profile (mean of the detrended series per phase bin);
  the trend model runs on the rest and the profile is added back to the forecast ("ets-seasonal").
- The trend of a seasonal series is the least-squares slope of the deseasonalised history (with a
  t-statistic deflated for autocorrelation), not Holt's local trend state, which chases the part of the
  swing the profile misses (a weekend in a daily profile).
- Trend: additive-error ETS with additive trend, undamped ("holt") and damped ("damped"), the lower AIC
  wins. Fits are bounded (``MAX_FIT_POINTS`` most recent points, ``maxiter``); convergence warnings are
  silenced, a failed fit returns None (the online trend then stands in).

Forecast variance of additive-error Holt / damped Holt (Hyndman et al., *Forecasting with Exponential
Smoothing*, class 1): ``var(h) = sigma2 * (1 + sum_{j<h} (alpha + alpha*beta*phi_j)^2)``, phi_j = phi+..+phi^j.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

DAY, WEEK = 86_400.0, 7 * 86_400.0
MAX_FIT_POINTS = 256
MIN_FIT_STEP_S = 1800.0   # damping and smoothing are per step: a 5-minute step would damp a trend in hours
MAX_PROFILE_BINS = 168


@dataclass(frozen=True)
class Fit:
    model: str          # "holt", "damped", "ets-seasonal"
    t0: float           # time of the last fitted point (the forecast origin)
    step_s: float
    level: float
    trend: float        # per step
    alpha: float
    beta: float
    phi: float
    sigma2: float
    period_s: float     # 0 when not seasonal
    profile: tuple[float, ...] = ()
    trend_t: float = math.inf   # seasonal: t-statistic of the growth (deflated for autocorrelation)

    def damp_sum(self, h: np.ndarray) -> np.ndarray:
        """phi + phi^2 + ... + phi^h for real h >= 0 (h when undamped)."""
        if self.phi >= 1.0:
            return h
        return self.phi * (1.0 - self.phi ** h) / (1.0 - self.phi)

    def seasonal(self, ts: np.ndarray) -> np.ndarray:
        if not self.profile:
            return np.zeros_like(ts)
        bins = len(self.profile)
        index = np.floor((np.mod(ts, self.period_s) / self.period_s) * bins).astype(int) % bins
        return np.asarray(self.profile)[index]

    def path(self, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the forecast at times ``ts`` (all after ``t0``)."""
        h = np.maximum((ts - self.t0) / self.step_s, 0.0)
        mean = self.level + self.trend * self.damp_sum(h) + self.seasonal(ts)
        k = np.floor(h)   # whole steps ahead: sum of c_j^2 for j < k, c_j = alpha + alpha*beta*phi_j
        if self.phi >= 1.0:
            c0, c1 = self.alpha, self.alpha * self.beta
            j = np.maximum(k - 1, 0)   # sum_{j=1}^{k-1} (c0 + c1 j)^2
            s = j * c0 * c0 + c0 * c1 * j * (j + 1) + c1 * c1 * j * (j + 1) * (2 * j + 1) / 6
        else:
            s = _damped_var_sum(self.alpha, self.beta, self.phi, k)
        return mean, np.sqrt(self.sigma2 * (1.0 + s))


def _damped_var_sum(alpha: float, beta: float, phi: float, k: np.ndarray) -> np.ndarray:
    top = int(k.max()) if k.size else 0
    j = np.arange(1, max(top, 1))
    c = alpha + alpha * beta * phi * (1 - phi ** j) / (1 - phi)
    cum = np.concatenate(([0.0, 0.0], np.cumsum(c * c)))
    return cum[np.clip(k.astype(int), 0, cum.size - 1)]


def coarsen(t: np.ndarray, y: np.ndarray, step_s: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Means of groups of consecutive points, so that the step is at least ``MIN_FIT_STEP_S``; the groups
    end at the last point (the newest data is never left out)."""
    k = max(1, int(round(MIN_FIT_STEP_S / step_s)))
    if k == 1:
        return t, y, step_s
    n = (y.size // k) * k
    t, y = t[y.size - n:], y[y.size - n:]
    return t.reshape(-1, k).mean(axis=1), y.reshape(-1, k).mean(axis=1), step_s * k


def seasonal_period(y: np.ndarray, step_s: float) -> float:
    """WEEK or DAY when the detrended series repeats at that period, else 0."""
    if y.size < 8:
        return 0.0
    x = np.arange(y.size, dtype=float)
    r = y - np.polyval(np.polyfit(x, y, 1), x)
    for period in (WEEK, DAY):
        lag = int(round(period / step_s))
        if lag < 4 or y.size < 2 * lag:
            continue
        full = np.var(r[lag:] - r[:-lag])
        half = np.var(r[lag // 2:] - r[:-(lag // 2)])
        if half > 0 and full < 0.5 * half:
            return period
    return 0.0


def phase_profile(t: np.ndarray, y: np.ndarray, period_s: float, step_s: float) -> tuple[float, ...]:
    bins = int(min(round(period_s / step_s), MAX_PROFILE_BINS))
    x = np.arange(y.size, dtype=float)
    r = y - np.polyval(np.polyfit(x, y, 1), x)
    index = np.floor((np.mod(t, period_s) / period_s) * bins).astype(int) % bins
    counts = np.bincount(index, minlength=bins)
    sums = np.bincount(index, weights=r, minlength=bins)
    profile = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    return tuple(float(v) for v in profile - profile[counts > 0].mean())


def refit(t: np.ndarray, y: np.ndarray, step_s: float, since: float = -math.inf, maxiter: int = 40) -> Fit | None:
    """The better of Holt and damped Holt on ``y`` (deseasonalised when seasonal); None if it cannot fit.

    Seasonality is looked for in the whole history; a series that is not seasonal is fitted from ``since``
    on (its last reset). The history is first averaged to steps of at least ``MIN_FIT_STEP_S``."""
    t, y, step_s = coarsen(t, y, step_s)
    period = seasonal_period(y, step_s) if y.size >= 12 else 0.0
    profile = phase_profile(t, y, period, step_s) if period else ()
    if not period:
        t, y = t[t >= since], y[t >= since]
    if y.size < 12:
        return None
    base = Fit("holt", float(t[-1]), step_s, 0, 0, 0, 0, 1, 0, period, profile)
    z = (y - base.seasonal(t))[-MAX_FIT_POINTS:]
    best = None
    for damped in (False, True):
        result = _fit_ets(z, damped, maxiter)
        if result is not None and (best is None or result[0] < best[0]):
            best = result
    if best is None:
        return None
    _, damped, level, trend, alpha, beta, phi, sigma2 = best
    trend_t = math.inf
    if period:
        (trend, trend_t), phi = growth(y - base.seasonal(t), step_s), 1.0
    model = "ets-seasonal" if period else ("damped" if damped else "holt")
    return Fit(model, float(t[-1]), step_s, level, trend, alpha, beta, phi, sigma2, period, profile, trend_t)


def _fit_ets(z: np.ndarray, damped: bool, maxiter: int) -> tuple | None:
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    scale = float(np.std(z)) or 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = ETSModel(z / scale, error="add", trend="add", damped_trend=damped).fit(disp=False,
                                                                                         maxiter=maxiter)
        except (ValueError, np.linalg.LinAlgError) as exc:
            log.debug("ETS fit failed (damped=%s): %s", damped, exc)
            return None
    params = dict(zip(res.param_names, res.params))
    level, trend = res.states[-1][:2]
    sigma2 = float(np.mean(np.square(res.resid[2:]))) if z.size > 4 else float(res.mse)
    if not all(math.isfinite(v) for v in (res.aic, level, trend, sigma2)):
        return None
    return (float(res.aic), damped, float(level) * scale, float(trend) * scale, float(params["smoothing_level"]),
            float(params["smoothing_trend"]) / max(float(params["smoothing_level"]), 1e-9),
            float(params.get("damping_trend", 1.0)), sigma2 * scale * scale)


def refilter(fit: Fit, t: np.ndarray, y: np.ndarray, step_s: float) -> Fit:
    """``fit``'s smoothing parameters run again over newer data: fresh level, trend and variance, no search.
    ``step_s`` is the history's step now (it doubles as the history grows; the smoothing is kept per step).

    The cheap step between two parameter searches (a Python loop over at most ``MAX_FIT_POINTS`` points).
    """
    t, y, step_s = coarsen(t, y, step_s)
    z = (y - fit.seasonal(t))[-MAX_FIT_POINTS:]
    if z.size < 4:
        return fit
    alpha, beta, phi = fit.alpha, fit.alpha * fit.beta, fit.phi
    slope, intercept = np.polyfit(np.arange(z.size, dtype=float), z, 1)   # the initial states
    level, trend = float(intercept), float(slope)
    sq, n = 0.0, 0
    for i, value in enumerate(z[1:].tolist()):
        expected = level + phi * trend
        error = value - expected
        level, trend = expected + alpha * error, phi * trend + beta * error
        if i >= 2:
            sq, n = sq + error * error, n + 1
    sigma2 = sq / n if n else fit.sigma2
    trend_t = fit.trend_t
    if fit.period_s:
        trend, trend_t = growth(y - fit.seasonal(t), step_s)
    return Fit(fit.model, float(t[-1]), step_s, level, trend, fit.alpha, fit.beta, fit.phi, sigma2,
               fit.period_s, fit.profile, trend_t)


def growth(z: np.ndarray, step_s: float) -> tuple[float, float]:
    """(slope per step, t-statistic) of the least-squares line through a deseasonalised series; the
    t-statistic is deflated by the lag-1 autocorrelation of the residuals (what the profile misses, e.g. a
    weekend in a daily profile, comes in runs)."""
    x = np.arange(z.size, dtype=float)
    slope, intercept = np.polyfit(x, z, 1)
    r = z - (slope * x + intercept)
    rho = float(np.clip(np.corrcoef(r[:-1], r[1:])[0, 1], 0.0, 0.99)) if z.size > 3 and r.std() > 0 else 0.0
    se = math.sqrt(float(np.mean(r * r)) / float(np.sum((x - x.mean()) ** 2))) if z.size > 2 else math.inf
    t = slope / (se * math.sqrt((1 + rho) / (1 - rho))) if se > 0 else math.inf
    return float(slope), float(t)
