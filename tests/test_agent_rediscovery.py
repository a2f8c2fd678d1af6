"""Looking again for the middleware a cluster runs: what changes (pure), and a running agent that starts and stops
watching middleware as it appears and goes in a real kube-apiserver."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import kubernetes.client
import pytest

from kubestack.agents.config import AgentConfig, TargetConfig
from kubestack.agents.discovery import changes
from kubestack.agents.runtime import Agent
from kubestack.settings import KafkaSettings, Settings
from tests.services.kubernetes import KubeCluster
from tests.services.process import free_port
from tests.test_kube_collector_discovery import kube_target, service, workload


def found(name: str, port: int = 6379, by: str = "kubernetes/lab") -> TargetConfig:
    return TargetConfig(type="redis", name=name, config={"host": f"{name}.svc", "port": port}, found_by=by)


CONFIGURED = TargetConfig(type="kubernetes", name="lab")


def test_new_targets_are_added_gone_ones_dropped_and_moved_ones_replaced() -> None:
    current = [CONFIGURED, found("a"), found("b"), found("c")]
    added, dropped = changes(current, {"kubernetes/lab": [found("a"), found("c", port=6380), found("d")]})
    assert [t.name for t in added] == ["c", "d"]
    assert [t.name for t in dropped] == ["b", "c"]
    assert all(t.found_by == "kubernetes/lab" for t in added + dropped)


def test_a_finder_that_cannot_look_changes_nothing_and_others_keep_theirs() -> None:
    current = [CONFIGURED, found("a"), found("x", by="kubernetes/other")]
    assert changes(current, {"kubernetes/lab": None}) == ([], [])
    added, dropped = changes(current, {"kubernetes/lab": []})
    assert added == [] and [t.name for t in dropped] == ["a"], "the other cluster's targets stay"


def _until(check, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:.0f}s"
        time.sleep(0.1)


@pytest.mark.kubernetes
async def test_a_running_agent_watches_middleware_as_it_comes_and_goes(kube_cluster: KubeCluster, kube_namespace: str,
                                                                       tmp_path: Path) -> None:
    ns = kube_namespace
    config = AgentConfig.model_validate({"agent": {"name": "kube-agent", "metrics_listen": None,
                                                   "rediscover_interval": 0.5},
                                         "targets": [kube_target(kube_cluster, ns)]})
    agent = Agent(config, Settings(home=tmp_path, kafka=KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}",
                                                                      request_timeout_s=2)))
    names = lambda: {c.name for c in agent.collectors}  # noqa: E731
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop, flush_timeout_s=0.5))
    try:
        assert names() == {"lab"}
        with kube_cluster.api_client() as api:
            core, apps = kubernetes.client.CoreV1Api(api), kubernetes.client.AppsV1Api(api)
            redis = workload("redis", "redis", "docker.io/bitnami/redis:7.2.4", 6379, "redis")
            redis["spec"] |= {"serviceName": "redis-headless"}
            apps.create_namespaced_stateful_set(ns, redis)
            core.create_namespaced_service(ns, service("redis-headless", {"app.kubernetes.io/name": "redis"}, 6379,
                                                       "redis", headless=True))
            await asyncio.to_thread(_until, lambda: f"redis-0.{ns}" in names(), "watching the new Redis")
            collector = next(c for c in agent.collectors if c.name == f"redis-0.{ns}")
            assert (collector.resource.kind, collector.resource.namespace, collector.resource.cluster) == (
                "redis", ns, "lab")
            assert agent._running[f"redis-0.{ns}"].done() is False, "its collector runs"

            core.delete_namespaced_service("redis-headless", ns)
            await asyncio.to_thread(_until, lambda: f"redis-0.{ns}" not in names(), "dropping the gone Redis")
            assert f"redis-0.{ns}" not in agent._running and names() == {"lab"}
    finally:
        stop.set()
        await running
