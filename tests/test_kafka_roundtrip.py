"""Every registry model through the real broker: keyed, consumed, validated; malformed bytes rejected."""

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from kubestack.bus import client_options, describe_cluster, ensure_topics
from kubestack.contract.base import ResourceRef, new_id
from kubestack.contract.topics import METRICS, TOPICS
from kubestack.errors import EventDecodeError, KafkaUnavailableError
from kubestack.settings import KafkaSettings
from tests.factories import example
from tests.kafka_io import consume, produce

pytestmark = pytest.mark.kafka


async def _create(kafka, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


@pytest.mark.parametrize("spec", TOPICS, ids=lambda s: s.short)
async def test_every_model_survives_the_real_broker(kafka, unique_topic, unique_group, spec) -> None:
    await _create(kafka, unique_topic, spec.partitions)
    first = example(spec)
    second = first.model_copy(update={"event_id": new_id()})
    await produce(kafka, unique_topic, [spec.encode(first), spec.encode(second)])
    records = await consume(kafka, unique_topic, 2, unique_group)
    assert [spec.decode(r.value) for r in records] == [first, second]
    assert [r.key for r in records] == [spec.key(first).encode(), spec.key(second).encode()]
    assert records[0].partition == records[1].partition, "same key, same partition"


async def test_resources_spread_over_partitions_and_each_keeps_its_order(kafka, unique_topic, unique_group) -> None:
    await _create(kafka, unique_topic, METRICS.partitions)
    resources = [ResourceRef(kind="redis", name=f"r{i}", host="h") for i in range(16)]
    events = [example(METRICS, resource) for _ in range(3) for resource in resources]
    partitions = await produce(kafka, unique_topic, [METRICS.encode(e) for e in events])
    assert len(set(partitions)) > 1
    records = await consume(kafka, unique_topic, len(events), unique_group)
    decoded = [METRICS.decode(r.value) for r in records]
    for resource in resources:
        mine = [e.event_id for e in decoded if e.resource == resource]
        assert mine == [e.event_id for e in events if e.resource == resource]


async def test_a_malformed_message_on_the_broker_is_rejected_with_a_clear_error(kafka, unique_topic, unique_group):
    await _create(kafka, unique_topic, 1)
    await produce(kafka, unique_topic, [(b"k", b'{"samples": "lots"}')])
    [record] = await consume(kafka, unique_topic, 1, unique_group)
    with pytest.raises(EventDecodeError, match="not a valid MetricBatch: source: Field required"):
        METRICS.decode(record.value)


async def test_registry_topics_are_created_with_partitions_and_retention(kafka, unique) -> None:
    prefix = f"test.{unique}."
    settings = kafka.model_copy(update={"topic_prefix": prefix})
    created = await ensure_topics(settings)
    assert set(created.values()) == {"created"} and len(created) == len(TOPICS)
    assert set((await ensure_topics(settings)).values()) == {"exists"}, "idempotent"
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        described = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(list(created))}
    finally:
        await admin.close()
    assert described == {spec.qualified(prefix): spec.partitions for spec in TOPICS}


async def test_cluster_description_is_a_real_metadata_answer(kafka) -> None:
    info = await describe_cluster(kafka)
    assert info.cluster_id and info.brokers


async def test_an_unreachable_cluster_is_a_clear_error() -> None:
    from tests.services.process import free_port

    with pytest.raises(KafkaUnavailableError, match="does not answer"):
        await describe_cluster(KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}", request_timeout_s=2))
