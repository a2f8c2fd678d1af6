"""The Kubernetes collector against a real kube-apiserver (and its controller manager): pods, nodes, events,
workloads and ConfigMaps changed through the API are reported as resources of their own, as they change; a
410 Gone re-lists, an API server that goes away and comes back is followed again, RBAC limits are told.

There is no kubelet: tests write pod and node status through the status subresource, as a kubelet would."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import kubernetes.client
import pytest

from kubestack.agents.metrics import AgentMetrics
from kubestack.agents.resources import ResourcePublisher
from kubestack.agents.state import StateStore
from kubestack.contract.base import Event, Source
from kubestack.contract.events import ConfigChange, ConfigSnapshot, HealthReport, MetricBatch
from kubestack.contract.topics import TopicSpec
from kubestack.errors import TargetUnreachableError
from kubestack.plugins.kubernetes import KubernetesConfig, KubernetesPlugin
from kubestack.plugins.kubernetes.cache import ADDED, DELETED
from kubestack.plugins.kubernetes.watch import Watcher
from tests.services.kubernetes import KubeCluster
from tests.services.process import free_port

pytestmark = pytest.mark.kubernetes

CLUSTER = "lab"
WAIT_S = 30.0


def stamp(ago_s: float = 0.0) -> str:
    return datetime.fromtimestamp(time.time() - ago_s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Recorder:
    """The Publisher protocol in memory, with when each event arrived (the agent's real one is Kafka: see
    ``test_kube_collector_agent.py``)."""

    def __init__(self) -> None:
        self.events: list[tuple[float, TopicSpec, Event]] = []

    async def publish(self, spec: TopicSpec, event: Event) -> None:
        self.events.append((time.monotonic(), spec, event))

    async def publish_many(self, items: list[tuple[TopicSpec, Event]]) -> None:
        for spec, event in items:
            await self.publish(spec, event)

    async def until(self, wanted: Callable[[Event], bool], timeout_s: float = WAIT_S, after: float = 0.0):
        """The first event since ``after`` (monotonic) that ``wanted`` accepts, and when it arrived."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for at, _, event in self.events:
                if at >= after and wanted(event):
                    return event, at
            await asyncio.sleep(0.01)
        seen = [(e.resource.key, sorted(f.rule_id for f in e.findings)) for _, _, e in self.events
                if isinstance(e, HealthReport)]
        raise AssertionError(f"no such event in {timeout_s}s; health reports seen: {seen}")


def report_of(kind: str, name: str, rules: set[str] | None = None, among: bool = False) -> Callable[[Event], bool]:
    """A health report of ``kind/name`` whose findings are exactly ``rules`` (None: any; ``among``: at least)."""
    def wanted(event: Event) -> bool:
        if not (isinstance(event, HealthReport) and event.resource.kind == kind and event.resource.name == name):
            return False
        found = {f.rule_id for f in event.findings}
        return rules is None or found == rules or (among and rules <= found)
    return wanted


class Watching:
    """``KubernetesPlugin.watch`` running in the background, publishing through the agent's ResourcePublisher."""

    def __init__(self, config: KubernetesConfig, state_dir: Path) -> None:
        self.plugin = KubernetesPlugin(config)
        self.recorder = Recorder()
        self.sink = ResourcePublisher(target="lab", source=Source(agent="agent/test", host="test", cluster=CLUSTER),
                                      tenant="default", publisher=self.recorder, state=StateStore(state_dir),
                                      metrics=AgentMetrics())
        self.task: asyncio.Task | None = None

    async def __aenter__(self) -> Watching:
        self.task = asyncio.create_task(self.plugin.watch(self.sink))
        deadline = time.monotonic() + WAIT_S
        while not (self.plugin.watchers and all(w.synced or w.forbidden for w in self.plugin.watchers)):
            assert time.monotonic() < deadline, "the watches never synced"
            assert not self.task.done(), self.task.exception()
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.plugin.close()


