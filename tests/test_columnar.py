"""Columnar metric batches: one record per resource and round, names and values as arrays, checked once per batch;
the older form (one ``Sample`` object per sample) is still read, by the decoder and by the real worker."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from kubestack.agents.prometheus_config import PromQuery
from kubestack.agents.prometheus_source import to_batches
from kubestack.contract.base import ResourceRef, Source, utcnow
from kubestack.contract.events import MetricBatch, Sample
from kubestack.contract.topics import HEALTH, METRICS
from kubestack.errors import EventDecodeError
from kubestack.pipeline.detection import ResourceDetectors
from kubestack.pipeline.inventory import observe
from kubestack.settings import Settings
from tests.kafka_io import produce
from tests.services.pipeline import Pipeline

SOURCE = Source(agent="agent", host="db-1")
REDIS = ResourceRef(kind="redis", name="cache-1", host="db-1")
AT = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)

OLD_RECORD = (
    b'{"event_id":"0c5a0e3c9b6f4f0e8a1d2b3c4d5e6f70","ts":"2026-03-01T12:00:00.250000Z",'
    b'"source":{"agent":"agent","host":"db-1","cluster":null},'
    b'"resource":{"kind":"redis","name":"cache-1","namespace":null,"host":"db-1","cluster":null,"labels":{}},'
    b'"tenant":"default","samples":['
    b'{"name":"redis_used_memory_bytes","value":1500000000.0,"ts":"2026-03-01T12:00:00Z","labels":{"role":"master"}},'
    b'{"name":"redis_connected_clients","value":42,"ts":"2026-03-01T12:00:00Z","labels":{}},'
    b'{"name":"redis_keyspace_hits_total","value":7.5,"ts":"2026-03-01T11:59:59.500000Z"}],'
    b'"interval_s":10.0}'
)
"""A batch as agents wrote it before the columns (``MetricBatch(samples=...).model_dump_json()``)."""


def columnar(**fields) -> bytes:
    batch = {"source": {"agent": "agent", "host": "db-1"}, "resource": {"kind": "redis", "name": "cache-1"},
             "ts": "2026-03-01T12:00:00Z", "names": ["a", "b"], "values": [1.0, 2]} | fields
    return json.dumps(batch).encode()


def reason(raw: bytes) -> str:
    with pytest.raises(EventDecodeError) as caught:
        METRICS.decode(raw)
    assert caught.value.topic == METRICS.name
    return caught.value.reason


# --- the decoder --------------------------------------------------------------------------------------------------


def test_a_columnar_batch_decodes_to_its_columns_and_reads_back_as_samples() -> None:
    raw = columnar(series_labels=[{"db": "0"}, {}], offsets_s=[0, -1.5], interval_s=10)
    batch = METRICS.decode(raw)
    assert (batch.names, batch.values, batch.series_labels, batch.offsets_s) == (
        ["a", "b"], [1.0, 2.0], [{"db": "0"}, {}], [0.0, -1.5])
    assert [(s.name, s.value, s.ts, s.labels) for s in batch.samples] == [
        ("a", 1.0, AT, {"db": "0"}), ("b", 2.0, AT - timedelta(seconds=1.5), {})]
    assert METRICS.decode(METRICS.encode(batch)[1]) == batch


def test_an_old_format_record_is_read_into_the_same_columns() -> None:
    batch = METRICS.decode(OLD_RECORD)
    assert batch.names == ["redis_used_memory_bytes", "redis_connected_clients", "redis_keyspace_hits_total"]
    assert batch.values == [1.5e9, 42.0, 7.5]
    assert batch.series_labels == [{"role": "master"}, {}, {}]
    assert [s.ts for s in batch.samples] == [AT, AT, AT - timedelta(seconds=0.5)], "each sample keeps its time"
    assert (batch.event_id, batch.interval_s) == ("0c5a0e3c9b6f4f0e8a1d2b3c4d5e6f70", 10.0)
    written = json.loads(METRICS.encode(batch)[1])
    assert "samples" not in written and written["names"] == batch.names, "the older form is read, never written"
    assert METRICS.decode(METRICS.encode(batch)[1]) == batch


@pytest.mark.parametrize(("raw", "expected"), [
    (columnar(values=[1.0]), "values has 1 entries for 2 names: the columns must be aligned"),
    (columnar(series_labels=[{}]), "series_labels has 1 entries for 2 names"),
    (columnar(offsets_s=[0, 1, 2]), "offsets_s has 3 entries for 2 names"),
    (columnar(names=[], values=[]), "a batch carries at least one sample"),
    (columnar(values=[1.0, float("nan")]), "values.1: Input should be a finite number"),
    (columnar(values=[float("inf"), 2]), "values.0: Input should be a finite number"),
    (columnar(values=[True, 2]), "values.0: Input should be a valid number"),
    (columnar(values=["12", 2]), "values.0: Input should be a valid number"),
    (columnar(offsets_s=[0, float("nan")]), "offsets_s.1: Input should be a finite number"),
    (columnar(ts="2026-03-01T12:00:00"), "ts: Value error, timestamp must carry a timezone"),
    (columnar(ts="yesterday"), "ts: Input should be a valid datetime"),
    (columnar(names=["", "b"]), "names.0: String should have at least 1 character"),
    (columnar(names=["a", "x" * 254]), "names.1: String should have at most 253 characters"),
    (columnar(names=[5, "b"]), "names.0: Input should be a valid string"),
    (columnar(series_labels=[{"db": 0}, {}]), "series_labels.0.db: Input should be a valid string"),
    (columnar(samples=[{"name": "a", "value": 1, "ts": "2026-03-01T12:00:00Z"}]),
     "a batch carries its samples as columns (names, values) or as samples, not both"),
    (OLD_RECORD.replace(b'"value":42', b'"value":NaN'), "samples.1.value: Input should be a finite number"),
    (OLD_RECORD.replace(b'"2026-03-01T12:00:00Z","labels":{}', b'"2026-03-01T12:00:00","labels":{}'),
     "samples.1.ts: Value error, timestamp must carry a timezone"),
])
def test_a_batch_that_fails_the_check_is_refused_with_the_reason(raw: bytes, expected: str) -> None:
    assert expected in reason(raw)


def test_a_metric_batch_on_the_health_topic_is_refused_in_either_form() -> None:
    for raw in (OLD_RECORD, columnar()):
        with pytest.raises(EventDecodeError, match="MetricBatch-shaped"):
            HEALTH.decode(raw)


# --- what the worker computes from either form ----------------------------------------------------------------


def rounds(count: int, *, spike_at: int, start: datetime) -> list[list[Sample]]:
    """``count`` rounds of two series 10 s apart, calm, with a spike of the labelled one at round ``spike_at``."""
    return [[Sample(name="m", value=1000.0 if r == spike_at else 100.0 + (r * 7) % 5,
                    ts=start + timedelta(seconds=10 * r), labels={"x": "1"}),
             Sample(name="q", value=5.0 + r % 3, ts=start + timedelta(seconds=10 * r))] for r in range(count)]


def test_detection_and_inventory_are_the_same_from_either_form() -> None:
    worker = Settings().worker
    found = {}
    for form in ("columns", "samples"):
        detectors = ResourceDetectors(worker.anomaly_threshold, detector=worker.anomaly_detector)
        seen, anomalies = None, []
        for samples in rounds(262, spike_at=260, start=AT):
            if form == "columns":
                batch = MetricBatch.of_samples(samples, source=SOURCE, resource=REDIS, interval_s=10)
            else:
                batch = MetricBatch(source=SOURCE, resource=REDIS, ts=samples[0].ts, samples=samples, interval_s=10)
            batch = METRICS.decode(METRICS.encode(batch)[1])
            anomalies += detectors.observe(batch, SOURCE)
            seen = observe(seen, batch)
        found[form] = ([(a.signal, a.score, a.ts, a.details["labels"]) for a in anomalies], seen.samples,
                       seen.metric_names)
    assert found["columns"] == found["samples"]
    assert found["columns"][0][0] == ("m{x=1}", 1.0, AT + timedelta(seconds=2600), {"x": "1"})
    assert found["columns"][1:] == (524, ["m", "q"])


def test_agents_send_one_columnar_record_per_resource_and_round() -> None:
    samples = rounds(1, spike_at=-1, start=AT)[0]
    batch = MetricBatch.of_samples(samples, source=SOURCE, resource=REDIS, interval_s=10)
    written = json.loads(METRICS.encode(batch)[1])
    assert (written["names"], written["values"], written["series_labels"]) == (["m", "q"], [100.0, 5.0],
                                                                              [{"x": "1"}, {}])
    assert written["ts"] == "2026-03-01T12:00:00Z" and written["offsets_s"] is None and "samples" not in written
    up = PromQuery(name="up", promql="up", resource={"kind": "service", "name_labels": ["job"]},
                   keep_labels=["instance"])
    result = [{"metric": {"job": "api", "instance": "a:1"}, "values": [[1772366400, "1"], [1772366415, "0"]]}]
    [prom] = to_batches([(up, result)], source=SOURCE, interval_s=15)
    assert (prom.names, prom.values, prom.offsets_s) == (["up", "up"], [1.0, 0.0], [0.0, 15.0])
    assert prom.ts == AT and prom.series_labels == [{"instance": "a:1"}] * 2


# --- through the real worker ------------------------------------------------------------------------------------


@pytest.mark.kafka
async def test_the_worker_detects_on_columnar_and_old_format_records_alike(pipeline: Pipeline, unique: str) -> None:
    start = utcnow() - timedelta(seconds=2610)
    tenant = f"columnar-{unique}"  # its own tenant: the incidents its spikes open correlate with no other test's
    records, spikes = [], {}
    for form in ("columns", "samples"):
        resource = ResourceRef(kind="redis", name=f"{form}-{unique}", host="db-1")
        for r, samples in enumerate(rounds(262, spike_at=260, start=start)):
            if form == "columns":
                batch = MetricBatch.of_samples(samples, source=SOURCE, resource=resource, tenant=tenant,
                                               interval_s=10)
                value = METRICS.encode(batch)[1]
            else:
                batch = MetricBatch(source=SOURCE, resource=resource, tenant=tenant, ts=samples[0].ts,
                                    samples=samples, interval_s=10)
                value = old_format(batch)
            records.append((resource.key.encode(), value))
            if r == 260:
                spikes[resource.key] = batch.event_id
    await produce(pipeline.settings.kafka, METRICS.qualified(pipeline.settings.kafka.topic_prefix), records)

    def spotted(seen) -> dict | None:
        hits = {a.resource.key: a for a in seen.anomalies if a.tenant == tenant}
        return hits if hits.keys() == spikes.keys() else None

    hits = await pipeline.watch.wait_for(spotted, 90)
    assert hits, pipeline.diagnosis()
    assert {key: a.details["batch_event_id"] for key, a in hits.items()} == spikes
    assert {(a.signal, a.score, a.ts, a.details["metric"], str(a.details["labels"])) for a in hits.values()} == {
        ("m{x=1}", 1.0, start + timedelta(seconds=2600), "m", "{'x': '1'}")}


def old_format(batch: MetricBatch) -> bytes:
    """``batch`` in the older wire form: one object per sample, as agents wrote it before the columns."""
    fields = json.loads(batch.model_dump_json())
    for column in ("names", "values", "series_labels", "offsets_s"):
        fields.pop(column)
    fields["samples"] = [json.loads(s.model_dump_json()) for s in batch.samples]
    return json.dumps(fields).encode()
