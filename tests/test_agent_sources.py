"""The agent wires Prometheus pulls and the Alertmanager receiver to the bus (real Prometheus, Alertmanager,
Kafka)."""

import asyncio
import time

import pytest

from kubestack.agents.config import AgentConfig
from kubestack.agents.runtime import Agent
from kubestack.bus import ensure_topics
from kubestack.contract.topics import ANOMALIES, METRICS
from kubestack.settings import Settings
from tests.kafka_io import consume

pytestmark = pytest.mark.kafka


async def test_prometheus_series_and_alertmanager_alerts_reach_their_topics(kafka, prometheus, alertmanager,
                                                                            unique, tmp_path) -> None:
    kafka = kafka.model_copy(update={"topic_prefix": f"test.{unique}."})
    await ensure_topics(kafka, (METRICS, ANOMALIES))
    config = AgentConfig.model_validate({
        "agent": {"name": f"sources-{unique}", "metrics_listen": None},
        "prometheus": [{"url": prometheus.url, "interval": "1s", "queries": [
            {"name": "prometheus_up", "promql": "up", "resource": {"kind": "service", "name_labels": ["job"]},
             "keep_labels": ["instance"]}]}],
        "alertmanager": {"listen": f"127.0.0.1:{alertmanager.receiver_port}",
                         "token": {"value": alertmanager.token}},
    })
    agent = Agent(config, Settings(home=tmp_path, kafka=kafka))
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.sleep(1.0)
        alertname = f"DiskFilling{unique}"
        await asyncio.to_thread(alertmanager.push, [{
            "labels": {"alertname": alertname, "severity": "critical", "instance": "db-1:9100", "job": "node"},
            "annotations": {"summary": "disk fills"},
            "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }])
        metrics = await consume(kafka, METRICS.qualified(kafka.topic_prefix), 1, f"m-{unique}", timeout_s=30)
        anomalies = await consume(kafka, ANOMALIES.qualified(kafka.topic_prefix), 1, f"a-{unique}", timeout_s=30)
    finally:
        stop.set()
        await running
    batch = METRICS.decode(metrics[0].value)
    assert batch.resource.kind == "service" and batch.samples[0].name == "prometheus_up"
    alert = ANOMALIES.decode(anomalies[0].value)
    assert (alert.detector, alert.signal, alert.severity) == ("alertmanager", alertname, "critical")