def admin_config(kube: KubeCluster, namespace: str, **extra) -> KubernetesConfig:
    return KubernetesConfig(server=kube.server, token={"value": kube.token}, ca_file=kube.ca_file, cluster=CLUSTER,
                            namespaces=[namespace], **extra)


def core(kube: KubeCluster) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(kube.api_client())


def apps(kube: KubeCluster) -> kubernetes.client.AppsV1Api:
    return kubernetes.client.AppsV1Api(kube.api_client())


def redis_container(memory: str = "256Mi") -> dict:
    return {"name": "redis", "image": "docker.io/library/redis:7.2.4",
            "ports": [{"name": "redis", "containerPort": 6379}],
            "resources": {"limits": {"memory": memory}, "requests": {"memory": "128Mi", "cpu": "100m"}}}


def crashloop_status(ip: str, restarts: int = 5) -> dict:
    return {"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "10.0.0.250", "startTime": stamp(600),
        "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                        "lastTransitionTime": stamp(300)},
                       {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp(600)}],
        "containerStatuses": [{
            "name": "redis", "ready": False, "restartCount": restarts, "image": "docker.io/library/redis:7.2.4",
            "imageID": "docker.io/library/redis@sha256:00", "started": False,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": stamp(120),
                                         "finishedAt": stamp(30)}}}]}}


def healthy_status(ip: str) -> dict:
    return {"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": stamp()},
                       {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp(600)}],
        "containerStatuses": [{"name": "redis", "ready": True, "restartCount": 5, "started": True,
                               "image": "docker.io/library/redis:7.2.4", "imageID": "docker.io/library/redis@sha256:00",
                               "state": {"running": {"startedAt": stamp()}}, "lastState": {}}]}}


def deployment(name: str, replicas: int = 1, **spec) -> dict:
    labels = {"app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": name}
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [redis_container()]}},
                     **spec}}


def wait_for_pods(kube: KubeCluster, namespace: str, selector: str, count: int = 1) -> list:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        pods = core(kube).list_namespaced_pod(namespace, label_selector=selector).items
        if len(pods) >= count:
            return pods
        time.sleep(0.1)
    raise AssertionError(f"no pods for {selector} in {namespace}")


def place(kube: KubeCluster, namespace: str, pod: str, node: str) -> str:
    """Bind the pod to ``node`` unless a scheduler was quicker; the node it runs on."""
    from kubernetes.client.rest import ApiException

    if not core(kube).read_namespaced_pod(pod, namespace).spec.node_name:
        try:
            kube.bind_pod(namespace, pod, node)
        except ApiException as exc:
            if exc.status != 409:
                raise
    return core(kube).read_namespaced_pod(pod, namespace).spec.node_name


@pytest.fixture()
def node(kube_cluster: KubeCluster) -> str:
    name = f"node-{uuid.uuid4().hex[:8]}"
    kube_cluster.create_node(name)
    yield name
    core(kube_cluster).delete_node(name)


# --- pods ------------------------------------------------------------------------------------------------


async def test_a_crashlooping_pod_is_reported_at_once_with_its_owner_and_node_and_cleared_when_it_recovers(
        kube_cluster: KubeCluster, kube_namespace: str, node: str, tmp_path: Path) -> None:
    apps(kube_cluster).create_namespaced_deployment(kube_namespace, deployment("cache"))
    [pod] = wait_for_pods(kube_cluster, kube_namespace, "app.kubernetes.io/instance=cache")
    name = pod.metadata.name
    node = place(kube_cluster, kube_namespace, name, node)
    async with Watching(admin_config(kube_cluster, kube_namespace), tmp_path) as watching:
        began = time.monotonic()
        core(kube_cluster).patch_namespaced_pod_status(name, kube_namespace, crashloop_status("10.244.7.9"))
        report, at = await watching.recorder.until(
            report_of("pod", name, {"kubernetes.pod_crashloop", "kubernetes.pod_oom_killed"}), after=began)
        crash_latency = at - began
        assert report.resource.namespace == kube_namespace and report.resource.cluster == CLUSTER
        assert report.resource.labels == {"owner": "deployment/cache", "node": node, "address": "10.244.7.9",
                                          "depends_on": f"{CLUSTER}/{node}/node/{node}", "app": "redis"}
        oom = next(f for f in report.findings if f.rule_id == "kubernetes.pod_oom_killed")
        assert oom.evidence["memory_limit"] == "256Mi"

        began = time.monotonic()
        core(kube_cluster).patch_namespaced_pod_status(name, kube_namespace, healthy_status("10.244.7.9"))
        cleared, at = await watching.recorder.until(report_of("pod", name, set()), after=began)
        clear_latency = at - began
    print(f"\nwatch latency, API change -> health report: crash loop {crash_latency * 1000:.0f} ms, "
          f"recovery {clear_latency * 1000:.0f} ms")
    assert cleared.findings == []


