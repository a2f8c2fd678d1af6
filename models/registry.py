"""The detectors by name, for the CLI and the benchmark: ``DETECTORS[name](**params)``."""

from __future__ import annotations

from kubestack.models.detector import MetricDetector
from kubestack.models.gaussian import WindowedGaussian

DETECTORS = {
    "metric": MetricDetector,
    "gaussian": WindowedGaussian,
}
DEFAULT = "metric"
