"""Kubernetes actions against the real API server (etcd, kube-apiserver, kube-controller-manager; no kubelet and no
scheduler: pods stay where a test puts them, their status is what a test writes). What each action changes, that
its dry run (a server-side one) changes nothing, what the undo restores, and which preconditions refuse it.
The chart's RBAC for these actions is tested in test_helm_chart.py."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes.client
import pytest
from kubernetes.client.rest import ApiException

from kubestack.errors import PreconditionFailedError
from kubestack.plugins.base import ActionRunner
from kubestack.plugins.kubernetes import KubernetesConfig, KubernetesPlugin
from kubestack.plugins.kubernetes import actions
from kubestack.plugins.kubernetes.actions import ACTIONS, RESTARTED_AT, execute
from tests.services.kubernetes import KubeCluster

pytestmark = pytest.mark.kubernetes


def eventually(check: Callable[[], Any], what: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s:.0f}s")
        time.sleep(0.2)
    return result


NOWHERE = {"kubestack-test/none": "true"}
"""A node selector no node matches: the scheduler leaves the pods unbound, so a deleted pod is gone at once."""


def workload(kind: str, name: str, replicas: int, node_selector: dict | None = None, **spec: Any) -> dict:
    labels = {"app": name}
    pod_spec = {"containers": [{"name": "app", "image": "redis:7"}], "nodeSelector": node_selector or NOWHERE}
    body = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod_spec}, **spec}}
    if kind == "StatefulSet":
        body["spec"]["serviceName"] = name
    return body


def on_node(cluster: KubeCluster, namespace: str, pod: str, node: str) -> None:
    """The pod bound to ``node``: by the scheduler (its node selector names only that node), else as it would."""
    try:
        cluster.bind_pod(namespace, pod, node)
    except ApiException as exc:
        if exc.status != 409:  # the scheduler was first
            raise
    with cluster.api_client() as api:
        assert kubernetes.client.CoreV1Api(api).read_namespaced_pod(pod, namespace).spec.node_name == node


def uid_of(core: kubernetes.client.CoreV1Api, namespace: str, pod: str) -> str | None:
    try:
        return core.read_namespaced_pod(pod, namespace).metadata.uid
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def crash_looping(core: kubernetes.client.CoreV1Api, namespace: str, pod: str) -> None:
    """What a kubelet reports of a container that keeps dying."""
    core.patch_namespaced_pod_status(pod, namespace, {"status": {"phase": "Running", "containerStatuses": [{
        "name": "app", "image": "redis:7", "imageID": "", "ready": False, "restartCount": 6, "started": False,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}})


@pytest.fixture()
def kube(kube_cluster: KubeCluster) -> Iterator[kubernetes.client.ApiClient]:
    with kube_cluster.api_client() as api:
        yield api


async def act(api: kubernetes.client.ApiClient, action: str, dry_run: bool = False, **params: Any):
    return await execute(api, ACTIONS, action, params, dry_run=dry_run)


def _settled(apps: kubernetes.client.AppsV1Api, namespace: str, name: str) -> bool:
    d = apps.read_namespaced_deployment(name, namespace)
    return (d.status.observed_generation or 0) >= d.metadata.generation and d.status.replicas == d.spec.replicas


# --- rollout restart ------------------------------------------------------------------------------------


async def test_rollout_restart_patches_the_template_as_kubectl_does(kube, kube_namespace: str) -> None:
    apps = kubernetes.client.AppsV1Api(kube)
    apps.create_namespaced_deployment(kube_namespace, workload("Deployment", "web", 2))
    eventually(lambda: _settled(apps, kube_namespace, "web"), "the deployment's first rollout")
    before = apps.read_namespaced_deployment("web", kube_namespace)

    dry = await act(kube, actions.RESTART, dry_run=True, kind="deployment", namespace=kube_namespace, name="web")
    after_dry = apps.read_namespaced_deployment("web", kube_namespace)
    assert after_dry.metadata.resource_version == before.metadata.resource_version, "the dry run changed nothing"
    assert not (after_dry.spec.template.metadata.annotations or {}).get(RESTARTED_AT)
    assert dry.dry_run and "accepted by the API server in a dry run" in dry.output and dry.undo is None

    done = await act(kube, actions.RESTART, kind="deployment", namespace=kube_namespace, name="web")
    restarted = apps.read_namespaced_deployment("web", kube_namespace)
    stamp = restarted.spec.template.metadata.annotations[RESTARTED_AT]
    assert stamp.endswith("Z") and stamp in done.output and done.output.startswith("done: restart deployment")
    assert restarted.metadata.generation == before.metadata.generation + 1
    assert done.before["desired"] == 2 and done.before["restarted_at"] is None
    replicasets = eventually(lambda: len(apps.list_namespaced_replica_set(kube_namespace).items) == 2,
                             "a second ReplicaSet for the restarted template")
    assert replicasets
    # no kubelet: the new pods never become ready, so the rollout stays under way and a second restart is refused
    eventually(lambda: apps.read_namespaced_deployment("web", kube_namespace).status.observed_generation
               == restarted.metadata.generation, "the controller to see the restart")
    with pytest.raises(PreconditionFailedError, match="a rollout is (in progress|finishing)"):
        await act(kube, actions.RESTART, kind="deployment", namespace=kube_namespace, name="web")


async def test_a_statefulset_restarts_unless_it_updates_on_delete(kube, kube_namespace: str) -> None:
    apps = kubernetes.client.AppsV1Api(kube)
    apps.create_namespaced_stateful_set(kube_namespace, workload("StatefulSet", "db", 1))
    apps.create_namespaced_stateful_set(kube_namespace, workload("StatefulSet", "manual", 1,
                                                                 updateStrategy={"type": "OnDelete"}))
    for name in ("db", "manual"):
        eventually(lambda: apps.read_namespaced_stateful_set(name, kube_namespace).status.update_revision,
                   f"statefulset {name}'s first revision")
    done = await act(kube, actions.RESTART, kind="statefulset", namespace=kube_namespace, name="db")
    assert RESTARTED_AT in apps.read_namespaced_stateful_set("db", kube_namespace).spec.template.metadata.annotations
    assert done.before["generation"] == 1
    with pytest.raises(PreconditionFailedError, match="OnDelete: a changed template replaces no pod"):
        await act(kube, actions.RESTART, kind="statefulset", namespace=kube_namespace, name="manual")


async def test_restarting_what_is_not_there_changes_nothing(kube, kube_namespace: str) -> None:
    with pytest.raises(PreconditionFailedError, match=f"no deployment ghost in namespace {kube_namespace}"):
        await act(kube, actions.RESTART, kind="deployment", namespace=kube_namespace, name="ghost")


# --- scale ----------------------------------------------------------------------------------------------


async def test_scale_with_its_dry_run_and_its_undo(kube, kube_namespace: str) -> None:
    apps = kubernetes.client.AppsV1Api(kube)
    apps.create_namespaced_deployment(kube_namespace, workload("Deployment", "api", 2))
    eventually(lambda: _settled(apps, kube_namespace, "api"), "the deployment's first rollout")
    params = {"kind": "deployment", "namespace": kube_namespace, "name": "api"}

    dry = await act(kube, actions.SCALE, dry_run=True, replicas=3, **params)
    assert apps.read_namespaced_deployment("api", kube_namespace).spec.replicas == 2, "the dry run changed nothing"
    assert "from 2 to 3 replica(s)" in dry.output

    done = await act(kube, actions.SCALE, replicas=3, **params)
    assert apps.read_namespaced_deployment("api", kube_namespace).spec.replicas == 3
    assert done.undo == (actions.SCALE, {**params, "replicas": 2}) and done.before["desired"] == 2
    eventually(lambda: len(kubernetes.client.CoreV1Api(kube).list_namespaced_pod(kube_namespace).items) == 3,
               "the third pod")

    eventually(lambda: _settled(apps, kube_namespace, "api"), "the controller to see the new count")
    undone = await execute(kube, ACTIONS, *done.undo)
    assert apps.read_namespaced_deployment("api", kube_namespace).spec.replicas == 2
    assert undone.undo == (actions.SCALE, {**params, "replicas": 3})


async def test_an_autoscaled_workload_is_not_scaled(kube, kube_namespace: str) -> None:
    apps = kubernetes.client.AppsV1Api(kube)
    apps.create_namespaced_deployment(kube_namespace, workload("Deployment", "front", 1))
    kubernetes.client.AutoscalingV2Api(kube).create_namespaced_horizontal_pod_autoscaler(kube_namespace, {
        "metadata": {"name": "front"}, "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "front"},
            "minReplicas": 1, "maxReplicas": 4,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": 80}}}]}})
    eventually(lambda: _settled(apps, kube_namespace, "front"), "the deployment's first rollout")
    with pytest.raises(PreconditionFailedError, match="HorizontalPodAutoscaler front manages its replicas"):
        await act(kube, actions.SCALE, kind="deployment", namespace=kube_namespace, name="front", replicas=3)
    assert apps.read_namespaced_deployment("front", kube_namespace).spec.replicas == 1


def test_a_change_carries_the_resource_version_it_was_checked_on(kube, kube_namespace: str) -> None:
    """What the precondition checks read is what the change applies to: a stale resourceVersion is a 409, and a 409
    is a failed precondition (nothing changed), not an error of the server."""
    apps = kubernetes.client.AppsV1Api(kube)
    apps.create_namespaced_deployment(kube_namespace, workload("Deployment", "rv", 1))
    stale = apps.read_namespaced_deployment("rv", kube_namespace).metadata.resource_version
    apps.patch_namespaced_deployment("rv", kube_namespace, {"metadata": {"labels": {"touched": "yes"}}})
    api = actions._Api(kube, actions.SCALE, 10.0)
    path = f"/apis/apps/v1/namespaces/{kube_namespace}/deployments/rv/scale"
    with pytest.raises(PreconditionFailedError, match="changed since it was checked"):
        api.write("PATCH", path, {"metadata": {"resourceVersion": stale}, "spec": {"replicas": 4}}, dry_run=False)
    assert apps.read_namespaced_deployment("rv", kube_namespace).spec.replicas == 1


# --- delete a stuck pod ---------------------------------------------------------------------------------


async def test_a_crash_looping_pod_is_deleted_and_recreated(kube, kube_namespace: str) -> None:
    apps, core = kubernetes.client.AppsV1Api(kube), kubernetes.client.CoreV1Api(kube)
    apps.create_namespaced_deployment(kube_namespace, workload("Deployment", "worker", 1))
    pod = eventually(lambda: core.list_namespaced_pod(kube_namespace).items, "the deployment's pod")[0]
    name, uid = pod.metadata.name, pod.metadata.uid
    with pytest.raises(PreconditionFailedError, match="it is not stuck"):
        await act(kube, actions.DELETE_POD, namespace=kube_namespace, name=name)
    crash_looping(core, kube_namespace, name)

    dry = await act(kube, actions.DELETE_POD, dry_run=True, namespace=kube_namespace, name=name)
    assert core.read_namespaced_pod(name, kube_namespace).metadata.uid == uid, "the dry run deleted nothing"
    assert "container(s) app in CrashLoopBackOff" in dry.output and "delete it with its grace period" in dry.output

    done = await act(kube, actions.DELETE_POD, namespace=kube_namespace, name=name)
    assert done.before["uid"] == uid and done.before["owner"].startswith("replicaset/worker-")
    fresh = eventually(lambda: [p for p in core.list_namespaced_pod(kube_namespace).items
                                if p.metadata.uid != uid and not p.metadata.deletion_timestamp],
                       "the ReplicaSet's replacement pod")
    assert fresh[0].metadata.name != name
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_pod(name, kube_namespace)
    assert gone.value.status == 404


async def test_a_pod_without_a_controller_is_never_deleted(kube, kube_namespace: str) -> None:
    core = kubernetes.client.CoreV1Api(kube)
    core.create_namespaced_pod(kube_namespace, {"metadata": {"name": "lonely"}, "spec": {
        "containers": [{"name": "app", "image": "redis:7"}], "nodeSelector": NOWHERE}})
    crash_looping(core, kube_namespace, "lonely")
    with pytest.raises(PreconditionFailedError, match="no controller: nothing would recreate it"):
        await act(kube, actions.DELETE_POD, namespace=kube_namespace, name="lonely")
    assert core.read_namespaced_pod("lonely", kube_namespace).metadata.deletion_timestamp is None


async def test_a_pod_stuck_terminating_is_removed_at_once(kube, kube_cluster: KubeCluster,
                                                          kube_namespace: str) -> None:
    """A pod on a node whose kubelet never confirms stays Terminating; past its grace period it is removed with
    grace 0. A StatefulSet's pod only when its node is not Ready: else two pods could share one identity."""
    apps, core = kubernetes.client.AppsV1Api(kube), kubernetes.client.CoreV1Api(kube)
    node = f"node-{uuid.uuid4().hex[:8]}"
    kube_cluster.create_node(node)
    here = {"kubernetes.io/hostname": node}
    apps.create_namespaced_deployment(kube_namespace, workload("Deployment", "cache", 1, here))
    apps.create_namespaced_stateful_set(kube_namespace, workload("StatefulSet", "ledger", 1, here))
    stuck = {}
    for prefix in ("cache-", "ledger-0"):
        pod = eventually(lambda: [p for p in core.list_namespaced_pod(kube_namespace).items
                                  if p.metadata.name.startswith(prefix)], f"pod {prefix}")[0]
        on_node(kube_cluster, kube_namespace, pod.metadata.name, node)
        core.delete_namespaced_pod(pod.metadata.name, kube_namespace, grace_period_seconds=1)
        stuck[prefix] = core.read_namespaced_pod(pod.metadata.name, kube_namespace)
        assert stuck[prefix].metadata.deletion_timestamp, "no kubelet: the pod stays Terminating"
    cache, ledger = stuck["cache-"].metadata.name, stuck["ledger-0"].metadata.name
    with pytest.raises(PreconditionFailedError, match="not stuck before 120s"):
        await act(kube, actions.DELETE_POD, namespace=kube_namespace, name=cache)
    time.sleep(2.5)

    dry = await act(kube, actions.DELETE_POD, dry_run=True, namespace=kube_namespace, name=cache, stuck_s=1)
    assert "remove it at once (grace period 0)" in dry.output
    assert core.read_namespaced_pod(cache, kube_namespace).metadata.uid == stuck["cache-"].metadata.uid
    await act(kube, actions.DELETE_POD, namespace=kube_namespace, name=cache, stuck_s=1)
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_pod(cache, kube_namespace)
    assert gone.value.status == 404

    with pytest.raises(PreconditionFailedError, match=f"its node {node} is Ready"):
        await act(kube, actions.DELETE_POD, namespace=kube_namespace, name=ledger, stuck_s=1)
    core.patch_node_status(node, {"status": {"conditions": [
        {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
         "message": "Kubelet stopped posting node status."}]}})
    done = await act(kube, actions.DELETE_POD, namespace=kube_namespace, name=ledger, stuck_s=1)
    assert done.before["owner"] == "statefulset/ledger"
    eventually(lambda: uid_of(core, kube_namespace, ledger) not in (None, stuck["ledger-0"].metadata.uid),
               "the StatefulSet's new ledger-0")
    core.delete_node(node)


