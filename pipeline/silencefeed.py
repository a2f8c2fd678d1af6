"""Every process's copy of the silences: a consumer with no group that reads the whole compacted silences topic
from the beginning and then follows it, into a ``SilenceBook``. Each worker (whatever partitions it owns) and the
API so hold the same set. What does not decode is logged and skipped (a silence nobody can read silences nothing).
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError as AIOKafkaError
from aiokafka.structs import TopicPartition

from kubestack.bus import client_options, ensure_topics
from kubestack.contract.topics import SILENCES
from kubestack.errors import EventDecodeError, KafkaError
from kubestack.pipeline.silences import SilenceBook
from kubestack.settings import KafkaComponent, KafkaSettings

log = logging.getLogger(__name__)

RETRY_S = 2.0


class SilenceFeed:
    def __init__(self, kafka: KafkaSettings, book: SilenceBook, component: KafkaComponent) -> None:
        self.kafka = kafka.for_component(component)
        self.book = book
        self.topic = SILENCES.qualified(kafka.topic_prefix)
        self.caught_up = asyncio.Event()
        """Set once the silences that were on the topic at start are in the book."""

    async def run(self) -> None:
        """Follow the topic until cancelled; a broker that goes away is retried."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except (AIOKafkaError, KafkaError, OSError) as exc:
                log.warning("silences: Kafka at %s: %s; retrying in %.0fs", self.kafka.bootstrap, exc, RETRY_S)
            except Exception:  # one per long-running loop
                log.exception("silence feed failed; restarting in %.0fs", RETRY_S)
            await asyncio.sleep(RETRY_S)

    async def _follow(self) -> None:
        await ensure_topics(self.kafka, (SILENCES,))
        consumer = AIOKafkaConsumer(**client_options(self.kafka), group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            parts = [TopicPartition(self.topic, p) for p in (consumer.partitions_for_topic(self.topic) or {0})]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends = await consumer.end_offsets(parts)
            while True:
                batches = await consumer.getmany(timeout_ms=300, max_records=500)
                for records in batches.values():
                    for record in records:
                        self._apply(record.value, record.offset)
                if not self.caught_up.is_set() and await _at_end(consumer, ends):
                    self.caught_up.set()
                    log.info("silences: %d known", len(self.book.all()))
        finally:
            await consumer.stop()

    def _apply(self, raw: bytes | None, offset: int) -> None:
        try:
            silence = SILENCES.decode(raw)
        except EventDecodeError as exc:
            log.warning("silences@%d skipped: %s", offset, exc)
            return
        if self.book.apply(silence):
            log.info("silence %s of tenant %s: %s", silence.silence_id, silence.tenant,
                     "ended" if silence.ended_at else "in the book")


async def _at_end(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True
