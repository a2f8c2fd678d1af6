"""The Kubernetes plugin: one target is one cluster. Its own rounds probe the API server (``/version``: an
unreachable or refusing server is the target down) and report the cluster at a glance; ``watch`` keeps pods,
events, workloads, nodes, ConfigMaps and Services in sync through watches and reports each pod, node and workload
as a resource of its own (findings as they change, metrics every resync), and middleware configuration files
as configuration snapshots. ``discover`` turns the middleware it finds into targets of their plugins."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

from kubernetes.client import ApiClient

from kubestack.contract.base import ResourceRef, utcnow
from kubestack.contract.events import Finding, Sample, Severity
from kubestack.plugins.base import ActionOutcome, ActionSpec, CommandRunner, LogSource, ResourceSink
from kubestack.plugins.kubernetes import actions as kube_actions
from kubestack.plugins.kubernetes import api, check
from kubestack.plugins.kubernetes.cache import Change
from kubestack.plugins.kubernetes.config import KubernetesConfig, Watched
from kubestack.plugins.kubernetes.connection import api_client, cluster_name
from kubestack.plugins.kubernetes.declaration import ACTIONS, KEYWORDS, RULES, SYMPTOMS, WATCH_FORBIDDEN
from kubestack.plugins.kubernetes.discovery import discover_targets, unreachable
from kubestack.plugins.kubernetes.objects import object_key, slim
from kubestack.plugins.kubernetes.state import ClusterState
from kubestack.plugins.kubernetes.watch import Watcher

log = logging.getLogger(__name__)

FIRST_RESYNC_S = 5.0
"""The first full report (metrics of everything) comes this soon after start, later ones every resync."""
CLUSTER_SCOPED = frozenset({Watched.NODES})


class KubernetesPlugin:
    """A Kubernetes cluster: pods, workloads, nodes and Warning events, watched through its API server."""

    name: ClassVar[str] = "kubernetes"
    config_model: ClassVar[type[KubernetesConfig]] = KubernetesConfig
    client_module: ClassVar[str] = "kubernetes"
    rules: ClassVar[tuple[str, ...]] = RULES
    symptoms: ClassVar[frozenset[str]] = SYMPTOMS
    keywords: ClassVar[tuple[str, ...]] = KEYWORDS
    resource_kinds: ClassVar[frozenset[str]] = check.KINDS

    def __init__(self, config: KubernetesConfig) -> None:
        self.config = config
        self._client: ApiClient | None = None
        self._cluster: str | None = None
        self.state: ClusterState | None = None
        self.watchers: list[Watcher] = []

    @classmethod
    def create(cls, config: KubernetesConfig, runner: CommandRunner | None = None) -> KubernetesPlugin:
        return cls(config)

    @classmethod
    def example_config(cls) -> dict[str, Any]:
        return {"kubeconfig": "~/.kube/config", "discover": {"kinds": ["redis", "mysql", "postgresql", "kafka"]}}

    # --- the connection ---------------------------------------------------------------------------

    @property
    def cluster(self) -> str:
        if self._cluster is None:
            self._cluster = cluster_name(self.config)
        return self._cluster

    def client(self) -> ApiClient:
        if self._client is None:  # a connection per watch, and a few for probes, discovery and actions
            watches = len(self.config.watch) * max(len(self.config.namespaces), 1)
            self._client = api_client(self.config, pool_size=watches + 4)
        return self._client

    async def _version(self) -> dict:
        client = self.client()
        return await asyncio.to_thread(api.get_json, client, "/version", self.config.timeout_s)

    # --- the target's own rounds ------------------------------------------------------------------

    async def collect(self) -> list[Sample]:
        await self._version()
        ts = utcnow()
        out = self.state.summary(ts) if self.state is not None else []
        for watcher in self.watchers:
            labels = {"kind": watcher.kind, "namespace": watcher.namespace or ""}
            out += [Sample(name="kubernetes_watch_events_total", value=float(watcher.events), ts=ts, labels=labels),
                    Sample(name="kubernetes_watch_lists_total", value=float(watcher.lists), ts=ts, labels=labels),
                    Sample(name="kubernetes_watch_reconnects_total", value=float(watcher.reconnects), ts=ts,
                           labels=labels),
                    Sample(name="kubernetes_watch_synced", value=1.0 if watcher.synced else 0.0, ts=ts,
                           labels=labels)]
        return out

    async def snapshot_config(self) -> dict[str, str]:
        version = await self._version()
        return {k: str(v) for k, v in sorted(version.items())} | {"cluster": self.cluster}

    def log_sources(self) -> list[LogSource]:
        return []

    async def check_health(self) -> list[Finding]:
        await self._version()
        forbidden = [w for w in self.watchers if w.forbidden]
        if not forbidden:
            return []
        return [Finding(rule_id=WATCH_FORBIDDEN, severity=Severity.WARNING,
                        message=f"the agent may not watch {', '.join(w.name for w in forbidden)} in cluster "
                                f"{self.cluster}: its findings there are missing (grant list and watch)",
                        evidence={"forbidden": [w.name for w in forbidden], "error": str(forbidden[0].error)},
                        query="kubectl auth can-i --list --as=<the agent's service account>")]

    def owns(self, resource: ResourceRef) -> bool:
        """A pod, node or workload of this target's cluster."""
        return resource.kind in self.resource_kinds and resource.cluster == self.cluster

    async def check_resource(self, resource: ResourceRef) -> list[Finding]:
        return await asyncio.to_thread(check.findings_now, self.client(), resource, self.config.thresholds,
                                       self.config.timeout_s)

    def actions(self) -> list[ActionSpec]:
        return list(ACTIONS)

    async def execute(self, action_id: str, params: dict[str, Any], *, dry_run: bool = False) -> ActionOutcome:
        return await kube_actions.execute(self.client(), ACTIONS, action_id, params, dry_run=dry_run,
                                          timeout_s=self.config.timeout_s)

    # --- the watches -------------------------------------------------------------------------------

    def _watchers(self, deliver) -> list[Watcher]:
        scopes = self.config.namespaces or [None]
        return [Watcher(self.client(), kind.value, None if kind in CLUSTER_SCOPED else namespace, deliver,
                        timeout_s=self.config.timeout_s, watch_timeout_s=self.config.watch_timeout_s,
                        backoff_max_s=self.config.backoff_max_s, max_objects=self.config.max_objects)
                for kind in self.config.watch for namespace in (scopes if kind not in CLUSTER_SCOPED else [None])]

    async def watch(self, sink: ResourceSink) -> None:
        """Run the watches and report what they see until cancelled."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[list[Change]] = asyncio.Queue()

        def deliver(changes: list[Change]) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, changes)
            except RuntimeError:  # the loop is closing: the agent stops
                pass

        self.state = ClusterState(self.cluster, self.config.thresholds)
        self.watchers = self._watchers(deliver)
        for watcher in self.watchers:
            watcher.start()
        log.info("watching cluster %s: %s", self.cluster, ", ".join(w.name for w in self.watchers))
        resync_at = loop.time() + min(FIRST_RESYNC_S, self.config.resync_interval_s)
        try:
            while True:
                try:
                    batch = await asyncio.wait_for(queue.get(), max(resync_at - loop.time(), 0.0))
                except TimeoutError:
                    batch = None
                while batch is not None:
                    for change in batch:
                        self.state.apply(change)
                    batch = queue.get_nowait() if not queue.empty() else None
                if loop.time() >= resync_at:
                    resync_at = loop.time() + self.config.resync_interval_s
                    await self._report(sink, self.state.resync(utcnow()), metrics=True)
                else:
                    await self._report(sink, self.state.flush(utcnow()), metrics=False)
        finally:
            watchers, self.watchers = self.watchers, []
            await asyncio.gather(*(asyncio.to_thread(w.stop) for w in watchers))

    async def _report(self, sink: ResourceSink, reports, metrics: bool) -> None:
        for report in reports:
            await sink.health(report.resource, report.findings)
        for ref, config in self.state.take_configs():
            await sink.config(ref, config)
        if metrics:
            for ref, samples in self.state.samples(utcnow()):
                await sink.metrics(ref, samples)

    # --- middleware in the cluster ----------------------------------------------------------------

    @classmethod
    def discover(cls, config: KubernetesConfig) -> list[dict]:
        """Targets for the middleware in the cluster (blocking: lists pods, Services and StatefulSets once);
        ``TargetError`` when the API server cannot be asked."""
        if config.discover is None:
            return []
        plugin = cls(config)
        client = plugin.client()
        try:
            listed = {}
            for kind in ("pods", "services", "statefulsets"):
                items = []
                for namespace in config.namespaces or [None]:
                    items += api.list_all(client, api.collection_path(kind, namespace), config.timeout_s)[0]
                listed[kind] = [slim(kind, item) for item in items]
        finally:
            client.close()
        statefulsets = {object_key(s): s for s in listed["statefulsets"]}
        missed = unreachable(listed["pods"], listed["services"], config.discover)
        if missed:
            log.info("cluster %s: middleware pods without a Service are not monitored: %s", plugin.cluster,
                     ", ".join(missed))
        return discover_targets(plugin.cluster, listed["pods"], listed["services"], statefulsets, config.discover)

    async def close(self) -> None:
        for watcher in self.watchers:
            await asyncio.to_thread(watcher.stop)
        self.watchers = []
        if self._client is not None:
            self._client.close()
            self._client = None
