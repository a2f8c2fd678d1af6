"""Kubernetes actions, pure: parameters, the preconditions read off objects as the API server sends them (the
recorded ones of tests/data/kubernetes and variations of them), and the proposals the Kubernetes plugin's own
findings support. The live actions run in test_kube_actions_live.py."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kubestack.contract.base import Source
from kubestack.contract.events import Incident, IncidentSignal, Risk, Severity, SignalKind
from kubestack.errors import ActionError, ActionParamsError, UnknownActionError
from kubestack.pipeline.proposals import propose
from kubestack.plugins.base import ActionSpec, declared
from kubestack.plugins.kubernetes import actions
from kubestack.plugins.kubernetes.actions import (
    ACTIONS,
    cordon_problems,
    owner_problems,
    restart_problems,
    rollout_problems,
    scale_problems,
    stuck_problems,
)
from kubestack.plugins.kubernetes.config import Thresholds
from kubestack.plugins.kubernetes.nodes import node_findings
from kubestack.plugins.kubernetes.pods import pod_findings
from kubestack.plugins.kubernetes.resources import node_ref, pod_ref

DATA = Path(__file__).parent / "data" / "kubernetes"
NOW = datetime(2025, 3, 1, 10, 10, tzinfo=timezone.utc)


def check(action_id: str, params: dict) -> dict:
    """The action's parameters as its declared model checks and normalises them."""
    return declared(ACTIONS, action_id, "Kubernetes").check(params)


def recorded(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def replicaset(name: str = "cache-7d4b9c8f5", uid: str = "0a1b2c3d-0000-4000-8000-000000000001",
               replicas: int = 1) -> dict:
    return {"metadata": {"name": name, "namespace": "shop", "uid": uid}, "spec": {"replicas": replicas},
            "status": {"replicas": replicas}}


def node(name: str, *, ready: str = "True", cordoned: bool = False, taints: list | None = None) -> dict:
    return {"metadata": {"name": name}, "spec": {"unschedulable": cordoned or None, "taints": taints or []},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}}


# --- specs and parameters ------------------------------------------------------------------------------


def test_every_declared_action_has_parameters_and_a_step() -> None:
    assert {s.id for s in ACTIONS} == set(actions._STEPS)
    for spec in ACTIONS:
        assert "name" in spec.params.model_fields and spec.parameters["required"], spec.id
        assert spec.preconditions and spec.rollback and spec.risk != Risk.FORBIDDEN
    undoable = {s.id: s.rollback for s in ACTIONS}
    assert "uncordon" in undoable["kubernetes.cordon_node"] and "scale back" in undoable["kubernetes.scale"]


@pytest.mark.parametrize("action, params, normalised", [
    ("kubernetes.rollout_restart", {"kind": "deployment", "namespace": "shop", "name": "checkout"},
     {"kind": "deployment", "namespace": "shop", "name": "checkout"}),
    ("kubernetes.scale", {"kind": "statefulset", "namespace": "shop", "name": "redis", "replicas": "3"},
     {"kind": "statefulset", "namespace": "shop", "name": "redis", "replicas": 3}),
    ("kubernetes.scale", {"kind": "deployment", "namespace": "a", "name": "b", "replicas": 0},
     {"kind": "deployment", "namespace": "a", "name": "b", "replicas": 0}),
    ("kubernetes.delete_pod", {"namespace": "shop", "name": "cache-7d4b9c8f5-x2x9k"},
     {"namespace": "shop", "name": "cache-7d4b9c8f5-x2x9k"}),
    ("kubernetes.delete_pod", {"namespace": "shop", "name": "p", "stuck_s": "30"},
     {"namespace": "shop", "name": "p", "stuck_s": 30.0}),
    ("kubernetes.cordon_node", {"name": "ip-10-0-1-12.eu-west-1.compute.internal"},
     {"name": "ip-10-0-1-12.eu-west-1.compute.internal"}),
])
def test_params_are_checked_and_normalised(action: str, params: dict, normalised: dict) -> None:
    assert check(action, params) == normalised


