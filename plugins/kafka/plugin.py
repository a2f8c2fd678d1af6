"""The Kafka plugin: cluster and partition health, consumer group lag, broker configs and topic overrides as
the configuration snapshot, health rules, and the actions the remediation stage may take."""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, ClassVar

from aiokafka.admin.config_resource import ConfigResourceType

from kubestack.contract.base import utcnow
from kubestack.contract.events import Finding, Peer, Sample
from kubestack.errors import CommandFailedError, ConfigError, TargetAuthError
from kubestack.plugins.base import ActionOutcome, ActionSpec, Capacity, CommandRunner, KubeDiscovery, LogSource
from kubestack.plugins.kafka import actions as kafka_actions
from kubestack.plugins.kafka.capacity import CAPACITIES
from kubestack.plugins.kafka.checks import evaluate
from kubestack.plugins.kafka.client import AIOKafkaClient, KafkaClient
from kubestack.plugins.kafka.config import KafkaPluginConfig
from kubestack.plugins.agreement import PeerAgreements
from kubestack.plugins.kafka.declaration import ACTIONS, AGREEMENTS, KEYWORDS, RULES, SYMPTOMS
from kubestack.plugins.kafka.metrics import cluster_samples, group_samples
from kubestack.plugins.kafka.parse import (
    DYNAMIC_TOPIC_CONFIG,
    Observation,
    parse_cluster,
    parse_configs,
    parse_groups,
    parse_partitions,
    partition_lags,
    total_lag,
)
from kubestack.plugins.kafka.peers import kafka_peers
from kubestack.plugins.kafka.retention import parse_retention, partition_logs, retention_samples, to_peek

LOG_FORMAT = "[<Date> <Time>] <Level> <Content>"
log = logging.getLogger(__name__)



