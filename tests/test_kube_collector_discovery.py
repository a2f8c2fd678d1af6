"""Pointing the agent at a cluster finds its middleware: StatefulSet pods behind their headless Service one by
one, a Deployment's database through its Service, each a target of its own plugin whose resource carries the
cluster, the namespace and what it depends on (real kube-apiserver and controller manager)."""

from __future__ import annotations

import time
from pathlib import Path

import kubernetes.client
import pytest
import yaml

from kubestack.agents.__main__ import agent_config
from kubestack.agents.runtime import Agent
from kubestack.plugins.kubernetes import KubernetesConfig, KubernetesPlugin
from kubestack.settings import KafkaSettings, Settings
from tests.services.kubernetes import KubeCluster
from tests.services.process import free_port

pytestmark = pytest.mark.kubernetes


def workload(name: str, app: str, image: str, port: int, port_name: str) -> dict:
    labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": name}
    container = {"name": app, "image": image, "ports": [{"name": port_name, "containerPort": port}]}
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}}


def service(name: str, selector: dict, port: int, target: int | str, headless: bool = False) -> dict:
    spec = {"selector": selector, "ports": [{"name": "main", "port": port, "targetPort": target}]}
    return {"metadata": {"name": name}, "spec": spec | ({"clusterIP": "None"} if headless else {})}


@pytest.fixture()
def middleware(kube_cluster: KubeCluster, kube_namespace: str) -> str:
    """Two Redis pods of a StatefulSet with their headless Service, a PostgreSQL Deployment with a Service, and an
    application that is no middleware."""
    with kube_cluster.api_client() as api:
        core, apps = kubernetes.client.CoreV1Api(api), kubernetes.client.AppsV1Api(api)
        redis = workload("redis", "redis", "docker.io/bitnami/redis:7.2.4", 6379, "redis")
        redis["spec"] |= {"replicas": 2, "serviceName": "redis-headless", "podManagementPolicy": "Parallel"}
        apps.create_namespaced_stateful_set(kube_namespace, redis)
        core.create_namespaced_service(kube_namespace, service("redis-headless", {"app.kubernetes.io/name": "redis"},
                                                               6379, "redis", headless=True))
        apps.create_namespaced_deployment(kube_namespace, workload("orders-db", "postgresql",
                                                                   "docker.io/library/postgres:16.4", 5432, "pg"))
        core.create_namespaced_service(kube_namespace, service("orders-db", {"app.kubernetes.io/instance": "orders-db"},
                                                               5432, "pg"))
        apps.create_namespaced_deployment(kube_namespace, workload("checkout", "checkout",
                                                                   "registry.example.com/checkout:2", 8080, "http"))
        deadline = time.monotonic() + 30
        while len(core.list_namespaced_pod(kube_namespace).items) < 4:
            assert time.monotonic() < deadline, "the controllers never made the pods"
            time.sleep(0.1)
    return kube_namespace


def kube_target(kube: KubeCluster, namespace: str, server: str | None = None) -> dict:
    return {"type": "kubernetes", "name": "lab", "cluster": "lab",
            "config": {"server": server or kube.server, "token": {"value": kube.token}, "ca_file": str(kube.ca_file),
                       "cluster": "lab", "namespaces": [namespace],
                       "discover": {"config": {"postgresql": {"user": "monitor",
                                                              "password": {"env": "ORDERS_DB_PASSWORD"}}}}}}


def test_the_plugin_finds_each_replica_and_the_service_of_a_deployment(kube_cluster: KubeCluster,
                                                                       middleware: str) -> None:
    config = KubernetesConfig.model_validate(kube_target(kube_cluster, middleware)["config"])
    targets = {t["name"]: t for t in KubernetesPlugin.discover(config)}
    ns = middleware
    assert sorted(targets) == [f"orders-db.{ns}", f"redis-0.{ns}", f"redis-1.{ns}"]
    assert targets[f"redis-1.{ns}"]["config"] == {"host": f"redis-1.redis-headless.{ns}.svc.cluster.local",
                                                   "port": 6379}
    orders = targets[f"orders-db.{ns}"]
    assert orders["config"] == {"host": f"orders-db.{ns}.svc.cluster.local", "port": 5432, "user": "monitor",
                                "password": {"env": "ORDERS_DB_PASSWORD"}}
    pod = next(p for p in orders["labels"]["depends_on"].split(",") if "/pod/" in p)
    assert pod.startswith(f"lab/{ns}/pod/orders-db-") and f"lab/{ns}/deployment/orders-db" in orders["labels"]["depends_on"]


def test_the_agent_starts_with_the_found_targets_in_the_cluster_not_on_its_host(
        kube_cluster: KubeCluster, middleware: str, tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({"agent": {"name": "kube-agent", "metrics_listen": None},
                                    "targets": [kube_target(kube_cluster, middleware)]}))
    config = agent_config(path, discover=False)
    assert sorted((t.type, t.name) for t in config.targets) == [
        ("kubernetes", "lab"), ("postgresql", f"orders-db.{middleware}"), ("redis", f"redis-0.{middleware}"),
        ("redis", f"redis-1.{middleware}")]
    agent = Agent(config, Settings(home=tmp_path, kafka=KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}")))
    resources = {c.name: c.resource for c in agent.collectors}
    redis0 = resources[f"redis-0.{middleware}"]
    assert (redis0.kind, redis0.namespace, redis0.cluster, redis0.host) == ("redis", middleware, "lab", None)
    assert redis0.labels == {"address": f"redis-0.redis-headless.{middleware}.svc.cluster.local:6379",
                             "depends_on": f"lab/{middleware}/pod/redis-0,lab/{middleware}/statefulset/redis"}
    assert resources["lab"].cluster == "lab" and resources["lab"].kind == "kubernetes"


def test_a_cluster_that_cannot_be_asked_finds_nothing_and_the_agent_still_starts(kube_cluster: KubeCluster,
                                                                                 tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    target = kube_target(kube_cluster, "shop", server=f"https://127.0.0.1:{free_port()}")
    target["config"]["timeout_s"] = 2
    path.write_text(yaml.safe_dump({"agent": {"name": "kube-agent", "metrics_listen": None}, "targets": [target]}))
    assert [t.name for t in agent_config(path, discover=False).targets] == ["lab"]
