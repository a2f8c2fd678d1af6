"""Carrying out the Kubernetes plugin's actions (declared with their typed parameters in ``declaration.py``) through
the API server: pure checks of the objects read just before acting (the preconditions), a server-side dry run of the exact request (``dryRun=All``:
authentication, RBAC, admission and validation run, nothing is stored), then the request itself.

A change that depends on what was read carries its ``resourceVersion`` (the workload a restart or a scale was
checked on, so the replica count kept for the rollback is exact) and a pod is deleted with its ``uid`` as a
precondition: when the object moved in between, the API server answers 409 and nothing is changed.

The requests, and nothing more, are ``EXECUTOR_RULES`` (namespaced) and ``NODE_RULES`` (cluster-scoped): the Helm
chart grants exactly these to the executor's ServiceAccount (``tests/test_helm_chart.py`` compares them).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from kubestack.errors import (
    ActionDeniedError,
    ActionError,
    PreconditionFailedError,
    TargetAuthError,
    TargetTimeoutError,
    TargetUnreachableError,
)
from kubestack.plugins.base import ActionOutcome, ActionSpec, declared
from kubestack.plugins.kubernetes.declaration import ACTIONS, CORDON, DELETE_POD, RESTART, SCALE, STUCK_S, UNCORDON
from kubestack.plugins.kubernetes.objects import Obj, condition, controller_of, meta, parse_time
from kubestack.plugins.kubernetes.workloads import replica_counts

log = logging.getLogger(__name__)

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
"""The pod template annotation ``kubectl rollout restart`` sets: a changed template makes the controller replace
every pod, in the order and at the pace of the workload's update strategy."""
FIELD_MANAGER = "kubestack"
WORKLOADS = {"deployment": ("/apis/apps/v1", "deployments"), "statefulset": ("/apis/apps/v1", "statefulsets")}
POD_OWNERS = {"replicaset": ("/apis/apps/v1", "replicasets"), "statefulset": ("/apis/apps/v1", "statefulsets")}
"""Controllers that recreate a deleted pod (a DaemonSet's or a Job's pod is never deleted by this plugin)."""

