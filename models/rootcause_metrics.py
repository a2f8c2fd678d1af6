"""How far each metric of an incident moved at its onset: the movement evidence that the root-cause ranking
(``rootcause.py``) weighs, and the onset itself when nobody gave one.

- **Baseline**: the rows before the onset, less a lead of one row (a cause often moves a little before the alert
  that dates the incident). Its median is the normal level; its spread is the robust scale (the median absolute
  deviation, or the mean absolute deviation when most rows sit on the median, as error counters and
  availability at 100 % do).
- **Movement**: each row after that, in baseline scales from the baseline's median and from the last row before
  the onset, the smaller of the two: a metric whose level was already off before the onset (a history recorded
  under other traffic, a slow drift) did not move *at* the onset.
- **Held**: the smallest of each two consecutive movements, at their largest: a lone spike is not a change.
- **Short baselines** (fewer than ``MIN_SPREAD_ROWS`` rows) have no spread to trust: a movement is then the
  relative change (of the larger of the two levels), and its unit the typical relative change of the same metric
  on every component (most of them took no part in the incident), ``SHORT_UNIT`` at least: availability that
  never moves makes a 3 % drop large, latency that always wobbles by 20 % makes a 20 % rise small.
- **Coverage**: the share of baseline rows where the metric has a value; a metric seen in 2 % of them (a rarely
  called dependency) has a baseline of a few points, and its movement weighs that much less.
- **Tracking**: how closely (|Pearson r|) the symptom's metric follows the metric, from a little before the onset
  to the end, allowing the metric to lead by a few rows: a cause's movement shapes the symptom's, a little later.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

LEAD_ROWS = 1          # rows before the onset that already count as "after" (the cause moves first)
HOLD_ROWS = 2          # consecutive rows a movement must hold
MIN_SPREAD_ROWS = 8    # a baseline this long has a spread worth measuring in
SHORT_UNIT = 0.01      # with a shorter one, a relative change of the larger level, in its peers' units, 1 % at least
Z_SHIFT = 3.0          # a movement this large counts as "moved" (for moved_at)
TRACK_ROWS = 2         # rows before the first "after" row included when matching the symptom's shape
MAX_LAG_ROWS = 10      # how far a metric may lead the symptom's when their shapes are matched
LAG_OVERLAP = 12       # rows that must overlap at every lag tried
MIN_BEFORE = 5         # rows an onset search keeps on each side
ONSET_PEERS = 0.35     # metrics whose shift is at least this share of the strongest vote on a found onset
ONSET_LEAD_ROWS = 5    # a found onset is put this many rows before the earliest of their splits


@dataclass(frozen=True)
class MetricTable:
    """Aligned metrics: ``values[:, j]`` is column ``columns[j]`` = (component, metric), rows in time order,
    NaN where a row has no value."""

    timestamps: np.ndarray
    columns: list[tuple[str, str]]
    values: np.ndarray

    @property
    def components(self) -> list[str]:
        return sorted({c for c, _ in self.columns})

    @classmethod
    def from_series(cls, series: Mapping[tuple[str, str], Iterable[tuple[float, float]]],
                    step: float) -> MetricTable:
        """Per-resource series ((component, metric) -> (epoch seconds, value) points), as a live caller holds
        them, on one grid of ``step`` seconds: each point lands in the row of its step (the last one wins), rows
        run from the first step seen to the last, and a row without a point is NaN."""
        columns = sorted(series)
        points = {col: [(math.floor(ts / step), value) for ts, value in series[col]] for col in columns}
        slots = [slot for col in columns for slot, _ in points[col]]
        if not slots:
            return cls(np.empty(0), columns, np.empty((0, len(columns))))
        first, last = min(slots), max(slots)
        values = np.full((last - first + 1, len(columns)), np.nan)
        for j, col in enumerate(columns):
            for slot, value in points[col]:
                values[slot - first, j] = value
        return cls((np.arange(first, last + 1) * step).astype(float), columns, values)

    def column(self, component: str, metric: str) -> int | None:
        return next((j for j, col in enumerate(self.columns) if col == (component, metric)), None)


@dataclass(frozen=True)
class Movement:
    component: str
    metric: str
    z: float                 # the held movement, in baseline scales
    direction: str           # "up" or "down"
    moved_at: float | None   # the first row (from the lead on) of a movement that held at Z_SHIFT or more
    coverage: float          # share of the baseline rows that have a value
    tracking: float | None   # |r| with the symptom's metric (None: no symptom, or too few rows to say)

    def as_dict(self) -> dict:
        return {"metric": self.metric, "z": round(self.z, 2), "direction": self.direction,
                "moved_at": self.moved_at}


def split_rows(timestamps: np.ndarray, onset: float) -> np.ndarray:
    """True for the rows scored as "after" the onset (from LEAD_ROWS before it); at least one row each side."""
    step = median_step(timestamps) if len(timestamps) > 1 else 0.0
    after = timestamps >= onset - LEAD_ROWS * step
    if after.all():
        after[0] = False
    if not after.any():
        after[-HOLD_ROWS:] = True
    return after


def movements(table: MetricTable, onset: float, symptom_column: int | None = None) -> list[Movement]:
    """One Movement per column that has a baseline and a value after the onset (every column at once)."""
    after = split_rows(table.timestamps, onset)
    pre, post = table.values[~after], table.values[after]
    size, signed, short, coverage = _deviations(pre, post)
    usable = (coverage > 0) & np.isfinite(post).any(axis=0)
    z = size / _peer_units(table.columns, size, short & usable)
    held = _held(z)
    top = np.argmax(held, axis=0)
    strength = np.take_along_axis(held, top[None, :], axis=0)[0]
    direction = np.take_along_axis(signed, top[None, :], axis=0)[0]
    moved = held >= Z_SHIFT
    moved_row = np.argmax(moved, axis=0)
    tracking = _tracking(table.values, after, symptom_column)
    stamps = table.timestamps[after]
    return [Movement(component, metric, float(strength[j]), "up" if direction[j] >= 0 else "down",
                     float(stamps[moved_row[j]]) if moved[:, j].any() else None, float(coverage[j]),
                     None if tracking is None or not np.isfinite(tracking[j]) else float(tracking[j]))
            for j, (component, metric) in enumerate(table.columns) if usable[j]]


def _deviations(pre: np.ndarray, post: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row after the onset and column: |movement| (0 where missing) and its signed value from the baseline's
    median; per column: whether the baseline was short (the movement is then a relative change still to be put in
    its peers' units) and the share of baseline rows with a value."""
    seen = np.isfinite(pre)
    count = seen.sum(axis=0)
    level = nanmedian(pre, count)
    rows = np.arange(pre.shape[1])
    last = pre[np.maximum(len(pre) - 1 - np.argmax(seen[::-1], axis=0), 0), rows]
    ok = np.isfinite(post)
    post = np.where(ok, post, level)
    short = count < MIN_SPREAD_ROWS
    spread = _spread(pre, level, count)
    with np.errstate(invalid="ignore", divide="ignore"):
        from_level = np.where(short, (post - level) / np.maximum(np.maximum(abs(level), np.abs(post)), 1e-12),
                              (post - level) / spread)
        from_last = np.where(short, (post - last) / np.maximum(np.maximum(abs(last), np.abs(post)), 1e-12),
                             (post - last) / spread)
    size = np.where(ok & (count > 0), np.minimum(np.abs(from_level), np.abs(from_last)), 0.0)
    return np.nan_to_num(size), np.nan_to_num(from_level), short, count / max(len(pre), 1)


