"""The compiled step of :class:`~kubestack.models.bank.DetectorBank`: one new point for each of a set of rows,
the same arithmetic as :meth:`LikelihoodDetector.update <kubestack.models.likelihood.LikelihoodDetector.update>`
and the parts it wraps (``MetricDetector``, ``Baseline``, ``TailModel``, ``ValueTable``, ``Recurrence``),
operation for operation in the same order, so the scores are the same bits.

A row's state lives in five arrays, one row per series: ``F`` (float64 scalars, the tail models' counts and the
value table), ``I`` (int64 counters), ``LB`` (the three likelihoods' ring buffers), ``PROF`` (the baseline's
float32 day profiles) and ``LAG`` (the float32 day of values the daily lag compares with). The column numbers
below are the layout; :mod:`kubestack.models.bank_state` reads and writes a row as the detector's state bytes.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# ---- F: float64 columns -------------------------------------------------------------------------------------
O_FIRST_TS, O_LAG_MEAN, O_EW_MEAN, O_EW_VAR, O_SCALE, O_LOW, O_HIGH = 0, 1, 2, 3, 4, 5, 6
O_ALERT_LEVEL, O_SPATIAL_LEVEL, O_SPATIAL_TOL, O_SURPRISE_SHIFT, O_STILL_RUN = 7, 8, 9, 10, 11
LK = 12                          # three likelihoods (surprise, lagged, dense): total, mean, var each
M_CUS_POS, M_CUS_NEG, M_VAR, M_PREV, M_REPEAT, M_ALERT_S, M_STAY, M_WEIGHT, M_TOTAL = range(21, 30)
T_POINT, T_SHIFT, T_SPREAD, T_STUCK = 30, 42, 52, 59      # tail counts: 12, 10, 7, 13 levels
V_KEYS, V_W, V_PROBE, V_PROBE_W = 72, 78, 90, 91          # value table: 6 keys, 6 + 6 weights, the probe
C_LAST, C_ANCHOR, C_GAP, C_ON_TIME, C_SIZE = 92, 93, 94, 95, 96
B_FIRST_TS, B_LEVEL, B_SLEVEL, B_SCALE, B_SSCALE, B_QUANTUM = 97, 98, 99, 100, 101, 102
B_PREV, B_PREV_TS, B_COUNTED, B_SLOW, B_DAY_START = 103, 104, 105, 106, 107
NF = 108
# ---- I: int64 columns ---------------------------------------------------------------------------------------
O_N, O_SINCE, O_PERIOD, O_LAG_AT, O_ARMED, O_LONGEST, O_OUTLIVED = 0, 1, 2, 3, 4, 5, 6
LK_AT, LK_N = 7, 10              # three each
M_N, M_RUN, M_SINCE, C_BEATS = 13, 14, 15, 16
B_N, B_SEEN, B_DAY_BASE, B_DAY_LAST = 17, 18, 20, 21     # B_SEEN: weekday, weekend
NI = 22
# ---- P: parameters, one set for the bank --------------------------------------------------------------------
(P_THRESHOLD, P_LEVEL, P_WARMUP, P_QUIET, P_DAMP, P_MEMORY, P_SHORT, P_LAG_SHORT, P_DENSITY_SHORT, P_LAG_K,
 P_DENSITY_K, P_MIN_SD, P_SURPRISE_MIN_SD, P_PACE, P_PACE_LEVEL, P_PACE_SURPRISE, P_SPATIAL, P_SPATIAL_SCORE,
 P_PACE_SPATIAL, P_STILL_MIN, P_STILL_RUNS) = range(21)
(Q_MEMORY, Q_THRESHOLD, Q_QUIET, Q_WARMUP, Q_K, Q_ALPHA, Q_PRIOR, Q_HALF, Q_LEAK, Q_ESCALATE, Q_REL, Q_SLOW_K,
 Q_FAMILIAR, Q_BURST_Z, Q_CYCLE_CAP, Q_STAY_PRIOR) = range(21, 37)
Q_SCALE_ALPHA, Q_GAMMA, Q_GROW = 37, 38, 39    # Q_GROW: 2 ** (1 / memory), as the detector keeps it
NP = 40
# tail ladders in LAD (rows: levels, log levels, reference probabilities), each model's span of columns
LAD_POINT, LAD_SHIFT, LAD_SPREAD, LAD_STUCK, LAD_END = 0, 12, 22, 29, 42

DAY = 86400.0
LAG_MAX = 300
BINS = 48
CLIP = 4.0
BINS_PER_S = BINS / DAY
SLOW = 0.005
SLOW_N = 1.0 / SLOW
RESCALE = 1e150
SLOTS = 6
INV_LN10 = 1.0 / math.log(10.0)
LN_FLOOR = math.log(1e-10)
SQRT2 = math.sqrt(2.0)
HALF = 3.0
HOLD, MULTIPLES, MIN_GAP, MAX_PERIOD, LARGER, KNOWN = 3, 4, 8, 3600.0, 2.0, 1


@njit(cache=True)
def update_rows(rows, ts, values, out, used, P, LAD, SLOPES, F, I, LB, PROF, LAG):
    """Score ``values[i]`` at ``ts[i]`` for row ``rows[i]`` into ``out[i]``, in order (a row may repeat);
    ``IndexError`` before anything changes if a row is not one of the ``used`` first ones."""
    for i in range(rows.shape[0]):
        if not 0 <= rows[i] < used:
            raise IndexError("a row outside the bank")
    for i in range(rows.shape[0]):
        out[i] = _likelihood_update(rows[i], ts[i], values[i], P, LAD, SLOPES, F, I, LB, PROF, LAG)


@njit(cache=True)
def _likelihood_update(r, ts, value, P, LAD, SLOPES, F, I, LB, PROF, LAG):
    n = I[r, O_N] + 1
    I[r, O_N] = n
    if I[r, O_PERIOD] == 0:
        _first_interval(r, ts, n, P, F, I, LAG)
    ran = I[r, M_RUN]
    sc = _metric_update(r, ts, value, P, LAD, SLOPES, F, I, PROF)
    run = I[r, M_RUN]
    s = HALF * sc / (1.0 - sc) - F[r, O_SURPRISE_SHIFT] if sc < 1.0 else 1e3
    short = int(P[P_SHORT])
    lag_short = int(P[P_LAG_SHORT])
    score = _lik(r, 0, 0, short, P, P[P_SURPRISE_MIN_SD], s if s > 0.0 else 0.0, F, I, LB)
    period = I[r, O_PERIOD]
    if period > 0:
        lagged = _lagged(r, value, n, period, short, lag_short, P, F, I, LB, LAG)
        if lagged > score:
            score = lagged
    mean, var = F[r, O_EW_MEAN], F[r, O_EW_VAR]
    if mean != mean:
        F[r, O_EW_MEAN] = value
        beyond = 0.0
    else:
        d = value - mean
        dk = P[P_DENSITY_K]
        beyond = 1.0 if var > 0.0 and d * d > dk * dk * var else 0.0
        F[r, O_EW_MEAN] = mean + 0.02 * d
        F[r, O_EW_VAR] = 0.98 * (var + 0.02 * d * d)
    dense = _lik(r, 2, short + lag_short, int(P[P_DENSITY_SHORT]), P, P[P_MIN_SD], beyond, F, I, LB)
    if dense > score:
        score = dense
    warm = n > P[P_WARMUP]
    low, high = F[r, O_LOW], F[r, O_HIGH]
    if value > high:
        if value - high > F[r, O_SPATIAL_TOL] * (high - low) > 0.0 and warm:
            score = max(score, F[r, O_SPATIAL_LEVEL])
        F[r, O_HIGH] = value
    elif value < low:
        if low - value > F[r, O_SPATIAL_TOL] * (high - low) > 0.0 and warm:
            score = max(score, F[r, O_SPATIAL_LEVEL])
        F[r, O_LOW] = value
    elif low != low:
        F[r, O_LOW] = value
        F[r, O_HIGH] = value
    longest = I[r, O_LONGEST]
    if run == 0:
        if ran > longest:
            I[r, O_LONGEST] = ran
            I[r, O_OUTLIVED] = 0
        elif ran > 0:
            I[r, O_OUTLIVED] += 1
    elif (run == longest + 1 and longest >= F[r, O_STILL_RUN] and I[r, O_OUTLIVED] >= P[P_STILL_RUNS]
          and warm):
        score = max(score, F[r, O_SPATIAL_LEVEL])
    if not warm:
        return 0.0
    since = I[r, O_SINCE] + 1
    I[r, O_SINCE] = since
    level = F[r, O_ALERT_LEVEL]
    if since <= P[P_QUIET]:
        score *= P[P_DAMP]
    elif score < level:
        I[r, O_ARMED] = 1
    elif I[r, O_ARMED] != 0:
        I[r, O_SINCE] = 0
        I[r, O_ARMED] = 0
    else:
        score = level * 0.99
    threshold = P[P_THRESHOLD]
    if score < level:
        return threshold * score / level
    return threshold + (1.0 - threshold) * (score - level) / (1.0 - level)


@njit(cache=True)
def set_scale(r, scale, P, F):
    """``LikelihoodDetector._set_scale`` for row ``r``."""
    F[r, O_SCALE] = scale
    lv = P[P_LEVEL]
    level = min(0.95, lv + P[P_PACE_LEVEL] * scale)
    F[r, O_ALERT_LEVEL] = level
    F[r, O_SPATIAL_LEVEL] = level + (P[P_SPATIAL_SCORE] - lv) * (1.0 - level) / (1.0 - lv)
    F[r, O_SPATIAL_TOL] = P[P_SPATIAL] + P[P_PACE_SPATIAL] * scale
    F[r, O_SURPRISE_SHIFT] = P[P_PACE_SURPRISE] * scale
    F[r, O_STILL_RUN] = P[P_STILL_MIN] * 10.0 ** scale


@njit(cache=True)
def _round_half_even(x):
    """Python's ``round`` of a non-negative float."""
    f = math.floor(x)
    d = x - f
    if d > 0.5 or (d == 0.5 and f % 2.0 == 1.0):
        f += 1.0
    return f


