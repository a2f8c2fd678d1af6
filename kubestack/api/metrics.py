"""The API's Prometheus metrics, in a registry of its own (one per application)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric


class _RowsCollector:
    """Read-model rows by kind, counted at scrape time."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("kubestack_api_readmodel_rows", "Rows in the API read model, by kind",
                                   labels=["kind"])
        for kind, rows in self._counts().items():
            family.add_metric([kind], rows)
        yield family


class ApiMetrics:
    def __init__(self, counts: Callable[[], dict[str, int]], last_event_age: Callable[[], float | None]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("kubestack_api_requests", "HTTP requests by route template, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.decisions = Counter("kubestack_api_decisions", "Decisions published, by outcome and channel",
                                 ["outcome", "via"], registry=self.registry)
        self.denied = Counter("kubestack_api_denied", "Refused requests that were audited, by reason",
                              ["reason"], registry=self.registry)
        self.feed_records = Counter("kubestack_api_feed_records", "Records the feed read, by topic and outcome",
                                    ["topic", "outcome"], registry=self.registry)
        self.feed_lag = Gauge("kubestack_api_feed_lag_records", "Records behind the end of the feed's partitions",
                              registry=self.registry)
        age = Gauge("kubestack_api_feed_last_event_age_seconds",
                    "Seconds since the feed last applied a record (-1: none yet)", registry=self.registry)
        age.set_function(lambda: _or_minus_one(last_event_age()))
        self.registry.register(_RowsCollector(counts))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _or_minus_one(value: float | None) -> float:
    return -1.0 if value is None else value
