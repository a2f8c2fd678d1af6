"""End to end: an agent with two kubernetes targets (a real kube-apiserver, and one that is not there) publishes to
the session's real Kafka: a crash-looping pod's findings under its cluster, namespace and owner, the pods' and the
cluster's metrics, and the missing cluster as agent.target_down; the agent keeps going."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from kubestack.agents.config import AgentConfig
from kubestack.agents.runtime import Agent
from kubestack.bus import ensure_topics
from kubestack.contract.events import HealthReport, MetricBatch
from kubestack.contract.topics import CONFIG_CHANGES, CONFIG_SNAPSHOTS, HEALTH, LOGS, METRICS
from kubestack.settings import KafkaSettings, Settings
from tests.kafka_io import consume
from tests.services.kubernetes import KubeCluster
from tests.services.process import free_port
from tests.test_kube_collector import apps, core, crashloop_status, deployment, place, wait_for_pods

pytestmark = [pytest.mark.kafka, pytest.mark.kubernetes]

TOPICS = (METRICS, HEALTH, CONFIG_SNAPSHOTS, CONFIG_CHANGES, LOGS)


def targets(kube: KubeCluster, namespace: str) -> list[dict]:
    common = {"type": "kubernetes", "interval": "1s", "health_interval": "1s", "config_interval": "1h"}
    return [common | {"name": "lab", "config": {"server": kube.server, "token": {"value": kube.token},
                                                "ca_file": str(kube.ca_file), "cluster": "lab",
                                                "namespaces": [namespace], "resync_interval_s": 2}},
            common | {"name": "gone", "config": {"server": f"https://127.0.0.1:{free_port()}", "token": {"value": "x"},
                                                 "ca_file": str(kube.ca_file), "timeout_s": 1, "backoff_max_s": 1}}]


async def records_until(kafka: KafkaSettings, spec, done, unique: str, timeout_s: float = 60.0) -> list:
    deadline = time.monotonic() + timeout_s
    attempt, events = 0, []
    while time.monotonic() < deadline:
        attempt += 1
        records = await consume(kafka, spec.qualified(kafka.topic_prefix), 10_000, f"{unique}-{spec.name}-{attempt}",
                                timeout_s=2)
        events = [(r.timestamp / 1000, spec.decode(r.value)) for r in records]
        if done([e for _, e in events]):
            return events
    raise AssertionError(f"{spec.name}: condition not met; {len(events)} records")


async def test_an_agent_on_a_cluster_publishes_pod_findings_metrics_and_an_unreachable_cluster_as_down(
        kafka: KafkaSettings, kube_cluster: KubeCluster, kube_namespace: str, unique: str, tmp_path: Path) -> None:
    kafka = kafka.model_copy(update={"topic_prefix": f"test.{unique}."})
    await ensure_topics(kafka, TOPICS)
    node = f"node-{unique[-8:]}"
    kube_cluster.create_node(node)
    apps(kube_cluster).create_namespaced_deployment(kube_namespace, deployment("cache"))
    [pod] = wait_for_pods(kube_cluster, kube_namespace, "app.kubernetes.io/instance=cache")
    node = place(kube_cluster, kube_namespace, pod.metadata.name, node)

    config = AgentConfig.model_validate({"agent": {"name": f"kube-{unique}", "metrics_listen": None},
                                         "targets": targets(kube_cluster, kube_namespace)})
    agent = Agent(config, Settings(home=tmp_path, kafka=kafka))
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.sleep(1.0)
        changed_at = time.time()
        core(kube_cluster).patch_namespaced_pod_status(pod.metadata.name, kube_namespace,
                                                       crashloop_status("10.244.9.9"))

        def crashing(report) -> bool:
            return report.resource.kind == "pod" and "kubernetes.pod_crashloop" in {f.rule_id for f in report.findings}

        def both(reports) -> bool:
            return any(crashing(r) for r in reports) and any(
                r.resource.name == "gone" and not r.reachable for r in reports)

        health = await records_until(kafka, HEALTH, both, unique)
        metrics = await records_until(kafka, METRICS, lambda batches: any(b.resource.kind == "pod" for b in batches)
                                      and any(b.resource.kind == "kubernetes" for b in batches), unique)
        assert not running.done(), "the agent stopped"
    finally:
        stop.set()
        await running
        core(kube_cluster).delete_node(node)

    sent_at, report = next((at, r) for at, r in health if isinstance(r, HealthReport) and crashing(r))
    print(f"\nwatch latency, API change -> on the Kafka topic: {(sent_at - changed_at) * 1000:.0f} ms")
    assert report.resource.key == f"lab/{kube_namespace}/pod/{pod.metadata.name}"
    assert report.resource.labels["owner"] == "deployment/cache" and report.resource.labels["node"] == node
    assert report.source.agent == f"agent/kube-{unique}"
    down = next(r for _, r in health if r.resource.name == "gone" and not r.reachable)
    assert [f.rule_id for f in down.findings] == ["agent.target_down"]
    assert "cannot be reached" in down.findings[0].message
    cluster = next(b for _, b in metrics if isinstance(b, MetricBatch) and b.resource.kind == "kubernetes")
    assert {"kubernetes_cluster_nodes", "kubernetes_watch_synced"} <= {s.name for s in cluster.samples}