class KafkaPlugin:
    """Kafka: brokers, partition health, consumer group lag, broker configs, health rules."""

    name: ClassVar[str] = "kafka"
    config_model: ClassVar[type[KafkaPluginConfig]] = KafkaPluginConfig
    client_module: ClassVar[str] = "aiokafka"
    rules: ClassVar[tuple[str, ...]] = RULES
    symptoms: ClassVar[frozenset[str]] = SYMPTOMS
    keywords: ClassVar[tuple[str, ...]] = KEYWORDS
    default_port: ClassVar[int] = 9092
    capacities: ClassVar[tuple[Capacity, ...]] = CAPACITIES
    agreements: ClassVar[PeerAgreements] = AGREEMENTS
    discovery: ClassVar[KubeDiscovery] = KubeDiscovery(
        apps=("kafka",), images=("kafka", "cp-kafka", "cp-server"), address_key="bootstrap")

    def __init__(self, config: KafkaPluginConfig, client: KafkaClient) -> None:
        self.config = config
        self.client = client
        self._lag_history: dict[str, deque[int]] = {}

    @classmethod
    def create(cls, config: KafkaPluginConfig, runner: CommandRunner | None = None) -> KafkaPlugin:
        if runner is not None:
            raise ConfigError("the kafka plugin talks to the brokers directly: give the target a bootstrap address "
                              "instead of ssh")
        return cls(config, AIOKafkaClient(config))

    @classmethod
    def example_config(cls) -> dict[str, Any]:
        return {"bootstrap": "127.0.0.1:9092", "lag_high": 10_000}

    async def observe(self) -> Observation:
        """Everything the metrics and the health rules look at, read in one round."""
        cluster = parse_cluster(await self.client.cluster())
        topics = await self.client.topics()
        everything = parse_partitions(topics, include_internal=True)
        partitions = [p for p in everything if self.config.include_internal_topics or not p.internal]
        group_ids = self.config.groups if self.config.groups is not None else await self.client.group_ids()
        groups = parse_groups(await self.client.describe_groups(group_ids))
        committed = {group: await self.client.committed(group) for group in group_ids}
        online = {(p.topic, p.partition) for p in everything if not p.offline}
        wanted = {(p.topic, p.partition) for p in partitions} | {
            (t, p) for offsets in committed.values() for t, p, _ in offsets}
        ends = await self.client.end_offsets(sorted(wanted & online))
        lags = [lag for group, offsets in committed.items() for lag in partition_lags(group, offsets, ends)]
        return Observation(cluster=cluster, partitions=partitions, groups=groups, lags=lags,
                           end_offsets={(t, p): offset for t, p, offset in ends})

    async def collect(self) -> list[Sample]:
        obs = await self.observe()
        ts = utcnow()
        samples = cluster_samples(obs, ts) + group_samples(obs, ts)
        return samples + (await self._retention_samples(obs) if self.config.retention_forecast else [])

    async def _retention_samples(self, obs: Observation) -> list[Sample]:
        """What the data-loss forecasts read (``retention.py``): topic retention, log start offsets, partition sizes
        and the age of each lagging partition's oldest unconsumed record."""
        topics = sorted({p.topic for p in obs.partitions} | {x.topic for x in obs.lags})
        retention = parse_retention(parse_configs(await self.client.configs(ConfigResourceType.TOPIC, topics)))
        starts = await self.client.log_start_offsets(sorted(obs.end_offsets))
        try:
            sizes = await self.client.log_dir_sizes()
        except (CommandFailedError, TargetAuthError) as exc:  # DescribeLogDirs needs Describe on the cluster
            log.info("no partition sizes from %s (retention.bytes not forecast): %s", self.config.bootstrap, exc)
            sizes = []
        leaders = {(p.topic, p.partition): p.leader for p in obs.partitions}
        logs = partition_logs(starts, obs.end_offsets, sizes, leaders)
        try:
            stamps = await self.client.record_timestamps(to_peek(obs.lags, retention,
                                                                 self.config.max_peeked_partitions))
        except (CommandFailedError, TargetAuthError) as exc:  # reading records needs Read on the topics
            log.info("no record timestamps from %s (retention.ms not forecast): %s", self.config.bootstrap, exc)
            stamps = []
        return retention_samples(obs.lags, retention, logs, stamps, utcnow())

    async def snapshot_config(self) -> dict[str, str]:
        """Broker configs (``broker.<id>.<name>``) and per-topic overrides (``topic.<name>.<key>``), no secrets."""
        cluster = parse_cluster(await self.client.cluster())
        brokers = parse_configs(await self.client.configs(ConfigResourceType.BROKER,
                                                          [str(i) for i, _ in cluster.brokers]))
        topic_names = sorted({p.topic for p in parse_partitions(await self.client.topics())})
        topics = parse_configs(await self.client.configs(ConfigResourceType.TOPIC, topic_names),
                               only_source=DYNAMIC_TOPIC_CONFIG)
        snapshot = {f"broker.{b}.{k}": v for b, entries in brokers.items() for k, v in entries.items()}
        snapshot |= {f"topic.{t}.{k}": v for t, entries in topics.items() for k, v in entries.items()}
        return dict(sorted(snapshot.items()))

    def log_sources(self) -> list[LogSource]:
        return [LogSource(path=self.config.log_path, format=LOG_FORMAT)] if self.config.log_path else []

    async def check_health(self) -> list[Finding]:
        obs = await self.observe()
        totals = total_lag(obs.lags)
        for group in obs.groups:
            history = self._lag_history.setdefault(group.group, deque(maxlen=self.config.lag_growing_rounds))
            history.append(totals.get(group.group, 0))
        return evaluate(obs, self._lag_history, self.config)

    async def peers(self) -> list[Peer]:
        """The consumer groups reading the cluster (the watched ones, when ``groups`` is set) and their hosts."""
        group_ids = self.config.groups if self.config.groups is not None else await self.client.group_ids()
        return kafka_peers(await self.client.describe_groups(group_ids))

    def actions(self) -> list[ActionSpec]:
        return list(ACTIONS)

    async def execute(self, action_id: str, params: dict[str, Any], *, dry_run: bool = False) -> ActionOutcome:
        return await kafka_actions.execute(self.client, ACTIONS, action_id, params, dry_run=dry_run)

    async def close(self) -> None:
        await self.client.close()