@njit(cache=True)
def _first_interval(r, ts, n, P, F, I, LAG):
    if n == 1:
        F[r, O_FIRST_TS] = ts
        return
    dt = ts - F[r, O_FIRST_TS]
    p = _round_half_even(DAY / dt) if dt > 0 else 0.0
    period = int(p) if 2.0 <= p <= LAG_MAX else -1
    I[r, O_PERIOD] = period
    if period > 0:
        LAG[r, :period] = np.nan
    if 0.0 < dt < P[P_PACE]:
        set_scale(r, math.log10(P[P_PACE] / dt), P, F)


@njit(cache=True)
def _lagged(r, value, n, period, short, lag_short, P, F, I, LB, LAG):
    at = I[r, O_LAG_AT]
    old = np.float64(LAG[r, at])
    if old != old or I[r, O_SINCE] > P[P_QUIET]:
        LAG[r, at] = value
    I[r, O_LAG_AT] = at + 1 if at + 1 < period else 0
    if old != old:
        return 0.0
    d = abs(value - old)
    m = F[r, O_LAG_MEAN]
    lag_k = P[P_LAG_K]
    if m > 0.0:
        raw = d / (lag_k * m) if d < lag_k * m else 1.0
    else:
        raw = 1.0 if d > 0.0 else 0.0
    seen = n - period
    F[r, O_LAG_MEAN] = m + (0.01 * (d - m) if seen > 100 else (d - m) / seen)
    lik = _lik(r, 1, short, lag_short, P, P[P_MIN_SD], raw, F, I, LB)
    return lik if n > 2 * period else 0.0


