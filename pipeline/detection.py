"""Metric anomaly detection for the stream: one detector per series of a resource (a series is a metric name
plus its labels), counters turned into rates first, an anomaly event when a score crosses the threshold.
Pure: the Faust agent only loads the state, calls ``observe`` and stores the state back."""

from __future__ import annotations

import base64
import logging
import math
import struct
from datetime import timedelta

import numpy as np

from kubestack.contract.base import Source
from kubestack.contract.events import Anomaly, MetricBatch, Sample, Severity
from kubestack.models.bank import DetectorBank
from kubestack.models.counters import CounterRate, is_counter
from kubestack.models.registry import DEFAULT, Detector, create, restore

log = logging.getLogger(__name__)

MAX_SERIES_PER_RESOURCE = 2000
BANKED = "likelihood"    # the detector a DetectorBank computes
STRONG_SCORE = 0.9      # the default of ``worker.metric_alone_score``: critical, and an incident on its own


def series_key(sample: Sample) -> str:
    return labelled(sample.name, sample.labels)


def labelled(name: str, labels: dict[str, str]) -> str:
    """The series of metric ``name`` with ``labels``: ``name{k=v,...}``, labels sorted."""
    if not labels:
        return name
    pairs = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return f"{name}{{{pairs}}}"


class ResourceDetectors:
    """The detectors of one resource's series, with compact state for a Faust table.

    One set of levels on the detector's score: ``threshold`` (``worker.anomaly_threshold``) makes an anomaly
    and is the score the detectors alert and quiet at; ``strong`` (``worker.metric_alone_score``) makes it
    critical, the score at which the correlator opens an incident on a metric alone.

    The stream's default detector runs as a :class:`~kubestack.models.bank.DetectorBank`: every series of the
    resource in one compiled call per batch, the same scores bit for bit and the same state bytes as one
    ``LikelihoodDetector`` per series (``tests/test_bank.py``), at a twentieth of the cost per sample
    (``bench/detector``). Any other detector runs as one Python object per series.
    """

    def __init__(self, threshold: float, detectors: dict | None = None, rates: dict | None = None,
                 detector: str = DEFAULT, strong: float = STRONG_SCORE, banked: bool = True) -> None:
        self.threshold = threshold
        self.detector = detector
        self.strong = strong
        self.detectors: dict[str, Detector] = detectors or {}
        self.rates: dict[str, CounterRate] = rates or {}
        self.bank = DetectorBank(threshold) if banked and detector == BANKED else None

    def __len__(self) -> int:
        return len(self.bank) if self.bank is not None else len(self.detectors)

    def observe(self, batch: MetricBatch, source: Source) -> list[Anomaly]:
        """Each sample of ``batch`` through its series' detector, read from the batch's columns."""
        names, values, labels, offsets = batch.names, batch.values, batch.series_labels, batch.offsets_s
        start = batch.ts.timestamp()
        known = self.bank if self.bank is not None else self.detectors
        room = MAX_SERIES_PER_RESOURCE - len(known)
        picked: list[int] = []
        keys: list[str] = []
        stamps: list[float] = []
        points: list[float] = []
        for i, name in enumerate(names):
            key = labelled(name, labels[i]) if labels is not None else name
            ts = start if offsets is None else start + offsets[i]
            value = self._rate(key, ts, values[i]) if is_counter(name) else values[i]
            if value is None or not math.isfinite(value):
                continue
            if key not in known:
                if room <= 0:
                    continue
                room -= 1
            picked.append(i)
            keys.append(key)
            stamps.append(ts)
            points.append(value)
        if not picked:
            return []
        if self.bank is not None:
            scores = self.bank.update(self.bank.rows(keys), np.array(stamps), np.array(points))
            hits = np.flatnonzero(scores >= self.threshold).tolist()
        else:
            scores = [self._detector(key).update(ts, value) for key, ts, value in zip(keys, stamps, points)]
            hits = [n for n, score in enumerate(scores) if score >= self.threshold]
        return [self._anomaly(batch, picked[n], keys[n], points[n], float(scores[n]), source) for n in hits]

    def _detector(self, key: str) -> Detector:
        detector = self.detectors.get(key)
        if detector is None:
            detector = self.detectors[key] = create(self.detector, self.threshold)
        return detector

    def _rate(self, key: str, ts: float, value: float) -> float | None:
        rate = self.rates.get(key)
        if rate is None:
            rate = self.rates[key] = CounterRate()
        value = rate.update(ts, value)
        return None if math.isnan(value) else value

    def _anomaly(self, batch: MetricBatch, i: int, key: str, value: float, score: float,
                 source: Source) -> Anomaly:
        """The anomaly of sample ``i`` of ``batch``."""
        sample = batch.sample(i)
        window = timedelta(seconds=3 * (batch.interval_s or 10))
        return Anomaly(
            source=source, resource=batch.resource, tenant=batch.tenant, ts=sample.ts,
            detector=f"metric/{self.detector}", signal=key, score=round(score, 4), value=value,
            window_start=sample.ts - window, window_end=sample.ts,
            severity=Severity.CRITICAL if score >= self.strong else Severity.WARNING,
            details={"metric": sample.name, "labels": sample.labels, "rate": is_counter(sample.name),
                     "batch_event_id": batch.event_id},
        )

    def to_state(self) -> dict[str, str]:
        if self.bank is not None:
            state = {f"d:{k}": _b64(self.bank.export(k)) for k in self.bank.keys()}
        else:
            state = {f"d:{k}": _b64(d.to_state()) for k, d in self.detectors.items()}
        state.update({f"r:{k}": _b64(r.to_state()) for k, r in self.rates.items()})
        return state

    @classmethod
    def from_state(cls, state: dict[str, str] | None, threshold: float, detector: str = DEFAULT,
                   strong: float = STRONG_SCORE, banked: bool = True) -> ResourceDetectors:
        """The state ``to_state`` saved; a series whose detector state is of another kind or version (the
        setting changed, an upgrade) starts afresh. ``banked``: False for one detector object per series."""
        restored = cls(threshold, detector=detector, strong=strong, banked=banked)
        for key, raw in (state or {}).items():
            kind, name = key[:2], key[2:]
            if kind == "d:":
                try:
                    if restored.bank is not None:
                        restored.bank.adopt(name, base64.b64decode(raw))
                    else:
                        restored.detectors[name] = restore(detector, base64.b64decode(raw), threshold)
                except (struct.error, ValueError, TypeError):  # a state from another detector version
                    log.info("detector state of %s does not fit this version; learning it afresh", name)
            elif kind == "r:":
                restored.rates[name] = CounterRate.from_state(base64.b64decode(raw))
        return restored


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
