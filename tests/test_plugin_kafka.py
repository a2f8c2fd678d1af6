"""The Kafka plugin: parsers and rules on recorded admin-client answers, then live against the session's broker
with unique topics and groups: lag per partition must equal what was produced minus what was consumed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from kubestack.bus import client_options
from kubestack.contract.events import Finding, Peer, PeerRole, Sample, Severity
from kubestack.errors import ConfigError, TargetUnreachableError
from kubestack.plugins.base import LocalRunner
from kubestack.plugins.kafka import KafkaPlugin, KafkaPluginConfig
from kubestack.plugins.kafka.checks import evaluate
from kubestack.plugins.kafka.parse import (
    DYNAMIC_TOPIC_CONFIG,
    Observation,
    parse_cluster,
    parse_configs,
    parse_groups,
    parse_partitions,
    partition_lags,
)
from kubestack.plugins.kafka.peers import kafka_peers, member_host
from kubestack.settings import KafkaSettings
from tests.services.process import free_port

pytestmark = pytest.mark.kafka

DATA = Path(__file__).parent / "data" / "kafka"
TOPIC, GROUP = "rec.orders", "rec-billing"  # what the recordings were made with


def recorded(name: str) -> Any:
    return json.loads((DATA / f"{name}.json").read_text())


def recorded_observation(topics: list[dict[str, Any]] | None = None) -> Observation:
    ends = recorded("end_offsets")
    return Observation(cluster=parse_cluster(recorded("cluster")),
                       partitions=parse_partitions(topics or recorded("topics")),
                       groups=parse_groups(recorded("groups")), lags=partition_lags(GROUP, recorded("committed"), ends),
                       end_offsets={(t, p): o for t, p, o in ends})


def rule(findings: list[Finding], rule_id: str) -> list[Finding]:
    return [f for f in findings if f.rule_id == rule_id]


def values(samples: list[Sample], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in samples if s.name == name}


# --- recorded answers -----------------------------------------------------------------------------


def test_cluster_and_partitions_from_metadata() -> None:
    cluster = parse_cluster(recorded("cluster"))
    assert cluster.controller_id == 1 and [i for i, _ in cluster.brokers] == [1]
    partitions = [p for p in parse_partitions(recorded("topics")) if p.topic == TOPIC]
    assert [(p.partition, p.leader, p.replicas, p.isr) for p in partitions] == [
        (0, 1, (1,), (1,)), (1, 1, (1,), (1,)), (2, 1, (1,), (1,))]
    assert not any(p.offline or p.under_replicated for p in partitions)
    assert all(not p.topic.startswith("__") for p in parse_partitions(recorded("topics")))


def test_lag_per_partition_from_committed_and_end_offsets() -> None:
    lags = partition_lags(GROUP, recorded("committed"), recorded("end_offsets"))
    assert [(x.partition, x.committed, x.end, x.lag) for x in lags] == [(0, 10, 10, 0), (1, 4, 10, 6)]
    assert lags[1].labels == {"group": GROUP, "topic": TOPIC, "partition": "1"}
    assert partition_lags(GROUP, [[TOPIC, 2, -1]], recorded("end_offsets")) == []  # no commit: no lag


def test_groups_and_configs_without_secrets() -> None:
    [group] = parse_groups(recorded("groups"))
    assert (group.group, group.state, group.members, group.active) == (GROUP, "Empty", 0, False)
    brokers = parse_configs(recorded("broker_configs"))["1"]
    assert brokers["num.partitions"] and brokers["log.dirs"]
    assert not [name for name in brokers if "password" in name]
    assert parse_configs(recorded("topic_configs"), only_source=DYNAMIC_TOPIC_CONFIG) == {
        TOPIC: {"retention.ms": "3600000"}}


def test_rules_on_recorded_lag_follow_the_thresholds() -> None:
    obs = recorded_observation()
    findings = evaluate(obs, {}, KafkaPluginConfig(lag_high=5, lag_critical=6))
    [high] = rule(findings, "kafka.consumer_lag_high")
    assert high.severity == Severity.CRITICAL and high.evidence["total_lag"] == 6
    assert high.evidence["partitions"][0] == {"topic": TOPIC, "partition": 1, "committed": 4, "end": 10, "lag": 6}
    [inactive] = rule(findings, "kafka.group_inactive_with_lag")
    assert inactive.evidence["state"] == "Empty" and inactive.evidence["total_lag"] == 6
    assert rule(evaluate(obs, {}, KafkaPluginConfig()), "kafka.consumer_lag_high") == []


def test_offline_and_under_replicated_partitions() -> None:
    topics = recorded("topics")
    for topic in topics:  # the recorded metadata as a 3-broker cluster that lost brokers 2 and 3 would show it
        if topic["topic"] == TOPIC:
            topic["partitions"][0] |= {"leader": -1, "replicas": [2, 3], "isr": []}
            topic["partitions"][1] |= {"replicas": [1, 2], "isr": [1]}
    findings = evaluate(recorded_observation(topics), {}, KafkaPluginConfig())
    [offline] = rule(findings, "kafka.offline_partitions")
    assert offline.severity == Severity.CRITICAL and offline.evidence["offline_partitions"] == 1
    assert offline.evidence["partitions"][0]["leader"] == -1
    [under] = rule(findings, "kafka.under_replicated_partitions")
    assert under.evidence["out_of_sync_brokers"] == [2] and under.evidence["under_replicated_partitions"] == 1


def test_growing_lag_needs_every_round_to_rise() -> None:
    obs, config = recorded_observation(), KafkaPluginConfig(lag_growing_rounds=3, lag_growing_min=5)
    [growing] = evaluate(obs, {GROUP: [1, 4, 6]}, config)[:1]
    assert growing.rule_id == "kafka.consumer_lag_growing" and growing.evidence["recent_total_lag"] == [1, 4, 6]
    assert rule(evaluate(obs, {GROUP: [1, 4, 4]}, config), "kafka.consumer_lag_growing") == []
    assert rule(evaluate(obs, {GROUP: [4, 5, 6]}, config), "kafka.consumer_lag_growing") == []  # grew by 2 < 5
    assert rule(evaluate(obs, {GROUP: [4, 6]}, config), "kafka.consumer_lag_growing") == []


# --- live -----------------------------------------------------------------------------------------


def plugin_for(kafka: KafkaSettings, **overrides: Any) -> KafkaPlugin:
    return KafkaPlugin.create(KafkaPluginConfig.model_validate({"bootstrap": kafka.bootstrap, "timeout_s": 15,
                                                                **overrides}))


async def produce(kafka: KafkaSettings, topic: str, per_partition: list[int]) -> None:
    producer = AIOKafkaProducer(**client_options(kafka))
    await producer.start()
    try:
        for partition, count in enumerate(per_partition):
            for i in range(count):
                await producer.send_and_wait(topic, f"m{i}".encode(), partition=partition)
    finally:
        await producer.stop()


async def consume_and_commit(kafka: KafkaSettings, topic: str, group: str, per_partition: list[int]) -> None:
    """Read the first n messages of each partition as ``group`` and commit after them."""
    consumer = AIOKafkaConsumer(group_id=group, enable_auto_commit=False, auto_offset_reset="earliest",
                                **client_options(kafka))
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(len(per_partition))]
        consumer.assign(tps)
        seen: dict[TopicPartition, list[int]] = {tp: [] for tp in tps}
        while any(len(seen[tp]) < n for tp, n in zip(tps, per_partition, strict=True)):
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                seen[tp] += [r.offset for r in records]
        await consumer.commit({tp: seen[tp][n - 1] + 1 for tp, n in zip(tps, per_partition, strict=True)})
    finally:
        await consumer.stop()


@pytest.fixture()
async def consumed_topic(kafka: KafkaSettings, unique_topic: str, unique_group: str) -> tuple[str, str]:
    """A 3-partition topic with 5, 7 and 9 messages, of which ``unique_group`` consumed 2, 7 and 4."""
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(unique_topic, 3, 1, topic_configs={"retention.ms": "7200000"})])
    finally:
        await admin.close()
    await produce(kafka, unique_topic, [5, 7, 9])
    await consume_and_commit(kafka, unique_topic, unique_group, [2, 7, 4])
    return unique_topic, unique_group


async def test_live_lag_per_partition_equals_the_truth(kafka: KafkaSettings, consumed_topic: tuple[str, str]) -> None:
    topic, group = consumed_topic
    plugin = plugin_for(kafka, groups=[group])
    try:
        samples = await plugin.collect()
    finally:
        await plugin.close()
    lags = {dict(k)["partition"]: v for k, v in values(samples, "kafka_consumer_group_lag").items()
            if dict(k)["topic"] == topic}
    assert lags == {"0": 3, "1": 0, "2": 5}
    offsets = {dict(k)["partition"]: v for k, v in values(samples, "kafka_consumer_group_offset").items()}
    assert offsets == {"0": 2, "1": 7, "2": 4}
    assert values(samples, "kafka_consumer_group_total_lag") == {(("group", group),): 8}
    assert values(samples, "kafka_consumer_group_members") == {(("group", group),): 0}
    labels = (("topic", topic),)
    assert values(samples, "kafka_topic_partitions")[labels] == 3
    assert values(samples, "kafka_topic_messages_total")[labels] == 21
    assert values(samples, "kafka_topic_under_replicated_partitions")[labels] == 0
    assert values(samples, "kafka_offline_partitions")[()] == 0
    assert values(samples, "kafka_brokers")[()] >= 1


async def test_live_lag_on_a_cluster_with_hundreds_of_topics(kafka: KafkaSettings,
                                                            consumed_topic: tuple[str, str]) -> None:
    """A fresh client learns every topic's leaders in one metadata refresh: aiokafka alone learns them one
    stale-metadata retry at a time and ran out of time on a broker with a few hundred topics."""
    from kubestack.bus import ensure_topics

    for i in range(25):  # 25 × 14 registry topics
        await ensure_topics(kafka.model_copy(update={"topic_prefix": f"crowd{i}.{consumed_topic[1]}."}))
    topic, group = consumed_topic
    plugin = plugin_for(kafka, groups=[group])
    try:
        samples = await plugin.collect()
    finally:
        await plugin.close()
    assert values(samples, "kafka_consumer_group_total_lag") == {(("group", group),): 8}


async def test_live_health_finds_lag_an_idle_group_and_growth(kafka: KafkaSettings,
                                                              consumed_topic: tuple[str, str]) -> None:
    topic, group = consumed_topic
    plugin = plugin_for(kafka, groups=[group], lag_high=8, lag_growing_rounds=3, lag_growing_min=2)
    try:
        findings = await plugin.check_health()
        [high] = rule(findings, "kafka.consumer_lag_high")
        assert high.evidence["total_lag"] == 8 and high.evidence["partitions"][0]["partition"] == 2
        [idle] = rule(findings, "kafka.group_inactive_with_lag")
        assert idle.evidence["group"] == group and idle.evidence["members"] == 0
        assert rule(findings, "kafka.offline_partitions") == []
        for _ in range(2):
            await produce(kafka, topic, [1, 1, 1])
            findings = await plugin.check_health()
        [growing] = rule(findings, "kafka.consumer_lag_growing")
        assert growing.evidence["recent_total_lag"] == [8, 11, 14]
    finally:
        await plugin.close()


async def test_live_active_member_is_not_an_idle_group(kafka: KafkaSettings, consumed_topic: tuple[str, str]) -> None:
    topic, group = consumed_topic
    member = AIOKafkaConsumer(topic, group_id=group, enable_auto_commit=False, **client_options(kafka))
    await member.start()
    plugin = plugin_for(kafka, groups=[group])
    try:
        while not member.assignment():
            await member.getmany(timeout_ms=200)
        samples = await plugin.collect()
        assert values(samples, "kafka_consumer_group_members") == {(("group", group),): 1}
        assert rule(await plugin.check_health(), "kafka.group_inactive_with_lag") == []
    finally:
        await plugin.close()
        await member.stop()


async def test_live_snapshot_has_broker_configs_and_topic_overrides(kafka: KafkaSettings,
                                                                   consumed_topic: tuple[str, str]) -> None:
    topic, _ = consumed_topic
    plugin = plugin_for(kafka)
    try:
        snapshot = await plugin.snapshot_config()
    finally:
        await plugin.close()
    assert snapshot[f"topic.{topic}.retention.ms"] == "7200000"
    assert any(key.startswith("broker.") and key.endswith(".num.partitions") for key in snapshot)
    assert not [key for key in snapshot if "password" in key]


async def test_closed_port_is_unreachable() -> None:
    plugin = KafkaPlugin.create(KafkaPluginConfig(bootstrap=f"127.0.0.1:{free_port()}", timeout_s=2))
    with pytest.raises(TargetUnreachableError, match="cannot be reached"):
        await plugin.collect()
    await plugin.close()


def test_kafka_is_not_collected_through_a_runner() -> None:
    with pytest.raises(ConfigError, match="directly"):
        KafkaPlugin.create(KafkaPluginConfig(), LocalRunner())


# --- peers: the consumer groups reading the cluster ----------------------------------------------------


def test_peers_from_recorded_groups() -> None:
    """groups_with_members.json: rec-billing (committed offsets, no member) and rec-shipping (two members of
    client id shipping-worker on this host), described one group per request."""
    assert kafka_peers(recorded("groups_with_members")) == [
        Peer(role=PeerRole.CONSUMER_GROUP, address="rec-billing", name="rec-billing"),
        Peer(role=PeerRole.CONSUMER_GROUP, address="rec-shipping", name="rec-shipping", count=2),
        Peer(role=PeerRole.CLIENT, address="127.0.0.1", name="shipping-worker", count=2)]
    gone = [{"error_code": 0, "group": "old", "state": "Dead", "members": []},
            {"error_code": 69, "group": "missing", "state": "", "members": []}]
    assert kafka_peers(gone) == []
    assert [member_host(h) for h in ("/10.0.0.5", "app-1/10.0.0.5")] == ["10.0.0.5", "10.0.0.5"]


async def test_live_peers_name_every_group_and_its_hosts(kafka: KafkaSettings, consumed_topic: tuple[str, str],
                                                          unique: str) -> None:
    topic, idle_group = consumed_topic
    busy_group = f"busy-{unique}"
    member = AIOKafkaConsumer(topic, group_id=busy_group, client_id="peers-test", enable_auto_commit=False,
                              **{k: v for k, v in client_options(kafka).items() if k != "client_id"})
    await member.start()
    plugin = plugin_for(kafka, groups=[idle_group, busy_group])  # two groups: aiokafka garbles a joint answer
    try:
        while not member.assignment():
            await member.getmany(timeout_ms=200)
        peers = await plugin.peers()
    finally:
        await plugin.close()
        await member.stop()
    assert peers == [Peer(role=PeerRole.CONSUMER_GROUP, address=g, name=g) for g in sorted([idle_group, busy_group])] \
        + [Peer(role=PeerRole.CLIENT, address="127.0.0.1", name="peers-test")]
