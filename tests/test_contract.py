from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from kubestack.contract.base import ResourceRef
from kubestack.contract.events import Anomaly, MetricBatch
from kubestack.contract.topics import DEAD_LETTER, METRICS, TOPICS, topic
from kubestack.errors import ContractError, EventDecodeError, UnknownTopicError
from tests.factories import REDIS, SOURCE, example

REQUIRED_TOPICS = {
    "metrics", "logs", "config-snapshots", "config-changes", "health", "anomalies", "predictions", "incidents",
    "rca-reports", "remediation-proposals", "remediation-decisions", "remediation-results", "notifications",
    "audit-entries", "audit", "dead-letter", "silences",
}


def test_registry_has_every_topic_of_the_product() -> None:
    assert {spec.short for spec in TOPICS} == REQUIRED_TOPICS
    assert all(spec.name == f"kubestack.{spec.short}.v1" for spec in TOPICS)
    assert len({spec.model for spec in TOPICS}) == len(TOPICS), "one model per topic"


@pytest.mark.parametrize("spec", TOPICS, ids=lambda s: s.short)
def test_every_model_round_trips_through_its_encoding(spec) -> None:
    event = example(spec)
    key, value = spec.encode(event)
    assert key == spec.key(event).encode() and key
    assert spec.decode(value) == event


@pytest.mark.parametrize("spec", TOPICS, ids=lambda s: s.short)
def test_every_event_carries_identity_time_source_resource_and_tenant(spec) -> None:
    event = example(spec)
    assert event.event_id and event.ts.tzinfo is timezone.utc
    assert event.source.agent and event.resource.kind and event.tenant == "acme"


def test_unknown_fields_are_ignored_so_producers_can_add_fields() -> None:
    event = example(METRICS)
    raw = event.model_dump_json()[:-1] + ', "added_later": {"x": 1}}'
    assert METRICS.decode(raw) == event


def test_naive_timestamps_are_rejected_and_offsets_normalised_to_utc() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        MetricBatch(source=SOURCE, resource=REDIS, ts=datetime(2026, 1, 1, 12), samples=[])
    plus_eight = timezone(timedelta(hours=8))
    batch = example(METRICS).model_copy()
    decoded = METRICS.decode(batch.model_dump_json().replace("+00:00", "+08:00").replace("Z", "+08:00"))
    assert decoded.ts.utcoffset() == timedelta(0)
    assert decoded.ts == batch.ts.replace(tzinfo=plus_eight)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "Invalid JSON"),
        (b"", "empty message"),
        (None, "empty message"),
        (b'{"source": {"agent": "a", "host": "h"}, "resource": {"kind": "redis", "name": "r"}, "samples": []}',
         "samples: List should have at least 1 item"),
        (b'{"source": {"agent": "a", "host": "h"}, "resource": {"kind": "redis"}, '
         b'"samples": [{"name": "m", "value": "high", "ts": "2026-01-01T00:00:00Z"}]}',
         "resource.name: Field required"),
        (b"\xff\xfe\x00binary", "not a valid MetricBatch"),
    ],
)
def test_malformed_messages_are_rejected_with_a_reason_a_person_can_act_on(raw, reason) -> None:
    with pytest.raises(EventDecodeError) as caught:
        METRICS.decode(raw)
    assert caught.value.topic == "kubestack.metrics.v1"
    assert reason in caught.value.reason


def test_a_spec_refuses_to_encode_another_topics_model() -> None:
    with pytest.raises(ContractError, match="carries DeadLetter, not MetricBatch"):
        DEAD_LETTER.encode(example(METRICS))


def test_anomaly_window_must_be_ordered() -> None:
    now = datetime.now(timezone.utc)
    with pytest.raises(ValidationError, match="window_end is before window_start"):
        Anomaly(source=SOURCE, resource=REDIS, detector="d", signal="s", score=0.5,
                window_start=now, window_end=now - timedelta(seconds=1))


def test_scores_outside_unit_interval_are_rejected() -> None:
    now = datetime.now(timezone.utc)
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        Anomaly(source=SOURCE, resource=REDIS, detector="d", signal="s", score=1.5, window_start=now, window_end=now)


def test_resource_key_is_stable_and_scoped() -> None:
    assert REDIS.key == "prod-eu/shop/redis/cache-1"
    assert ResourceRef(kind="host", name="db-1", host="db-1").key == "-/db-1/host/db-1"


def test_topics_are_found_by_full_or_short_name() -> None:
    assert topic("metrics") is METRICS is topic("kubestack.metrics.v1")
    with pytest.raises(UnknownTopicError, match="known: metrics, logs"):
        topic("metric")


def test_topic_configs_carry_retention_and_cleanup_policy() -> None:
    assert METRICS.topic_configs == {"retention.ms": str(3 * 24 * 3600 * 1000), "cleanup.policy": "delete"}
    assert topic("config-snapshots").topic_configs["cleanup.policy"] == "compact,delete"
    assert topic("audit").partitions == 1, "one partition keeps the hash chain in order"


@pytest.mark.parametrize("other", [t for t in TOPICS if t.short != "health"], ids=lambda s: s.short)
def test_an_event_of_another_kind_on_the_health_topic_is_refused_naming_its_kind(other) -> None:
    """Every field of a HealthReport has a default: without the kind check any event decodes as an empty,
    healthy report (and could resolve an incident)."""
    health = topic("health")
    _, raw = other.encode(example(other))
    with pytest.raises(EventDecodeError) as caught:
        health.decode(raw)
    assert caught.value.reason.startswith("not a HealthReport: a ")
    assert other.model.__name__ in caught.value.reason and "carries HealthReport only" in caught.value.reason


def test_an_audit_record_is_not_taken_for_an_audit_entry() -> None:
    entries, records = topic("audit-entries"), topic("audit")
    with pytest.raises(EventDecodeError, match="AuditRecord-shaped"):
        entries.decode(records.encode(example(records))[1])


@pytest.mark.parametrize("raw", [b"[]", b"null", b'"text"', b"42", b"true"])
def test_json_that_is_not_an_object_is_refused(raw) -> None:
    with pytest.raises(EventDecodeError, match="a JSON object is expected"):
        METRICS.decode(raw)


@pytest.mark.parametrize(("value", "reason"), [
    ("NaN", "values.0: Input should be a finite number"),
    ("Infinity", "values.0: Input should be a finite number"),
    ("-Infinity", "values.0: Input should be a finite number"),
    ("1e999", "values.0: Input should be a finite number"),
    ("true", "values.0: Input should be a valid number"),
    ('"12"', "values.0: Input should be a valid number"),
])
def test_metric_values_must_be_finite_numbers(value, reason) -> None:
    batch = example(METRICS)
    raw = batch.model_dump_json().replace('"values":[1500000000.0', f'"values":[{value}', 1)
    assert raw != batch.model_dump_json()
    with pytest.raises(EventDecodeError) as caught:
        METRICS.decode(raw)
    assert reason in caught.value.reason


def test_integers_stay_valid_metric_values_and_observed_values_are_checked_too() -> None:
    batch = example(METRICS)
    assert METRICS.decode(batch.model_dump_json().replace('"values":[1500000000.0', '"values":[7', 1)).values[0] == 7
    change = topic("config-changes")
    raw = change.encode(example(change))[1].decode().replace('"observed":{}', '"observed":{"used_memory":NaN}')
    with pytest.raises(EventDecodeError, match="observed.used_memory: Input should be a finite number"):
        change.decode(raw)
