"""The local Kubernetes API server the suite runs against: real etcd, kube-apiserver, kube-controller-manager."""

from __future__ import annotations

import subprocess
import threading
import time

import kubernetes.client
import kubernetes.config
import kubernetes.watch
import pytest
import yaml
from kubernetes.client.rest import ApiException

from kubestack.deploy.kube.binaries import pinned_versions
from tests.services.kubernetes import KubeCluster, KubeContext

pytestmark = pytest.mark.kubernetes


def _deployment(name: str, replicas: int = 1) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": "redis:7"}]}}}}


def _pod(name: str, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": "redis:7"}], **spec}}


def _eventually(check, timeout_s: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s:.0f}s")
        time.sleep(0.2)


def test_server_answers_with_the_pinned_version_and_lists_namespaces(kube_cluster: KubeCluster) -> None:
    with kube_cluster.api_client() as api:
        version = kubernetes.client.VersionApi(api).get_code()
        namespaces = {ns.metadata.name for ns in kubernetes.client.CoreV1Api(api).list_namespace().items}
    assert version.git_version == f"v{pinned_versions().kubernetes}" == kube_cluster.version
    assert (version.major, version.minor) == ("1", pinned_versions().kubernetes.split(".")[1])
    assert {"default", "kube-system", "kube-public"} <= namespaces
    print(f"control plane ready in {kube_cluster.start_s}s")


def test_a_deployment_gets_a_replicaset_and_pods_from_the_controller_manager(kube_cluster, kube_namespace) -> None:
    with kube_cluster.api_client() as api:
        apps, core = kubernetes.client.AppsV1Api(api), kubernetes.client.CoreV1Api(api)
        apps.create_namespaced_deployment(kube_namespace, _deployment("web", replicas=2))

        def two_pods() -> list | None:
            pods = core.list_namespaced_pod(kube_namespace, label_selector="app=web").items
            return pods if len(pods) == 2 else None

        pods = _eventually(two_pods, what="two pods of the deployment")
        owners = {pod.metadata.owner_references[0].kind for pod in pods}
        assert owners == {"ReplicaSet"}
        assert all(pod.status.phase == "Pending" for pod in pods), "no kubelet: nothing runs them"

        apps.patch_namespaced_deployment("web", kube_namespace, {"spec": {"template": {"metadata": {
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}})
        _eventually(lambda: len(apps.list_namespaced_replica_set(kube_namespace, label_selector="app=web").items) == 2,
                    what="a second ReplicaSet after a rollout restart")


def test_pod_status_is_written_through_the_status_subresource(kube_cluster, kube_namespace) -> None:
    kube_cluster.create_node("node-status")
    with kube_cluster.api_client() as api:
        core = kubernetes.client.CoreV1Api(api)
        core.create_namespaced_pod(kube_namespace, _pod("crashy", nodeName="node-status"))
        waiting = {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}
        core.patch_namespaced_pod_status("crashy", kube_namespace, {"status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "app", "image": "redis:7", "imageID": "", "ready": False,
                                   "restartCount": 7, "state": {"waiting": waiting},
                                   "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}],
        }})
        pod = core.read_namespaced_pod("crashy", kube_namespace)
    status = pod.status.container_statuses[0]
    assert pod.spec.node_name == "node-status" and pod.status.phase == "Running"
    assert (status.state.waiting.reason, status.restart_count) == ("CrashLoopBackOff", 7)
    assert status.last_state.terminated.exit_code == 1


def test_a_watch_delivers_the_event_of_a_change(kube_cluster, kube_namespace) -> None:
    with kube_cluster.api_client() as api:
        core = kubernetes.client.CoreV1Api(api)
        start = core.list_namespaced_config_map(kube_namespace).metadata.resource_version
        events: list[tuple[str, str]] = []
        watch = kubernetes.watch.Watch()

        def follow() -> None:
            for event in watch.stream(core.list_namespaced_config_map, kube_namespace, resource_version=start,
                                      timeout_seconds=30):
                events.append((event["type"], event["object"].metadata.name))
                if event["object"].metadata.name == "settings":
                    watch.stop()

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "settings"}, "data": {"a": "1"}})
        reader.join(30)
    assert ("ADDED", "settings") in events


def test_a_server_side_dry_run_changes_nothing(kube_cluster, kube_namespace) -> None:
    with kube_cluster.api_client() as api:
        apps = kubernetes.client.AppsV1Api(api)
        created = apps.create_namespaced_deployment(kube_namespace, _deployment("dry"), dry_run="All")
        assert created.metadata.name == "dry" and created.metadata.uid, "the server validated and defaulted it"
        assert created.spec.strategy.type == "RollingUpdate"
        with pytest.raises(ApiException) as missing:
            apps.read_namespaced_deployment("dry", kube_namespace)
    assert missing.value.status == 404


def test_a_service_account_token_is_denied_what_was_not_granted(kube_cluster, kube_namespace, tmp_path) -> None:
    token = kube_cluster.service_account_token(
        kube_namespace, "pod-reader", rules=[{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}])
    with kube_cluster.api_client(token) as api:
        core = kubernetes.client.CoreV1Api(api)
        assert core.list_namespaced_pod(kube_namespace).items == []
        with pytest.raises(ApiException) as denied:
            core.delete_collection_namespaced_pod(kube_namespace)
        assert denied.value.status == 403 and "pod-reader" in denied.value.body
        with pytest.raises(ApiException) as elsewhere:
            core.list_namespaced_pod("kube-system")
        assert elsewhere.value.status == 403
        with pytest.raises(ApiException) as secrets:
            core.list_namespaced_secret(kube_namespace)
        assert secrets.value.status == 403

    path = kube_cluster.write_kubeconfig(tmp_path / "kubeconfig", [KubeContext("prod", token, kube_namespace),
                                                                   KubeContext("admin", kube_cluster.token)],
                                         current="admin")
    loaded = yaml.safe_load(path.read_text())
    assert [c["name"] for c in loaded["contexts"]] == ["prod", "admin"] and loaded["current-context"] == "admin"
    assert path.stat().st_mode & 0o077 == 0, "it holds tokens"
    with kubernetes.config.new_client_from_config(str(path), context="prod") as api:
        assert kubernetes.client.CoreV1Api(api).list_namespaced_pod(kube_namespace).items == []
        with pytest.raises(ApiException) as denied:
            kubernetes.client.CoreV1Api(api).list_namespace()
        assert denied.value.status == 403


def test_an_existing_cluster_role_can_be_bound_cluster_wide(kube_cluster, kube_namespace) -> None:
    token = kube_cluster.service_account_token(kube_namespace, "viewer", cluster_role="view", cluster_wide=True)
    with kube_cluster.api_client(token) as api:
        core = kubernetes.client.CoreV1Api(api)
        _eventually(lambda: _allowed(lambda: core.list_namespaced_pod("default")), 10, "view to take effect")
        with pytest.raises(ApiException) as denied:
            core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "nope"}})
    assert denied.value.status == 403


def _allowed(call) -> bool:
    try:
        call()
    except ApiException as exc:
        if exc.status == 403:
            return False
        raise
    return True


def test_helm_is_built_at_the_pinned_version(kube_cluster) -> None:
    out = subprocess.run([str(kube_cluster.helm), "version", "--short"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"v{pinned_versions().helm}")
