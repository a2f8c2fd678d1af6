"""The http plugin: the exposition read as it is (pure parts on recorded text), and live against a real HTTP server
exporting a prometheus_client registry whose requests fail and slow down between two rounds."""

from __future__ import annotations

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from kubestack.contract.events import PeerRole, Severity
from kubestack.errors import TargetUnreachableError
from kubestack.plugins.http import HttpConfig, HttpPlugin
from kubestack.plugins.http.checks import evaluate
from kubestack.plugins.http.parse import Round, parse_exposition, quantile, round_between
from tests.services.process import free_port

BEFORE = """# TYPE http_requests_total counter
http_requests_total{route="a",status="200"} 100
http_requests_total{route="a",status="503"} 0
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{route="a",le="0.1"} 100
http_request_duration_seconds_bucket{route="a",le="1.0"} 100
http_request_duration_seconds_bucket{route="a",le="+Inf"} 100
http_request_duration_seconds_sum{route="a"} 2.0
http_request_duration_seconds_count{route="a"} 100
"""
AFTER = BEFORE.replace('status="200"} 100', 'status="200"} 150').replace('status="503"} 0', 'status="503"} 50') \
    .replace('le="0.1"} 100', 'le="0.1"} 110').replace('le="1.0"} 100', 'le="1.0"} 190') \
    .replace('le="+Inf"} 100', 'le="+Inf"} 200').replace("_sum{route=\"a\"} 2.0", "_sum{route=\"a\"} 82.0") \
    .replace('_count{route="a"} 100', '_count{route="a"} 200')
SPEC = {"requests": "http_requests_total", "status_label": "status", "error_status": r"^(5\d\d|error)$",
        "latency": "http_request_duration_seconds"}


def test_a_round_is_what_happened_between_two_reads() -> None:
    current = round_between(parse_exposition(BEFORE), parse_exposition(AFTER), **SPEC)
    assert current.requests == 100 and current.errors == 50 and current.error_ratio == 0.5
    assert current.mean_s == pytest.approx(0.8)
    assert current.p95_s == pytest.approx(1.0)  # 95 of 100 fall at or below 1 s, the last 10 above: in +Inf
    assert round_between(None, parse_exposition(AFTER), **SPEC) is None


def test_a_restarted_application_counts_from_zero() -> None:
    current = round_between(parse_exposition(AFTER), parse_exposition(BEFORE), **SPEC)
    assert current.requests == 100 and current.errors == 0


def test_quantiles_interpolate_within_a_bucket() -> None:
    assert quantile(0.5, {0.1: 50, 0.2: 100, float("inf"): 100}) == pytest.approx(0.1)
    assert quantile(0.75, {0.1: 50, 0.2: 100, float("inf"): 100}) == pytest.approx(0.15)
    assert quantile(0.5, {0.1: 0, float("inf"): 0}) is None


def test_rules_judge_a_round_only_with_enough_requests() -> None:
    config = HttpConfig()
    assert evaluate(Round(requests=3, errors=3, p95_s=9, mean_s=9), config) == []
    findings = {f.rule_id: f for f in evaluate(Round(requests=100, errors=30, p95_s=0.7, mean_s=0.3), config)}
    assert findings["http.error_ratio"].severity == Severity.CRITICAL
    assert findings["http.error_ratio"].evidence["error_ratio"] == 0.3
    assert findings["http.slow_responses"].severity == Severity.WARNING
    assert evaluate(Round(requests=100, errors=1, p95_s=0.1, mean_s=0.05), config) == []


def test_text_that_is_not_an_exposition_is_refused() -> None:
    with pytest.raises(TargetUnreachableError, match="Prometheus exposition"):
        parse_exposition("<html>\n<body>login</body>\n")


def test_config_refuses_a_bad_error_pattern() -> None:
    with pytest.raises(ValueError, match="not a regular expression"):
        HttpConfig(error_status="(")


async def test_live_rounds_findings_and_peers() -> None:
    registry = CollectorRegistry()
    requests = Counter("http_requests", "", ["route", "status"], registry=registry)
    latency = Histogram("http_request_duration_seconds", "", ["route"], registry=registry)
    Gauge("kubestack_peer_info", "", ["role", "address", "name"], registry=registry) \
        .labels("server", "127.0.0.1:6379", "cache").set(1)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    plugin = HttpPlugin.create(HttpConfig(url=f"http://127.0.0.1:{port}/metrics"))
    try:
        assert await plugin.check_health() == []  # the first read has nothing to compare with
        for _ in range(40):
            requests.labels("a", "200").inc()
            latency.labels("a").observe(0.01)
        assert await plugin.check_health() == []
        for _ in range(20):
            requests.labels("a", "503").inc()
            latency.labels("a").observe(3.0)
        rules = {f.rule_id: f.severity for f in await plugin.check_health()}
        assert rules == {"http.error_ratio": Severity.CRITICAL, "http.slow_responses": Severity.CRITICAL}
        samples = {s.name for s in await plugin.collect()}
        assert {"http_scrape_seconds", "http_requests_total"} <= samples
        assert not any(name.endswith("_bucket") for name in samples)
        [peer] = await plugin.peers()
        assert (peer.role, peer.address, peer.name) == (PeerRole.SERVER, "127.0.0.1:6379", "cache")
    finally:
        await plugin.close()
        await runner.cleanup()
    with pytest.raises(TargetUnreachableError, match="unreachable"):
        gone = HttpPlugin.create(HttpConfig(url=f"http://127.0.0.1:{port}/metrics", timeout_s=1))
        try:
            await gone.collect()
        finally:
            await gone.close()
