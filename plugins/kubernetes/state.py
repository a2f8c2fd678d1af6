"""A cluster's objects as the watches reported them, and what to tell about them (pure).

``apply`` takes each change; ``flush`` says which resources' findings changed since last told (a pod that just
entered CrashLoopBackOff, a node that recovered: told at once, an empty report clearing what was said); ``resync``
re-evaluates everything (time-based rules: pending for 5 min, a Warning event aged out) and repeats every resource
that still has findings, as every target's health round does. Every report is a resource's full state.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime

from kubestack.contract.base import ResourceRef
from kubestack.contract.events import Finding, Sample
from kubestack.plugins.kubernetes.cache import DELETED, Change
from kubestack.plugins.kubernetes.config import Thresholds
from kubestack.plugins.kubernetes.configfiles import configmap_configs
from kubestack.plugins.kubernetes.events import EventSignal, event_findings, event_signal
from kubestack.plugins.kubernetes.nodes import node_findings, node_samples
from kubestack.plugins.kubernetes.objects import Obj, meta, workload_of
from kubestack.plugins.kubernetes.pods import pod_findings, pod_samples, requested
from kubestack.plugins.kubernetes.resources import configmap_ref, node_ref, pod_ref, workload_ref
from kubestack.plugins.kubernetes.workloads import KINDS as WORKLOAD_KINDS
from kubestack.plugins.kubernetes.workloads import workload_findings, workload_samples

KEPT = ("pods", "nodes", "deployments", "statefulsets")
"""Collections whose objects are kept (events become signals, ConfigMaps snapshots: neither is kept)."""


@dataclass(frozen=True)
class Report:
    resource: ResourceRef
    findings: list[Finding]


def _signature(ref: ResourceRef, findings: list[Finding]) -> tuple:
    """What makes a report news: its rules and severities, and while it has findings its labels too (a pod that got
    its IP, a workload whose pods changed: what correlation relates it by)."""
    if not findings:
        return ()
    return tuple(sorted((f.rule_id, f.severity.value) for f in findings)), tuple(sorted(ref.labels.items()))


class ClusterState:
    def __init__(self, cluster: str, thresholds: Thresholds) -> None:
        self.cluster = cluster
        self.thresholds = thresholds
        self.objects: dict[str, dict[str, Obj]] = {kind: {} for kind in KEPT}
        self.signals: dict[str, EventSignal] = {}
        self._signals_of: dict[str, set[str]] = defaultdict(set)     # resource key -> event keys
        self._source: dict[str, tuple[str, str]] = {}                  # resource key -> (collection, object key)
        self._pods_of: dict[tuple[str, str], set[str]] = defaultdict(set)  # (node | ns/kind/name) -> pod keys
        self._told: dict[str, tuple] = {}                              # resource key -> signature last reported
        self._last_ref: dict[str, ResourceRef] = {}
        self._dirty: set[str] = set()
        self._configs: list[tuple[ResourceRef, dict[str, str]]] = []
        self.changes = Counter()

    # --- taking changes in ---------------------------------------------------------------------

    def apply(self, change: Change) -> None:
        self.changes[change.kind] += 1
        if change.kind == "events":
            self._apply_event(change)
        elif change.kind == "configmaps":
            if change.type != DELETED:
                self._apply_configmap(change.obj)
        elif change.kind in self.objects:
            self._apply_object(change)

    def _resource_key(self, kind: str, obj: Obj) -> str | None:
        if kind == "pods":
            return pod_ref(self.cluster, obj).key
        if kind == "nodes":
            return node_ref(self.cluster, meta(obj).get("name", "")).key
        if kind in WORKLOAD_KINDS:
            return workload_ref(self.cluster, WORKLOAD_KINDS[kind], obj).key
        return None

    def _index_pod(self, pod: Obj, key: str, add: bool) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        workload = workload_of(pod)
        groups = [("node", node)] if node else []
        if workload:
            owner = f"{meta(pod).get('namespace')}/{workload[0]}/{workload[1]}"
            groups.append(("workload", owner))
            self._dirty.add(f"{self.cluster}/{owner}")  # its depends_on names its pods
        for group in groups:
            (self._pods_of[group].add if add else self._pods_of[group].discard)(key)

    def _apply_object(self, change: Change) -> None:
        store = self.objects[change.kind]
        old = store.pop(change.key, None)
        if change.kind == "pods" and old is not None:
            self._index_pod(old, change.key, add=False)
        rkey = self._resource_key(change.kind, old or change.obj)
        if change.type != DELETED:
            store[change.key] = change.obj
            if change.kind == "pods":
                self._index_pod(change.obj, change.key, add=True)
        if rkey is None:
            return
        if change.type == DELETED:
            self._source.pop(rkey, None)
        else:
            self._source[rkey] = (change.kind, change.key)
        self._dirty.add(rkey)

    def _apply_event(self, change: Change) -> None:
        previous = self.signals.pop(change.key, None)
        if previous is not None:
            self._signals_of[previous.resource.key].discard(change.key)
            self._dirty.add(previous.resource.key)
        signal = event_signal(self.cluster, change.obj) if change.type != DELETED else None
        if signal is not None:
            self.signals[change.key] = signal
            self._signals_of[signal.resource.key].add(change.key)
            self._dirty.add(signal.resource.key)

    def _apply_configmap(self, configmap: Obj) -> None:
        configs = configmap_configs(configmap)
        for kind, config in configs.items():
            ref = configmap_ref(self.cluster, configmap, kind)
            if len(configs) > 1:
                ref = ref.model_copy(update={"name": f"{ref.name}:{kind}"})
            self._configs.append((ref, config))

    # --- what to tell ----------------------------------------------------------------------------

    def pods_of(self, group: str, name: str) -> list[Obj]:
        pods = self.objects["pods"]
        return [pods[k] for k in sorted(self._pods_of.get((group, name), ())) if k in pods]

    def _evaluate(self, rkey: str, now: datetime) -> tuple[ResourceRef | None, list[Finding]]:
        ref, findings = None, []
        source = self._source.get(rkey)
        if source is not None:
            kind, okey = source
            obj = self.objects[kind][okey]
            if kind == "pods":
                ref, findings = pod_ref(self.cluster, obj), pod_findings(obj, now, self.thresholds)
            elif kind == "nodes":
                ref, findings = node_ref(self.cluster, obj), node_findings(obj, now)
            else:
                wkind = WORKLOAD_KINDS[kind]
                pods = self.pods_of("workload", f"{meta(obj).get('namespace')}/{wkind}/{meta(obj).get('name')}")
                ref = workload_ref(self.cluster, wkind, obj, [pod_ref(self.cluster, p).key for p in pods])
                findings = workload_findings(wkind, obj, now)
        signals = [self.signals[k] for k in self._signals_of.get(rkey, ()) if k in self.signals]
        if signals:
            ref = ref or max(signals, key=lambda s: s.last_seen).resource
            findings += event_findings(signals, now, self.thresholds.event_s)
        return ref, findings

    def _report(self, rkey: str, now: datetime, repeat: bool) -> Report | None:
        ref, findings = self._evaluate(rkey, now)
        told = self._told.get(rkey)
        if ref is None:
            ref = self._last_ref.get(rkey)
            self._signals_of.pop(rkey, None)
        signature = _signature(ref, findings) if ref is not None else ()
        if ref is None or (signature == (told or ()) and not (repeat and findings)):
            return None
        self._last_ref[rkey] = ref
        if findings:
            self._told[rkey] = signature
        else:
            self._told.pop(rkey, None)
            self._last_ref.pop(rkey, None)
        return Report(ref, findings)

    def flush(self, now: datetime) -> list[Report]:
        """Reports of the resources whose findings changed since they were last told."""
        dirty, self._dirty = sorted(self._dirty), set()
        return [r for key in dirty if (r := self._report(key, now, repeat=False))]

    def resync(self, now: datetime) -> list[Report]:
        """Every resource re-evaluated: those whose findings changed and those that still have some."""
        self._dirty.clear()
        keys = set(self._source) | set(self._told) | {k for k, v in self._signals_of.items() if v}
        return [r for key in sorted(keys) if (r := self._report(key, now, repeat=True))]

    def take_configs(self) -> list[tuple[ResourceRef, dict[str, str]]]:
        """Middleware configuration files seen since last asked (``configmap`` resources)."""
        out, self._configs = self._configs, []
        return out

    def samples(self, ts: datetime) -> list[tuple[ResourceRef, list[Sample]]]:
        """Metrics of every pod, node and workload."""
        out = [(pod_ref(self.cluster, pod), pod_samples(pod, ts)) for pod in self.objects["pods"].values()]
        for node in self.objects["nodes"].values():
            pods = self.pods_of("node", meta(node).get("name", ""))
            out.append((node_ref(self.cluster, node), node_samples(node, ts, pods, requested)))
        for kind, wkind in WORKLOAD_KINDS.items():
            out += [(workload_ref(self.cluster, wkind, obj), workload_samples(obj, ts))
                    for obj in self.objects[kind].values()]
        return [(ref, samples) for ref, samples in out if samples]

    def summary(self, ts: datetime) -> list[Sample]:
        """The cluster at a glance, for the target's own resource."""
        nodes = list(self.objects["nodes"].values())
        ready = sum(1 for n in nodes if any(c.get("type") == "Ready" and c.get("status") == "True"
                                            for c in (n.get("status") or {}).get("conditions") or []))
        phases = Counter((p.get("status") or {}).get("phase") or "Unknown" for p in self.objects["pods"].values())
        out = [Sample(name="kubernetes_cluster_nodes", value=float(len(nodes)), ts=ts),
               Sample(name="kubernetes_cluster_nodes_ready", value=float(ready), ts=ts),
               Sample(name="kubernetes_cluster_resources_with_findings", value=float(len(self._told)), ts=ts)]
        out += [Sample(name="kubernetes_cluster_pods", value=float(n), ts=ts, labels={"phase": phase})
                for phase, n in sorted(phases.items())]
        return out