@pytest.mark.parametrize("action, params, says", [
    ("kubernetes.rollout_restart", {"kind": "daemonset", "namespace": "a", "name": "b"},
     "'kind' must be 'deployment' or 'statefulset', not 'daemonset'"),
    ("kubernetes.rollout_restart", {"kind": "deployment", "name": "b"}, "'namespace' is missing"),
    ("kubernetes.rollout_restart", {"kind": "deployment", "namespace": "A_B", "name": "b"}, "'namespace' is 'A_B'"),
    ("kubernetes.rollout_restart", {"kind": "deployment", "namespace": "a", "name": "b/../c"}, "'name'"),
    ("kubernetes.scale", {"kind": "deployment", "namespace": "a", "name": "b"}, "'replicas' is missing"),
    ("kubernetes.scale", {"kind": "deployment", "namespace": "a", "name": "b", "replicas": -1}, "0 to 500"),
    ("kubernetes.scale", {"kind": "deployment", "namespace": "a", "name": "b", "replicas": 501}, "0 to 500"),
    ("kubernetes.scale", {"kind": "deployment", "namespace": "a", "name": "b", "replicas": True}, "not a number"),
    ("kubernetes.scale", {"kind": "deployment", "namespace": "a", "name": "b", "replicas": "2.5"}, "integer"),
    ("kubernetes.delete_pod", {"namespace": "a", "name": "b", "stuck_s": "nan"}, "'stuck_s'"),
    ("kubernetes.delete_pod", {"namespace": "a", "name": "b", "grace": 0}, "unknown parameter"),
    ("kubernetes.cordon_node", {}, "'name' is missing"),
])
def test_bad_params_are_refused(action: str, params: dict, says: str) -> None:
    with pytest.raises(ActionParamsError, match=says):
        check(action, params)


def test_unknown_and_forbidden_actions_are_refused_before_the_server() -> None:
    with pytest.raises(UnknownActionError, match="known: .*kubernetes.rollout_restart"):
        declared(ACTIONS, "kubernetes.delete_deployment", "Kubernetes")
    forbidden = ActionSpec(id="kubernetes.drain_everything", title="t", risk=Risk.FORBIDDEN,
                           preconditions=["never"])
    with pytest.raises(ActionError, match="forbidden"):
        declared((*ACTIONS, forbidden), "kubernetes.drain_everything", "Kubernetes")


# --- workloads -----------------------------------------------------------------------------------------


def test_a_rollout_stuck_past_its_deadline_is_not_restarted_or_scaled() -> None:
    stuck = recorded("deployment_stuck")
    assert "stuck past its progress deadline" in rollout_problems("deployment", stuck)[0]
    assert restart_problems("deployment", stuck) == rollout_problems("deployment", stuck)
    assert "stuck" in scale_problems("deployment", stuck, 5, [])[0]


def test_a_settled_workload_may_restart() -> None:
    settled = recorded("statefulset_degraded")  # 2 of 3 ready, but no rollout under way
    assert restart_problems("statefulset", settled) == []
    deployment = copy.deepcopy(recorded("deployment_stuck"))
    deployment["status"] = {"observedGeneration": 14, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 1,
                            "conditions": [{"type": "Progressing", "status": "True",
                                            "reason": "NewReplicaSetAvailable"}]}
    assert restart_problems("deployment", deployment) == [], "unavailable pods are a reason to restart, not against"


@pytest.mark.parametrize("change, says", [
    (lambda o: o["metadata"].update(generation=15), "not acted on its latest change"),
    (lambda o: o["status"].update(updatedReplicas=1), "a rollout is in progress (1/3"),
    (lambda o: o["status"].update(replicas=4), "1 old replica(s) still to go"),
    (lambda o: o["spec"].update(paused=True), "paused"),
    (lambda o: o["spec"].update(replicas=0), "0 replicas"),
])
def test_a_deployment_moving_or_unable_to_roll_is_not_restarted(change, says: str) -> None:
    deployment = copy.deepcopy(recorded("deployment_stuck"))
    deployment["status"] = {"observedGeneration": 14, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}
    change(deployment)
    assert any(says in p for p in restart_problems("deployment", deployment))


