"""Session fixture: a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler)
on free ports, shared by the session; ``kube_namespace`` gives each test a fresh namespace.

The binaries are built from source by ``deploy/kube/build.sh`` (``make setup``); nothing is faked. There is no
kubelet: a Deployment or DaemonSet gets its Pods from the controller manager; the scheduler binds Pods to the
Nodes that ``create_node`` made (Ready, untainted; Nodes are cluster-wide, so once a test made one, every later
schedulable Pod lands on some Node) and leaves them Pending when none fits; a Pod created with
``spec.nodeName`` skips it, and ``bind_pod`` binds a Pending one as a scheduler would. A Pod's status is
whatever a test writes through the status subresource (``CoreV1Api.patch_namespaced_pod_status``). A Pod on a
Node that does not exist is deleted by the pod garbage collector within a minute, as in a real cluster.

    def test_something(kube_cluster, kube_namespace):
        with kube_cluster.api_client() as api:                       # admin (system:masters)
            pods = kubernetes.client.CoreV1Api(api).list_namespaced_pod(kube_namespace)
        token = kube_cluster.service_account_token(kube_namespace, "reader",
                                                   rules=[{"apiGroups": [""], "resources": ["pods"],
                                                           "verbs": ["get", "list", "watch"]}])
        with kube_cluster.api_client(token) as api: ...              # anything else is 403
        kube_cluster.write_kubeconfig(tmp_path / "kubeconfig", [KubeContext("prod", token, kube_namespace),
                                                                KubeContext("staging", kube_cluster.token)])
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
from kubernetes.client.rest import ApiException

from kubestack.deploy.kube.binaries import HELM, binary
from kubestack.deploy.kube.kubeconfig import KubeContext, write_kubeconfig
from kubestack.deploy.kube.launcher import LocalKube
from kubestack.settings import LocalKubeSettings
from tests.services.process import free_port

__all__ = ["KubeCluster", "KubeContext"]

Rule = Mapping[str, Any] | kubernetes.client.V1PolicyRule  # {"apiGroups": [""], "resources": [...], "verbs": [...]}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kubernetes: needs the real Kubernetes API server (session fixture)")


@dataclass(frozen=True)
class KubeCluster:
    server: str
    token: str  # the admin's: system:masters
    ca_file: Path  # kube-apiserver's self-signed certificate
    home: Path
    bin_dir: Path
    version: str
    start_s: float  # how long the control plane took to be ready, every component

    @property
    def helm(self) -> Path:
        return binary(HELM, self.bin_dir)

    def configuration(self, token: str | None = None) -> kubernetes.client.Configuration:
        config = kubernetes.client.Configuration(host=self.server)
        config.api_key = {"authorization": token or self.token}
        config.api_key_prefix = {"authorization": "Bearer"}
        config.ssl_ca_cert = str(self.ca_file)
        return config

    def api_client(self, token: str | None = None) -> kubernetes.client.ApiClient:
        """A client as the admin, or as whoever ``token`` belongs to; use it in ``with`` to close its pool."""
        return kubernetes.client.ApiClient(self.configuration(token))

    def write_kubeconfig(self, path: Path, contexts: Sequence[KubeContext] | None = None,
                         current: str | None = None) -> Path:
        """A kubeconfig whose named contexts all reach this server (default: one admin context,
        ``kubestack-test``)."""
        contexts = contexts or [KubeContext("kubestack-test", self.token)]
        return write_kubeconfig(path, self.server, self.ca_file, contexts, current)

    def service_account_token(self, namespace: str, name: str, *, rules: Sequence[Rule] = (),
                              cluster_role: str | None = None, cluster_wide: bool = False,
                              expiration_s: int = 3600) -> str:
        """Create ServiceAccount ``name`` (and its namespace if missing), grant it ``rules`` (a Role, or a
        ClusterRole with ``cluster_wide``) and/or an existing ``cluster_role`` (bound in the namespace, or cluster
        wide), and return a token for it from the TokenRequest API. Nothing else is granted: RBAC denies the rest.
        """
        with self.api_client() as api:
            core, rbac = kubernetes.client.CoreV1Api(api), kubernetes.client.RbacAuthorizationV1Api(api)
            _create(core.create_namespace, {"metadata": {"name": namespace}})
            _create(lambda body: core.create_namespaced_service_account(namespace, body), {"metadata": {"name": name}})
            subjects = [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]
            if rules:
                role = f"{namespace}-{name}" if cluster_wide else name
                if cluster_wide:
                    _create(rbac.create_cluster_role, {"metadata": {"name": role}, "rules": list(rules)})
                    _create(rbac.create_cluster_role_binding, _binding(role, "ClusterRole", role, subjects))
                else:
                    _create(lambda body: rbac.create_namespaced_role(namespace, body),
                            {"metadata": {"name": role}, "rules": list(rules)})
                    _create(lambda body: rbac.create_namespaced_role_binding(namespace, body),
                            _binding(role, "Role", role, subjects))
            if cluster_role:
                binding = f"{name}-{cluster_role}".replace(":", "-")
                if cluster_wide:
                    _create(rbac.create_cluster_role_binding,
                            _binding(f"{namespace}-{binding}", "ClusterRole", cluster_role, subjects))
                else:
                    _create(lambda body: rbac.create_namespaced_role_binding(namespace, body),
                            _binding(binding, "ClusterRole", cluster_role, subjects))
            request = kubernetes.client.AuthenticationV1TokenRequest(
                spec=kubernetes.client.V1TokenRequestSpec(audiences=[], expiration_seconds=expiration_s))
            token = core.create_namespaced_service_account_token(name, namespace, request).status.token
            granted = list(rules) + (_cluster_role_rules(rbac, cluster_role) if cluster_role else [])
            if granted:  # RBAC's caches take a moment to see the new bindings
                _wait_allowed(api, f"system:serviceaccount:{namespace}:{name}",
                              None if cluster_wide else namespace, granted[0])
        return token

    def create_node(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        """A Ready Node that Pods get scheduled to. No kubelet is behind it and the node-lifecycle controller is
        off, so it keeps the status written here; its not-ready taint (added on creation) is removed."""
        with self.api_client() as api:
            core = kubernetes.client.CoreV1Api(api)
            _create(core.create_node, {"metadata": {"name": name,
                                                    "labels": {"kubernetes.io/hostname": name, **(labels or {})}}})
            core.patch_node(name, {"spec": {"taints": None}})
            capacity = {"cpu": "4", "memory": "8Gi", "pods": "110"}
            core.patch_node_status(name, {"status": {
                "capacity": capacity, "allocatable": capacity,
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                "message": "kubestack test node (no kubelet)"}],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.250"}, {"type": "Hostname", "address": name}],
            }})


    def bind_pod(self, namespace: str, pod: str, node: str) -> None:
        """Put a Pending Pod on a Node as a scheduler does (``pods/binding``); 409 when it is bound already."""
        with self.api_client() as api:
            body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
            # the generated client cannot read the Status that comes back: take the raw response
            kubernetes.client.CoreV1Api(api).create_namespaced_pod_binding(pod, namespace, body,
                                                                           _preload_content=False)


def _binding(name: str, kind: str, role: str, subjects: list[dict[str, str]]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "subjects": subjects,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role}}


def _create(create: Any, body: Any) -> None:
    try:
        create(body)
    except ApiException as exc:
        if exc.status != 409:  # already there: the helpers may be called twice for one name
            raise


def _cluster_role_rules(rbac: kubernetes.client.RbacAuthorizationV1Api, name: str, timeout_s: float = 30.0) -> list:
    """The rules of a ClusterRole; an aggregated one (view, edit, admin) has none until the controller manager's
    aggregation controller filled them in, which it does in the first seconds of a fresh cluster."""
    deadline = time.monotonic() + timeout_s
    while True:
        role = rbac.read_cluster_role(name)
        if role.rules or not role.aggregation_rule:
            return list(role.rules or [])
        if time.monotonic() > deadline:
            raise AssertionError(f"ClusterRole {name} was never aggregated")
        time.sleep(0.1)


def _wait_allowed(api: kubernetes.client.ApiClient, user: str, namespace: str | None, rule: Rule,
                  timeout_s: float = 10.0) -> None:
    """Until RBAC's caches have the new binding, the grant it holds is not in force yet."""
    rule = rule if isinstance(rule, Mapping) else api.sanitize_for_serialization(rule)
    if not rule.get("resources"):  # a rule of non-resource URLs
        review_attributes = {"nonResourceAttributes": {"verb": rule["verbs"][0], "path": rule["nonResourceURLs"][0]}}
    else:
        names = rule.get("resourceNames") or [None]
        review_attributes = {"resourceAttributes": {"verb": rule["verbs"][0], "group": rule.get("apiGroups", [""])[0],
                                                    "resource": rule["resources"][0], "name": names[0],
                                                    "namespace": namespace}}
    review = {"spec": {"user": user, "groups": ["system:serviceaccounts", "system:authenticated"],
                       **review_attributes}}
    authz = kubernetes.client.AuthorizationV1Api(api)
    deadline = time.monotonic() + timeout_s
    while not authz.create_subject_access_review(review).status.allowed:
        if time.monotonic() > deadline:
            raise AssertionError(f"RBAC never allowed {user} to {review_attributes}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    settings = LocalKubeSettings(port=free_port(), etcd_port=free_port(), etcd_peer_port=free_port(),
                                 controller_manager_port=free_port(), scheduler_port=free_port())
    home = tmp_path_factory.mktemp("kube-home")
    kube = LocalKube(settings, home)
    started = time.monotonic()
    status = kube.up()
    try:
        yield KubeCluster(kube.server, kube.admin_token, kube.ca_file, kube.root, kube.bin_dir, status.version or "",
                          round(time.monotonic() - started, 1))
    finally:
        kube.stop()


@pytest.fixture()
def kube_namespace(kube_cluster: KubeCluster) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (the controller manager empties it)."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    with kube_cluster.api_client() as api:
        core = kubernetes.client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": name}})
        yield name
        try:
            core.delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:  # the test deleted it itself
                raise
