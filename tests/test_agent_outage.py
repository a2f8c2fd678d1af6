"""Broker outage and agent restart: every event produced meanwhile arrives exactly once, in order per resource.

These tests run their own broker (they stop it), on free ports in a temporary home.
"""

import asyncio
import pytest

from kubestack.agents.metrics import AgentMetrics
from kubestack.agents.sender import SpoolingPublisher
from kubestack.agents.spool import Spool
from kubestack.contract.base import ResourceRef
from kubestack.contract.topics import METRICS
from kubestack.deploy.kafka.launcher import LocalKafka
from kubestack.settings import KafkaSettings, LocalKafkaSettings
from tests.factories import example
from tests.kafka_io import consume_all
from tests.services.kafka_jars import with_jars
from tests.services.process import free_port

pytestmark = pytest.mark.kafka

RESOURCES = [ResourceRef(kind="redis", name=f"cache-{i}", host="db-1") for i in range(6)]


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory, kafka_jars):
    broker = LocalKafka(LocalKafkaSettings(port=free_port(), controller_port=free_port()),
                        with_jars(tmp_path_factory.mktemp("outage-kafka"), kafka_jars))
    broker.up()
    yield broker
    broker.stop()


def _kafka(broker: LocalKafka, unique: str) -> KafkaSettings:
    return KafkaSettings(bootstrap=broker.settings.bootstrap, topic_prefix=f"test.{unique}.", request_timeout_s=5)


def _events(start: int, count: int):
    """``count`` metric batches round-robin over the resources; event ids carry a global sequence."""
    out = []
    for n in range(start, start + count):
        event = example(METRICS, RESOURCES[n % len(RESOURCES)])
        out.append(event.model_copy(update={"event_id": f"{n:06d}"}))
    return out


async def _received(kafka: KafkaSettings, expected: int, group: str):
    records = await consume_all(kafka, METRICS.qualified(kafka.topic_prefix), group)
    assert len(records) >= expected
    return [METRICS.decode(r.value) for r in records]


def _assert_exactly_once_in_order(received, produced) -> None:
    ids = [e.event_id for e in received]
    assert len(ids) == len(set(ids)), "no duplicates"
    assert sorted(ids) == sorted(e.event_id for e in produced), "nothing lost"
    for resource in RESOURCES:
        mine = [e.event_id for e in received if e.resource == resource]
        assert mine == sorted(mine), f"{resource.name} out of order"


async def _publish_steadily(publisher, events, every_s: float) -> None:
    for i in range(0, len(events), 10):
        await publisher.publish_many([(METRICS, e) for e in events[i:i + 10]])
        await asyncio.sleep(every_s)


async def test_broker_outage_loses_nothing_and_duplicates_nothing(own_broker, unique, unique_group, tmp_path):
    from kubestack.bus import ensure_topics

    kafka = _kafka(own_broker, unique)
    await ensure_topics(kafka, (METRICS,))
    publisher = SpoolingPublisher(kafka, Spool(tmp_path / "spool"), AgentMetrics())
    publisher.start()
    events = _events(0, 600)

    async def outage() -> None:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(own_broker.stop)     # controlled shutdown while the agent publishes
        await asyncio.sleep(3.0)
        await asyncio.to_thread(own_broker.up)

    await asyncio.gather(_publish_steadily(publisher, events, every_s=0.05), outage())
    assert await publisher.flush(timeout_s=120), "the spool drains once Kafka is back"
    await publisher.stop()
    _assert_exactly_once_in_order(await _received(kafka, len(events), unique_group), events)


async def test_agent_restart_during_outage_replays_the_spool(own_broker, unique, unique_group, tmp_path):
    from kubestack.bus import ensure_topics

    kafka = _kafka(own_broker, unique)
    await ensure_topics(kafka, (METRICS,))
    first, second = _events(0, 200), _events(200, 100)

    await asyncio.to_thread(own_broker.stop)
    try:
        down = SpoolingPublisher(kafka, Spool(tmp_path / "spool"), AgentMetrics())
        down.start()
        await _publish_steadily(down, first, every_s=0.0)
        await down.stop(flush_timeout_s=1.0)            # the agent stops with everything still spooled
        assert Spool(tmp_path / "spool").pending == len(first)
    finally:
        await asyncio.to_thread(own_broker.up)

    again = SpoolingPublisher(kafka, Spool(tmp_path / "spool"), AgentMetrics())
    again.start()
    await _publish_steadily(again, second, every_s=0.0)
    assert await again.flush(timeout_s=120)
    await again.stop()
    _assert_exactly_once_in_order(await _received(kafka, len(first) + len(second), unique_group), first + second)


async def test_running_agent_survives_a_broker_restart_with_every_sample_once_in_order(own_broker, unique, tmp_path):
    """The whole agent (six targets collecting every 0.1 s) while the broker stops and comes back."""
    from kubestack.agents.config import AgentConfig
    from kubestack.agents.runtime import Agent
    from kubestack.bus import ensure_topics
    from kubestack.settings import Settings

    kafka = _kafka(own_broker, unique)
    await ensure_topics(kafka)
    config = AgentConfig.model_validate({
        "agent": {"name": f"outage-{unique}", "metrics_listen": None},
        "targets": [{"type": "agent", "name": f"a{i}", "interval": 0.1, "health_interval": 3600,
                     "config_interval": 3600} for i in range(6)],
    })
    agent = Agent(config, Settings(home=tmp_path, kafka=kafka))
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop, flush_timeout_s=120))
    await asyncio.sleep(1.0)
    await asyncio.to_thread(own_broker.stop)
    await asyncio.sleep(3.0)
    await asyncio.to_thread(own_broker.up)
    await asyncio.sleep(1.0)
    stop.set()
    await running
    assert agent.publisher.spool.pending == 0

    records = await consume_all(kafka, METRICS.qualified(kafka.topic_prefix), f"check-{unique}")
    rounds: dict[str, list[float]] = {}
    for record in records:
        batch = METRICS.decode(record.value)
        value = next(s.value for s in batch.samples if s.name == "agent_collect_rounds_total")
        rounds.setdefault(batch.resource.name, []).append(value)
    for collector in agent.collectors:
        produced = collector.plugin.rounds
        assert produced > 30, "collection went on during the outage"
        assert rounds[collector.name] == [float(n) for n in range(1, produced + 1)], collector.name
