"""Node status → findings and samples (pure): NotReady, memory/disk/PID pressure, network unavailable; what is
allocatable and how much of it the pods scheduled there request."""

from __future__ import annotations

from datetime import datetime

from kubestack.contract.events import Finding, Sample, Severity
from kubestack.plugins.kubernetes.objects import Obj, meta, parse_quantity

NOT_READY = "kubernetes.node_not_ready"
MEMORY_PRESSURE = "kubernetes.node_memory_pressure"
DISK_PRESSURE = "kubernetes.node_disk_pressure"
PID_PRESSURE = "kubernetes.node_pid_pressure"
NETWORK_UNAVAILABLE = "kubernetes.node_network_unavailable"

_PRESSURE = {
    "MemoryPressure": (MEMORY_PRESSURE, "is short of memory: the kubelet evicts pods"),
    "DiskPressure": (DISK_PRESSURE, "is short of disk space or inodes: the kubelet evicts pods and removes images"),
    "PIDPressure": (PID_PRESSURE, "is running out of process ids"),
    "NetworkUnavailable": (NETWORK_UNAVAILABLE, "has no pod network configured"),
}


def _evidence(condition: Obj, node: str) -> dict:
    return {"node": node, "condition": condition.get("type"), "status": condition.get("status"),
            "reason": condition.get("reason"), "message": condition.get("message", ""),
            "since": condition.get("lastTransitionTime"), "last_heartbeat": condition.get("lastHeartbeatTime")}


def node_findings(node: Obj, now: datetime) -> list[Finding]:
    name = meta(node).get("name", "")
    query = f"kubectl describe node {name}"
    out = []
    for condition in (node.get("status") or {}).get("conditions") or []:
        kind, status = condition.get("type"), condition.get("status")
        if kind == "Ready" and status != "True":
            stale = status == "Unknown"
            out.append(Finding(rule_id=NOT_READY, severity=Severity.CRITICAL, query=query,
                               message=f"node {name} is NotReady"
                                       + (" (its kubelet stopped reporting)" if stale else "")
                                       + f": {condition.get('message', condition.get('reason', ''))}"[:400],
                               evidence=_evidence(condition, name)))
        elif kind in _PRESSURE and status == "True":
            rule, what = _PRESSURE[kind]
            severity = Severity.CRITICAL if kind == "NetworkUnavailable" else Severity.WARNING
            out.append(Finding(rule_id=rule, severity=severity, query=query,
                               message=f"node {name} {what} ({condition.get('reason', kind)})",
                               evidence=_evidence(condition, name)))
    return out


def node_samples(node: Obj, ts: datetime, pods: list[Obj] = (), requested=None) -> list[Sample]:
    """Ready, conditions, allocatable CPU/memory/pods, and the pods and requests scheduled on the node
    (``requested(pod, "memory"|"cpu")`` sums a pod's requests)."""
    status = node.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    out = [Sample(name="kubernetes_node_ready", value=1.0 if conditions.get("Ready") == "True" else 0.0, ts=ts),
           Sample(name="kubernetes_node_unschedulable",
                  value=1.0 if (node.get("spec") or {}).get("unschedulable") else 0.0, ts=ts)]
    allocatable = status.get("allocatable") or {}
    for key, metric in (("cpu", "kubernetes_node_allocatable_cpu_cores"),
                        ("memory", "kubernetes_node_allocatable_memory_bytes"),
                        ("pods", "kubernetes_node_allocatable_pods")):
        value = parse_quantity(allocatable.get(key))
        if value is not None:
            out.append(Sample(name=metric, value=value, ts=ts))
    running = [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    out.append(Sample(name="kubernetes_node_pods", value=float(len(running)), ts=ts))
    if requested is not None:
        out.append(Sample(name="kubernetes_node_memory_requests_bytes",
                          value=sum(requested(p, "memory") for p in running), ts=ts))
        out.append(Sample(name="kubernetes_node_cpu_requests_cores", value=sum(requested(p, "cpu") for p in running),
                          ts=ts))
    return out
