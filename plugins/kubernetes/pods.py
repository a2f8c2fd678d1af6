"""Pod status → findings and samples (pure): crash loops, OOM kills, restarts, image pulls, containers that cannot
start, unschedulable and long-pending pods, running pods that are not ready, evictions; requests and limits."""

from __future__ import annotations

from datetime import datetime

from kubestack.contract.events import Finding, Sample, Severity
from kubestack.plugins.kubernetes.config import Thresholds
from kubestack.plugins.kubernetes.objects import Obj, condition, meta, parse_quantity, parse_time

CRASHLOOP = "kubernetes.pod_crashloop"
OOM_KILLED = "kubernetes.pod_oom_killed"
RESTARTING = "kubernetes.pod_restarting"
IMAGE_PULL = "kubernetes.image_pull_failed"
START_FAILED = "kubernetes.container_start_failed"
UNSCHEDULABLE = "kubernetes.pod_unschedulable"
PENDING = "kubernetes.pod_pending"
NOT_READY = "kubernetes.pod_not_ready"
EVICTED = "kubernetes.pod_evicted"

_PULL_REASONS = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull",
                           "RegistryUnavailable"})
_START_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError",
                            "PreCreateHookError", "PostStartHookError"})


_RESOURCE_METRICS = {
    ("requests", "memory"): "kubernetes_container_memory_requests_bytes",
    ("limits", "memory"): "kubernetes_container_memory_limits_bytes",
    ("requests", "cpu"): "kubernetes_container_cpu_requests_cores",
    ("limits", "cpu"): "kubernetes_container_cpu_limits_cores",
}


def _name(pod: Obj) -> str:
    m = meta(pod)
    return f"{m.get('namespace', '')}/{m.get('name', '')}"


def _statuses(pod: Obj) -> list[Obj]:
    status = pod.get("status") or {}
    return [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]


def _limits(pod: Obj, container: str) -> dict[str, str]:
    for spec in (pod.get("spec") or {}).get("containers") or []:
        if spec.get("name") == container:
            return (spec.get("resources") or {}).get("limits") or {}
    return {}


def _age(since: str | None, now: datetime) -> float | None:
    at = parse_time(since)
    return None if at is None else (now - at).total_seconds()


def _last_termination(cs: Obj) -> Obj:
    return (cs.get("lastState") or {}).get("terminated") or {}


def _container_findings(pod: Obj, cs: Obj, now: datetime, limits: Thresholds) -> list[Finding]:
    name, container = _name(pod), cs.get("name", "?")
    waiting = (cs.get("state") or {}).get("waiting") or {}
    terminated = (cs.get("state") or {}).get("terminated") or {}
    last = _last_termination(cs)
    restarts = int(cs.get("restartCount") or 0)
    reason = waiting.get("reason", "")
    evidence = {"pod": name, "container": container, "restarts": restarts}
    if last:
        evidence |= {"last_reason": last.get("reason"), "last_exit_code": last.get("exitCode"),
                     "last_finished_at": last.get("finishedAt")}
    query = f"kubectl -n {meta(pod).get('namespace')} get pod {meta(pod).get('name')} -o yaml"
    out = []
    if reason == "CrashLoopBackOff":
        why = f"; last exit: {last.get('reason')} (code {last.get('exitCode')})" if last else ""
        out.append(Finding(rule_id=CRASHLOOP, severity=Severity.CRITICAL, query=query,
                           message=f"container {container} of pod {name} is in CrashLoopBackOff after {restarts} "
                                   f"restarts{why}", evidence=evidence | {"message": waiting.get("message", "")}))
    elif reason in _PULL_REASONS:
        out.append(Finding(rule_id=IMAGE_PULL, severity=Severity.CRITICAL, query=query,
                           message=f"container {container} of pod {name} cannot pull its image ({reason}): "
                                   f"{waiting.get('message', '')}"[:500],
                           evidence=evidence | {"reason": reason, "image": cs.get("image"),
                                                "message": waiting.get("message", "")}))
    elif reason in _START_REASONS:
        out.append(Finding(rule_id=START_FAILED, severity=Severity.CRITICAL, query=query,
                           message=f"container {container} of pod {name} cannot start ({reason}): "
                                   f"{waiting.get('message', '')}"[:500],
                           evidence=evidence | {"reason": reason, "message": waiting.get("message", "")}))
    oom = terminated if terminated.get("reason") == "OOMKilled" else last if last.get("reason") == "OOMKilled" else {}
    oom_age = _age(oom.get("finishedAt"), now) if oom else None
    if oom and (oom_age is None or oom_age <= limits.recent_s):
        memory = _limits(pod, container).get("memory")
        out.append(Finding(rule_id=OOM_KILLED, severity=Severity.WARNING, query=query,
                           message=f"container {container} of pod {name} was OOM-killed"
                                   + (f" at its {memory} memory limit" if memory else " (no memory limit: the node "
                                                                                     "ran out)"),
                           evidence=evidence | {"memory_limit": memory, "finished_at": oom.get("finishedAt")}))
    elif last and reason != "CrashLoopBackOff" and restarts >= limits.restarts:
        age = _age(last.get("finishedAt"), now)
        if age is not None and age <= limits.recent_s:
            out.append(Finding(rule_id=RESTARTING, severity=Severity.WARNING, query=query,
                               message=f"container {container} of pod {name} restarted {restarts} times, last "
                                       f"{age / 60:.0f} min ago ({last.get('reason')}, exit code "
                                       f"{last.get('exitCode')})", evidence=evidence))
    return out


