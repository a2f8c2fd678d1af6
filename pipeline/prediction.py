"""Predictive maintenance in the stream: each capacity-like series of a resource (declared by its plugin, see
``capacity.py``) gets an exhaustion forecaster and a notice policy; a notice that opens, moves or is withdrawn
becomes a ``Prediction`` event. Pure: the Faust agent loads the state, calls ``observe`` and keeps the state.

A notice keeps one ``prediction_id`` from when it opens until it is withdrawn, so consumers (correlation, people)
see one prediction being updated rather than a stream of new ones.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import struct
import zlib
from datetime import datetime, timezone

from kubestack.contract.base import Source
from kubestack.contract.events import MetricBatch, Prediction, PredictionStatus, Severity
from kubestack.models.forecast import ExhaustionForecaster, ForecastParams
from kubestack.models.notice import NoticeDecision, NoticeParams, NoticePolicy
from kubestack.pipeline.capacity import Filling, fillings
from kubestack.pipeline.detection import series_key
from kubestack.plugins.base import Capacity

log = logging.getLogger(__name__)

MAX_FORECAST_SERIES = 200
_STATUS = {"new": PredictionStatus.ACTIVE, "updated": PredictionStatus.UPDATED,
           "withdrawn": PredictionStatus.WITHDRAWN}


@dataclasses.dataclass(frozen=True)
class Horizons:
    """The forecaster's and the notice policy's parameters. ``time_scale`` multiplies every duration of both
    (1: real time; tests compress a day into seconds with the very same code)."""

    forecast: ForecastParams
    notice: NoticeParams

    @classmethod
    def build(cls, warning_s: float, critical_s: float, time_scale: float = 1.0) -> Horizons:
        notice = NoticeParams(warning_s=warning_s, critical_s=critical_s)
        return cls(_scaled(ForecastParams(), time_scale), _scaled(notice, time_scale))


def _scaled(params, scale: float):
    if scale == 1.0:
        return params
    return dataclasses.replace(params, **{f.name: getattr(params, f.name) * scale for f in dataclasses.fields(params)
                                          if f.name.endswith("_s")})


class ResourceForecasts:
    """The forecasters and notices of one resource's capacity series, with compact state for a Faust table."""

    def __init__(self, horizons: Horizons, series: dict[str, tuple[ExhaustionForecaster, NoticePolicy, str]]
                 | None = None) -> None:
        self.horizons = horizons
        self.series = series or {}  # series key -> (forecaster, notice policy, prediction id of the open notice)

    def observe(self, batch: MetricBatch, capacities: tuple[Capacity, ...], source: Source) -> list[Prediction]:
        out = []
        for filling in fillings(batch, capacities):
            key = series_key(filling.sample)
            entry = self.series.get(key)
            if entry is None:
                if len(self.series) >= MAX_FORECAST_SERIES:
                    continue
                entry = (ExhaustionForecaster(self.horizons.forecast), NoticePolicy(self.horizons.notice), "")
            forecaster, policy, notice_id = entry
            ts = filling.sample.ts.timestamp()
            decision = policy.step(ts, forecaster.update(ts, filling.sample.value, filling.limit))
            if decision.status == "new":
                notice_id = _notice_id(batch, key, ts)
            if decision.status in _STATUS:
                out.append(_prediction(batch, filling, key, notice_id, decision, forecaster, source))
            if decision.status == "withdrawn":
                notice_id = ""
            self.series[key] = (forecaster, policy, notice_id)
        return out

    def to_state(self) -> dict[str, dict]:
        return {key: {"forecaster": _b64(f.to_state()), "notice": p.to_state(), "id": notice}
                for key, (f, p, notice) in self.series.items()}

    @classmethod
    def from_state(cls, state: dict[str, dict] | None, horizons: Horizons) -> ResourceForecasts:
        series = {}
        for key, saved in (state or {}).items():
            try:
                series[key] = (ExhaustionForecaster.from_state(base64.b64decode(saved["forecaster"]), horizons.forecast),
                               NoticePolicy.from_state(saved["notice"], horizons.notice), saved["id"])
            except (KeyError, TypeError, ValueError, struct.error, zlib.error):  # a state from another version
                log.info("forecast state of %s does not fit this version; learning it afresh", key)
        return cls(horizons, series)


def _notice_id(batch: MetricBatch, key: str, ts: float) -> str:
    digest = hashlib.sha256(f"{batch.tenant}|{batch.resource.key}|{key}|{ts:.3f}".encode()).hexdigest()[:20]
    return f"pred-{digest}"


def _prediction(batch: MetricBatch, filling: Filling, key: str, notice_id: str, decision: NoticeDecision,
                forecaster: ExhaustionForecaster, source: Source) -> Prediction:
    withdrawn = decision.status == "withdrawn"
    likely = decision.exhaustion_at if decision.exhaustion_at is not None else decision.lower_bound
    return Prediction(
        source=source, resource=batch.resource, tenant=batch.tenant, ts=filling.sample.ts, prediction_id=notice_id,
        signal=key, capacity=filling.limit,
        exhaustion_at=None if withdrawn or likely is None else _utc(likely),
        exhaustion_lower_bound=None if withdrawn or decision.lower_bound is None else _utc(decision.lower_bound),
        confidence=round(decision.confidence, 3), model=_model(forecaster), status=_STATUS[decision.status],
        severity=Severity.CRITICAL if decision.severity == "critical" else Severity.WARNING,
        outcome=outcome(filling.capacity, filling.sample.labels), labels=dict(filling.sample.labels),
    )


class _Labels(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def outcome(capacity: Capacity, labels: dict[str, str]) -> str:
    """The capacity's ``outcome`` with the series' labels in its placeholders ('?' for a label it lacks)."""
    try:
        return capacity.outcome.format_map(_Labels(labels))[:300]
    except (ValueError, IndexError, AttributeError):  # a template with a bad placeholder: the plain wording
        return ""


def _model(forecaster: ExhaustionForecaster) -> str:
    return f"forecast/{forecaster.fit.model}" if forecaster.fit is not None else "forecast/trend"


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