EXECUTOR_RULES = (
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets"], "verbs": ["get", "patch"]},
    {"apiGroups": ["apps"], "resources": ["deployments/scale", "statefulsets/scale"], "verbs": ["patch"]},
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "delete"]},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": ["list"]},
)
"""Namespaced requests of the actions: read the workload and restart it (patch), scale it (patch the scale
subresource), read a pod and its ReplicaSet and delete the pod, list the autoscalers that may own a workload, and
list pods (verifying a deleted pod: does its workload's replacement crash-loop too? ``check.py``)."""
NODE_RULES = ({"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "patch"]},)
"""Cluster-scoped: read a node (also a StatefulSet pod's, before removing it at once), list the others (is one
still schedulable?), cordon and uncordon (patch)."""

# --- preconditions (pure, on the objects as the API server sends them) -----------------------------------

def rollout_problems(kind: str, obj: Obj) -> list[str]:
    """Why a rollout of ``obj`` is under way or stuck (empty: it is settled)."""
    m, status = meta(obj), obj.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(m.get("generation") or 0):
        return [f"its controller has not acted on its latest change yet (generation {m.get('generation')}, "
                f"observed {status.get('observedGeneration', 0)})"]
    counts = replica_counts(obj)
    if kind == "statefulset":
        if status.get("updateRevision") and status.get("updateRevision") != status.get("currentRevision"):
            return [f"a rollout is in progress (revision {status.get('currentRevision')} → "
                    f"{status.get('updateRevision')}, {counts['updated']}/{counts['desired']} updated)"]
        return []
    progressing = condition(obj, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return [f"its last rollout is stuck past its progress deadline ({progressing.get('message', '')}): undo or "
                "fix that rollout first"]
    if counts["updated"] < counts["desired"]:
        return [f"a rollout is in progress ({counts['updated']}/{counts['desired']} replicas updated)"]
    if counts["current"] > counts["updated"]:
        return [f"a rollout is finishing ({counts['current'] - counts['updated']} old replica(s) still to go)"]
    return []


def restart_problems(kind: str, obj: Obj) -> list[str]:
    spec = obj.get("spec") or {}
    problems = []
    if replica_counts(obj)["desired"] == 0:
        problems.append("it has 0 replicas: there is nothing to restart")
    if spec.get("paused"):
        problems.append("it is paused: a restart would not roll out (kubectl rollout resume first)")
    if kind == "statefulset" and (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
        problems.append("its update strategy is OnDelete: a changed template replaces no pod")
    return problems + rollout_problems(kind, obj)


def _scale_target(hpa: Obj) -> tuple[str, str]:
    ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
    return str(ref.get("kind", "")).lower(), ref.get("name", "")


def scale_problems(kind: str, obj: Obj, replicas: int, autoscalers: list[Obj]) -> list[str]:
    counts = replica_counts(obj)
    problems = []
    if counts["desired"] == replicas:
        problems.append(f"it already has {replicas} replica(s)")
    if replicas == 0 and counts["available"] > 0:
        problems.append(f"scaling to 0 stops its {counts['available']} available replica(s): do that by hand")
    for hpa in autoscalers:
        if _scale_target(hpa) == (kind, meta(obj).get("name")):
            problems.append(f"HorizontalPodAutoscaler {meta(hpa).get('name')} manages its replicas and would undo "
                            "the change: change the autoscaler's bounds instead")
    return problems + rollout_problems(kind, obj)


def crash_looping(pod: Obj) -> list[str]:
    status = pod.get("status") or {}
    return [cs.get("name", "?") for cs in [*(status.get("initContainerStatuses") or []),
                                           *(status.get("containerStatuses") or [])]
            if ((cs.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"]


def owner_problems(pod: Obj, owner: Obj | None) -> list[str]:
    """Whether the pod's controller exists and would recreate it; ``owner`` is the controller as read (None: gone)."""
    controller = controller_of(pod)
    if controller is None:
        return ["it has no controller: nothing would recreate it"]
    kind, name = controller
    if kind not in POD_OWNERS:
        return [f"it is controlled by {kind} {name}: only ReplicaSet and StatefulSet pods are deleted"]
    ref = next(r for r in meta(pod).get("ownerReferences") or [] if (r["kind"].lower(), r["name"]) == controller)
    if owner is None or meta(owner).get("uid") != ref.get("uid"):
        return [f"its {kind} {name} no longer exists: nothing would recreate it"]
    if meta(owner).get("deletionTimestamp"):
        return [f"its {kind} {name} is being deleted: it would not recreate the pod"]
    wanted = replica_counts(owner)["desired"]
    if wanted == 0:
        return [f"its {kind} {name} is scaled to 0: it would not recreate the pod"]
    if kind == "statefulset":
        ordinal = meta(pod).get("name", "").rsplit("-", 1)[-1]
        if ordinal.isdigit() and int(ordinal) >= wanted:
            return [f"its statefulset {name} wants {wanted} replica(s): ordinal {ordinal} would not be recreated"]
    return []


def stuck_problems(pod: Obj, node: Obj | None, now: datetime, stuck_s: float) -> tuple[str, list[str]]:
    """(why the pod is stuck, why it may not be deleted). ``node`` is the pod's node as read (None: none or gone)."""
    deleting = parse_time(meta(pod).get("deletionTimestamp"))
    if deleting is not None:
        late = (now - deleting).total_seconds()
        why = f"Terminating {late:.0f}s past its grace period"
        if late < stuck_s:
            return why, [f"it is Terminating, {late:.0f}s past its grace period: not stuck before {stuck_s:g}s"]
        ready = condition(node, "Ready") if node else None
        if controller_of(pod) and controller_of(pod)[0] == "statefulset" and ready and ready.get("status") == "True":
            return why, [f"its node {meta(node).get('name')} is Ready: removing a StatefulSet pod at once could "
                         "run two pods with one identity; let the node's kubelet finish it"]
        return why, []
    looping = crash_looping(pod)
    if looping:
        return f"container(s) {', '.join(looping)} in CrashLoopBackOff", []
    return "", ["it is not stuck: no container is in CrashLoopBackOff and it is not Terminating"]


def schedulable(node: Obj) -> bool:
    """Ready, not cordoned, and no taint that keeps new pods away."""
    ready = condition(node, "Ready")
    taints = (node.get("spec") or {}).get("taints") or []
    return (bool(ready) and ready.get("status") == "True" and not (node.get("spec") or {}).get("unschedulable")
            and not any(t.get("effect") in ("NoSchedule", "NoExecute") for t in taints))


def cordon_problems(node: Obj, nodes: list[Obj]) -> list[str]:
    name = meta(node).get("name")
    if (node.get("spec") or {}).get("unschedulable"):
        return ["it is already cordoned"]
    if not any(schedulable(n) for n in nodes if meta(n).get("name") != name):
        return ["it is the last schedulable node (Ready, uncordoned, no NoSchedule taint): new pods could go "
                "nowhere"]
    return []


# --- requests (blocking: run in a thread) --------------------------------------------------------------

class _Api:
    """Raw-JSON requests of one action, their failures as this action's errors."""

    def __init__(self, client: ApiClient, action: str, timeout_s: float) -> None:
        self.client, self.action, self.timeout = client, action, (timeout_s, timeout_s)

    def call(self, method: str, path: str, *, body: Any = None, query: Sequence[tuple[str, Any]] = (),
             missing_ok: bool = False) -> Obj | None:
        headers = {"Accept": "application/json"}
        if method == "PATCH":
            headers["Content-Type"] = "application/strategic-merge-patch+json"
        request = self.client.param_serialize(method=method, resource_path=path, query_params=list(query),
                                              header_params=headers, body=body, auth_settings=["BearerToken"])
        try:
            response = self.client.call_api(*request, _request_timeout=self.timeout)
            data = response.read()
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._unreachable(exc) from exc
        if response.status == 404 and missing_ok:
            return None
        if not 200 <= response.status <= 299:
            raise self._refused(method, path, response.status, data)
        return json.loads(data) if data else {}

    def write(self, method: str, path: str, body: Any, *, dry_run: bool) -> Obj:
        query = [("fieldManager", FIELD_MANAGER)] if method == "PATCH" else []
        if dry_run and method == "DELETE":
            body = {**body, "dryRun": ["All"]}  # a DELETE's body (DeleteOptions) wins over its query parameters
        return self.call(method, path, body=body, query=[*query, *([("dryRun", "All")] if dry_run else [])])

    def _unreachable(self, exc: Exception) -> Exception:
        host = self.client.configuration.host
        if isinstance(exc, (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ConnectTimeoutError)):
            return TargetTimeoutError(f"{self.action}: Kubernetes API {host} gave no answer in time")
        return TargetUnreachableError(f"{self.action}: Kubernetes API {host} cannot be reached: {exc}"[:300])

    def _refused(self, method: str, path: str, status: int, data: bytes) -> Exception:
        try:
            message = json.loads(data).get("message", "")
        except ValueError:
            message = data.decode(errors="replace")[:200]
        if status == 401:
            return TargetAuthError(f"{self.action}: the Kubernetes API refused the token: {message}")
        if status == 403:
            return ActionDeniedError(f"{self.action}: RBAC denies {method} {path}: {message}; the executor's "
                                     "ServiceAccount needs that grant (deploy/helm/kubestack, executor RBAC)")
        if status in (404, 409):
            return PreconditionFailedError(self.action, [f"the object changed since it was checked ({message})"])
        return ActionError(f"{self.action}: {method} {path}: HTTP {status}: {message}")


def _path(group: str, resource: str, name: str, namespace: str | None = None, sub: str = "") -> str:
    scope = f"/namespaces/{namespace}" if namespace else ""
    return f"{group}{scope}/{resource}/{name}" + (f"/{sub}" if sub else "")


def _workload(api: _Api, params: dict[str, Any]) -> tuple[str, Obj]:
    group, resource = WORKLOADS[params["kind"]]
    path = _path(group, resource, params["name"], params["namespace"])
    obj = api.call("GET", path, missing_ok=True)
    if obj is None:
        raise PreconditionFailedError(api.action, [f"no {params['kind']} {params['name']} in namespace "
                                                   f"{params['namespace']}"])
    return path, obj


def _done(action: str, params: dict[str, Any], dry_run: bool, what: str, before: dict[str, Any],
          undo: tuple[str, dict[str, Any]] | None = None) -> ActionOutcome:
    output = f"{what} (accepted by the API server in a dry run)" if dry_run else f"done: {what}"
    return ActionOutcome(action=action, params=params, dry_run=dry_run, output=output, before=before, undo=undo)


def _rollout_restart(api: _Api, params: dict[str, Any], dry_run: bool, now: datetime) -> ActionOutcome:
    kind = params["kind"]
    path, obj = _workload(api, params)
    problems = restart_problems(kind, obj)
    if problems:
        raise PreconditionFailedError(api.action, problems)
    annotations = ((obj.get("spec") or {}).get("template") or {}).get("metadata", {}).get("annotations") or {}
    stamp = now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"metadata": {"resourceVersion": meta(obj)["resourceVersion"]},
            "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    api.write("PATCH", path, body, dry_run=True)
    if not dry_run:
        api.write("PATCH", path, body, dry_run=False)
    before = {"generation": meta(obj).get("generation"), "restarted_at": annotations.get(RESTARTED_AT),
              **replica_counts(obj)}
    return _done(api.action, params, dry_run, f"restart {kind} {params['namespace']}/{params['name']}: pod "
                 f"template annotation {RESTARTED_AT}={stamp}, {before['desired']} replica(s) replaced one by one",
                 before)


def _scale(api: _Api, params: dict[str, Any], dry_run: bool, now: datetime) -> ActionOutcome:
    kind, replicas = params["kind"], params["replicas"]
    path, obj = _workload(api, params)
    autoscalers = api.call("GET", f"/apis/autoscaling/v2/namespaces/{params['namespace']}/horizontalpodautoscalers")
    problems = scale_problems(kind, obj, replicas, (autoscalers or {}).get("items") or [])
    if problems:
        raise PreconditionFailedError(api.action, problems)
    counts = replica_counts(obj)
    body = {"metadata": {"resourceVersion": meta(obj)["resourceVersion"]}, "spec": {"replicas": replicas}}
    api.write("PATCH", f"{path}/scale", body, dry_run=True)
    if not dry_run:
        api.write("PATCH", f"{path}/scale", body, dry_run=False)
    return _done(api.action, params, dry_run, f"scale {kind} {params['namespace']}/{params['name']} from "
                 f"{counts['desired']} to {replicas} replica(s) ({counts['available']} available now)", counts,
                 undo=(SCALE, {**params, "replicas": counts["desired"]}))


def _delete_pod(api: _Api, params: dict[str, Any], dry_run: bool, now: datetime) -> ActionOutcome:
    path = _path("/api/v1", "pods", params["name"], params["namespace"])
    pod = api.call("GET", path, missing_ok=True)
    if pod is None:
        raise PreconditionFailedError(api.action, [f"no pod {params['name']} in namespace {params['namespace']}"])
    controller = controller_of(pod)
    owner = None
    if controller and controller[0] in POD_OWNERS:
        owner = api.call("GET", _path(*POD_OWNERS[controller[0]], controller[1], params["namespace"]),
                         missing_ok=True)
    node_name = (pod.get("spec") or {}).get("nodeName")
    node = api.call("GET", _path("/api/v1", "nodes", node_name), missing_ok=True) if node_name else None
    why, problems = stuck_problems(pod, node, now, params.get("stuck_s", STUCK_S))
    problems = owner_problems(pod, owner) + problems
    if problems:
        raise PreconditionFailedError(api.action, problems)
    terminating = bool(meta(pod).get("deletionTimestamp"))
    body = {"preconditions": {"uid": meta(pod)["uid"]}, **({"gracePeriodSeconds": 0} if terminating else {})}
    api.write("DELETE", path, body, dry_run=True)
    if not dry_run:
        api.write("DELETE", path, body, dry_run=False)
    before = {"uid": meta(pod)["uid"], "phase": (pod.get("status") or {}).get("phase"), "node": node_name,
              "owner": f"{controller[0]}/{controller[1]}", "stuck": why}
    how = "remove it at once (grace period 0)" if terminating else "delete it with its grace period"
    return _done(api.action, params, dry_run, f"delete pod {params['namespace']}/{params['name']} ({why}): {how}; "
                 f"{before['owner']} recreates it", before)


def _node(api: _Api, params: dict[str, Any], dry_run: bool, now: datetime) -> ActionOutcome:
    cordon = api.action == CORDON
    path = _path("/api/v1", "nodes", params["name"])
    node = api.call("GET", path, missing_ok=True)
    if node is None:
        raise PreconditionFailedError(api.action, [f"no node {params['name']}"])
    if cordon:
        problems = cordon_problems(node, (api.call("GET", "/api/v1/nodes") or {}).get("items") or [])
    else:
        problems = [] if (node.get("spec") or {}).get("unschedulable") else ["it is not cordoned"]
    if problems:
        raise PreconditionFailedError(api.action, problems)
    body = {"spec": {"unschedulable": True if cordon else None}}
    api.write("PATCH", path, body, dry_run=True)
    if not dry_run:
        api.write("PATCH", path, body, dry_run=False)
    return _done(api.action, params, dry_run, f"{'cordon' if cordon else 'uncordon'} node {params['name']}",
                 {"unschedulable": not cordon}, undo=(UNCORDON if cordon else CORDON, {"name": params["name"]}))


_STEPS: dict[str, Callable[[_Api, dict[str, Any], bool, datetime], ActionOutcome]] = {
    RESTART: _rollout_restart, SCALE: _scale, DELETE_POD: _delete_pod, CORDON: _node, UNCORDON: _node}


async def execute(client: ApiClient, specs: Sequence[ActionSpec], action_id: str, params: dict[str, Any], *,
                  dry_run: bool = False, timeout_s: float = 10.0) -> ActionOutcome:
    """Check the parameters, read and check the objects, dry-run the request on the server, then (unless
    ``dry_run``) send it. The blocking client runs in a thread; each request times out after ``timeout_s``."""
    checked = declared(specs, action_id, "Kubernetes").check(params)
    api = _Api(client, action_id, timeout_s)
    outcome = await asyncio.to_thread(_STEPS[action_id], api, checked, dry_run, datetime.now(timezone.utc))
    log.info("%s %s: %s", action_id, "dry run" if dry_run else "done", outcome.output)
    return outcome
