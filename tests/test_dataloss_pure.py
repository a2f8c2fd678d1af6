"""The data-loss forecasts' pure parts: what the Kafka plugin derives from the admin answers (retention, logs, the age
and bytes of what a group has not consumed), the DescribeLogDirs answer, the remedies' parameters, the slot limit
of PostgreSQL, and how a prediction says what will be lost."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kubestack.contract.base import ResourceRef
from kubestack.contract.events import MetricBatch, Prediction, Sample
from kubestack.errors import ActionParamsError
from kubestack.pipeline.capacity import fillings
from kubestack.pipeline.correlation import runs_out, signals_from_prediction
from kubestack.pipeline.prediction import outcome
from kubestack.plugins.base import Capacity
from kubestack.plugins.kafka.actions import retention_problems
from kubestack.plugins.kafka.capacity import CAPACITIES as KAFKA_CAPACITIES
from kubestack.plugins.kafka.declaration import ACTIONS as KAFKA_ACTIONS
from kubestack.plugins.kafka.logdirs import partition_sizes
from kubestack.plugins.kafka.parse import PartitionLag, parse_configs
from kubestack.plugins.kafka.retention import (
    PartitionLog,
    TopicRetention,
    parse_retention,
    partition_logs,
    retention_samples,
    to_peek,
)
from kubestack.plugins.postgresql.capacity import CAPACITIES as PG_CAPACITIES
from kubestack.plugins.postgresql.metrics import replication_samples
from kubestack.plugins.postgresql.parse import parse_slots
from kubestack.plugins.remedy import Clue
from tests.factories import SOURCE

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)


def described(topic: str, **entries: str) -> dict:
    return {"resource_name": topic, "error_code": 0,
            "config_entries": [{"name": k.replace("_", "."), "value": v, "source": 5, "sensitive": False}
                               for k, v in entries.items()]}


def test_retention_comes_from_the_effective_configs_and_compaction_alone_deletes_nothing() -> None:
    configs = parse_configs([described("orders", retention_ms="604800000", retention_bytes="-1",
                                       cleanup_policy="delete"),
                             described("state", retention_ms="604800000", cleanup_policy="compact"),
                             described("both", retention_ms="3600000", retention_bytes="1073741824",
                                       cleanup_policy="compact,delete")])
    retention = parse_retention(configs)
    assert (retention["orders"].seconds, retention["orders"].bytes) == (604800.0, 0.0)
    assert (retention["state"].seconds, retention["state"].bytes) == (0.0, 0.0), "compaction never drops a record"
    assert (retention["both"].seconds, retention["both"].bytes) == (3600.0, 1073741824.0)
    assert parse_retention({"odd": {"retention.ms": "soon"}})["odd"].seconds == 0.0


def test_describe_log_dirs_answer_keeps_current_replicas_of_healthy_directories() -> None:
    answer = {"throttle_time_ms": 0, "results": [
        {"error_code": 0, "log_dir": "/data/a", "topics": [
            {"name": "orders", "partitions": [
                {"partition_index": 0, "partition_size": 4250, "offset_lag": 0, "is_future_key": False},
                {"partition_index": 1, "partition_size": 999, "offset_lag": 0, "is_future_key": True}]}]},
        {"error_code": 57, "log_dir": "/data/broken", "topics": [
            {"name": "orders", "partitions": [
                {"partition_index": 2, "partition_size": 1, "offset_lag": 0, "is_future_key": False}]}]}]}
    assert partition_sizes(3, answer) == [(3, "orders", 0, 4250)]


def test_a_partition_is_sized_by_its_leader_else_its_largest_replica() -> None:
    logs = partition_logs([("orders", 0, 100), ("orders", 1, 0), ("gone", 0, 5)],
                          {("orders", 0): 600, ("orders", 1): 10},
                          [(1, "orders", 0, 5000), (2, "orders", 0, 4000), (1, "orders", 1, 70), (2, "orders", 1, 80)],
                          {("orders", 0): 2, ("orders", 1): 9})
    assert logs == {("orders", 0): PartitionLog(100, 600, 4000), ("orders", 1): PartitionLog(0, 10, 80)}
    assert logs[("orders", 0)].record_bytes == 8.0
    assert PartitionLog(5, 5, 100).record_bytes is None and PartitionLog(0, 5, -1).record_bytes is None


RETENTION = {"orders": TopicRetention(100_000, 10_000, True), "forever": TopicRetention(-1, -1, True)}
LAGS = [PartitionLag("billing", "orders", 0, committed=150, end=600),
        PartitionLag("audit", "orders", 0, committed=600, end=600),
        PartitionLag("billing", "forever", 0, committed=1, end=9)]


def test_only_lagging_partitions_of_topics_with_a_time_limit_are_peeked_most_lagging_first() -> None:
    lags = LAGS + [PartitionLag("slow", "orders", 1, committed=590, end=600)]
    assert to_peek(lags, RETENTION, limit=10) == [("orders", 0, 150), ("orders", 1, 590)]
    assert to_peek(lags, RETENTION, limit=1) == [("orders", 0, 150)]


def test_lag_in_time_and_bytes_and_the_headroom_over_the_log_start() -> None:
    logs = {("orders", 0): PartitionLog(100, 600, 5000), ("forever", 0): PartitionLog(0, 9, 90)}
    stamps = [("orders", 0, 150, NOW_MS - 42_500)]
    samples = retention_samples(LAGS, RETENTION, logs, stamps, NOW)
    got = {(s.name, s.labels.get("group"), s.labels.get("topic")): s.value for s in samples}
    assert got[("kafka_topic_retention_seconds", None, "orders")] == 100.0
    assert got[("kafka_topic_retention_bytes", None, "orders")] == 10_000.0
    assert got[("kafka_topic_retention_seconds", None, "forever")] == 0.0, "no time limit: not forecast"
    assert got[("kafka_consumer_group_lag_seconds", "billing", "orders")] == 42.5
    assert got[("kafka_consumer_group_lag_seconds", "audit", "orders")] == 0.0, "no lag: nothing ages"
    assert got[("kafka_consumer_group_lag_bytes", "billing", "orders")] == 450 * 10.0
    assert got[("kafka_consumer_group_headroom", "billing", "orders")] == 50
    assert got[("kafka_partition_log_start_offset", None, "orders")] == 100
    assert ("kafka_consumer_group_lag_seconds", "billing", "forever") not in got
    unread = retention_samples(LAGS, RETENTION, logs, [], NOW)
    assert not [s for s in unread if s.name == "kafka_consumer_group_lag_seconds" and s.labels["group"] == "billing"], \
        "a record not read in time gives no age rather than a made-up one"
    undated = retention_samples(LAGS, RETENTION, logs, [("orders", 0, 150, -1)], NOW)
    aged = [s for s in undated if s.name == "kafka_consumer_group_lag_seconds" and s.labels["group"] == "billing"]
    assert aged == [], "a record without a timestamp (message format v0) has no age"


def kafka_batch(samples: list[Sample]) -> MetricBatch:
    return MetricBatch(source=SOURCE, resource=ResourceRef(kind="kafka", name="orders-cluster", host="h1"),
                       samples=samples)


def test_the_lag_series_pair_with_their_topics_limits_and_say_what_will_be_lost() -> None:
    logs = {("orders", 0): PartitionLog(100, 600, 5000)}
    batch = kafka_batch(retention_samples(LAGS[:1], RETENTION, logs, [("orders", 0, 150, NOW_MS - 10_000)], NOW))
    found = {f.capacity.used: (f.sample.value, f.limit, outcome(f.capacity, f.sample.labels))
             for f in fillings(batch, KAFKA_CAPACITIES)}
    assert found == {
        "kafka_consumer_group_lag_seconds": (
            10.0, 100.0, "group billing on orders will lose unconsumed records (partition 0, retention.ms)"),
        "kafka_consumer_group_lag_bytes": (
            4500.0, 10_000.0, "group billing on orders will lose unconsumed records (partition 0, retention.bytes)")}


def test_an_outcome_without_its_label_or_with_a_bad_placeholder_still_reads() -> None:
    capacity = Capacity(used="u", limit_value=1, title="t", outcome="group {group} on {topic} loses records")
    assert outcome(capacity, {"group": "g"}) == "group g on ? loses records"
    assert outcome(Capacity(used="u", limit_value=1, title="t", outcome="bad {0"), {}) == ""
    assert outcome(Capacity(used="u", limit_value=1, title="t"), {"a": "b"}) == ""


def test_the_retention_remedy_doubles_the_limit_the_forecast_names() -> None:
    spec = next(a for a in KAFKA_ACTIONS if a.id == "kafka.set_topic_retention")
    by_time, by_size = spec.answers
    assert by_time.findings == ("kafka_consumer_group_lag_seconds exhaustion",)
    (params, why), = by_time.derive(Clue(rule="r", evidence={"topic": "orders", "capacity": 604800.0,
                                                             "group": "billing"}))
    assert params == {"topic": "orders", "retention_ms": 1_209_600_000} and spec.accepts(params)
    assert "group billing" in why and "604800000 → 1209600000" in why
    (params, _), = by_size.derive(Clue(rule="r", evidence={"topic": "orders", "capacity": 2**30}))
    assert params == {"topic": "orders", "retention_bytes": 2**31} and spec.accepts(params)
    assert list(by_time.derive(Clue(rule="r", evidence={"capacity": 10.0}))) == [], "no topic, no proposal"
    (params, _), = by_time.derive(Clue(rule="r", evidence={"topic": "t", "capacity": 300 * 86400.0}))
    assert params["retention_ms"] == 365 * 86_400_000, "capped at a year"


def test_retention_params_are_typed_and_one_limit_at_least_is_given() -> None:
    spec = next(a for a in KAFKA_ACTIONS if a.id == "kafka.set_topic_retention")
    assert spec.check({"topic": "orders", "retention_ms": "7200000"}) == {"topic": "orders", "retention_ms": 7_200_000}
    with pytest.raises(ActionParamsError, match="give retention_ms, retention_bytes or both"):
        spec.check({"topic": "orders"})
    with pytest.raises(ActionParamsError, match="retention_ms"):
        spec.check({"topic": "orders", "retention_ms": 1000})
    with pytest.raises(ActionParamsError, match="topic"):
        spec.check({"topic": "no spaces", "retention_ms": 7_200_000})


def test_retention_preconditions() -> None:
    assert retention_problems("t", None, {"retention.ms": "1"}) == ["no topic named t"]
    assert retention_problems("t", {"cleanup.policy": "compact"}, {"retention.ms": "1"}) == [
        "t has cleanup.policy=compact: retention deletes nothing"]
    assert retention_problems("t", {"cleanup.policy": "delete"}, {"retention.ms": "1"}) == []


def test_slots_read_the_wal_limit_when_the_server_gives_it() -> None:
    old = parse_slots([["s1", "physical", "false", "1048576", "reserved"]])
    new = parse_slots([["s1", "physical", "false", "1048576", "reserved", "100663296"],
                       ["s2", "logical", "true", "0", "reserved", "100663296"]])
    assert old[0].keep_limit_bytes is None and new[0].keep_limit_bytes == 96 * 2**20
    unlimited = parse_slots([["s1", "physical", "false", "1", "reserved", "-1"]])
    assert unlimited[0].keep_limit_bytes == -1


class _Slots:
    def __init__(self, slots) -> None:
        self.replicas, self.slots = [], slots


def test_a_slot_fills_towards_max_slot_wal_keep_size_and_no_limit_is_not_forecast() -> None:
    ts = NOW
    limited = replication_samples(_Slots(parse_slots([["s1", "physical", "false", "52428800", "reserved",
                                                       "100663296"]])), ts)
    batch = MetricBatch(source=SOURCE, resource=ResourceRef(kind="postgresql", name="pg", host="h1"), samples=limited)
    (found,) = fillings(batch, PG_CAPACITIES)
    assert (found.sample.value, found.limit) == (50 * 2**20, 96 * 2**20)
    assert outcome(found.capacity, found.sample.labels) == \
        "replication slot s1 will lose WAL its consumer has not received (max_slot_wal_keep_size)"
    unlimited = replication_samples(_Slots(parse_slots([["s1", "physical", "false", "5", "reserved", "-1"]])), ts)
    batch = MetricBatch(source=SOURCE, resource=ResourceRef(kind="postgresql", name="pg", host="h1"),
                        samples=unlimited)
    assert [f for f in fillings(batch, PG_CAPACITIES) if f.capacity.used == "postgresql_slot_retained_wal_bytes"] == []


def test_an_incident_says_what_will_be_lost_and_the_remedy_reads_the_labels() -> None:
    prediction = Prediction(
        source=SOURCE, resource=ResourceRef(kind="kafka", name="orders-cluster", host="h1"), ts=NOW,
        signal="kafka_consumer_group_lag_seconds{group=billing,partition=0,topic=orders}", capacity=604800.0,
        exhaustion_at=NOW + timedelta(hours=7), exhaustion_lower_bound=NOW + timedelta(hours=5), confidence=0.7,
        model="forecast/holt", labels={"group": "billing", "topic": "orders", "partition": "0"},
        outcome="group billing on orders will lose unconsumed records (partition 0, retention.ms)")
    assert runs_out(prediction) == \
        "group billing on orders will lose unconsumed records (partition 0, retention.ms) in ~7 h (early bound 5 h)"
    (signal,) = signals_from_prediction(prediction)
    assert signal.details["evidence"] == {"group": "billing", "topic": "orders", "partition": "0",
                                          "capacity": 604800.0}
    plain = prediction.model_copy(update={"outcome": "", "labels": {}})
    assert runs_out(plain).startswith("kafka_consumer_group_lag_seconds{") and "evidence" not in \
        signals_from_prediction(plain)[0].details
