"""Session fixture: an instrumented application for the http plugin's live contract check: a prometheus_client
registry with request counters, a latency histogram and a peer, served by prometheus_client's own HTTP server on a
free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from tests.services.process import free_port


@pytest.fixture(scope="session")
def instrumented_app_url() -> Iterator[str]:
    registry = CollectorRegistry()
    requests = Counter("http_requests", "Requests handled", ["route", "status"], registry=registry)
    latency = Histogram("http_request_duration_seconds", "Request time", ["route"], registry=registry)
    Gauge("kubestack_peer_info", "Dependencies", ["role", "address", "name"], registry=registry) \
        .labels("server", "127.0.0.1:6379", "cache").set(1)
    for status in ("200", "200", "503"):
        requests.labels("/orders", status).inc()
        latency.labels("/orders").observe(0.02)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def http_live_config(instrumented_app_url: str) -> dict:
    """The instrumented application as a target's config, for the live contract check."""
    return {"url": instrumented_app_url}