async def test_an_unschedulable_pod_carries_the_reason(kube_cluster: KubeCluster, kube_namespace: str,
                                                      tmp_path: Path) -> None:
    body = {"metadata": {"name": "orders-db-0", "labels": {"app.kubernetes.io/name": "postgresql"}},
            "spec": {"containers": [{"name": "postgresql", "image": "docker.io/library/postgres:16",
                                     "resources": {"requests": {"memory": "64Gi"}}}]}}
    core(kube_cluster).create_namespaced_pod(kube_namespace, body)
    async with Watching(admin_config(kube_cluster, kube_namespace), tmp_path) as watching:
        scheduled = core(kube_cluster).read_namespaced_pod_status("orders-db-0", kube_namespace).status.conditions
        if not scheduled:  # no scheduler in this control plane: say what it would
            core(kube_cluster).patch_namespaced_pod_status("orders-db-0", kube_namespace, {"status": {
                "phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                                                    "reason": "Unschedulable", "lastTransitionTime": stamp(),
                                                    "message": "0/1 nodes are available: 1 Insufficient memory."}]}})
        report, _ = await watching.recorder.until(report_of("pod", "orders-db-0", {"kubernetes.pod_unschedulable"}))
    # the scheduler may write its condition again (retries, another wording) after the report: the reason is what
    # must be carried, not one attempt's exact words (CI failed comparing them)
    [condition] = [c for c in core(kube_cluster).read_namespaced_pod_status("orders-db-0", kube_namespace).status.conditions
                   if c.type == "PodScheduled"]
    evidence = report.findings[0].evidence["message"]
    assert condition.reason == "Unschedulable", condition
    assert evidence and evidence in report.findings[0].message, report.findings[0]
    assert "node" not in report.resource.labels


# --- nodes, events, workloads -----------------------------------------------------------------------------


async def test_node_conditions(kube_cluster: KubeCluster, kube_namespace: str, node: str, tmp_path: Path) -> None:
    async with Watching(admin_config(kube_cluster, kube_namespace), tmp_path) as watching:
        core(kube_cluster).patch_node_status(node, {"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady"},
            {"type": "MemoryPressure", "status": "True", "reason": "KubeletHasInsufficientMemory",
             "lastTransitionTime": stamp()}]}})
        pressure, _ = await watching.recorder.until(report_of("node", node, {"kubernetes.node_memory_pressure"}))
        assert pressure.resource.host == node and pressure.resource.labels["address"] == "10.0.0.250"
        core(kube_cluster).patch_node_status(node, {"status": {"conditions": [
            {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
             "message": "Kubelet stopped posting node status.", "lastTransitionTime": stamp()},
            {"type": "MemoryPressure", "status": "Unknown", "reason": "NodeStatusUnknown"}]}})
        down, _ = await watching.recorder.until(report_of("node", node, {"kubernetes.node_not_ready"}))
    assert "kubelet stopped reporting" in down.findings[0].message


