"""Reaching a real kube-apiserver every way the plugin config allows: server + token + CA, a kubeconfig context
(several clusters in one file), the in-cluster service account; and what the target reports when the server
refuses, forbids or is not there."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubestack.errors import ConfigError, TargetAuthError, TargetUnreachableError
from kubestack.plugins.kubernetes import KubernetesConfig, KubernetesPlugin
from kubestack.plugins.kubernetes.api import get_json
from kubestack.plugins.kubernetes.connection import KubernetesConnection, api_client, cluster_name
from tests.services.kubernetes import KubeCluster, KubeContext
from tests.services.process import free_port

pytestmark = pytest.mark.kubernetes

POD_READER = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]


def version(conn: KubernetesConnection) -> dict:
    client = api_client(conn)
    try:
        return get_json(client, "/version", 5.0)
    finally:
        client.close()


def test_server_token_and_ca(kube_cluster: KubeCluster) -> None:
    conn = KubernetesConnection(server=kube_cluster.server, token={"value": kube_cluster.token},
                                ca_file=kube_cluster.ca_file, cluster="lab")
    assert version(conn)["gitVersion"] == kube_cluster.version
    assert cluster_name(conn) == "lab"
    assert cluster_name(conn.model_copy(update={"cluster": None})) == "127.0.0.1"


def test_kubeconfig_contexts_name_their_clusters(kube_cluster: KubeCluster, kube_namespace: str,
                                                 tmp_path: Path) -> None:
    reader = kube_cluster.service_account_token(kube_namespace, "reader", rules=POD_READER)
    path = kube_cluster.write_kubeconfig(tmp_path / "kubeconfig", [KubeContext("prod", reader, kube_namespace),
                                                                   KubeContext("staging", kube_cluster.token)],
                                         current="staging")
    staging = KubernetesConnection(kubeconfig=path)
    prod = KubernetesConnection(kubeconfig=path, context="prod")
    assert version(staging)["gitVersion"] == version(prod)["gitVersion"] == kube_cluster.version
    assert (cluster_name(staging), cluster_name(prod)) == ("staging", "prod")    # the contexts' cluster names
    with pytest.raises(ConfigError, match="no context 'qa'; it has: "):
        api_client(KubernetesConnection(kubeconfig=path, context="qa"))


def test_in_cluster_service_account_files(kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path) -> None:
    mount = tmp_path / "serviceaccount"
    mount.mkdir()
    (mount / "token").write_text(kube_cluster.service_account_token(kube_namespace, "agent", rules=POD_READER))
    (mount / "ca.crt").write_bytes(kube_cluster.ca_file.read_bytes())
    conn = KubernetesConnection(in_cluster=True, service_account_dir=mount, server=kube_cluster.server)
    assert version(conn)["gitVersion"] == kube_cluster.version
    assert cluster_name(conn) == "in-cluster"
    with pytest.raises(ConfigError, match="no service-account token"):
        api_client(KubernetesConnection(in_cluster=True, service_account_dir=tmp_path / "none",
                                        server=kube_cluster.server))


async def test_a_wrong_token_and_a_missing_server_are_target_errors(kube_cluster: KubeCluster) -> None:
    wrong = KubernetesPlugin(KubernetesConfig(server=kube_cluster.server, token={"value": "not-a-token"},
                                              ca_file=kube_cluster.ca_file))
    with pytest.raises(TargetAuthError, match="HTTP 401"):
        await wrong.collect()
    gone = KubernetesPlugin(KubernetesConfig(server=f"https://127.0.0.1:{free_port()}", token={"value": "x"},
                                             ca_file=kube_cluster.ca_file, timeout_s=2))
    with pytest.raises(TargetUnreachableError, match="cannot be reached"):
        await gone.check_health()
    untrusted = KubernetesPlugin(KubernetesConfig(server=kube_cluster.server, token={"value": kube_cluster.token}))
    with pytest.raises(TargetUnreachableError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        await untrusted.snapshot_config()
    for plugin in (wrong, gone, untrusted):
        await plugin.close()


async def test_the_target_itself_reports_the_servers_version(kube_cluster: KubeCluster) -> None:
    plugin = KubernetesPlugin(KubernetesConfig(server=kube_cluster.server, token={"value": kube_cluster.token},
                                               ca_file=kube_cluster.ca_file, cluster="lab"))
    try:
        config = await plugin.snapshot_config()
        assert config["gitVersion"] == kube_cluster.version and config["cluster"] == "lab"
        assert await plugin.check_health() == []
    finally:
        await plugin.close()
