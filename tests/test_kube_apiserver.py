"""The local Kubernetes API server the suite runs against: real etcd, kube-apiserver, kube-controller-manager."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import uuid

import kubernetes.client
import kubernetes.config
import kubernetes.watch
import pytest
import yaml
from kubernetes.client.rest import ApiException

from kubestack.deploy.kube.binaries import pinned_versions
from tests.cli import cli_env, run
from tests.services.kubernetes import KubeCluster, KubeContext
from tests.services.process import free_port

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
    node = f"node-{kube_namespace}"
    kube_cluster.create_node(node)
    with kube_cluster.api_client() as api:
        core = kubernetes.client.CoreV1Api(api)
        core.create_namespaced_pod(kube_namespace, _pod("crashy", nodeName=node))
        waiting = {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}
        core.patch_namespaced_pod_status("crashy", kube_namespace, {"status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "app", "image": "redis:7", "imageID": "", "ready": False,
                                   "restartCount": 7, "state": {"waiting": waiting},
                                   "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}],
        }})
        pod = core.read_namespaced_pod("crashy", kube_namespace)
        core.delete_node(node)  # Nodes outlive the namespace: leave none for later tests' Pods to land on
    status = pod.status.container_statuses[0]
    assert pod.spec.node_name == node and pod.status.phase == "Running"
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
        assert _allowed(lambda: core.list_namespaced_pod("default")), "in force once the helper returns"
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


def test_the_build_script_does_nothing_when_the_binaries_are_up_to_date(kube_cluster) -> None:
    from kubestack.deploy.kube.binaries import BUILD_SCRIPT

    started = time.monotonic()
    result = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(kube_cluster.bin_dir) and result.stderr == "", "nothing was built"
    assert time.monotonic() - started < 10


def test_helm_is_built_at_the_pinned_version(kube_cluster) -> None:
    out = subprocess.run([str(kube_cluster.helm), "version", "--short"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"v{pinned_versions().helm}")


def test_a_daemonset_gets_a_pod_scheduled_on_each_ready_node(kube_cluster, kube_namespace) -> None:
    pool = f"pool-{uuid.uuid4().hex[:8]}"  # Nodes are cluster-wide: only this test's carry its label
    nodes = [f"{pool}-{i}" for i in range(2)]
    for node in nodes:
        kube_cluster.create_node(node, labels={"kubestack.test/pool": pool})
    labels = {"app": "agent"}
    daemonset = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
                 "spec": {"selector": {"matchLabels": labels},
                          "template": {"metadata": {"labels": labels},
                                       "spec": {"nodeSelector": {"kubestack.test/pool": pool},
                                                "containers": [{"name": "agent", "image": "kubestack:test"}]}}}}
    with kube_cluster.api_client() as api:
        core = kubernetes.client.CoreV1Api(api)
        try:
            kubernetes.client.AppsV1Api(api).create_namespaced_daemon_set(kube_namespace, daemonset)

            def bound() -> list[str] | None:
                names = sorted(p.spec.node_name for p in core.list_namespaced_pod(kube_namespace).items
                               if p.spec.node_name)
                return names if len(names) == 2 else None

            assert _eventually(bound, what="a DaemonSet pod bound on each node") == nodes
        finally:
            for node in nodes:
                core.delete_node(node)


def test_a_pod_no_node_fits_stays_pending_with_a_scheduling_event(kube_cluster, kube_namespace) -> None:
    with kube_cluster.api_client() as api:
        core = kubernetes.client.CoreV1Api(api)
        core.create_namespaced_pod(kube_namespace, _pod("nowhere", nodeSelector={"kubestack.test/pool": "none"}))

        def failed_scheduling() -> list:
            return [e for e in core.list_namespaced_event(kube_namespace).items if e.reason == "FailedScheduling"]

        def unschedulable() -> bool:
            conditions = core.read_namespaced_pod("nowhere", kube_namespace).status.conditions or []
            return any(c.type == "PodScheduled" and c.reason == "Unschedulable" for c in conditions)

        event = _eventually(failed_scheduling, what="a FailedScheduling event")[0]
        _eventually(unschedulable, what="the PodScheduled condition to say Unschedulable")
        pod = core.read_namespaced_pod("nowhere", kube_namespace)
    assert event.involved_object.name == "nowhere" and "node" in event.message
    assert pod.status.phase == "Pending" and not pod.spec.node_name


def _kube_env(kube_cluster: KubeCluster, home, **ports: int) -> dict[str, str]:
    settings = {"PORT": free_port(), "ETCD_PORT": free_port(), "ETCD_PEER_PORT": free_port(),
                "CONTROLLER_MANAGER_PORT": free_port(), "SCHEDULER_PORT": free_port(), **ports}
    return cli_env(KUBESTACK_HOME=str(home), KUBESTACK_LOCAL_KUBE__BIN_DIR=str(kube_cluster.bin_dir),
                   **{f"KUBESTACK_LOCAL_KUBE__{name}": str(port) for name, port in settings.items()})


def test_kube_up_status_down_cycle(kube_cluster, tmp_path) -> None:
    env = _kube_env(kube_cluster, tmp_path)
    assert run("kube", "status", env=env).returncode == 1, "not running yet"

    up = run("kube", "up", env=env, timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"Kubernetes v{pinned_versions().kubernetes} up on https://127.0.0.1:{env['KUBESTACK_LOCAL_KUBE__PORT']}" \
        in up.stdout
    kubeconfig = tmp_path / "kube" / "kubeconfig"
    assert f"export KUBECONFIG={kubeconfig}" in up.stdout
    try:
        state = json.loads(run("kube", "status", "--json", env=env).stdout)
        assert state["running"] and state["problem"] is None and all(state["pids"].values())
        assert run("kube", "up", env=env).returncode == 0, "up is idempotent"
        with kubernetes.config.new_client_from_config(str(kubeconfig)) as api:
            assert "kube-system" in {n.metadata.name for n in kubernetes.client.CoreV1Api(api).list_namespace().items}
    finally:
        down = run("kube", "down", env=env)
    assert down.returncode == 0 and "Kubernetes stopped" in down.stdout
    assert not _accepts(int(env["KUBESTACK_LOCAL_KUBE__PORT"]))
    status = run("kube", "status", env=env)
    assert status.returncode == 1 and "not running" in status.stdout


def test_missing_binaries_say_to_run_make_setup(tmp_path) -> None:
    env = cli_env(KUBESTACK_HOME=str(tmp_path), KUBESTACK_LOCAL_KUBE__BIN_DIR=str(tmp_path / "no-bin"))
    result = run("kube", "up", env=env, timeout=60)
    assert result.returncode == 1
    assert "etcd not found in" in result.stderr and "run `make setup`" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2, result.stderr  # one line (rich may wrap it)


def test_a_busy_port_fails_fast_and_says_which_setting(kube_cluster, tmp_path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("kube", "up", env=_kube_env(kube_cluster, tmp_path, PORT=port), timeout=60)
    assert result.returncode == 1
    assert f"port {port} (kube-apiserver) busy" in result.stderr and "KUBESTACK_LOCAL_KUBE__PORT" in result.stderr
    assert not (tmp_path / "kube" / "etcd.pid").exists(), "nothing started before the port check"


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_readiness_counts_only_a_listener_the_component_holds_itself() -> None:
    """Another session's scheduler answering /healthz on a shared port must not pass for ours being ready."""
    from kubestack.deploy.kube.processes import listens_on

    with socket.socket() as ours:
        ours.bind(("127.0.0.1", 0))
        ours.listen()
        port = ours.getsockname()[1]
        other = subprocess.Popen(["sleep", "30"])
        try:
            assert listens_on(os.getpid(), port)
            assert not listens_on(other.pid, port)
        finally:
            other.kill()
            other.wait()
    assert not listens_on(os.getpid(), port), "closed"
