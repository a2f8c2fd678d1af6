"""NAB-style windowed scoring, written from the public description of the Numenta Anomaly Benchmark.

Per series of length n with k labelled anomalies: one window of ``0.1 * n / k`` points centred on each label
(overlapping windows merge); the first ``min(0.15 * n, 750)`` points are a probationary period whose
detections do not count. A detection is a point whose score reaches the threshold. Inside a window only the
earliest detection counts, rewarded ``A_TP * sigma(pos) / sigma(-1)`` with the scaled sigmoid
``sigma(x) = 2 / (1 + e^(5x)) - 1`` of its relative position (``-1`` at the window's left edge, ``0`` at its
right edge); a window without detection costs ``A_FN``; every detection outside windows costs
``A_FP * sigma(d)`` where ``d`` is its distance past the previous window's right edge in window widths (``-1``
when no window precedes it). Totals over the corpus are normalised so that the null detector scores 0 and
the perfect one 100. One threshold for the whole corpus is chosen to maximise the score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

STANDARD = {"tp": 1.0, "fp": 0.11, "fn": 1.0}
LOW_FP = {"tp": 1.0, "fp": 0.22, "fn": 1.0}
LOW_FN = {"tp": 1.0, "fp": 0.11, "fn": 2.0}


def scaled_sigmoid(x: np.ndarray | float) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return np.where(x > 3.0, -1.0, 2.0 / (1.0 + np.exp(np.clip(5.0 * x, -50, 50))) - 1.0)


def probation(n: int) -> int:
    return int(min(math.floor(0.15 * n), 0.15 * 5000))


def windows(n: int, onsets: list[int]) -> list[tuple[int, int]]:
    """Inclusive (left, right) index pairs, merged when they overlap."""
    if not onsets:
        return []
    half = int(0.1 * n / len(onsets)) // 2
    merged: list[list[int]] = []
    for a in sorted(onsets):
        left, right = max(0, a - half), min(n - 1, a + half)
        if merged and left <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], right)
        else:
            merged.append([left, right])
    return [(lo, hi) for lo, hi in merged]


@dataclass
class FileTables:
    """What one series contributes as a function of the threshold, precomputed once."""

    n_windows: int
    win_prefmax: list[np.ndarray]       # running max of scores inside each window
    win_reward: list[np.ndarray]        # TP reward of a first detection at each window position
    fp_scores: np.ndarray               # scores of countable points outside windows, sorted descending
    fp_cost: np.ndarray                 # cumulative FP cost (negative, unweighted) in that order


def tables(scores: np.ndarray, onsets: list[int]) -> FileTables:
    n = len(scores)
    start = probation(n)
    wins = windows(n, onsets)
    in_window = np.zeros(n, dtype=bool)
    fp_unweighted = np.full(n, -1.0)
    prefmax, reward = [], []
    max_tp = float(scaled_sigmoid(-1.0))
    for j, (lo, hi) in enumerate(wins):
        width = hi - lo + 1
        in_window[lo:hi + 1] = True
        idx = np.arange(lo, hi + 1)
        rew = scaled_sigmoid(-(hi - idx + 1) / width) / max_tp
        s = np.where(idx >= start, scores[lo:hi + 1], -np.inf)
        prefmax.append(np.maximum.accumulate(s))
        reward.append(rew)
        after_end = wins[j + 1][0] if j + 1 < len(wins) else n
        after = np.arange(hi + 1, after_end)
        fp_unweighted[hi + 1:after_end] = scaled_sigmoid((after - hi) / max(width - 1, 1))
    countable = ~in_window & (np.arange(n) >= start)
    order = np.argsort(-scores[countable], kind="stable")
    return FileTables(len(wins), prefmax, reward, scores[countable][order],
                      np.cumsum(fp_unweighted[countable][order]))


def raw_scores(t: FileTables, thresholds: np.ndarray, profile: dict) -> tuple[np.ndarray, np.ndarray,
                                                                            np.ndarray]:
    """(raw score, detected windows, FP detections) at each threshold."""
    total = np.zeros(len(thresholds))
    detected = np.zeros(len(thresholds))
    for pm, rew in zip(t.win_prefmax, t.win_reward):
        first = np.searchsorted(pm, thresholds, side="left")
        hit = first < len(pm)
        total += np.where(hit, profile["tp"] * rew[np.minimum(first, len(pm) - 1)], -profile["fn"])
        detected += hit
    n_fp = np.searchsorted(-t.fp_scores, -thresholds, side="right")
    cost = np.where(n_fp > 0, t.fp_cost[np.maximum(n_fp - 1, 0)], 0.0) if len(t.fp_cost) else 0.0
    total += profile["fp"] * cost
    return total, detected, n_fp


@dataclass
class Result:
    score: float
    threshold: float
    windows: int
    detected: int
    false_positives: int
    clean_series_alerting: int

    @property
    def recall(self) -> float:
        return self.detected / self.windows if self.windows else 1.0

    @property
    def precision(self) -> float:
        return self.detected / max(self.detected + self.false_positives, 1)


def candidate_thresholds(all_scores: list[np.ndarray], limit: int = 4000) -> np.ndarray:
    values = np.unique(np.concatenate(all_scores))
    if len(values) > limit:
        values = np.unique(np.quantile(values, np.linspace(0, 1, limit)))
    return np.append(values, np.inf)


def evaluate(all_scores: list[np.ndarray], all_onsets: list[list[int]], profile: dict = STANDARD,
             threshold: float | None = None) -> Result:
    """The normalised score at ``threshold``, or at the best threshold when none is given."""
    ths = np.array([threshold]) if threshold is not None else candidate_thresholds(all_scores)
    raw = np.zeros(len(ths))
    detected = np.zeros(len(ths))
    fps = np.zeros(len(ths))
    clean_alerting = np.zeros(len(ths))
    n_windows = 0
    for scores, onsets in zip(all_scores, all_onsets):
        t = tables(np.asarray(scores, dtype=float), onsets)
        r, d, f = raw_scores(t, ths, profile)
        raw += r
        detected += d
        fps += f
        if not t.n_windows:
            clean_alerting += f > 0
        n_windows += t.n_windows
    null, perfect = -profile["fn"] * n_windows, profile["tp"] * n_windows
    norm = 100.0 * (raw - null) / (perfect - null)
    best = int(np.argmax(norm))
    return Result(float(norm[best]), float(ths[best]), n_windows, int(detected[best]), int(fps[best]),
                  int(clean_alerting[best]))
