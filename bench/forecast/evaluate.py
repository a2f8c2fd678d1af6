"""Replaying one series through our forecaster + notice policy and through the ``predict_linear`` rule, and
the metrics: lead time of the first correct warning, false notices, MASE.

- A notice episode runs from its opening to its withdrawal (or the end of the series). On a series that
  fills at T, an episode still open at T is correct; the lead time is T minus the opening of the first
  correct episode (0 when there is none: a miss). Every other episode is a false notice: all those of a
  series that never fills, and those withdrawn before T.
- Premature notices: episodes of a series that fills which open more than ``PREMATURE_S`` (36 h) before
  its exhaustion (on a daily cycle, a notice for the peak before the one that hits the capacity).
- Coverage of the early bound: over the samples before the exhaustion that have one, the share whose early
  bound is not after the real exhaustion (nominal 99%: z = 2.33).
- MASE at horizon h (6 h): from origins every hour after the first 12 h, with t + h before the end (and
  before the exhaustion), mean |forecast(t+h) - y(t+h)| over mean |y(t) - y(t+h)|, the error of the
  no-change forecast at the same horizon. Both models are scored on the same origins.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.forecast.promrule import PredictLinearRule  # noqa: E402
from kubestack.models.forecast import ExhaustionForecaster, ForecastParams  # noqa: E402
from kubestack.models.notice import NoticeParams, NoticePolicy  # noqa: E402

MASE_H = 6 * 3600.0
MASE_EVERY = 3600.0
MASE_AFTER = 12 * 3600.0
PREMATURE_S = 36 * 3600.0


@dataclass(frozen=True)
class Outcome:
    lead_s: float | None        # None: the series never fills
    false_notices: int
    weeks: float
    mase: float | None
    errors: tuple[float, float]   # (sum |model error|, sum |naive error|) for pooled MASE
    premature: int = 0            # episodes opened more than PREMATURE_S before the exhaustion
    covered: tuple[int, int] = (0, 0)   # (early bounds not after the exhaustion, early bounds given)


def episodes(events: list[tuple[float, str]], end: float) -> list[tuple[float, float]]:
    out, start = [], None
    for ts, kind in events:
        if kind == "open" and start is None:
            start = ts
        elif kind == "close" and start is not None:
            out.append((start, ts))
            start = None
    if start is not None:
        out.append((start, end + 1.0))
    return out


def outcome(events: list[tuple[float, str]], ts: np.ndarray, exhausted_at: float | None,
            errors: tuple[float, float], covered: tuple[int, int] = (0, 0)) -> Outcome:
    end = float(ts[-1])
    spans = episodes(events, end)
    weeks = (end - float(ts[0])) / (7 * 86_400)
    mase = errors[0] / errors[1] if errors[1] > 0 else None
    if exhausted_at is None:
        return Outcome(None, len(spans), weeks, mase, errors)
    correct = [s for s, e in spans if s <= exhausted_at and e >= exhausted_at]
    lead = exhausted_at - correct[0] if correct else 0.0
    false = sum(1 for s, e in spans if e < exhausted_at)
    premature = sum(1 for s, _ in spans if exhausted_at - s > PREMATURE_S)
    return Outcome(lead, false, weeks, mase, errors, premature, covered)


def _mase_origins(ts: np.ndarray, exhausted_at: float | None) -> dict[int, int]:
    """origin index -> index of the sample at origin + MASE_H"""
    end = float(ts[-1]) if exhausted_at is None else exhausted_at
    out, next_at = {}, float(ts[0]) + MASE_AFTER
    for i, t in enumerate(ts):
        if t >= next_at and t + MASE_H <= end:
            j = int(np.searchsorted(ts, t + MASE_H))
            if j < ts.size:
                out[i] = j
            next_at = t + MASE_EVERY
    return out


def run_ours(ts: np.ndarray, values: np.ndarray, capacity: float, exhausted_at: float | None,
             fparams: ForecastParams, nparams: NoticeParams) -> Outcome:
    forecaster, policy = ExhaustionForecaster(fparams), NoticePolicy(nparams)
    origins = _mase_origins(ts, exhausted_at)
    events, err_model, err_naive, covered, bounds = [], 0.0, 0.0, 0, 0
    for i, (t, v) in enumerate(zip(ts.tolist(), values.tolist())):
        fc = forecaster.update(t, v, capacity)
        decision = policy.step(t, fc)
        if exhausted_at is not None and t < exhausted_at and fc.lower_bound is not None:
            bounds += 1
            covered += fc.lower_bound <= exhausted_at
        if decision.status == "new":
            events.append((t, "open"))
        elif decision.status == "withdrawn":
            events.append((t, "close"))
        if i in origins:
            j = origins[i]
            predicted = forecaster.predict(float(ts[j]))
            predicted = v if predicted is None else predicted
            err_model += abs(predicted - values[j])
            err_naive += abs(v - values[j])
    return outcome(events, ts, exhausted_at, (err_model, err_naive), (covered, bounds))


def run_rule(ts: np.ndarray, values: np.ndarray, capacity: float, exhausted_at: float | None) -> Outcome:
    rule = PredictLinearRule()
    origins = _mase_origins(ts, exhausted_at)
    events, err_model, err_naive = [], 0.0, 0.0
    for i, (t, v) in enumerate(zip(ts.tolist(), values.tolist())):
        change = rule.step(t, v, capacity)
        if change:
            events.append((t, "open" if change == "fired" else "close"))
        if i in origins:
            j = origins[i]
            predicted = rule.predict(t, float(ts[j]))
            predicted = v if predicted is None else predicted
            err_model += abs(predicted - values[j])
            err_naive += abs(v - values[j])
    return outcome(events, ts, exhausted_at, (err_model, err_naive))