# --- cordon / uncordon ----------------------------------------------------------------------------------


async def test_cordon_and_its_undo(kube, kube_cluster: KubeCluster) -> None:
    core = kubernetes.client.CoreV1Api(kube)
    first, second = (f"node-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for name in (first, second):
        kube_cluster.create_node(name)
    try:
        dry = await act(kube, actions.CORDON, dry_run=True, name=first)
        assert not core.read_node(first).spec.unschedulable, "the dry run changed nothing"
        assert dry.output == f"cordon node {first} (accepted by the API server in a dry run)"

        done = await act(kube, actions.CORDON, name=first)
        assert core.read_node(first).spec.unschedulable is True
        assert done.undo == (actions.UNCORDON, {"name": first}) and done.before == {"unschedulable": False}
        with pytest.raises(PreconditionFailedError, match="already cordoned"):
            await act(kube, actions.CORDON, name=first)

        await execute(kube, ACTIONS, *done.undo)
        assert not core.read_node(first).spec.unschedulable
        with pytest.raises(PreconditionFailedError, match="is not cordoned"):
            await act(kube, actions.UNCORDON, name=first)
    finally:
        for name in (first, second):
            core.delete_node(name)


# --- through the plugin, as the remediation stage calls it ------------------------------------------------


async def test_the_kubernetes_plugin_carries_out_its_actions(kube_cluster: KubeCluster, kube_namespace: str) -> None:
    token = kube_cluster.service_account_token(kube_namespace, "executor", rules=actions.EXECUTOR_RULES)
    config = KubernetesConfig(server=kube_cluster.server, token={"value": token}, ca_file=kube_cluster.ca_file,
                              cluster="local")
    with kube_cluster.api_client() as api:
        apps = kubernetes.client.AppsV1Api(api)
        apps.create_namespaced_deployment(kube_namespace, workload("Deployment", "svc", 1))
        eventually(lambda: _settled(apps, kube_namespace, "svc"), "the deployment's first rollout")
        plugin = KubernetesPlugin.create(config)
        try:
            assert isinstance(plugin, ActionRunner) and plugin.actions() == list(ACTIONS)
            params = {"kind": "deployment", "namespace": kube_namespace, "name": "svc", "replicas": 2}
            dry = await plugin.execute(actions.SCALE, params, dry_run=True)
            assert dry.dry_run and apps.read_namespaced_deployment("svc", kube_namespace).spec.replicas == 1
            done = await plugin.execute(actions.SCALE, params)
            assert apps.read_namespaced_deployment("svc", kube_namespace).spec.replicas == 2
            assert done.undo == (actions.SCALE, {**params, "replicas": 1})
        finally:
            await plugin.close()
