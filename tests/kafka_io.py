"""Producing and consuming raw records in tests, through the same client options as the product."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from kubestack.bus import client_options
from kubestack.settings import KafkaSettings


async def produce(kafka: KafkaSettings, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> list[int]:
    """Send ``(key, value)`` pairs in order; the partitions they landed on."""
    producer = AIOKafkaProducer(**client_options(kafka), enable_idempotence=True, compression_type="gzip")
    await producer.start()
    try:
        metas = [await producer.send_and_wait(topic, value=value, key=key) for key, value in records]
    finally:
        await producer.stop()
    return [meta.partition for meta in metas]


async def consume(kafka: KafkaSettings, topic: str, count: int, group: str, timeout_s: float = 60.0,
                  ) -> list[ConsumerRecord]:
    """The first ``count`` records of ``topic`` (from the beginning), or fewer if ``timeout_s`` passes."""
    consumer = AIOKafkaConsumer(topic, **client_options(kafka), group_id=group, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(records) < count and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def consume_all(kafka: KafkaSettings, topic: str, group: str, timeout_s: float = 60.0) -> list[ConsumerRecord]:
    """Every record in ``topic`` right now (up to each partition's end offset), in partition order."""
    consumer = AIOKafkaConsumer(**client_options(kafka), group_id=group, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        from aiokafka.structs import TopicPartition

        partitions = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or [])]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or [])]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            positions = [await consumer.position(tp) for tp in ends]
            if all(pos >= end for pos, end in zip(positions, ends.values(), strict=True)):
                break
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records
