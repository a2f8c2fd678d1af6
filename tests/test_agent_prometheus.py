"""Prometheus as a source: the pure mapping on recorded query results, and polling a real Prometheus."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from kubestack.agents.prometheus_config import PrometheusSourceConfig, PromQuery
from kubestack.agents.prometheus_source import PrometheusSource, to_batches
from kubestack.contract.base import Source
from kubestack.errors import ConfigError, TargetAuthError, TargetUnreachableError
from tests.services.process import ServerProcess, free_port
from tests.services.prometheus import PROMETHEUS, PrometheusServer

DATA = Path(__file__).parent / "data" / "prometheus"
SOURCE = Source(agent="agent/test", host="collector-1")
BY_JOB = {"kind_label": "job", "name_labels": ["instance"]}

# bcrypt (cost 4) of "kubestack-test", for Prometheus' --web.config.file basic_auth_users
PASSWORD = "kubestack-test"
PASSWORD_HASH = "$2b$04$Wl0.OwCxfDsCsDuQpz6yQelQwACX2BzHlx5HhC6CiVQtLPyQA39VG"


def recorded(name: str) -> Any:
    return json.loads((DATA / f"{name}.json").read_text())["result"]


def query(metric: str, /, keep_labels: list[str] = (), **rule: Any) -> PromQuery:
    return PromQuery.model_validate({"name": metric, "promql": "recorded", "resource": rule,
                                     "keep_labels": list(keep_labels)})


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


# --- the pure mapping, on recorded results ------------------------------------------------------------


def test_one_batch_per_resource_with_series_timestamps() -> None:
    batches = to_batches([(query("up", **BY_JOB), recorded("up"))], source=SOURCE, tenant="acme", interval_s=15)

    assert [(b.resource.kind, b.resource.name) for b in batches] == [
        ("prometheus", "127.0.0.1:38059"), ("node", "127.0.0.1:50059")]
    first = batches[0]
    assert first.tenant == "acme" and first.source == SOURCE and first.interval_s == 15
    assert [(s.name, s.value, s.ts, s.labels) for s in first.samples] == [("up", 1.0, at(1795442559.539), {})]
    assert first.samples[0].ts.tzinfo == timezone.utc


def test_samples_of_several_queries_group_into_the_resource_batch() -> None:
    results = [
        (query("up", **BY_JOB), recorded("up")),
        (query("http_requests_per_second", **BY_JOB, keep_labels=["code"]), recorded("http_requests_rate")),
        (query("node_memory_available_bytes", **BY_JOB), recorded("node_memory_available")),
    ]
    batches = {b.resource.kind: b for b in to_batches(results, source=SOURCE)}

    assert set(batches) == {"prometheus", "node"}
    prom = [(s.name, s.labels, s.value) for s in batches["prometheus"].samples]
    assert prom == [("up", {}, 1.0),
                    ("http_requests_per_second", {"code": "200"}, 0.09672222222222221),
                    ("http_requests_per_second", {"code": "503"}, 0.0)]
    node = [(s.name, s.value) for s in batches["node"].samples]
    assert node == [("up", 1.0), ("node_memory_available_bytes", 24691781632.0)]


def test_fixed_kind_cluster_and_copied_resource_labels() -> None:
    rule = {"kind": "host", "name_labels": ["instance"], "cluster": "site-a", "labels": ["job"]}
    [batch] = to_batches([(query("node_memory_available_bytes", **rule), recorded("node_memory_available"))],
                         source=SOURCE)
    assert batch.resource.kind == "host"
    assert batch.resource.cluster == "site-a"
    assert batch.resource.labels == {"job": "node"}
    assert batch.resource.key == "site-a/-/host/127.0.0.1:50059"


def test_range_results_keep_every_point_in_order() -> None:
    batches = to_batches([(query("up", **BY_JOB), recorded("up_range"))], source=SOURCE)
    prom = batches[0]
    assert [s.ts for s in prom.samples] == [at(1795442557.26), at(1795442558.26), at(1795442559.26)]
    assert all(s.value == 1.0 for s in prom.samples)


def test_scalar_results_need_a_fixed_name(caplog: pytest.LogCaptureFixture) -> None:
    [batch] = to_batches([(query("targets_up", kind="prometheus", name="global"), recorded("scalar"))],
                         source=SOURCE)
    assert (batch.resource.name, batch.samples[0].value, batch.samples[0].ts) == ("global", 2.0, at(1795442559.55))

    with caplog.at_level(logging.WARNING, logger="kubestack.agents.prometheus_source"):
        assert to_batches([(query("targets_up", kind="prometheus"), recorded("scalar"))], source=SOURCE) == []
    assert "left out 1 series without the labels" in caplog.text


def test_series_without_the_name_label_and_non_finite_values_are_left_out(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kubestack.agents.prometheus_source"):
        assert to_batches([(query("up", kind="pod", name_labels=["pod"]), recorded("up"))], source=SOURCE) == []
        assert to_batches([(query("ratio", **BY_JOB), recorded("non_finite"))], source=SOURCE) == []
    assert "query up: left out 2 series without the labels its resource rule needs and 0 non-finite" in caplog.text
    assert "query ratio: left out 0 series without the labels its resource rule needs and 2 non-finite" in caplog.text


def test_config_validation() -> None:
    config = PrometheusSourceConfig.model_validate({
        "url": "http://prometheus:9090", "interval": "15s", "timeout": "500ms",
        "queries": [{"name": "up", "promql": "up", "resource": {"kind": "service"}}]})
    assert (config.interval, config.timeout) == (15.0, 0.5)
    assert config.queries[0].resource.name_labels == ["instance", "job"]
    with pytest.raises(ValidationError, match="exactly one of kind"):
        query("up", kind="redis", kind_label="job")
    with pytest.raises(ValidationError, match="exactly one of kind"):
        query("up", name_labels=["instance"])
    with pytest.raises(ValidationError, match="not both"):
        PrometheusSourceConfig.model_validate({
            "url": "http://p:9090", "bearer_token": {"value": "t"},
            "basic_auth": {"username": "u", "password": {"value": "p"}},
            "queries": [{"name": "up", "promql": "up", "resource": {"kind": "service"}}]})


# --- a real Prometheus -------------------------------------------------------------------------------


def _source(url: str, queries: list[dict], **extra: Any) -> PrometheusSource:
    config = PrometheusSourceConfig.model_validate({"url": url, "queries": queries, "timeout": 5, **extra})
    return PrometheusSource(config, source=SOURCE)


async def test_poll_a_live_prometheus(prometheus: PrometheusServer) -> None:
    source = _source(prometheus.url, [
        {"name": "up", "promql": "up", "resource": BY_JOB},
        {"name": "node_memory_available_bytes", "promql": "node_memory_MemAvailable_bytes", "resource": BY_JOB},
        {"name": "prometheus_build_info", "promql": "prometheus_build_info", "resource": BY_JOB,
         "keep_labels": ["version"]},
    ])
    try:
        batches = {b.resource.kind: b for b in await source.poll()}
    finally:
        await source.close()

    node, prom = batches["node"], batches["prometheus"]
    assert node.resource.name == f"127.0.0.1:{prometheus.node_exporter_port}"
    assert prom.resource.name == f"127.0.0.1:{prometheus.port}"
    node_values = {s.name: s.value for s in node.samples}
    assert node_values["up"] == 1.0
    assert node_values["node_memory_available_bytes"] > 0
    build = next(s for s in prom.samples if s.name == "prometheus_build_info")
    assert build.labels["version"].startswith("2.")
    now = datetime.now(timezone.utc)
    assert all(now - timedelta(minutes=1) < s.ts <= now + timedelta(seconds=5) for s in node.samples)


async def test_rejected_query_is_a_config_error_naming_it(prometheus: PrometheusServer) -> None:
    source = _source(prometheus.url, [{"name": "broken", "promql": "rate(up[", "resource": BY_JOB}])
    with pytest.raises(ConfigError, match=r"rejected query broken \('rate\(up\['\)"):
        await source.poll()


async def test_unreachable_prometheus() -> None:
    port = free_port()
    source = _source(f"http://127.0.0.1:{port}", [{"name": "up", "promql": "up", "resource": BY_JOB}])
    with pytest.raises(TargetUnreachableError, match=f"127.0.0.1:{port} is unreachable: Connection refused"):
        await source.poll()


@pytest.fixture(scope="module")
def guarded_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second Prometheus that requires basic auth (no scraping: only the query API is needed)."""
    directory = tmp_path_factory.mktemp("prometheus-auth")
    port = free_port()
    (directory / "prometheus.yml").write_text("global: {}\n")
    (directory / "web.yml").write_text(f"basic_auth_users:\n  kubestack: '{PASSWORD_HASH}'\n")
    server = ServerProcess("prometheus-auth", [
        PROMETHEUS, f"--config.file={directory / 'prometheus.yml'}", f"--web.config.file={directory / 'web.yml'}",
        f"--web.listen-address=127.0.0.1:{port}", f"--storage.tsdb.path={directory / 'data'}",
    ], directory / "prometheus.log")
    server.wait_port(port, timeout_s=60)
    yield f"http://127.0.0.1:{port}"
    server.stop()


async def test_basic_auth(guarded_prometheus: str) -> None:
    one = [{"name": "one", "promql": "vector(1)", "resource": {"kind": "service", "name": "probe"}}]
    good = _source(guarded_prometheus, one, basic_auth={"username": "kubestack", "password": {"value": PASSWORD}})
    [batch] = await good.poll()
    assert batch.samples[0].value == 1.0

    wrong = _source(guarded_prometheus, one, basic_auth={"username": "kubestack", "password": {"value": "nope"}})
    with pytest.raises(TargetAuthError, match="HTTP 401"):
        await wrong.poll()
    bearer = _source(guarded_prometheus, one, bearer_token={"value": "not-a-password"})
    with pytest.raises(TargetAuthError, match="refused the credentials"):
        await bearer.poll()
