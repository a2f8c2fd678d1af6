"""The findings of one pod, node or workload of the cluster, read now (what the remediation stage verifies against
after acting on it). A pod that is gone or terminating (deleted, replaced by its controller) is judged by the
pods its workload runs now: deleting a crash-looping pod worked only if its replacement does not crash-loop too."""

from __future__ import annotations

from datetime import datetime

from kubernetes.client import ApiClient

from kubestack.contract.base import ResourceRef, utcnow
from kubestack.contract.events import Finding
from kubestack.plugins.kubernetes import api
from kubestack.plugins.kubernetes.config import Thresholds
from kubestack.plugins.kubernetes.nodes import node_findings
from kubestack.plugins.kubernetes.objects import meta, workload_of
from kubestack.plugins.kubernetes.pods import pod_findings
from kubestack.plugins.kubernetes.resources import OWNER
from kubestack.plugins.kubernetes.workloads import workload_findings

KINDS = frozenset({"pod", "node", "deployment", "statefulset"})
NOT_FOUND = 404


def object_path(resource: ResourceRef) -> str:
    collection = api.collection_path(f"{resource.kind}s", resource.namespace)
    return f"{collection}/{resource.name}"


def findings_now(client: ApiClient, resource: ResourceRef, thresholds: Thresholds, timeout_s: float,
                 now: datetime | None = None) -> list[Finding]:
    """Blocking: GETs the object (or, for a pod that is gone, its workload's pods) and applies the collector's own
    rules to it."""
    now = now or utcnow()
    try:
        obj = api.get_json(client, object_path(resource), timeout_s)
    except api.ApiStatusError as exc:
        if exc.status != NOT_FOUND:
            raise
        return _replacements(client, resource, thresholds, timeout_s, now) if resource.kind == "pod" else []
    if resource.kind == "pod":
        if meta(obj).get("deletionTimestamp"):  # on its way out: what matters is what replaces it
            return _replacements(client, resource, thresholds, timeout_s, now)
        return pod_findings(obj, now, thresholds)
    if resource.kind == "node":
        return node_findings(obj, now)
    return workload_findings(resource.kind, obj, now)


def _replacements(client: ApiClient, pod: ResourceRef, thresholds: Thresholds, timeout_s: float,
                  now: datetime) -> list[Finding]:
    owner = pod.labels.get(OWNER)
    if not owner or "/" not in owner:
        return []
    kind, name = owner.split("/", 1)
    pods = api.list_all(client, api.collection_path("pods", pod.namespace), timeout_s)[0]
    return [f for p in pods if workload_of(p) == (kind, name) and not meta(p).get("deletionTimestamp")
            for f in pod_findings(p, now, thresholds)]
