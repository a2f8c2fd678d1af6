"""Data loss foreseen on a real broker: a consumer group slowed on purpose against a topic with a short retention
(30 s, 1 s segments, a broker that checks retention every second) falls behind until retention deletes records it
has not read. The real agent collects the cluster, the real worker forecasts at a compressed time scale
(``tests/dataloss.py``), and the notice must come before the first record is lost: when it arrives the group's
committed offset is still at or above the log start offset. It must say what will be lost, reach an incident, and
come with the proposal to raise the topic's retention.

The monitored broker is one of its own (the shared one checks retention once a minute, a read-only setting); the
worker's topics stay on the session's broker."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from kubestack.agents.config import AgentConfig
from kubestack.agents.runtime import Agent
from kubestack.deploy.kafka.launcher import LocalKafka
from kubestack.settings import LocalKafkaSettings
from tests.dataloss import COLLECT_S, TIME_SCALE, at_scale, calm_before_the_fault, hours, until, worker_and_watch
from tests.services.process import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]  # two brokers to start, then minutes of traffic

RETENTION_S = 30          # reached some 38 h at scale after the group slows down
PRODUCE_PER_S = 20
SLOW_CONSUME_PER_S = 4     # the oldest unconsumed record then ages 0.8 s every second
WARMUP_S = hours(7.5)      # the group keeps up at first (and until the worker is ready)
LOSS_BOUND_S = WARMUP_S + RETENTION_S / 0.8 + 60


class FastRetention(LocalKafka):
    """The project's broker, checking retention every second (``log.retention.check.interval.ms`` is read-only)."""

    def render_properties(self) -> None:
        super().render_properties()
        for node in self.nodes:
            text = node.properties.read_text()
            assert "log.retention.check.interval.ms=60000" in text
            node.properties.write_text(text.replace("log.retention.check.interval.ms=60000",
                                                    "log.retention.check.interval.ms=1000"))


class Starting:
    """The broker starting in a thread, so that a test can start its worker meanwhile (each takes seconds)."""

    def __init__(self, broker: FastRetention) -> None:
        self.broker, self.error = broker, None
        self.thread = threading.Thread(target=self._up, name="retention-kafka", daemon=True)
        self.thread.start()

    def _up(self) -> None:
        try:
            self.broker.up()
        except Exception as exc:  # raised again in the test's thread by ready()
            self.error = exc

    def ready(self) -> str:
        """The broker's bootstrap once it is up (its start error raised here)."""
        self.thread.join(self.broker.settings.start_timeout_s + 60)
        if self.thread.is_alive():
            raise TimeoutError(f"the broker on {self.broker.settings.bootstrap} is still starting")
        if self.error is not None:
            raise self.error
        return self.broker.settings.bootstrap


@pytest.fixture(scope="module")
def starting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Starting]:
    local = LocalKafkaSettings(port=free_port(), controller_port=free_port(), heap="384m", start_timeout_s=240)
    started = Starting(FastRetention(local, tmp_path_factory.mktemp("retention-kafka")))
    try:
        yield started
    finally:
        started.thread.join()
        started.broker.stop()


@pytest.fixture
def monitored(starting: Starting) -> str:
    return starting.ready()


class Truth:
    """The group's committed offset and the partition's log start offset, polled on the broker four times a second;
    ``lost_at`` is when the log start first passed the committed offset."""

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        self.bootstrap, self.tp, self.group = bootstrap, TopicPartition(topic, 0), group
        self.rows: list[tuple[datetime, int, int]] = []
        self.lost_at: datetime | None = None

    async def run(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None)
        await admin.start()
        await reader.start()
        try:
            while True:
                try:
                    committed = (await admin.list_consumer_group_offsets(self.group)).get(self.tp)
                    start = (await reader.beginning_offsets([self.tp]))[self.tp]
                except KafkaError:  # the group's coordinator is not known yet on a young broker
                    await asyncio.sleep(0.25)
                    continue
                now = datetime.now(timezone.utc)
                if committed is not None:
                    self.rows.append((now, committed.offset, start))
                    if start > committed.offset and self.lost_at is None:
                        self.lost_at = now
                await asyncio.sleep(0.25)
        finally:
            await reader.stop()
            await admin.close()

    def at(self, when: datetime) -> tuple[int, int]:
        """(committed, log start) as last polled before ``when``."""
        _, committed, start = [row for row in self.rows if row[0] <= when][-1]
        return committed, start