@njit(cache=True)
def _lik(r, k, off, short, P, min_sd, raw, F, I, LB):
    """``Likelihood.update`` of likelihood ``k`` of row ``r``, its buffer at ``LB[r, off:off + short]``."""
    at = I[r, LK_AT + k]
    c = LK + 3 * k
    total = F[r, c] + raw - LB[r, off + at]
    F[r, c] = total
    LB[r, off + at] = raw
    I[r, LK_AT + k] = at + 1 if at + 1 < short else 0
    mean, var = F[r, c + 1], F[r, c + 2]
    d = total / short - mean
    n = I[r, LK_N + k] + 1
    I[r, LK_N + k] = n
    rate = 1.0 / P[P_MEMORY]
    a = rate if n * rate > 1.0 else 1.0 / n
    F[r, c + 1] = mean + a * d
    F[r, c + 2] = (1.0 - a) * (var + a * d * d)
    if d <= 0.0:
        return 0.0
    sd = math.sqrt(var)
    if sd < min_sd:
        sd = min_sd
    return math.log(0.5 * math.erfc(d / (sd * SQRT2)) + 1e-10) / LN_FLOOR


@njit(cache=True)
def _metric_update(r, ts, value, P, LAD, SLOPES, F, I, PROF):
    """``MetricDetector.update`` of row ``r``."""
    prev_ts = F[r, B_PREV_TS]
    z = _baseline_update(r, ts, value, P, F, I, PROF)
    n = I[r, M_N] + 1
    I[r, M_N] = n
    az = z if z >= 0 else -z
    c = 4.0 if z > 4.0 else -4.0 if z < -4.0 else z
    leak, k = P[Q_LEAK], P[Q_K]
    pos = leak * F[r, M_CUS_POS] + c - k
    neg = leak * F[r, M_CUS_NEG] - c - k
    pos = pos if pos > 0.0 else 0.0
    neg = neg if neg > 0.0 else 0.0
    F[r, M_CUS_POS] = pos
    F[r, M_CUS_NEG] = neg
    cus = pos if pos > neg else neg
    var = F[r, M_VAR] + 0.1 * ((az if az < 6.0 else 6.0) - F[r, M_VAR])
    F[r, M_VAR] = var
    same = value == F[r, M_PREV]
    F[r, M_PREV] = value
    total = F[r, M_TOTAL]
    w = F[r, M_WEIGHT] * P[Q_GROW]
    F[r, M_WEIGHT] = w
    F[r, M_TOTAL] = total + w
    share = _values_observe(r, value, same, w, total, F) if total > 0.0 else 0.0
    total += w
    run = 0.0
    repeat = F[r, M_REPEAT]
    if same:
        rr = I[r, M_RUN] + 1
        I[r, M_RUN] = rr
        if rr == 1:
            F[r, M_STAY] = _values_stay(r, value, repeat, P[Q_STAY_PRIOR] * w, F)
        p = F[r, M_STAY]
        if 2 * (rr + 1) < n and p > 0.0:
            if p < repeat:
                p = repeat
            run = rr * -math.log10(1e-4 if p < 1e-4 else 0.999 if p > 0.999 else p)
    else:
        I[r, M_RUN] = 0
    prior = P[Q_PRIOR]
    s = 0.0
    if az >= 3.0:
        s = _surprise(r, T_POINT, LAD_POINT, LAD_SHIFT, SLOPES[0], az, w, total, prior, LAD, F)
        if (az >= P[Q_BURST_Z] and _burst(r, ts, ts - prev_ts, abs(value - F[r, B_LEVEL]), F, I)
                and s > P[Q_CYCLE_CAP]):
            s = P[Q_CYCLE_CAP]
        _add(r, T_POINT, LAD_POINT, LAD_SHIFT, az, w, LAD, F)
    if cus >= 4.0:
        s2 = _surprise(r, T_SHIFT, LAD_SHIFT, LAD_SPREAD, SLOPES[1], cus, w, total, prior, LAD, F)
        if s2 > s:
            s = s2
        _add(r, T_SHIFT, LAD_SHIFT, LAD_SPREAD, cus, w, LAD, F)
    if var >= 1.6:
        s2 = _surprise(r, T_SPREAD, LAD_SPREAD, LAD_STUCK, SLOPES[2], var, w, total, prior, LAD, F)
        if s2 > s:
            s = s2
        _add(r, T_SPREAD, LAD_SPREAD, LAD_STUCK, var, w, LAD, F)
    if s > 0.0 and share >= P[Q_FAMILIAR]:
        cap = -math.log10(share)
        if s > cap:
            s = cap
    if run >= 1.0:
        s2 = _surprise(r, T_STUCK, LAD_STUCK, LAD_END, SLOPES[3], run, w, total, prior, LAD, F)
        if run < s2:
            s2 = run
        if s2 > s:
            s = s2
        _add(r, T_STUCK, LAD_STUCK, LAD_END, run, w, LAD, F)
    F[r, M_REPEAT] = repeat + 0.01 * ((1.0 if same else 0.0) - repeat)
    if w > RESCALE:
        _rescale(r, w, F)
    score = s / (s + P[Q_HALF])
    since = I[r, M_SINCE] + 1
    I[r, M_SINCE] = since
    if since <= P[Q_QUIET] and s <= P[Q_ESCALATE] * F[r, M_ALERT_S]:
        score *= 0.5
    elif score >= P[Q_THRESHOLD]:
        if run > 0.0:
            F[r, M_STAY] = 0.0
        I[r, M_SINCE] = 0
        F[r, M_ALERT_S] = s
        F[r, M_CUS_POS] = 0.0
        F[r, M_CUS_NEG] = 0.0
    return score if n > P[Q_WARMUP] else 0.0


