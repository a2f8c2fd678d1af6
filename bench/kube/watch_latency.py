"""Watch latency of the Kubernetes collector: time from a pod status change on the API server to the pod's health
report handed to the agent's publisher, side by side with a bare watch of the same pods through the ``kubernetes``
client (``kubernetes.watch.Watch``) in the same run.

    .venv/bin/python -m bench.kube.watch_latency [--pods 200] [--changes 100]

Starts a real control plane (etcd, kube-apiserver; no controller manager or scheduler needed) on free ports in a
temporary directory, creates ``--pods`` pods, then flips ``--changes`` of them between CrashLoopBackOff and
healthy through the status subresource, one at a time. Prints one JSON object (milliseconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import kubernetes.client
import kubernetes.watch
import urllib3

from kubestack.agents.metrics import AgentMetrics
from kubestack.agents.resources import ResourcePublisher
from kubestack.agents.state import StateStore
from kubestack.contract.base import Source
from kubestack.contract.events import HealthReport
from kubestack.deploy.kube.launcher import LocalKube
from kubestack.plugins.kubernetes import KubernetesConfig, KubernetesPlugin
from kubestack.settings import LocalKubeSettings
from tests.services.process import free_port
from tests.test_kube_collector import crashloop_status, healthy_status, redis_container

NAMESPACE = "bench"


class Arrivals:
    """The Publisher protocol, keeping when each pod's report arrived (its findings on or off)."""

    def __init__(self) -> None:
        self.reports: list[tuple[float, str, bool]] = []

    async def publish(self, spec, event) -> None:
        if isinstance(event, HealthReport) and event.resource.kind == "pod":
            self.reports.append((time.monotonic(), event.resource.name, bool(event.findings)))

    async def publish_many(self, items) -> None:
        for spec, event in items:
            await self.publish(spec, event)


def bare_watch(api: kubernetes.client.ApiClient, seen: list, stop: threading.Event) -> None:
    core = kubernetes.client.CoreV1Api(api)
    watch = kubernetes.watch.Watch()
    version = core.list_namespaced_pod(NAMESPACE).metadata.resource_version
    try:
        for event in watch.stream(core.list_namespaced_pod, NAMESPACE, resource_version=version, timeout_seconds=600):
            pod = event["object"]
            waiting = [(s.state.waiting.reason if s.state and s.state.waiting else None)
                       for s in pod.status.container_statuses or []]
            seen.append((time.monotonic(), pod.metadata.name, "CrashLoopBackOff" in waiting))
            if stop.is_set():
                watch.stop()
    except urllib3.exceptions.HTTPError:
        if not stop.is_set():  # the control plane going away at the end is expected
            raise


def figures(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"p50": round(statistics.median(ordered) * 1000, 1),
            "p95": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1), "max": round(ordered[-1] * 1000, 1)}


async def wait(arrivals: list, name: str, crashing: bool, after: float, timeout_s: float = 30.0) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        hit = next((at for at, n, on in list(arrivals) if at >= after and n == name and on == crashing), None)
        if hit is not None:
            return hit
        await asyncio.sleep(0.002)
    raise TimeoutError(f"{name}: no report")


async def run(kube: LocalKube, pods: int, changes: int, home: Path) -> dict:
    config = kubernetes.client.Configuration(host=kube.server)
    config.api_key, config.api_key_prefix = {"authorization": kube.admin_token}, {"authorization": "Bearer"}
    config.ssl_ca_cert = str(kube.ca_file)
    api = kubernetes.client.ApiClient(config)
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    for i in range(pods):
        core.create_namespaced_pod(NAMESPACE, {"metadata": {"name": f"redis-{i}", "labels": {"app": "redis"}},
                                               "spec": {"containers": [redis_container()]}})
        core.patch_namespaced_pod_status(f"redis-{i}", NAMESPACE, healthy_status(f"10.244.0.{i % 250 + 1}"))
    plugin = KubernetesPlugin(KubernetesConfig(server=kube.server, token={"value": kube.admin_token},
                                               ca_file=kube.ca_file, cluster="bench", namespaces=[NAMESPACE],
                                               watch=["pods"], resync_interval_s=3600))
    arrivals = Arrivals()
    sink = ResourcePublisher(target="bench", source=Source(agent="agent/bench", host="bench"), tenant="default",
                             publisher=arrivals, state=StateStore(home / "state"), metrics=AgentMetrics())
    watching = asyncio.create_task(plugin.watch(sink))
    bare: list = []
    stop = threading.Event()
    threading.Thread(target=bare_watch, args=(kubernetes.client.ApiClient(config), bare, stop), daemon=True).start()
    while not (plugin.watchers and all(w.synced for w in plugin.watchers)):
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    ours, theirs = [], []
    try:
        for i in range(changes):
            name, crashing = f"redis-{i % pods}", (i // pods) % 2 == 0
            status = crashloop_status(f"10.244.0.{i % pods % 250 + 1}") if crashing else \
                healthy_status(f"10.244.0.{i % pods % 250 + 1}")
            began = time.monotonic()
            await asyncio.to_thread(core.patch_namespaced_pod_status, name, NAMESPACE, status)
            ours.append(await wait(arrivals.reports, name, crashing, began) - began)
            theirs.append(await wait(bare, name, crashing, began) - began)
    finally:
        stop.set()
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        await plugin.close()
    return {"pods": pods, "changes": changes, "collector_report_ms": figures(ours), "bare_watch_ms": figures(theirs),
            "ratio_p50": round(statistics.median(ours) / statistics.median(theirs), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=200)
    parser.add_argument("--changes", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kube-bench-") as tmp:
        settings = LocalKubeSettings(port=free_port(), etcd_port=free_port(), etcd_peer_port=free_port(),
                                     controller_manager=False, scheduler=False)
        kube = LocalKube(settings, Path(tmp))
        kube.up()
        try:
            result = asyncio.run(run(kube, args.pods, max(args.changes, 1), Path(tmp)))
        finally:
            kube.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
