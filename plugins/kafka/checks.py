"""Kafka health rules: pure functions over one parsed observation and the recent total lag of each group.
Each finding carries the exact values the rule looked at and the requests that produced them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kubestack.contract.events import Finding, Severity
from kubestack.plugins.kafka.config import KafkaPluginConfig
from kubestack.plugins.kafka.parse import Observation, PartitionLag, PartitionState, total_lag

METADATA_QUERY = "Metadata (all topics): leader, replicas and isr of every partition"
LAG_QUERY = "ListGroups; DescribeGroups; OffsetFetch per group; ListOffsets (latest) per partition"


def _partition(p: PartitionState) -> dict[str, object]:
    return {"topic": p.topic, "partition": p.partition, "leader": p.leader, "replicas": list(p.replicas),
            "isr": list(p.isr)}


def _lag(lag: PartitionLag) -> dict[str, object]:
    return {"topic": lag.topic, "partition": lag.partition, "committed": lag.committed, "end": lag.end,
            "lag": lag.lag}


def offline_partitions(obs: Observation, limits: KafkaPluginConfig) -> list[Finding]:
    offline = [p for p in obs.partitions if p.offline]
    if not offline:
        return []
    topics = sorted({p.topic for p in offline})
    return [Finding(
        rule_id="kafka.offline_partitions", severity=Severity.CRITICAL,
        message=f"{len(offline)} partition(s) of {', '.join(topics[:5])} have no leader: writes and reads to them fail",
        evidence={"offline_partitions": len(offline), "partitions": [_partition(p) for p in offline[:limits.max_rows]],
                  "brokers": [b for _, b in obs.cluster.brokers]},
        query=METADATA_QUERY)]


def under_replicated(obs: Observation, limits: KafkaPluginConfig) -> list[Finding]:
    under = [p for p in obs.partitions if p.under_replicated and not p.offline]
    if not under:
        return []
    missing = sorted({r for p in under for r in set(p.replicas) - set(p.isr)})
    return [Finding(
        rule_id="kafka.under_replicated_partitions", severity=Severity.WARNING,
        message=f"{len(under)} partition(s) have fewer in-sync replicas than replicas; out of sync: broker(s) "
                f"{', '.join(map(str, missing))}",
        evidence={"under_replicated_partitions": len(under), "out_of_sync_brokers": missing,
                  "partitions": [_partition(p) for p in under[:limits.max_rows]]},
        query=METADATA_QUERY)]


def _worst(lags: Sequence[PartitionLag], group: str, limit: int) -> list[dict[str, object]]:
    return [_lag(x) for x in sorted((x for x in lags if x.group == group), key=lambda x: -x.lag)[:limit]]


def lag_high(obs: Observation, limits: KafkaPluginConfig) -> list[Finding]:
    findings = []
    for group, lag in sorted(total_lag(obs.lags).items()):
        if lag < limits.lag_high or lag == 0:
            continue
        critical = limits.lag_critical is not None and lag >= limits.lag_critical
        findings.append(Finding(
            rule_id="kafka.consumer_lag_high", severity=Severity.CRITICAL if critical else Severity.WARNING,
            message=f"consumer group {group} is {lag} message(s) behind",
            evidence={"group": group, "total_lag": lag, "threshold": limits.lag_high,
                      "partitions": _worst(obs.lags, group, limits.max_rows)},
            query=LAG_QUERY))
    return findings


def lag_growing(obs: Observation, history: Mapping[str, Sequence[int]], limits: KafkaPluginConfig) -> list[Finding]:
    """Lag that rose at every one of the last ``lag_growing_rounds`` health rounds (the current one included)."""
    findings = []
    rounds = limits.lag_growing_rounds
    for group, totals in sorted(history.items()):
        recent = list(totals)[-rounds:]
        if len(recent) < rounds or any(b <= a for a, b in zip(recent, recent[1:], strict=False)):
            continue
        if recent[-1] - recent[0] < limits.lag_growing_min:
            continue
        findings.append(Finding(
            rule_id="kafka.consumer_lag_growing", severity=Severity.WARNING,
            message=f"consumer group {group} falls further behind: lag {' → '.join(map(str, recent))} over the "
                    f"last {rounds} checks",
            evidence={"group": group, "recent_total_lag": recent, "rounds": rounds,
                      "partitions": _worst(obs.lags, group, limits.max_rows)},
            query=LAG_QUERY))
    return findings


def inactive_group_with_lag(obs: Observation, limits: KafkaPluginConfig) -> list[Finding]:
    findings = []
    totals = total_lag(obs.lags)
    for group in obs.groups:
        lag = totals.get(group.group, 0)
        if group.active or lag < limits.inactive_lag_min:
            continue
        findings.append(Finding(
            rule_id="kafka.group_inactive_with_lag", severity=Severity.WARNING,
            message=f"consumer group {group.group} has no active member ({group.state}) and {lag} message(s) "
                    "waiting: its consumers are down",
            evidence={"group": group.group, "state": group.state, "members": group.members, "total_lag": lag,
                      "partitions": _worst(obs.lags, group.group, limits.max_rows)},
            query=LAG_QUERY))
    return findings


def evaluate(obs: Observation, history: Mapping[str, Sequence[int]], limits: KafkaPluginConfig) -> list[Finding]:
    return (offline_partitions(obs, limits) + under_replicated(obs, limits) + lag_high(obs, limits)
            + lag_growing(obs, history, limits) + inactive_group_with_lag(obs, limits))