async def test_warning_events_land_on_the_pod_they_are_about(kube_cluster: KubeCluster, kube_namespace: str,
                                                            tmp_path: Path) -> None:
    core(kube_cluster).create_namespaced_pod(kube_namespace, {"metadata": {"name": "orders-db-0"},
                                                              "spec": {"containers": [redis_container()]}})
    async with Watching(admin_config(kube_cluster, kube_namespace), tmp_path) as watching:
        core(kube_cluster).create_namespaced_event(kube_namespace, {
            "metadata": {"name": f"orders-db-0.{uuid.uuid4().hex[:12]}"}, "type": "Warning", "reason": "FailedMount",
            "message": 'MountVolume.SetUp failed for volume "data": volume attachment is being deleted',
            "involvedObject": {"kind": "Pod", "name": "orders-db-0", "namespace": kube_namespace, "apiVersion": "v1"},
            "source": {"component": "kubelet", "host": "worker-3"}, "count": 3,
            "firstTimestamp": stamp(60), "lastTimestamp": stamp()})
        report, _ = await watching.recorder.until(report_of("pod", "orders-db-0", {"kubernetes.volume_failed"}, among=True))
    [volume] = [f for f in report.findings if f.rule_id == "kubernetes.volume_failed"]
    assert volume.evidence["count"] == 3 and "volume attachment" in volume.message


async def test_a_rollout_that_cannot_progress_and_a_statefulset_with_nothing_ready(
        kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path) -> None:
    """No kubelet runs the pods, so the controller manager itself finds the rollout past its deadline."""
    apps(kube_cluster).create_namespaced_deployment(kube_namespace, deployment("api", progressDeadlineSeconds=2))
    sts = deployment("redis") | {"spec": deployment("redis")["spec"] | {"serviceName": "redis-headless"}}
    apps(kube_cluster).create_namespaced_stateful_set(kube_namespace, sts)
    async with Watching(admin_config(kube_cluster, kube_namespace), tmp_path) as watching:
        stuck, _ = await watching.recorder.until(
            report_of("deployment", "api", {"kubernetes.rollout_stuck", "kubernetes.workload_unavailable"}), 60)
        unavailable = report_of("statefulset", "redis", {"kubernetes.workload_unavailable"})
        redis, _ = await watching.recorder.until(lambda e: unavailable(e) and "depends_on" in e.resource.labels)
    assert "timed out progressing" in next(f.message for f in stuck.findings if f.rule_id == "kubernetes.rollout_stuck")
    assert redis.resource.labels["depends_on"] == f"{CLUSTER}/{kube_namespace}/pod/redis-0"


async def test_middleware_configmaps_are_snapshots_and_their_edits_changes(kube_cluster: KubeCluster,
                                                                          kube_namespace: str, tmp_path: Path) -> None:
    body = {"metadata": {"name": "cache-config", "labels": {"app.kubernetes.io/name": "redis"}},
            "data": {"redis.conf": "maxmemory 200mb\nmaxmemory-policy allkeys-lru\nrequirepass hunter2\n"}}
    core(kube_cluster).create_namespaced_config_map(kube_namespace, body)
    async with Watching(admin_config(kube_cluster, kube_namespace), tmp_path) as watching:
        snapshot, _ = await watching.recorder.until(lambda e: isinstance(e, ConfigSnapshot))
        assert snapshot.resource.key == f"{CLUSTER}/{kube_namespace}/configmap/cache-config"
        assert snapshot.config == {"maxmemory": str(200 * 2**20), "maxmemory-policy": "allkeys-lru",
                                   "requirepass": "<redacted>"}
        core(kube_cluster).patch_namespaced_config_map("cache-config", kube_namespace, {"data": {
            "redis.conf": "maxmemory 100mb\nmaxmemory-policy noeviction\nrequirepass hunter2\n"}})
        change, _ = await watching.recorder.until(lambda e: isinstance(e, ConfigChange))
    assert {(c.key, c.old, c.new) for c in change.changes} == {
        ("maxmemory", str(200 * 2**20), str(100 * 2**20)), ("maxmemory-policy", "allkeys-lru", "noeviction")}