@njit(cache=True)
def _reach(lo, hi, v, LAD):
    """``bisect_right`` of ``v`` in the ladder ``LAD[0, lo:hi]``."""
    j = lo
    while j < hi and not (v < LAD[0, j]):
        j += 1
    return j - lo


@njit(cache=True)
def _surprise(r, col, lo, hi, slope, v, weight, total, prior, LAD, F):
    """``TailModel.surprise``: counts at ``F[r, col:]``, ladder ``LAD[:, lo:hi]``."""
    j = _reach(lo, hi, v, LAD) - 1
    w = weight * prior
    total += w
    lp = math.log((F[r, col + j] + w * LAD[2, lo + j]) / total)
    if j == hi - lo - 1:
        lp += slope * (math.log(v) - LAD[1, lo + j])
    else:
        frac = (math.log(v) - LAD[1, lo + j]) / (LAD[1, lo + j + 1] - LAD[1, lo + j])
        lp += (math.log((F[r, col + j + 1] + w * LAD[2, lo + j + 1]) / total) - lp) * frac
    return -lp * INV_LN10 if lp < 0 else 0.0


@njit(cache=True)
def _add(r, col, lo, hi, v, w, LAD, F):
    for j in range(_reach(lo, hi, v, LAD)):
        F[r, col + j] += w


