"""The metric detectors by name, behind one interface: the worker (``worker.anomaly_detector``), the CLI
and the benchmarks build and restore them here, and the conformance tests run over every one."""

from __future__ import annotations

from typing import Protocol, Self

from kubestack.models.detector import MetricDetector
from kubestack.models.gaussian import WindowedGaussian
from kubestack.models.likelihood import LikelihoodDetector


class Detector(Protocol):
    """One series' online detector. ``threshold`` is the score the caller alerts at: a detector that quiets
    after an alert does so at that score, so what it announces and what the worker counts agree."""

    threshold: float

    def update(self, ts: float, value: float) -> float:
        """The score of this point in [0, 1], from this point and the ones before it only."""
        ...

    def to_state(self) -> bytes:
        """Everything needed to resume exactly here (the worker's changelog keeps it)."""
        ...

    @classmethod
    def from_state(cls, raw: bytes) -> Self:
        """The detector ``to_state`` saved; ``ValueError`` or ``struct.error`` for another layout."""
        ...


DETECTORS: dict[str, type[Detector]] = {
    "likelihood": LikelihoodDetector,
    "metric": MetricDetector,
    "gaussian": WindowedGaussian,
}
DEFAULT = "likelihood"


def create(name: str, threshold: float, **params: float) -> Detector:
    """A fresh detector ``name`` alerting at ``threshold``; ``KeyError`` for an unknown name."""
    return DETECTORS[name](threshold=threshold, **params)


def restore(name: str, raw: bytes, threshold: float) -> Detector:
    """The detector ``name`` saved in ``raw``, alerting from now on at ``threshold`` (the worker's, which may
    have changed since the state was saved)."""
    detector = DETECTORS[name].from_state(raw)
    detector.threshold = threshold
    return detector