async def test_resync_repeats_findings_and_sends_metrics_of_every_resource(
        kube_cluster: KubeCluster, kube_namespace: str, node: str, tmp_path: Path) -> None:
    apps(kube_cluster).create_namespaced_deployment(kube_namespace, deployment("cache"))
    [pod] = wait_for_pods(kube_cluster, kube_namespace, "app.kubernetes.io/instance=cache")
    place(kube_cluster, kube_namespace, pod.metadata.name, node)
    core(kube_cluster).patch_namespaced_pod_status(pod.metadata.name, kube_namespace, crashloop_status("10.244.7.10"))
    async with Watching(admin_config(kube_cluster, kube_namespace, resync_interval_s=1.0), tmp_path) as watching:
        first, at = await watching.recorder.until(report_of("pod", pod.metadata.name))
        again, _ = await watching.recorder.until(report_of("pod", pod.metadata.name), after=at + 0.001)
        batch, _ = await watching.recorder.until(lambda e: isinstance(e, MetricBatch) and e.resource.kind == "pod")
        samples = await watching.plugin.collect()
    assert {f.rule_id for f in again.findings} == {f.rule_id for f in first.findings} != set()
    assert {s.name: s.value for s in batch.samples if not s.labels}["kubernetes_pod_ready"] == 0.0
    assert any(s.name == "kubernetes_container_restarts_total" and s.value == 5 for s in batch.samples)
    summary = {(s.name, s.labels.get("kind")) for s in samples}
    assert ("kubernetes_cluster_nodes", None) in summary and ("kubernetes_watch_synced", "pods") in summary


# --- keeping in sync ---------------------------------------------------------------------------------------


def compact_etcd(kube: KubeCluster) -> int:
    """Compact etcd's history up to now, as the API server does every few minutes (``--etcd-compaction-interval``):
    a watch from an older resourceVersion is then answered with 410 Gone. The etcd address is the API server's own
    ``--etcd-servers``; etcd's JSON gateway does the rest."""
    pid = (kube.home / "kube-apiserver.pid").read_text().strip()
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    etcd = next(a.decode().split("=", 1)[1] for a in argv if a.startswith(b"--etcd-servers="))
    revision = int(json.loads(urllib.request.urlopen(urllib.request.Request(
        f"{etcd}/v3/kv/range", data=b'{"key": "AA=="}')).read())["header"]["revision"])
    urllib.request.urlopen(urllib.request.Request(f"{etcd}/v3/kv/compaction",
                                                  data=json.dumps({"revision": str(revision)}).encode())).read()
    return revision


async def test_a_compacted_resource_version_is_gone_and_the_watch_lists_again(kube_cluster: KubeCluster,
                                                                              kube_namespace: str) -> None:
    """Events have no watch cache in the API server: a watch from a compacted resourceVersion reaches etcd and is
    answered with an ERROR event, code 410."""
    event = core(kube_cluster).create_namespaced_event(kube_namespace, {
        "metadata": {"name": "kept.1"}, "type": "Warning", "reason": "FailedMount", "message": "m",
        "involvedObject": {"kind": "Pod", "name": "kept", "namespace": kube_namespace}})
    assert compact_etcd(kube_cluster) >= int(event.metadata.resource_version)
    delivered: list = []
    watcher = Watcher(kube_cluster.api_client(), "events", kube_namespace, delivered.extend, timeout_s=5,
                      watch_timeout_s=60, backoff_max_s=1, max_objects=100)
    watcher.cache.versions = {f"{kube_namespace}/deleted-while-away.1": "2"}
    watcher.cache.resource_version = "2"             # compacted away: 410 Gone
    watcher.start()
    try:
        deadline = time.monotonic() + WAIT_S
        while len(delivered) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await asyncio.to_thread(watcher.stop)
    assert {(c.type, c.key) for c in delivered} == {(DELETED, f"{kube_namespace}/deleted-while-away.1"),
                                                    (ADDED, f"{kube_namespace}/kept.1")}
    assert watcher.lists == 1 and watcher.error is None and int(watcher.cache.resource_version) > 2