@njit(cache=True)
def _rescale(r, w, F):
    for j in range(T_POINT, V_KEYS):
        F[r, j] /= w
    for j in range(V_W, V_W + 2 * SLOTS):
        F[r, j] /= w
    F[r, V_PROBE_W] /= w
    F[r, M_TOTAL] /= w
    F[r, M_WEIGHT] = 1.0


@njit(cache=True)
def _slot(r, x, F):
    for j in range(SLOTS):
        if F[r, V_KEYS + j] == x:
            return j
    return -1


@njit(cache=True)
def _values_observe(r, x, same, w, total, F):
    """``ValueTable.observe``."""
    j = _slot(r, x, F)
    if j < 0:
        if x != F[r, V_PROBE]:
            F[r, V_PROBE] = x
            F[r, V_PROBE_W] = w
            return 0.0
        j = 0
        for k in range(1, SLOTS):
            if F[r, V_W + k] < F[r, V_W + j]:
                j = k
        F[r, V_KEYS + j] = x
        F[r, V_W + j] = F[r, V_PROBE_W]
        F[r, V_W + SLOTS + j] = 0.0
        F[r, V_PROBE] = np.nan
    share = F[r, V_W + j] / total
    F[r, V_W + j] += w
    if same:
        F[r, V_W + SLOTS + j] += w
    return share


@njit(cache=True)
def _values_stay(r, x, prior_stay, prior_w, F):
    j = _slot(r, x, F)
    if j < 0:
        return prior_stay
    return (F[r, V_W + SLOTS + j] + prior_w * prior_stay) / (F[r, V_W + j] + prior_w)


@njit(cache=True)
def _burst(r, ts, dt, size, F, I):
    """``Recurrence.burst``."""
    last = F[r, C_LAST]
    F[r, C_LAST] = ts
    usual = size <= LARGER * F[r, C_SIZE]
    if ts - last <= HOLD * dt:
        return F[r, C_ON_TIME] > 0.5 and usual
    g = ts - F[r, C_ANCHOR]
    gap = F[r, C_GAP]
    m = int(g / gap + 0.5) if gap > 0.0 else 0
    tol = 1.5 * dt if 1.5 * dt > 0.02 * gap else 0.02 * gap
    on = 1 <= m <= MULTIPLES and MIN_GAP * dt <= gap <= MAX_PERIOD and abs(g - m * gap) <= tol
    if on:
        I[r, C_BEATS] += 1
        F[r, C_ANCHOR] = ts
        if m == 1:
            F[r, C_GAP] = gap + 0.25 * (g - gap)
    elif I[r, C_BEATS] >= 2:
        I[r, C_BEATS] -= 1
    else:
        I[r, C_BEATS] = 0
        F[r, C_ANCHOR] = ts
        F[r, C_GAP] = g if g < math.inf else 0.0
    size0 = F[r, C_SIZE]
    F[r, C_SIZE] = size if size0 == 0.0 else size0 + 0.25 * (size - size0)
    F[r, C_ON_TIME] = 1.0 if on and I[r, C_BEATS] > KNOWN else 0.0
    return F[r, C_ON_TIME] > 0.5 and usual