async def produce(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    try:
        n = 0
        while True:
            await producer.send_and_wait(topic, f"order-{n}".encode().ljust(200, b"."), partition=0)
            n += 1
            await asyncio.sleep(1 / PRODUCE_PER_S)
    finally:
        await producer.stop()


async def consume(bootstrap: str, topic: str, group: str, slowed: asyncio.Event) -> None:
    """Keeps up until ``slowed`` is set, then reads ``SLOW_CONSUME_PER_S`` records a second, committing each."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        while True:
            slow = slowed.is_set()
            batch = await consumer.getmany(timeout_ms=200, max_records=1 if slow else 1000)
            if any(batch.values()):
                await consumer.commit()
            if slow:
                await asyncio.sleep(1 / SLOW_CONSUME_PER_S)
    finally:
        await consumer.stop()


def agent_config(name: str, bootstrap: str, group: str) -> AgentConfig:
    return AgentConfig.model_validate({
        "agent": {"name": name, "metrics_listen": None},
        "targets": [{"type": "kafka", "name": f"{name}-orders-cluster", "interval": COLLECT_S, "health_interval": 5,
                     "config_interval": 60, "config": {"bootstrap": bootstrap, "groups": [group], "timeout_s": 5}}],
    })


async def test_a_slowed_group_is_warned_before_retention_deletes_what_it_has_not_read(kafka, starting: Starting,
                                                                                       tmp_path: Path,
                                                                                       unique: str) -> None:
    topic, group = f"orders.{unique}", f"billing-{unique}"
    async with worker_and_watch(kafka, tmp_path) as (settings, watch, worker):   # while the broker starts
        monitored = await asyncio.to_thread(starting.ready)
        admin = AIOKafkaAdminClient(bootstrap_servers=monitored)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, 1, 1, topic_configs={
                "retention.ms": str(RETENTION_S * 1000), "segment.ms": "1000"})])
        finally:
            await admin.close()
        truth = Truth(monitored, topic, group)
        agent = Agent(agent_config(f"loss-{unique}", monitored, group), settings)
        stop, slowed, collected_from = asyncio.Event(), asyncio.Event(), datetime.now(timezone.utc)
        tasks = [asyncio.create_task(agent.run(stop)), asyncio.create_task(produce(monitored, topic)),
                 asyncio.create_task(consume(monitored, topic, group, slowed)), asyncio.create_task(truth.run())]
        try:
            await calm_before_the_fault(watch, worker, WARMUP_S, since=collected_from)
            slowed.set()
            await until(lambda: truth.lost_at is not None, LOSS_BOUND_S)
            await until(lambda: watch.told(f"group {group} on {topic} will lose unconsumed records",
                                           "kafka.set_topic_retention"), 10)  # the last batches through the worker
        finally:
            stop.set()
            for task in tasks[1:]:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks[1:])
            await asyncio.wait_for(tasks[0], 60)

    where = f"predictions:\n{watch.said()}\nworker: {worker.output[-3000:]}"
    assert truth.lost_at is not None, f"the group never lost a record in {LOSS_BOUND_S:.0f} s\n{where}"
    notices = [(at, p) for at, p in watch.notices("kafka_consumer_group_lag_seconds") if p.labels.get("group") == group]
    assert notices, f"no data-loss notice for {group}\n{where}"
    arrived, first = notices[0]
    committed, start = truth.at(arrived)
    assert arrived < truth.lost_at and committed >= start, \
        f"the notice came at {arrived:%H:%M:%S} (committed {committed}, log start {start}), the loss at " \
        f"{truth.lost_at:%H:%M:%S}\n{where}"
    assert first.outcome == f"group {group} on {topic} will lose unconsumed records (partition 0, retention.ms)"
    assert first.capacity == RETENTION_S and first.exhaustion_lower_bound <= first.exhaustion_at
    assert any(f"group {group} on {topic} will lose unconsumed records" in i.summary for i in watch.incidents), \
        f"no incident says what will be lost: {[i.summary for i in watch.incidents]}"
    raise_retention = [p for p in watch.proposals if p.action == "kafka.set_topic_retention"]
    assert raise_retention and raise_retention[0].params == {"topic": topic, "retention_ms": 2 * RETENTION_S * 1000}, \
        [(p.action, p.params) for p in watch.proposals]
    lead = (truth.lost_at - arrived).total_seconds()
    foreseen = (truth.lost_at - first.exhaustion_at).total_seconds()
    print(f"\nkafka {group} on {topic}: first notice {lead:.1f} s before the first record was lost ({at_scale(lead)} "
          f"at scale 1/{1 / TIME_SCALE:.0f}), {first.severity.value}; foreseen loss {first.exhaustion_at:%H:%M:%S} "
          f"(early bound {first.exhaustion_lower_bound:%H:%M:%S}), lost at {truth.lost_at:%H:%M:%S} "
          f"({foreseen:+.1f} s after the likely time); committed {committed} >= log start {start} at the notice; "
          f"{watch.timeline(notice=arrived, lost=truth.lost_at)}")


async def topic_overrides(bootstrap: str, topic: str) -> dict[str, str]:
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from kubestack.plugins.kafka.parse import DYNAMIC_TOPIC_CONFIG

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        return {e[0]: e[1] for r in response.resources for e in r[4] if e[3] == DYNAMIC_TOPIC_CONFIG}
    finally:
        await admin.close()


async def test_retention_is_raised_with_a_dry_run_and_undone_and_partitions_added(monitored: str, unique: str) -> None:
    from kubestack.errors import ActionError, PreconditionFailedError
    from kubestack.plugins.kafka import KafkaPlugin, KafkaPluginConfig

    topic, compacted = f"orders.act.{unique}", f"state.act.{unique}"
    admin = AIOKafkaAdminClient(bootstrap_servers=monitored)
    await admin.start()
    try:
        await admin.create_topics([
            NewTopic(topic, 1, 1, topic_configs={"retention.ms": "3600000", "segment.ms": "600000"}),
            NewTopic(compacted, 1, 1, topic_configs={"cleanup.policy": "compact"})])
    finally:
        await admin.close()
    deadline = time.monotonic() + 30
    while "retention.ms" not in await topic_overrides(monitored, topic) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)  # a new topic reaches the broker's metadata a moment after CreateTopics answers
    plugin = KafkaPlugin.create(KafkaPluginConfig(bootstrap=monitored, timeout_s=10))
    try:
        dry = await plugin.execute("kafka.set_topic_retention", {"topic": topic, "retention_ms": 7_200_000},
                                   dry_run=True)
        assert dry.dry_run and "would set retention.ms 3600000 → 7200000" in dry.output
        assert (await topic_overrides(monitored, topic))["retention.ms"] == "3600000", "a dry run changes nothing"
        done = await plugin.execute("kafka.set_topic_retention", {"topic": topic, "retention_ms": 7_200_000})
        assert await topic_overrides(monitored, topic) == {"retention.ms": "7200000", "segment.ms": "600000"}, \
            "the other overrides are kept"
        assert done.undo == ("kafka.set_topic_retention", {"topic": topic, "retention_ms": 3_600_000})
        await plugin.execute(*done.undo)
        assert await topic_overrides(monitored, topic) == {"retention.ms": "3600000", "segment.ms": "600000"}
        with pytest.raises(PreconditionFailedError, match="cleanup.policy=compact"):
            await plugin.execute("kafka.set_topic_retention", {"topic": compacted, "retention_ms": 7_200_000})
        with pytest.raises(PreconditionFailedError, match="no topic named"):
            await plugin.execute("kafka.set_topic_retention", {"topic": f"none.{unique}", "retention_ms": 7_200_000})
        added = await plugin.execute("kafka.add_partitions", {"topic": topic, "count": 3})
        assert "added 2 partition(s)" in added.output and added.undo is None
        with pytest.raises(PreconditionFailedError, match="has 3 partitions already"):
            await plugin.execute("kafka.add_partitions", {"topic": topic, "count": 3}, dry_run=True)
        with pytest.raises(ActionError, match="step for people"):
            await plugin.execute("kafka.reset_offsets", {"group": "g", "topic": topic, "to": "latest"})
    finally:
        await plugin.close()
