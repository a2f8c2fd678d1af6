"""Warning events → findings on the object they are about (pure). An event counts for ``Thresholds.event_s`` after
it was last seen; what pod and node status already tell (back-off, failed scheduling, image pulls) is left to
those rules so that one cause is not reported twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kubestack.contract.base import ResourceRef
from kubestack.contract.events import Finding, Severity
from kubestack.plugins.kubernetes.objects import Obj, meta, parse_time, replicaset_deployment
from kubestack.plugins.kubernetes.resources import node_ref, object_ref

PROBE_FAILING = "kubernetes.probe_failing"
VOLUME_FAILED = "kubernetes.volume_failed"
CREATE_FAILED = "kubernetes.create_failed"
NODE_OOM = "kubernetes.node_oom"
WARNING_EVENT = "kubernetes.warning_event"

_RULES = {
    "Unhealthy": PROBE_FAILING,
    "FailedMount": VOLUME_FAILED, "FailedAttachVolume": VOLUME_FAILED, "FailedMapVolume": VOLUME_FAILED,
    "VolumeResizeFailed": VOLUME_FAILED, "ProvisioningFailed": VOLUME_FAILED,
    "FailedCreate": CREATE_FAILED,
    "OOMKilling": NODE_OOM, "SystemOOM": NODE_OOM,
}
_TOLD_BY_STATUS = frozenset({"BackOff", "FailedScheduling", "Failed", "ErrImagePull", "ImagePullBackOff",
                             "Evicted", "NodeNotReady"})
MAX_REASONS = 5


@dataclass(frozen=True)
class EventSignal:
    """One Warning event as a finding of the resource it is about, with when it was last seen."""

    resource: ResourceRef
    rule_id: str
    reason: str
    message: str
    count: int
    last_seen: datetime


def last_seen(event: Obj) -> datetime | None:
    series = event.get("series") or {}
    return (parse_time(series.get("lastObservedTime")) or parse_time(event.get("lastTimestamp"))
            or parse_time(event.get("eventTime")) or parse_time(meta(event).get("creationTimestamp")))


def involved_ref(cluster: str, event: Obj) -> ResourceRef | None:
    """The resource an event is about; a ReplicaSet's is its Deployment's."""
    involved = event.get("involvedObject") or {}
    kind, name = (involved.get("kind") or "").lower(), involved.get("name")
    if not kind or not name:
        return None
    if kind == "node":
        return node_ref(cluster, name)
    if kind == "replicaset":
        deployment = replicaset_deployment(name)
        if deployment:
            kind, name = "deployment", deployment
    return object_ref(cluster, kind, name, involved.get("namespace") or meta(event).get("namespace"))


def event_signal(cluster: str, event: Obj) -> EventSignal | None:
    """A Warning event not already told by status, as a signal; None otherwise."""
    if event.get("type") != "Warning":
        return None
    reason = event.get("reason") or ""
    if reason in _TOLD_BY_STATUS:
        return None
    resource, seen = involved_ref(cluster, event), last_seen(event)
    if resource is None or seen is None:
        return None
    count = int((event.get("series") or {}).get("count") or event.get("count") or 1)
    return EventSignal(resource=resource, rule_id=_RULES.get(reason, WARNING_EVENT), reason=reason,
                       message=(event.get("message") or "").strip()[:500], count=count, last_seen=seen)


def event_findings(signals: list[EventSignal], now: datetime, window_s: float) -> list[Finding]:
    """One finding per rule from the signals of one resource still within ``window_s``, latest first."""
    fresh = sorted((s for s in signals if (now - s.last_seen).total_seconds() <= window_s),
                   key=lambda s: s.last_seen, reverse=True)
    by_rule: dict[str, list[EventSignal]] = {}
    for signal in fresh:
        by_rule.setdefault(signal.rule_id, []).append(signal)
    out = []
    for rule, group in by_rule.items():
        latest, total = group[0], sum(s.count for s in group)
        ref = latest.resource
        target = f"{ref.namespace + '/' if ref.namespace else ''}{ref.name}"
        scope = f"-n {ref.namespace} " if ref.namespace else ""
        out.append(Finding(rule_id=rule, severity=Severity.WARNING,
                           message=f"{ref.kind} {target}: {latest.reason}: {latest.message}"[:500]
                                   + (f" (x{total})" if total > 1 else ""),
                           evidence={"reasons": [{"reason": s.reason, "message": s.message, "count": s.count,
                                                  "last_seen": s.last_seen.isoformat()} for s in group[:MAX_REASONS]],
                                     "count": total},
                           query=f"kubectl {scope}get events --field-selector involvedObject.name={ref.name}"))
    return out