@njit(cache=True)
def _new_day(r, ts, F, I, PROF):
    """``Baseline._new_day``."""
    start = (ts // DAY) * DAY
    day = 1 if (int(ts // DAY) + 3) % 7 >= 5 else 0
    if I[r, B_SEEN + day] == 0:
        src = 1 - day
        if I[r, B_SEEN + src] != 0:
            PROF[r, day * BINS:(day + 1) * BINS] = PROF[r, src * BINS:(src + 1) * BINS]
        I[r, B_SEEN + day] = 1
    F[r, B_DAY_START] = start
    I[r, B_DAY_BASE] = day * BINS
    I[r, B_DAY_LAST] = day * BINS + BINS - 1
    return (ts - start) * BINS_PER_S


@njit(cache=True)
def _baseline_update(r, ts, x, P, F, I, PROF):
    """``Baseline.update``: the standardised residual."""
    n = I[r, B_N]
    if n == 0:
        F[r, B_FIRST_TS] = ts
        F[r, B_LEVEL] = x
        F[r, B_SLEVEL] = x
        F[r, B_PREV] = x
        F[r, B_PREV_TS] = ts
        I[r, B_N] = 1
        return 0.0
    n += 1
    I[r, B_N] = n
    d = x - F[r, B_PREV]
    if d < 0:
        d = -d
    q = F[r, B_QUANTUM]
    if 0 < d < q:
        q = d
        F[r, B_QUANTUM] = q
    F[r, B_PREV] = x
    level, slevel, scale, sscale = F[r, B_LEVEL], F[r, B_SLEVEL], F[r, B_SCALE], F[r, B_SSCALE]
    floor = 0.5 * q if q < math.inf else 0.0
    lf = P[Q_REL] * (level if level >= 0 else -level)
    if lf > floor:
        floor = lf
    slow = F[r, B_SLOW]
    lf = P[Q_SLOW_K] * slow
    if lf > floor:
        floor = lf
    dt = ts - F[r, B_PREV_TS]
    F[r, B_PREV_TS] = ts
    if dt > 0:
        count = x * dt
        off = count % 1.0
        near = (off if off < 0.5 else 1.0 - off) <= 0.02 + 0.002 * (count if count >= 0 else -count)
        counted = F[r, B_COUNTED]
        counted = counted + ((1.0 if near else 0.0) - counted) * (0.02 if n > 50 else 1.0 / n)
        F[r, B_COUNTED] = counted
        if counted > 0.9 and floor < 1.0 / dt:
            floor = 1.0 / dt
    if floor < 1e-12:
        floor = 1e-12
    pos = (ts - F[r, B_DAY_START]) * BINS_PER_S
    if not 0.0 <= pos < BINS:
        pos = _new_day(r, ts, F, I, PROF)
    b0 = int(pos)
    w1 = pos - b0
    b0 += I[r, B_DAY_BASE]
    b1 = b0 + 1 if b0 != I[r, B_DAY_LAST] else b0 + 1 - BINS
    e = x - level
    es = x - slevel - ((1 - w1) * np.float64(PROF[r, b0]) + w1 * np.float64(PROF[r, b1]))
    if sscale < 0.8 * scale and ts - F[r, B_FIRST_TS] >= 2 * DAY:
        resid = es / (sscale if sscale > floor else floor)
    else:
        resid = e / (scale if scale > floor else floor)
    ae = e if e >= 0 else -e
    aes = es if es >= 0 else -es
    F[r, B_SLOW] = slow + (ae - slow) * (SLOW if n > SLOW_N else 1.0 / n)
    if n >= 20:
        c = CLIP * scale
        if ae > c:
            ae = c
            e = c if e > 0 else -c
        c = CLIP * sscale
        if aes > c:
            aes = c
            es = c if es > 0 else -c
    alpha = P[Q_ALPHA]
    F[r, B_LEVEL] = level + alpha * e
    F[r, B_SLEVEL] = slevel + alpha * es
    g = P[Q_GAMMA] * (1 - alpha) * es
    PROF[r, b0] = np.float64(PROF[r, b0]) + g * (1 - w1)
    PROF[r, b1] = np.float64(PROF[r, b1]) + g * w1
    a = 1.0 / n if n < 1.0 / P[Q_SCALE_ALPHA] else P[Q_SCALE_ALPHA]
    F[r, B_SCALE] = scale + a * (ae - scale)
    F[r, B_SSCALE] = sscale + a * (aes - sscale)
    return resid
