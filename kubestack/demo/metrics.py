"""The demo's own metrics, on a registry of each part: request counts by route and status, a latency histogram,
cache results, dependency errors and times, and ``kubestack_peer_info`` naming each dependency it talks to."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
PEER_INFO = "kubestack_peer_info"


class PartMetrics:
    def __init__(self, requests: str, latency: str, peers: dict[str, str]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(requests.removesuffix("_total"), "Requests handled, by route and status",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram(latency, "Time to handle a request", ["route"], buckets=BUCKETS,
                                 registry=self.registry)
        self.cache = Counter("demo_cache_requests", "Cache lookups by result (hit, miss, error)", ["result"],
                             registry=self.registry)
        self.dependency_errors = Counter("demo_dependency_errors", "Failed calls to a dependency", ["dependency"],
                                         registry=self.registry)
        self.dependency_latency = Histogram("demo_dependency_seconds", "Time of calls to a dependency",
                                            ["dependency"], buckets=BUCKETS, registry=self.registry)
        self.lag = Gauge("demo_consumer_lag", "Records of the topic not yet processed", registry=self.registry)
        info = Gauge(PEER_INFO, "A dependency this part talks to", ["role", "address", "name"],
                     registry=self.registry)
        for name, address in peers.items():
            info.labels("server", address, name).set(1)
