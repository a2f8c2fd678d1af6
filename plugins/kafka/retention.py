"""How far each consumer group is from losing records to retention: pure functions over the parsed answers.

A partition of a topic whose ``cleanup.policy`` includes ``delete`` drops its oldest segment once the segment's
newest record is older than ``retention.ms``, or once the partition is larger than ``retention.bytes`` by a segment.
Records a group has not consumed yet go with it: the group's committed offset falls below the log start offset. So
for each group and partition two capacity-like series run towards a limit:

- ``kafka_consumer_group_lag_seconds``: the age of the oldest unconsumed record (now minus the timestamp of the
  record at the committed offset), towards ``kafka_topic_retention_seconds``;
- ``kafka_consumer_group_lag_bytes``: the bytes not consumed yet (lag in records times the partition's mean record
  size on disk), towards ``kafka_topic_retention_bytes`` (per partition).

Reaching the limit is the earliest a record can be deleted (its segment goes once its newest record is as old, and
the broker's retention check runs): a forecast of it comes before the loss. ``kafka_consumer_group_headroom`` is
the committed offset minus the log start offset, in records: how far the group is ahead of deletion (below 0:
records it never read are gone).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from kubestack.contract.events import Sample
from kubestack.plugins.kafka.parse import PartitionLag

NO_LIMIT = -1


@dataclass(frozen=True)
class TopicRetention:
    retention_ms: int       # -1: kept forever
    retention_bytes: int    # per partition; -1: no size limit
    deletes: bool           # cleanup.policy includes delete (compaction alone never drops unconsumed records)

    @property
    def seconds(self) -> float:
        return self.retention_ms / 1000 if self.deletes and self.retention_ms > 0 else 0.0

    @property
    def bytes(self) -> float:
        return float(self.retention_bytes) if self.deletes and self.retention_bytes > 0 else 0.0


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def parse_retention(configs: Mapping[str, Mapping[str, str]]) -> dict[str, TopicRetention]:
    """Topic → its effective retention, from ``parse_configs`` of DescribeConfigs (every source)."""
    return {topic: TopicRetention(_int(entries.get("retention.ms"), NO_LIMIT),
                                  _int(entries.get("retention.bytes"), NO_LIMIT),
                                  "delete" in entries.get("cleanup.policy", "delete").split(","))
            for topic, entries in configs.items()}


@dataclass(frozen=True)
class PartitionLog:
    start: int          # log start offset
    end: int            # log end offset
    size_bytes: int     # the leader's replica on disk (-1: unknown)

    @property
    def record_bytes(self) -> float | None:
        """Mean size of a record on disk, when the partition holds any."""
        if self.size_bytes < 0 or self.end <= self.start:
            return None
        return self.size_bytes / (self.end - self.start)


def partition_logs(starts: Iterable[Iterable], ends: Mapping[tuple[str, int], int],
                   sizes: Iterable[tuple[int, str, int, int]], leaders: Mapping[tuple[str, int], int]
                   ) -> dict[tuple[str, int], PartitionLog]:
    """``(topic, partition)`` → its log, sized by the leader's replica (else the largest one reported)."""
    by_replica: dict[tuple[str, int], dict[int, int]] = {}
    for broker, topic, partition, size in sizes:
        by_replica.setdefault((topic, partition), {})[broker] = size
    logs = {}
    for topic, partition, start in starts:
        key = (topic, partition)
        if key not in ends:
            continue
        replicas = by_replica.get(key, {})
        size = replicas.get(leaders.get(key, -1), max(replicas.values(), default=-1))
        logs[key] = PartitionLog(start, ends[key], size)
    return logs


def to_peek(lags: Iterable[PartitionLag], retention: Mapping[str, TopicRetention], limit: int
            ) -> list[tuple[str, int, int]]:
    """The committed offsets whose record's timestamp is wanted: lagging partitions of topics with a time limit,
    the most lagging first, at most ``limit`` (one read serves every group at the same offset)."""
    wanted = {(x.topic, x.partition, x.committed): x.lag for x in lags
              if x.lag > 0 and x.topic in retention and retention[x.topic].seconds > 0}
    return sorted(sorted(wanted, key=lambda k: -wanted[k])[:limit])


def retention_samples(lags: Iterable[PartitionLag], retention: Mapping[str, TopicRetention],
                      logs: Mapping[tuple[str, int], PartitionLog], stamps: Iterable[tuple[str, int, int, int]],
                      ts: datetime) -> list[Sample]:
    """Per topic its limits, per partition its log, per group and partition its distance from losing records."""
    samples = []
    for topic, r in sorted(retention.items()):
        labels = {"topic": topic}
        samples += [Sample(name="kafka_topic_retention_seconds", value=r.seconds, ts=ts, labels=labels),
                    Sample(name="kafka_topic_retention_bytes", value=r.bytes, ts=ts, labels=labels)]
    for (topic, partition), log in sorted(logs.items()):
        labels = {"topic": topic, "partition": str(partition)}
        samples.append(Sample(name="kafka_partition_log_start_offset", value=log.start, ts=ts, labels=labels))
        if log.size_bytes >= 0:
            samples.append(Sample(name="kafka_partition_size_bytes", value=log.size_bytes, ts=ts, labels=labels))
    written = {(t, p, o): stamp for t, p, o, stamp in stamps if stamp > 0}  # -1: a record from before timestamps
    now_ms = ts.timestamp() * 1000
    for lag in lags:
        key, log = (lag.topic, lag.partition), logs.get((lag.topic, lag.partition))
        if lag.topic not in retention or log is None:
            continue
        samples.append(Sample(name="kafka_consumer_group_headroom", value=lag.committed - log.start, ts=ts,
                              labels=lag.labels))
        if retention[lag.topic].seconds > 0:
            stamp = written.get((*key, lag.committed)) if lag.lag > 0 else now_ms
            if stamp is not None:
                samples.append(Sample(name="kafka_consumer_group_lag_seconds", value=max(now_ms - stamp, 0) / 1000,
                                      ts=ts, labels=lag.labels))
        if retention[lag.topic].bytes > 0 and (per_record := log.record_bytes) is not None:
            samples.append(Sample(name="kafka_consumer_group_lag_bytes", value=lag.lag * per_record, ts=ts,
                                  labels=lag.labels))
    return samples
