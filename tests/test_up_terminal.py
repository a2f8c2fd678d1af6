"""What ``kubestack up`` (``make run``) shows a newcomer: the console's address and token, what is watched, one
line per incident as it opens and resolves, how to try the demo; and none of Faust's start-up lines or aiokafka's
errors, which go to the log files. Also the Kafka plugin's leak that printed ``Unclosed AIOKafkaConsumer`` at start.
"""

from __future__ import annotations

import asyncio
import gc
import re
import time
import warnings
from datetime import datetime, timezone

import yaml
from aiokafka import AIOKafkaProducer

from kubestack.bus import client_options, ensure_topics
from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import Incident, IncidentStatus, Severity
from kubestack.contract.topics import INCIDENTS
from kubestack.plugins.kafka.client import AIOKafkaClient
from kubestack.plugins.kafka.config import KafkaPluginConfig
from kubestack.settings import KafkaSettings
from tests.cli import cli_env, follow
from tests.services.process import free_port

NOISE = ("Starting...", "[^Worker]", "Unclosed", "ERROR", "Traceback", "Highwater", "aiokafka")


def _incident(status: IncidentStatus, incident_id: str) -> Incident:
    resource = ResourceRef(kind="redis", name="cache", host="up-test")
    return Incident(incident_id=incident_id, title="redis latency with database load", status=status,
                    severity=Severity.CRITICAL, opened_at=datetime.now(timezone.utc), resources=[resource],
                    member_event_ids=["anomaly-1"], source=Source(agent="worker", host="up-test"), resource=resource)


async def _publish(kafka: KafkaSettings, *incidents: Incident) -> None:
    producer = AIOKafkaProducer(**client_options(kafka))
    await producer.start()
    try:
        for incident in incidents:
            key, value = INCIDENTS.encode(incident)
            await producer.send_and_wait(INCIDENTS.qualified(kafka.topic_prefix), value, key=key)
    finally:
        await producer.stop()


def test_up_shows_the_console_what_is_watched_and_incidents_and_keeps_the_logs_in_files(
        kafka: KafkaSettings, tmp_path, unique: str) -> None:
    prefix = f"up-{unique}."
    api_port = free_port()
    agent_config = tmp_path / "agent.yaml"
    agent_config.write_text(yaml.safe_dump({"agent": {"name": f"up-{unique}", "metrics_listen": None},
                                            "targets": [{"type": "host", "name": "up-host"}]}))
    env = cli_env(KUBESTACK_HOME=str(tmp_path / "home"), KUBESTACK_KAFKA__TOPIC_PREFIX=prefix,
                  KUBESTACK_WORKER__APP_ID=f"up-worker-{unique}", KUBESTACK_API__PORT=str(api_port),
                  KUBESTACK_API__FEED_GROUP=f"up-api-{unique}")
    up = follow("up", "--kafka-bootstrap", kafka.bootstrap, "--agent-config", str(agent_config), env=env)
    try:
        assert up.wait_for("incidents will show here", 120), up.output
        assert up.wait_for("admin token for this run", 60), up.output
        opened, resolved = _incident(IncidentStatus.OPEN, f"inc-{unique}"), _incident(IncidentStatus.RESOLVED,
                                                                                       f"inc-{unique}")
        asyncio.run(_publish(kafka.model_copy(update={"topic_prefix": prefix}), opened, resolved))
        assert up.wait_for(f"incident resolved inc-{unique}", 60), up.output
        worker_log, deadline = tmp_path / "home" / "logs" / "worker.log", time.monotonic() + 90
        while time.monotonic() < deadline and not (worker_log.exists()
                                                   and "[^Worker]: Starting..." in worker_log.read_text()):
            time.sleep(0.5)  # the details went to the log, not the terminal: Faust's start-up is there
    finally:
        code = up.stop()
    out = up.output
    assert code == 0, out
    assert f"KubeStack API and console on http://127.0.0.1:{api_port}/" in out
    assert re.search(r"admin token for this run \(api\.tokens is empty\): \S{20,}", out)
    assert "host/up-host" in out.split("watching", 1)[1].splitlines()[0]
    assert f"incident opened inc-{unique} [critical] redis latency with database load (redis/cache)" in out
    assert "kubestack demo up" in out and "kubestack demo fault" in out
    assert not [line for line in up.lines if any(noise in line for noise in NOISE)], out
    logs = tmp_path / "home" / "logs"
    assert "[^Worker]: Starting..." in (logs / "worker.log").read_text()  # the details are kept, in the log
    assert "Uvicorn running" in (logs / "api.log").read_text() or "Application startup" in (logs / "api.log").read_text()
    assert "watching" in (logs / "agent.log").read_text()


def test_the_kafka_plugin_asked_twice_at_once_opens_one_consumer_and_closes_it(kafka: KafkaSettings, unique: str
                                                                                ) -> None:
    """The metrics and the health loops ask for end offsets at the same moment at start: each used to start a
    consumer, and the one not kept was never stopped ("Unclosed AIOKafkaConsumer" once collected)."""
    topic_kafka = kafka.model_copy(update={"topic_prefix": f"leak-{unique}."})
    unclosed: list[str] = []

    async def ask_twice() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: unclosed.append(context["message"]))
        await ensure_topics(topic_kafka, (INCIDENTS,))
        client = AIOKafkaClient(KafkaPluginConfig(bootstrap=kafka.bootstrap))
        partitions = [(INCIDENTS.qualified(topic_kafka.topic_prefix), p) for p in range(INCIDENTS.partitions)]
        try:
            first, second = await asyncio.gather(client.end_offsets(partitions), client.end_offsets(partitions))
            assert first == second == sorted((t, p, 0) for t, p in partitions)
        finally:
            await client.close()
        gc.collect()
        await asyncio.sleep(0)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        asyncio.run(ask_twice())
    assert not unclosed and not [w for w in caught if "Unclosed" in str(w.message)], (unclosed, caught)
