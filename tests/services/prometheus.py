"""A real Prometheus (Debian's /usr/bin/prometheus) for the session, scraping itself and a node exporter
every second, on free ports under a temporary directory. Ready once ``up`` has a sample for both jobs."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.services.process import ServerProcess, ServerStartError, free_port

PROMETHEUS = "/usr/bin/prometheus"
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"


@dataclass(frozen=True)
class PrometheusServer:
    url: str
    port: int
    node_exporter_port: int

    def query(self, promql: str) -> list[dict]:
        """The ``result`` of an instant query (for preparing tests; the code under test uses its own client)."""
        params = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{params}", timeout=5) as response:
            return json.load(response)["data"]["result"]


def _config(port: int, node_port: int) -> str:
    return (
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        f"  - job_name: prometheus\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        f"  - job_name: node\n    static_configs: [{{targets: ['127.0.0.1:{node_port}']}}]\n"
    )


def _wait_scraped(server: PrometheusServer, process: ServerProcess, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            jobs = {series["metric"].get("job") for series in server.query("up == 1")}
        except (urllib.error.URLError, OSError):
            jobs = set()
        if {"prometheus", "node"} <= jobs:
            return
        time.sleep(0.2)
    raise ServerStartError(f"prometheus has no 'up' samples for both jobs after {timeout_s:.0f}s:\n{process.tail()}")


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    directory = tmp_path_factory.mktemp("prometheus")
    port, node_port = free_port(), free_port()
    node = ServerProcess("node-exporter", [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{node_port}"],
                         directory / "node-exporter.log")
    config = directory / "prometheus.yml"
    config.write_text(_config(port, node_port))
    server = ServerProcess("prometheus", [
        PROMETHEUS, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
        f"--storage.tsdb.path={directory / 'data'}", "--storage.tsdb.retention.time=1h",
    ], directory / "prometheus.log")
    try:
        node.wait_port(node_port, timeout_s=30)
        server.wait_port(port, timeout_s=60)
        info = PrometheusServer(url=f"http://127.0.0.1:{port}", port=port, node_exporter_port=node_port)
        _wait_scraped(info, server)
        yield info
    finally:
        server.stop()
        node.stop()
