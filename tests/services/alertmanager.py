"""A real Alertmanager (Debian's /usr/bin/prometheus-alertmanager) for the session, clustering disabled, with
one webhook receiver pointing at ``receiver_port`` (where a test runs our receiver) with a bearer token."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.services.process import ServerProcess, free_port

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


@dataclass(frozen=True)
class AlertmanagerServer:
    url: str
    receiver_port: int
    token: str

    def push(self, alerts: list[dict]) -> None:
        """POST /api/v2/alerts, as Prometheus does."""
        request = urllib.request.Request(f"{self.url}/api/v2/alerts", data=json.dumps(alerts).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()


def _config(receiver_port: int, token: str) -> str:
    return f"""\
route:
  receiver: kubestack
  group_by: [alertname, namespace]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: kubestack
    webhook_configs:
      - url: http://127.0.0.1:{receiver_port}/alerts
        send_resolved: true
        http_config:
          authorization: {{credentials: {token}}}
"""


@pytest.fixture(scope="session")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlertmanagerServer]:
    directory = tmp_path_factory.mktemp("alertmanager")
    port, receiver_port, token = free_port(), free_port(), "am-test-token"
    config = directory / "alertmanager.yml"
    config.write_text(_config(receiver_port, token))
    process = ServerProcess("alertmanager", [
        ALERTMANAGER, f"--config.file={config}", f"--storage.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
    ], directory / "alertmanager.log")
    process.wait_port(port, timeout_s=30)
    try:
        yield AlertmanagerServer(url=f"http://127.0.0.1:{port}", receiver_port=receiver_port, token=token)
    finally:
        process.stop()
