"""Samples from one round of parsed Kafka answers: cluster shape, partition health per topic, messages
written per topic (sum of end offsets), and consumer group offsets and lag per partition and per group."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from kubestack.contract.events import Sample
from kubestack.plugins.kafka.parse import Observation, total_lag


def cluster_samples(obs: Observation, ts: datetime) -> list[Sample]:
    parts = obs.partitions
    samples = [
        Sample(name="kafka_brokers", value=len(obs.cluster.brokers), ts=ts),
        Sample(name="kafka_controller_known", value=float(obs.cluster.controller_id is not None), ts=ts),
        Sample(name="kafka_topics", value=len({p.topic for p in parts}), ts=ts),
        Sample(name="kafka_partitions", value=len(parts), ts=ts),
        Sample(name="kafka_offline_partitions", value=sum(p.offline for p in parts), ts=ts),
        Sample(name="kafka_under_replicated_partitions", value=sum(p.under_replicated for p in parts), ts=ts),
    ]
    per_topic: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for p in parts:
        counts = per_topic[p.topic]
        counts[0] += 1
        counts[1] += p.offline
        counts[2] += p.under_replicated
        counts[3] += obs.end_offsets.get((p.topic, p.partition), 0)
    for topic, (count, offline, under, end) in sorted(per_topic.items()):
        labels = {"topic": topic}
        samples += [Sample(name="kafka_topic_partitions", value=count, ts=ts, labels=labels),
                    Sample(name="kafka_topic_offline_partitions", value=offline, ts=ts, labels=labels),
                    Sample(name="kafka_topic_under_replicated_partitions", value=under, ts=ts, labels=labels),
                    Sample(name="kafka_topic_messages_total", value=end, ts=ts, labels=labels)]
    return samples


def group_samples(obs: Observation, ts: datetime) -> list[Sample]:
    samples = []
    for lag in obs.lags:
        samples += [Sample(name="kafka_consumer_group_lag", value=lag.lag, ts=ts, labels=lag.labels),
                    Sample(name="kafka_consumer_group_offset", value=lag.committed, ts=ts, labels=lag.labels)]
    totals = total_lag(obs.lags)
    for group in obs.groups:
        labels = {"group": group.group}
        samples += [Sample(name="kafka_consumer_group_members", value=group.members, ts=ts, labels=labels),
                    Sample(name="kafka_consumer_group_total_lag", value=totals.get(group.group, 0), ts=ts,
                           labels=labels)]
    return samples
