"""Pure parsers of the Kafka client's answers (plain lists and dicts, as recorded under tests/data/kafka):
brokers, partition states, consumer groups, lag per partition, and configs without secrets."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

DYNAMIC_TOPIC_CONFIG = 1
"""DescribeConfigs ``config_source`` of a per-topic override (the rest is inherited from the broker)."""
DYNAMIC_BROKER_CONFIG = 2
"""... of a per-broker override (over the cluster-wide dynamic default and server.properties)."""

GROUPS_WITHOUT_MEMBERS = frozenset({"Empty", "Dead"})


@dataclass(frozen=True)
class Cluster:
    cluster_id: str | None
    controller_id: int | None
    brokers: list[tuple[int, str]]
    """(node id, host:port), sorted by id."""


def parse_cluster(meta: dict[str, Any]) -> Cluster:
    brokers = sorted((b["node_id"], f"{b['host']}:{b['port']}") for b in meta.get("brokers", []))
    controller = meta.get("controller_id")
    return Cluster(meta.get("cluster_id"), controller if controller is not None and controller >= 0 else None, brokers)


@dataclass(frozen=True)
class PartitionState:
    topic: str
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    internal: bool

    @property
    def offline(self) -> bool:
        return self.leader < 0

    @property
    def under_replicated(self) -> bool:
        return len(self.isr) < len(self.replicas)


def parse_partitions(topics: Iterable[dict[str, Any]], include_internal: bool = False) -> list[PartitionState]:
    states = []
    for topic in topics:
        if topic.get("is_internal") and not include_internal:
            continue
        for p in topic.get("partitions", []):
            states.append(PartitionState(topic["topic"], p["partition"], p["leader"], tuple(p["replicas"]),
                                         tuple(p["isr"]), bool(topic.get("is_internal"))))
    return sorted(states, key=lambda s: (s.topic, s.partition))


@dataclass(frozen=True)
class GroupState:
    group: str
    state: str
    protocol_type: str
    members: int

    @property
    def active(self) -> bool:
        return self.members > 0 and self.state not in GROUPS_WITHOUT_MEMBERS


def parse_groups(described: Iterable[dict[str, Any]]) -> list[GroupState]:
    return sorted((GroupState(g["group"], g.get("state", ""), g.get("protocol_type", ""), len(g.get("members", [])))
                   for g in described), key=lambda g: g.group)


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(self.end - self.committed, 0)

    @property
    def labels(self) -> dict[str, str]:
        return {"group": self.group, "topic": self.topic, "partition": str(self.partition)}


def partition_lags(group: str, committed: Iterable[Iterable[Any]], end_offsets: Iterable[Iterable[Any]]
                   ) -> list[PartitionLag]:
    """Lag of each partition the group has committed an offset for (-1 means none) and whose end is known."""
    ends = {(topic, partition): offset for topic, partition, offset in end_offsets}
    lags = []
    for topic, partition, offset in committed:
        end = ends.get((topic, partition))
        if end is not None and offset >= 0:
            lags.append(PartitionLag(group, topic, partition, offset, end))
    return sorted(lags, key=lambda x: (x.topic, x.partition))


def total_lag(lags: Iterable[PartitionLag]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for lag in lags:
        totals[lag.group] = totals.get(lag.group, 0) + lag.lag
    return totals


def _secret(name: str) -> bool:
    return "password" in name or "secret" in name or name.endswith((".key", "jaas.config"))


def parse_configs(resources: Iterable[dict[str, Any]], only_source: int | None = None) -> dict[str, dict[str, str]]:
    """Resource name → config name → value; sensitive entries (and anything named like a secret) left out."""
    configs: dict[str, dict[str, str]] = {}
    for resource in resources:
        entries = configs.setdefault(resource["resource_name"], {})
        for e in resource.get("config_entries", []):
            if e.get("sensitive") or _secret(e["name"]):
                continue
            if only_source is not None and e.get("source") != only_source:
                continue
            entries[e["name"]] = "" if e.get("value") is None else str(e["value"])
    return configs


@dataclass(frozen=True)
class Observation:
    """One round of parsed answers: what the metrics and the health rules look at."""

    cluster: Cluster
    partitions: list[PartitionState]
    groups: list[GroupState]
    lags: list[PartitionLag]
    end_offsets: dict[tuple[str, int], int]