def nanmedian(values: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Median of each column's finite values (NaN for none; ``count``: how many each has), as ``np.nanmedian``
    gives it, which imports ``numpy.ma`` (0.1 s of each replay's start): a sort puts NaN last, so it is the middle
    of the first ``count`` rows."""
    ordered = np.sort(values, axis=0)
    low, high = np.maximum((count - 1) // 2, 0), np.maximum(count // 2, 0)
    cols = np.arange(values.shape[1])
    middle = (ordered[np.minimum(low, len(values) - 1), cols] + ordered[np.minimum(high, len(values) - 1), cols]) / 2
    return np.where(count > 0, middle, np.nan)


def _spread(values: np.ndarray, level: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Robust scale per column: the median absolute deviation, or the mean absolute deviation where most rows
    sit on the median; at least a thousandth of the level."""
    floor = np.maximum(1e-3 * np.abs(np.nan_to_num(level)), 1e-12)
    deviation = np.abs(values - level)
    mad = 1.4826 * nanmedian(deviation, count)
    with np.errstate(invalid="ignore"):
        mean = 1.2533 * np.where(count > 0, np.nansum(deviation, axis=0) / np.maximum(count, 1), np.nan)
    return np.maximum(np.where(mad > 0, mad, mean), floor)


def _peer_units(columns: list[tuple[str, str]], size: np.ndarray, short: np.ndarray) -> np.ndarray:
    """Per column: 1 when its baseline was long enough; otherwise the typical relative change of the same metric
    across all components (most of which took no part in the incident), at least SHORT_UNIT."""
    units = np.ones(len(columns))
    by_metric: dict[str, list[int]] = {}
    for j in np.nonzero(short)[0]:
        by_metric.setdefault(columns[j][1], []).append(int(j))
    for js in by_metric.values():
        units[js] = max(SHORT_UNIT, 1.4826 * median(size[:, js]))
    return units


def median(values: np.ndarray) -> float:
    """The median of finite ``values`` (all of them, flattened), as ``np.median`` gives it without importing
    ``numpy.ma``."""
    flat = values.ravel()
    return float(nanmedian(flat[:, None], np.array([len(flat)]))[0])


def median_step(timestamps: np.ndarray) -> float:
    """The typical time between rows."""
    return median(np.diff(timestamps))


def _held(z: np.ndarray) -> np.ndarray:
    """The smallest of each HOLD_ROWS consecutive rows, per column (the last rows repeat the last full window)."""
    if len(z) < HOLD_ROWS:
        return np.repeat(z.min(axis=0, keepdims=True), len(z), axis=0)
    held = z[:len(z) - HOLD_ROWS + 1].copy()
    for k in range(1, HOLD_ROWS):
        held = np.minimum(held, z[k:len(z) - HOLD_ROWS + 1 + k])
    return np.concatenate([held, np.repeat(held[-1:], HOLD_ROWS - 1, axis=0)])


def _tracking(values: np.ndarray, after: np.ndarray, symptom_column: int | None) -> np.ndarray | None:
    """Per column, |r| with the symptom's metric from TRACK_ROWS before the first row after the onset, the column
    leading it by up to MAX_LAG_ROWS while LAG_OVERLAP rows still overlap (a cause moves first, and the symptom
    follows as the effect travels; a few rows match any shape). NaN: fewer than 3 rows to compare."""
    if symptom_column is None:
        return None
    window = values[max(0, int(np.argmax(after)) - TRACK_ROWS):]
    reference = window[:, symptom_column]
    best = np.full(values.shape[1], np.nan)
    for lag in range(max(0, min(MAX_LAG_ROWS, len(window) - LAG_OVERLAP)) + 1):
        lead, follow = window[:len(window) - lag], reference[lag:, None]
        ok = np.isfinite(lead) & np.isfinite(follow)
        n = ok.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            a = np.where(ok, lead, 0.0)
            b = np.where(ok, follow, 0.0)
            a = np.where(ok, a - a.sum(axis=0) / n, 0.0)
            b = np.where(ok, b - b.sum(axis=0) / n, 0.0)
            norm = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
            r = np.where(norm > 0, np.abs((a * b).sum(axis=0)) / np.where(norm > 0, norm, 1.0), 0.0)
        best = np.fmax(best, np.where(n >= 3, r, np.nan))
    return best


def find_onset(table: MetricTable) -> float:
    """The earliest best single mean-shift split among the metrics that shifted nearly as strongly as the
    strongest (a cause moves before its effects, and the median split lands on the effects), a few rows earlier:
    an onset a little early only adds calm rows to the "after" side, one a little late puts the cause's first
    movement into its own baseline."""
    n = len(table.timestamps)
    splits, weights = [], []
    for j in range(table.values.shape[1]):
        series = _filled(table.values[:, j])
        if series is None:
            continue
        split, strength = _best_split(series)
        if split is not None:
            splits.append(split)
            weights.append(strength)
    if not splits:
        return float(table.timestamps[n // 2])
    strongest = max(weights)
    earliest = min(split for split, weight in zip(splits, weights) if weight >= ONSET_PEERS * strongest)
    return float(table.timestamps[max(MIN_BEFORE, earliest - ONSET_LEAD_ROWS)])


def _best_split(series: np.ndarray) -> tuple[int | None, float]:
    """Index of the first row after the split maximising the t-like statistic of a mean shift, and that
    statistic (scaled by the series' robust spread)."""
    n = len(series)
    if n < 2 * MIN_BEFORE:
        return None, 0.0
    spread = _scale(np.diff(series)) / math.sqrt(2)
    if spread <= 0:
        spread = max(1e-9, 1e-6 * float(np.max(np.abs(series))))
    csum = np.cumsum(series)
    k = np.arange(MIN_BEFORE, n - 2)
    left = csum[k - 1] / k
    right = (csum[-1] - csum[k - 1]) / (n - k)
    stat = np.abs(right - left) * np.sqrt(k * (n - k) / n) / spread
    best = int(np.argmax(stat))
    return int(k[best]), float(stat[best])


def _scale(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return 0.0
    ordered = np.sort(values)
    iqr = (_quantile(ordered, 0.75) - _quantile(ordered, 0.25)) / 1.349
    if iqr > 0:
        return iqr
    mad = median(np.abs(values - median(values))) * 1.4826
    return mad if mad > 0 else float(np.std(values))


def _quantile(ordered: np.ndarray, q: float) -> float:
    """``np.percentile(values, 100 * q)`` of sorted finite values (linear, as numpy interpolates), without the
    import of ``numpy.ma`` that costs."""
    virtual = (len(ordered) - 1) * q
    below = math.floor(virtual)
    above = min(below + 1, len(ordered) - 1)
    gamma = virtual - below
    low, high = float(ordered[below]), float(ordered[above])
    return high - (high - low) * (1 - gamma) if gamma >= 0.5 else low + (high - low) * gamma


def _filled(values: np.ndarray) -> np.ndarray | None:
    ok = np.isfinite(values)
    if ok.sum() < 2 * MIN_BEFORE:
        return None
    idx = np.arange(len(values))
    return np.interp(idx, idx[ok], values[ok])