class Proxy:
    """A TCP forwarder between the plugin and the API server that can be cut, like a network partition."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)

    async def cut(self) -> None:
        self.server.close()
        for writer in list(self.links):
            writer.transport.abort()
        await self.server.wait_closed()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.links |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.links -= {writer, up_writer}


async def test_an_api_server_that_goes_away_is_target_down_and_followed_again_when_back(
        kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path) -> None:
    host, port = kube_cluster.server.removeprefix("https://").rsplit(":", 1)
    proxy = Proxy((host, int(port)))
    await proxy.start()
    config = admin_config(kube_cluster, kube_namespace, watch=["pods"], backoff_max_s=1.0, timeout_s=2.0)
    config = config.model_copy(update={"server": f"https://127.0.0.1:{proxy.port}"})
    async with Watching(config, tmp_path) as watching:
        await proxy.cut()
        with pytest.raises(TargetUnreachableError):
            await watching.plugin.collect()
        core(kube_cluster).create_namespaced_pod(kube_namespace, {
            "metadata": {"name": "while-away"}, "spec": {"containers": [redis_container()]}})
        core(kube_cluster).patch_namespaced_pod_status("while-away", kube_namespace, {"status": {
            "phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                                "message": "0/1 nodes are available", "lastTransitionTime": stamp()}]}})
        await asyncio.sleep(2.5)                                  # a few failed reconnects
        [watcher] = watching.plugin.watchers
        assert watcher.reconnects >= 1 and not watcher.synced
        await proxy.start()
        report, _ = await watching.recorder.until(report_of("pod", "while-away", {"kubernetes.pod_unschedulable"}))
        assert await watching.plugin.collect()                    # reachable again
    assert report.resource.namespace == kube_namespace


async def test_what_rbac_forbids_is_told_and_the_rest_is_watched(kube_cluster: KubeCluster, kube_namespace: str,
                                                                tmp_path: Path) -> None:
    token = kube_cluster.service_account_token(kube_namespace, "pods-only", rules=[
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}])
    core(kube_cluster).create_namespaced_pod(kube_namespace, {"metadata": {"name": "orders-db-0"},
                                                              "spec": {"containers": [redis_container()]}})
    config = KubernetesConfig(server=kube_cluster.server, token={"value": token}, ca_file=kube_cluster.ca_file,
                              namespaces=[kube_namespace], watch=["pods", "nodes", "events"], backoff_max_s=1.0)
    async with Watching(config, tmp_path) as watching:
        [finding] = await watching.plugin.check_health()
        synced = {w.kind for w in watching.plugin.watchers if w.synced}
    assert finding.rule_id == "kubernetes.watch_forbidden"
    assert finding.evidence["forbidden"] == ["nodes", f"events in {kube_namespace}"]
    assert synced == {"pods"}


async def test_a_target_with_a_missing_kubeconfig_is_down_and_the_collector_keeps_going(tmp_path: Path) -> None:
    from kubestack.agents.config import AgentConfig
    from kubestack.agents.runtime import build_collector

    config = AgentConfig.model_validate({"agent": {"name": "a", "metrics_listen": None}, "targets": [
        {"type": "kubernetes", "name": "prod", "interval": "1s", "health_interval": "1s",
         "config": {"kubeconfig": str(tmp_path / "missing"), "context": "prod"}}]})
    recorder = Recorder()
    collector = build_collector(config.targets[0], config, recorder, StateStore(tmp_path / "state"), AgentMetrics())
    running = asyncio.create_task(collector.run())
    try:
        down, _ = await recorder.until(lambda e: isinstance(e, HealthReport) and not e.reachable, 10)
        await asyncio.sleep(1.5)
        assert not running.done()
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert down.findings[0].rule_id == "agent.target_down" and "kubeconfig" in down.findings[0].message
