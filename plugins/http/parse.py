"""Pure reading of a Prometheus text exposition: every sample as (name, labels) -> value, and what the rules need
from two successive reads (counter and histogram deltas, quantiles)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from kubestack.errors import TargetUnreachableError

Key = tuple[str, tuple[tuple[str, str], ...]]


def parse_exposition(text: str) -> dict[Key, float]:
    """Every finite sample of the exposition; a text that is not one raises ``TargetUnreachableError``."""
    out: dict[Key, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if math.isfinite(sample.value):
                    out[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    except ValueError as exc:
        raise TargetUnreachableError(f"the endpoint did not answer with a Prometheus exposition: {exc}") from None
    return out


def total(series: dict[Key, float], name: str, where=lambda labels: True) -> float:
    return sum(v for (n, labels), v in series.items() if n == name and where(dict(labels)))


@dataclass(frozen=True)
class Round:
    """What changed between two reads."""

    requests: float
    errors: float
    p95_s: float | None
    mean_s: float | None

    @property
    def error_ratio(self) -> float | None:
        return self.errors / self.requests if self.requests > 0 else None


def _buckets(series: dict[Key, float], histogram: str) -> dict[float, float]:
    out: dict[float, float] = {}
    for (name, labels), value in series.items():
        if name == f"{histogram}_bucket":
            le = dict(labels).get("le")
            if le is not None:
                bound = float(le)
                out[bound] = out.get(bound, 0.0) + value
    return out


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The q-quantile of cumulative ``le`` buckets (as histogram_quantile: linear within a bucket; the highest
    finite bound when it falls in +Inf)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def round_between(before: dict[Key, float] | None, now: dict[Key, float], *, requests: str, status_label: str,
                  error_status: str, latency: str) -> Round | None:
    """Requests, errors and latency between two reads (None without a read before; a counter that went back, a
    restart, counts from zero)."""
    if before is None:
        return None
    errors = re.compile(error_status)

    def delta(where=lambda labels: True, name: str = requests) -> float:
        b, n = total(before, name, where), total(now, name, where)
        return n - b if n >= b else n

    is_error = lambda labels: bool(errors.match(labels.get(status_label, "")))  # noqa: E731
    then, current = _buckets(before, latency), _buckets(now, latency)
    spread = {bound: current[bound] - then.get(bound, 0.0) for bound in current}
    if any(v < 0 for v in spread.values()):
        spread = current
    count = delta(name=f"{latency}_count")
    mean = delta(name=f"{latency}_sum") / count if count > 0 else None
    return Round(requests=delta(), errors=delta(is_error), p95_s=quantile(0.95, spread), mean_s=mean)