def _pending_findings(pod: Obj, now: datetime, limits: Thresholds, others: bool) -> list[Finding]:
    name = _name(pod)
    query = f"kubectl -n {meta(pod).get('namespace')} describe pod {meta(pod).get('name')}"
    scheduled = condition(pod, "PodScheduled")
    if scheduled and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        return [Finding(rule_id=UNSCHEDULABLE, severity=Severity.CRITICAL, query=query,
                        message=f"pod {name} cannot be scheduled: {scheduled.get('message', '')}"[:500],
                        evidence={"pod": name, "reason": "Unschedulable", "message": scheduled.get("message", ""),
                                  "since": scheduled.get("lastTransitionTime")})]
    age = _age(meta(pod).get("creationTimestamp"), now)
    if others or age is None or age < limits.pending_s:
        return []
    waiting = {cs.get("name"): ((cs.get("state") or {}).get("waiting") or {}).get("reason") for cs in _statuses(pod)}
    return [Finding(rule_id=PENDING, severity=Severity.WARNING, query=query,
                    message=f"pod {name} has been Pending for {age / 60:.0f} min"
                            + (f" ({', '.join(f'{c}: {r}' for c, r in waiting.items() if r)})" if any(waiting.values())
                               else ""),
                    evidence={"pod": name, "pending_s": round(age), "waiting": waiting})]


def _not_ready(pod: Obj, now: datetime, limits: Thresholds) -> list[Finding]:
    ready = condition(pod, "Ready")
    if not ready or ready.get("status") == "True":
        return []
    since = _age(ready.get("lastTransitionTime"), now)
    if since is None or since < limits.not_ready_s:
        return []
    name = _name(pod)
    unready = [cs.get("name") for cs in (pod.get("status") or {}).get("containerStatuses") or [] if not cs.get("ready")]
    return [Finding(rule_id=NOT_READY, severity=Severity.WARNING,
                    query=f"kubectl -n {meta(pod).get('namespace')} describe pod {meta(pod).get('name')}",
                    message=f"pod {name} is running but not ready for {since / 60:.0f} min (containers "
                            f"{', '.join(unready) or '?'}): its Service sends it no traffic",
                    evidence={"pod": name, "not_ready_s": round(since), "containers": unready,
                              "reason": ready.get("reason"), "message": ready.get("message", "")})]


def pod_findings(pod: Obj, now: datetime, limits: Thresholds) -> list[Finding]:
    """What is wrong with one pod now."""
    status = pod.get("status") or {}
    phase = status.get("phase")
    if meta(pod).get("deletionTimestamp"):
        return []
    if phase == "Failed" and status.get("reason") == "Evicted":
        changed = [_age(c.get("lastTransitionTime"), now) for c in status.get("conditions") or []]
        ages = [a for a in changed if a is not None]
        if ages and min(ages) > limits.recent_s:
            return []  # an old eviction: the pod object stays until garbage-collected, the news does not
        return [Finding(rule_id=EVICTED, severity=Severity.WARNING,
                        message=f"pod {_name(pod)} was evicted: {status.get('message', '')}"[:500],
                        evidence={"pod": _name(pod), "node": (pod.get("spec") or {}).get("nodeName"),
                                  "message": status.get("message", "")},
                        query=f"kubectl -n {meta(pod).get('namespace')} get pod {meta(pod).get('name')} -o yaml")]
    if phase in ("Succeeded", "Failed"):
        return []
    out = [f for cs in _statuses(pod) for f in _container_findings(pod, cs, now, limits)]
    if phase == "Pending":
        out += _pending_findings(pod, now, limits, others=any(f.rule_id in (IMAGE_PULL, START_FAILED) for f in out))
    elif phase == "Running" and not any(f.rule_id == CRASHLOOP for f in out):
        out += _not_ready(pod, now, limits)
    return _one_per_rule(out)


def _one_per_rule(findings: list[Finding]) -> list[Finding]:
    """A report carries one finding per rule: the first (containers in spec order) stands for the others."""
    seen: dict[str, Finding] = {}
    for finding in findings:
        seen.setdefault(finding.rule_id, finding)
    return list(seen.values())


def pod_samples(pod: Obj, ts: datetime) -> list[Sample]:
    """Readiness, restarts per container (a counter), and each container's requests and limits."""
    status = pod.get("status") or {}
    ready = condition(pod, "Ready")
    out = [Sample(name="kubernetes_pod_ready", value=1.0 if ready and ready.get("status") == "True" else 0.0, ts=ts)]
    for cs in status.get("containerStatuses") or []:
        labels = {"container": cs.get("name", "")}
        out.append(Sample(name="kubernetes_container_restarts_total", value=float(cs.get("restartCount") or 0),
                          ts=ts, labels=labels))
        out.append(Sample(name="kubernetes_container_ready", value=1.0 if cs.get("ready") else 0.0, ts=ts,
                          labels=labels))
    for spec in (pod.get("spec") or {}).get("containers") or []:
        labels = {"container": spec.get("name", "")}
        resources = spec.get("resources") or {}
        for (kind, resource), metric in _RESOURCE_METRICS.items():
            value = parse_quantity((resources.get(kind) or {}).get(resource))
            if value is not None:
                out.append(Sample(name=metric, value=value, ts=ts, labels=labels))
    return out


def requested(pod: Obj, resource: str) -> float:
    """The pod's request of ``memory`` (bytes) or ``cpu`` (cores): the sum over its containers."""
    total = 0.0
    for spec in (pod.get("spec") or {}).get("containers") or []:
        total += parse_quantity(((spec.get("resources") or {}).get("requests") or {}).get(resource)) or 0.0
    return total
