"""What the Kubernetes plugin declares: its rules, the words that name it in a question, and its actions, each with
its risk, typed parameters and the signals it answers (``plugins/remedy.py``).

A pod finding names the pod as ``namespace/name``; its workload is the resource's ``owner`` label
(``deployment/x``, a ReplicaSet read as its Deployment); a node finding names the node."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from kubestack.contract.events import Risk
from kubestack.plugins.base import ActionParams, ActionSpec, WholeNumber, no_bool
from kubestack.plugins.kubernetes import events, nodes, pods, workloads
from kubestack.plugins.remedy import Clue, Offer, Remedy

RESTART = "kubernetes.rollout_restart"
SCALE = "kubernetes.scale"
DELETE_POD = "kubernetes.delete_pod"
CORDON = "kubernetes.cordon_node"
UNCORDON = "kubernetes.uncordon_node"

WATCH_FORBIDDEN = "kubernetes.watch_forbidden"
RULES = (
    pods.CRASHLOOP, pods.OOM_KILLED, pods.RESTARTING, pods.IMAGE_PULL, pods.START_FAILED, pods.UNSCHEDULABLE,
    pods.PENDING, pods.NOT_READY, pods.EVICTED, nodes.NOT_READY, nodes.MEMORY_PRESSURE, nodes.DISK_PRESSURE,
    nodes.PID_PRESSURE, nodes.NETWORK_UNAVAILABLE, workloads.ROLLOUT_STUCK, workloads.UNAVAILABLE,
    events.PROBE_FAILING, events.VOLUME_FAILED, events.CREATE_FAILED, events.NODE_OOM, events.WARNING_EVENT,
    WATCH_FORBIDDEN,
)
SYMPTOMS: frozenset[str] = frozenset()
KEYWORDS = ("k8s", "kubectl", "pod", "pods", "deployment", "statefulset", "node", "容器", "集群")

MAX_REPLICAS = 500
STUCK_S = 120.0
"""A Terminating pod counts as stuck this long past its grace period (its kubelet should be done by then)."""
NAME = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
NAMESPACE = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
NODE_TROUBLE = {nodes.NOT_READY: "is NotReady", nodes.MEMORY_PRESSURE: "is short of memory",
                nodes.DISK_PRESSURE: "is short of disk", nodes.PID_PRESSURE: "runs out of process ids"}


class Workload(ActionParams):
    kind: Literal["deployment", "statefulset"] = Field(description="The workload's kind")
    namespace: str = Field(pattern=NAMESPACE, description="Its namespace (a DNS label)")
    name: str = Field(pattern=NAME, description="Its name (a DNS subdomain)")


class Scale(Workload):
    replicas: WholeNumber = Field(ge=0, le=MAX_REPLICAS, description=f"The new replica count, 0 to {MAX_REPLICAS}")


class Pod(ActionParams):
    namespace: str = Field(pattern=NAMESPACE, description="Its namespace (a DNS label)")
    name: str = Field(pattern=NAME, description="Its name (a DNS subdomain)")
    stuck_s: Annotated[float, Field(ge=0, le=86400, allow_inf_nan=False), BeforeValidator(no_bool)] | None = Field(
        default=None, description=(
        f"Seconds past its grace period a Terminating pod must be (default {STUCK_S:g})"))


class Node(ActionParams):
    name: str = Field(pattern=NAME, description="The node's name")


def _pod(clue: Clue) -> tuple[str, str] | None:
    namespace, _, name = str(clue.evidence.get("pod", "")).partition("/")
    return (namespace, name) if name else None


def fresh_pod(clue: Clue) -> Iterable[Offer]:
    if (pod := _pod(clue)) is None:
        return
    evidence = clue.evidence
    last = (f"last exit {evidence['last_reason']}, code {evidence.get('last_exit_code')}; "
            if evidence.get("last_reason") else "")
    yield ({"namespace": pod[0], "name": pod[1]},
           f"replace pod {pod[1]} with a fresh one from its controller (a clean start, maybe on another node) if it "
           f"still crash-loops ({last}{evidence.get('restarts', '?')} restarts)")


def restart_owner(clue: Clue) -> Iterable[Offer]:
    owner = (clue.resource.labels if clue.resource else {}).get("owner") or ""
    kind, _, workload = owner.partition("/")
    if (pod := _pod(clue)) is not None and kind in ("deployment", "statefulset") and workload:
        yield ({"kind": kind, "namespace": pod[0], "name": workload},
               f"restart {kind} {workload} pod by pod, when what its pods crash on is shared (a dependency they "
               "connect to at start, a cache warmed from elsewhere)")


def cordon(clue: Clue) -> Iterable[Offer]:
    if clue.evidence.get("node"):
        node = clue.evidence["node"]
        yield ({"name": node}, f"keep new pods off node {node} while it {NODE_TROUBLE[clue.rule]} (its pods stay; "
                               "uncordon it once fixed)")


ACTIONS = (
    ActionSpec(id=DELETE_POD, title="Delete a stuck pod so its controller recreates it", risk=Risk.LOW, params=Pod,
               preconditions=["the pod is controlled by a ReplicaSet or StatefulSet that exists and wants it",
                              "it is stuck: a container in CrashLoopBackOff, or Terminating past its grace period "
                              "(then removed at once, and a StatefulSet's pod only when its node is not Ready)"],
               rollback="none: its controller creates a new pod",
               answers=(Remedy(fresh_pod, findings=(pods.CRASHLOOP,)),)),
    ActionSpec(id=RESTART, title="Restart a workload's pods one by one (kubectl rollout restart)", risk=Risk.MEDIUM,
               params=Workload,
               preconditions=["the workload exists and has replicas",
                              "it is not paused, and no rollout is in progress or stuck past its deadline",
                              "a StatefulSet replaces its pods itself (update strategy RollingUpdate, not OnDelete)"],
               rollback="none: the new pods run the same template (a restart is not undone)",
               answers=(Remedy(restart_owner, findings=(pods.CRASHLOOP,)),)),
    ActionSpec(id=SCALE, title="Scale a Deployment or StatefulSet (the scale subresource)", risk=Risk.MEDIUM,
               params=Scale,
               preconditions=["the workload exists, the count changes, and no rollout is in progress",
                              "no HorizontalPodAutoscaler manages it (the autoscaler would undo the change)",
                              "not to 0 while replicas are available (that stops the service)"],
               rollback="scale back to the replica count read just before"),
    ActionSpec(id=CORDON, title="Cordon a node: no new pods are scheduled there", risk=Risk.MEDIUM, params=Node,
               preconditions=["the node exists and is schedulable",
                              "another Ready node without NoSchedule taints stays schedulable"],
               rollback=f"uncordon the node ({UNCORDON})",
               answers=(Remedy(cordon, findings=tuple(NODE_TROUBLE)),)),
    ActionSpec(id=UNCORDON, title="Uncordon a node: pods may be scheduled there again", risk=Risk.LOW, params=Node,
               preconditions=["the node exists and is cordoned"], rollback=f"cordon the node again ({CORDON})"),
)