def test_a_statefulset_mid_rollout_or_on_delete_is_not_restarted() -> None:
    rolling = copy.deepcopy(recorded("statefulset_degraded"))
    rolling["status"]["updateRevision"] = "redis-7e6f9c8d0"
    assert "revision redis-6d5f8b7c9 → redis-7e6f9c8d0" in restart_problems("statefulset", rolling)[0]
    on_delete = copy.deepcopy(recorded("statefulset_degraded"))
    on_delete["spec"]["updateStrategy"] = {"type": "OnDelete"}
    assert "OnDelete" in restart_problems("statefulset", on_delete)[0]


def test_scaling_checks_the_count_the_autoscalers_and_what_is_available() -> None:
    redis = recorded("statefulset_degraded")
    assert scale_problems("statefulset", redis, 4, []) == []
    assert scale_problems("statefulset", redis, 3, []) == ["it already has 3 replica(s)"]
    assert "stops its 2 available replica(s)" in scale_problems("statefulset", redis, 0, [])[0]
    hpa = {"metadata": {"name": "redis-hpa"}, "spec": {"scaleTargetRef": {"kind": "StatefulSet", "name": "redis"}}}
    other = {"metadata": {"name": "x"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "redis"}}}
    assert scale_problems("statefulset", redis, 4, [other]) == []
    assert "HorizontalPodAutoscaler redis-hpa" in scale_problems("statefulset", redis, 4, [hpa, other])[0]
    down = copy.deepcopy(redis)
    down["status"].update(readyReplicas=0, availableReplicas=0)
    assert scale_problems("statefulset", down, 0, []) == [], "nothing available: scaling to 0 stops nothing"


# --- pods ----------------------------------------------------------------------------------------------


def test_a_crash_looping_pod_of_a_replicaset_may_be_deleted() -> None:
    pod = recorded("pod_crashloop_oom")
    assert owner_problems(pod, replicaset()) == []
    assert stuck_problems(pod, node("worker-2"), NOW, 120) == ("container(s) redis in CrashLoopBackOff", [])


@pytest.mark.parametrize("owner, change, says", [
    (None, lambda p: p["metadata"].pop("ownerReferences"), "no controller"),
    (None, lambda p: p["metadata"]["ownerReferences"][0].update(kind="Job", name="backup"), "job backup"),
    (None, lambda p: None, "no longer exists"),
    (replicaset(uid="another-uid"), lambda p: None, "no longer exists"),
    (replicaset(replicas=0), lambda p: None, "scaled to 0"),
])
def test_a_pod_nothing_would_recreate_is_not_deleted(owner, change, says: str) -> None:
    pod = copy.deepcopy(recorded("pod_crashloop_oom"))
    change(pod)
    assert says in owner_problems(pod, owner)[0]


def test_a_statefulset_pod_beyond_the_wanted_replicas_is_not_deleted() -> None:
    sts = recorded("statefulset_degraded")
    pod = {"metadata": {"name": "redis-3", "ownerReferences": [
        {"kind": "StatefulSet", "name": "redis", "uid": sts["metadata"]["uid"], "controller": True}]}}
    assert "ordinal 3 would not be recreated" in owner_problems(pod, sts)[0]
    pod["metadata"]["name"] = "redis-1"
    assert owner_problems(pod, sts) == []


def test_a_terminating_pod_counts_as_stuck_only_past_its_grace_period() -> None:
    pod = copy.deepcopy(recorded("pod_crashloop_oom"))
    pod["metadata"]["deletionTimestamp"] = (NOW - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    why, problems = stuck_problems(pod, node("worker-2"), NOW, 120)
    assert why == "Terminating 30s past its grace period" and "not stuck before 120s" in problems[0]
    assert stuck_problems(pod, node("worker-2"), NOW, 10)[1] == []


def test_a_terminating_statefulset_pod_is_removed_at_once_only_when_its_node_is_down() -> None:
    pod = {"metadata": {"name": "redis-1", "deletionTimestamp": "2025-03-01T10:00:00Z",
                        "ownerReferences": [{"kind": "StatefulSet", "name": "redis", "uid": "u", "controller": True}]},
           "spec": {"nodeName": "worker-2"}}
    assert "two pods with one identity" in stuck_problems(pod, node("worker-2"), NOW, 120)[1][0]
    assert stuck_problems(pod, recorded("node_not_ready"), NOW, 120)[1] == []
    assert stuck_problems(pod, None, NOW, 120)[1] == [], "its node is gone"


def test_a_healthy_pod_is_not_stuck() -> None:
    pod = copy.deepcopy(recorded("pod_crashloop_oom"))
    pod["status"]["containerStatuses"][0]["state"] = {"running": {"startedAt": "2025-03-01T10:00:00Z"}}
    assert "it is not stuck" in stuck_problems(pod, None, NOW, 120)[1][0]


# --- nodes ---------------------------------------------------------------------------------------------


def test_the_last_schedulable_node_is_not_cordoned() -> None:
    target = node("a")
    assert cordon_problems(target, [target, node("b")]) == []
    tainted = node("b", taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}])
    others = [target, tainted, node("c", cordoned=True), recorded("node_not_ready"),
              node("d", taints=[{"key": "gpu", "effect": "PreferNoSchedule"}])]
    assert cordon_problems(target, others) == [], "a PreferNoSchedule taint still takes pods"
    assert "last schedulable node" in cordon_problems(target, others[:4])[0]
    assert cordon_problems(node("a", cordoned=True), [node("b")]) == ["it is already cordoned"]


