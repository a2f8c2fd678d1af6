"""Deployment and StatefulSet status → findings and samples (pure): a rollout past its progress deadline, a
workload with no replica available or below its minimum availability."""

from __future__ import annotations

from datetime import datetime

from kubestack.contract.events import Finding, Sample, Severity
from kubestack.plugins.kubernetes.objects import Obj, condition, meta

ROLLOUT_STUCK = "kubernetes.rollout_stuck"
UNAVAILABLE = "kubernetes.workload_unavailable"

KINDS = {"deployments": "deployment", "statefulsets": "statefulset"}
"""Watched collection → resource kind."""


def replica_counts(obj: Obj) -> dict[str, int]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = spec.get("replicas", 1)
    ready = status.get("readyReplicas", 0)
    available = status.get("availableReplicas", ready)
    return {"desired": int(desired if desired is not None else 1), "ready": int(ready or 0),
            "available": int(available or 0), "updated": int(status.get("updatedReplicas", 0) or 0),
            "current": int(status.get("replicas", 0) or 0)}


def _rolling(kind: str, obj: Obj) -> bool:
    """A rollout in progress (pods being replaced one by one are briefly unavailable)."""
    status = obj.get("status") or {}
    if kind == "statefulset":
        return bool(status.get("updateRevision")) and status.get("updateRevision") != status.get("currentRevision")
    progressing = condition(obj, "Progressing")
    return bool(progressing) and progressing.get("reason") == "ReplicaSetUpdated"


def workload_findings(kind: str, obj: Obj, now: datetime) -> list[Finding]:
    """``kind`` is ``deployment`` or ``statefulset``."""
    m = meta(obj)
    name = f"{m.get('namespace', '')}/{m.get('name', '')}"
    query = f"kubectl -n {m.get('namespace')} rollout status {kind}/{m.get('name')}"
    counts = replica_counts(obj)
    evidence = {kind: name, **counts}
    out = []
    progressing = condition(obj, "Progressing")
    if progressing and progressing.get("status") == "False" and progressing.get("reason") == "ProgressDeadlineExceeded":
        out.append(Finding(rule_id=ROLLOUT_STUCK, severity=Severity.CRITICAL, query=query,
                           message=f"rollout of {kind} {name} is stuck: {progressing.get('message', '')} "
                                   f"({counts['updated']}/{counts['desired']} updated, {counts['available']} "
                                   f"available)",
                           evidence=evidence | {"message": progressing.get("message", ""),
                                                "since": progressing.get("lastTransitionTime")}))
    if counts["desired"] > 0 and counts["available"] == 0:
        out.append(Finding(rule_id=UNAVAILABLE, severity=Severity.CRITICAL, query=query,
                           message=f"{kind} {name} has no replica available (0/{counts['desired']})",
                           evidence=evidence))
        return out
    available = condition(obj, "Available")
    short = kind == "statefulset" and counts["ready"] < counts["desired"] and not _rolling(kind, obj)
    if (available and available.get("status") == "False") or short:
        out.append(Finding(rule_id=UNAVAILABLE, severity=Severity.WARNING, query=query,
                           message=f"{kind} {name} is below its minimum availability: {counts['available']}/"
                                   f"{counts['desired']} replicas available"
                                   + (f" ({available.get('message')})" if available and available.get("message")
                                      else ""),
                           evidence=evidence | ({"message": available.get("message", "")} if available else {})))
    return out


def workload_samples(obj: Obj, ts: datetime) -> list[Sample]:
    counts = replica_counts(obj)
    return [Sample(name="kubernetes_workload_replicas_desired", value=float(counts["desired"]), ts=ts),
            Sample(name="kubernetes_workload_replicas_ready", value=float(counts["ready"]), ts=ts),
            Sample(name="kubernetes_workload_replicas_available", value=float(counts["available"]), ts=ts),
            Sample(name="kubernetes_workload_replicas_updated", value=float(counts["updated"]), ts=ts),
            Sample(name="kubernetes_workload_replicas_unavailable",
                   value=float(max(counts["desired"] - counts["available"], 0)), ts=ts)]