# --- proposals from the plugin's own findings ----------------------------------------------------------


def _incident(ref, findings) -> tuple[Incident, list[IncidentSignal]]:
    signals = [IncidentSignal(event_id=f"e-{f.rule_id}", kind=SignalKind.FINDING, name=f.rule_id, resource=ref.key,
                              first_seen=NOW, last_seen=NOW, severity=f.severity, summary=f.message,
                              details={"evidence": f.evidence, "query": f.query}) for f in findings]
    incident = Incident(source=Source(agent="worker", host="w"), resource=ref, incident_id="inc-k", title="t",
                        severity=Severity.CRITICAL, opened_at=NOW, resources=[ref],
                        member_event_ids=[s.event_id for s in signals], signals=signals)
    return incident, signals


def test_a_crash_loop_finding_proposes_a_fresh_pod_then_a_restart_of_its_deployment() -> None:
    pod = recorded("pod_crashloop_oom")
    ref = pod_ref("prod-eu", pod)
    findings = pod_findings(pod, NOW, Thresholds())
    assert "kubernetes.pod_crashloop" in {f.rule_id for f in findings}
    incident, signals = _incident(ref, findings)
    proposals = propose(incident, ref.key, signals, ACTIONS, Source(agent="worker", host="w"), NOW)
    assert [(p.action, p.params, p.risk) for p in proposals] == [
        ("kubernetes.delete_pod", {"namespace": "shop", "name": "cache-7d4b9c8f5-x2x9k"}, Risk.LOW),
        ("kubernetes.rollout_restart", {"kind": "deployment", "namespace": "shop", "name": "cache"}, Risk.MEDIUM)]
    assert "last exit OOMKilled, code 137; 7 restarts" in proposals[0].expected_effect
    assert proposals[0].verify_rules == ["kubernetes.pod_crashloop"]
    for proposal in proposals:
        assert check(proposal.action, proposal.params) == proposal.params


def test_a_bare_pod_gets_no_restart_proposal() -> None:
    pod = copy.deepcopy(recorded("pod_crashloop_oom"))
    pod["metadata"].pop("ownerReferences")
    ref = pod_ref("prod-eu", pod)
    incident, signals = _incident(ref, pod_findings(pod, NOW, Thresholds()))
    proposals = propose(incident, ref.key, signals, ACTIONS, Source(agent="worker", host="w"), NOW)
    assert [p.action for p in proposals] == ["kubernetes.delete_pod"], "its preconditions refuse it when it runs"


@pytest.mark.parametrize("name", ["node_not_ready", "node_pressure"])
def test_a_troubled_node_is_proposed_for_cordoning(name: str) -> None:
    obj = recorded(name)
    ref = node_ref("prod-eu", obj)
    findings = node_findings(obj, NOW)
    incident, signals = _incident(ref, findings)
    proposals = propose(incident, ref.key, signals, ACTIONS, Source(agent="worker", host="w"), NOW)
    assert [(p.action, p.params) for p in proposals] == [("kubernetes.cordon_node", {"name": obj["metadata"]["name"]})]
    assert proposals[0].rollback == "uncordon the node (kubernetes.uncordon_node)"
