"""The feed: one aiokafka consumer in the API process keeping the read model current.

Its own consumer group; on assignment each partition resumes from the offset the read model recorded with what
it applied (the beginning for a fresh read model), so deleting the read model rebuilds it from the topics.
What does not decode is dead-lettered with the reason, as the worker does, and the feed goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError as AIOKafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition

from kubestack.api.metrics import ApiMetrics
from kubestack.api.publisher import Publisher
from kubestack.api.readmodel import ReadModel
from kubestack.bus import client_options, ensure_topics
from kubestack.contract.topics import (
    AUDIT,
    AUDIT_ENTRIES,
    DEAD_LETTER,
    HEALTH,
    INCIDENTS,
    PREDICTIONS,
    RCA_REPORTS,
    REMEDIATION_DECISIONS,
    REMEDIATION_PROPOSALS,
    REMEDIATION_RESULTS,
    TopicSpec,
)
from kubestack.errors import EventDecodeError, KafkaError
from kubestack.pipeline.edge import dead_letter
from kubestack.settings import KafkaSettings

log = logging.getLogger(__name__)

FEED_SPECS: tuple[TopicSpec, ...] = (INCIDENTS, RCA_REPORTS, REMEDIATION_PROPOSALS, REMEDIATION_DECISIONS,
                                     REMEDIATION_RESULTS, PREDICTIONS, HEALTH, AUDIT)
WRITTEN_SPECS: tuple[TopicSpec, ...] = (AUDIT_ENTRIES, DEAD_LETTER)
"""Topics the API writes besides the feed's (decisions are among the feed's)."""
STAGE = "api-feed"
RETRY_S = 2.0


class _ResumeFromReadModel(ConsumerRebalanceListener):
    def __init__(self, consumer: AIOKafkaConsumer, store: ReadModel) -> None:
        self.consumer = consumer
        self.store = store

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Nothing to flush: every record is applied and its offset kept in one transaction."""

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        for tp in assigned:
            offset = self.store.next_offset(tp.topic, tp.partition)
            if offset is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset)


class Feed:
    def __init__(self, kafka: KafkaSettings, group: str, store: ReadModel, publisher: Publisher,
                 metrics: ApiMetrics | None = None, tenant: str = "default") -> None:
        self.kafka = kafka.for_component("api")
        self.group = group
        self.store = store
        self.publisher = publisher
        self.metrics = metrics
        self.tenant = tenant
        self.specs = {spec.qualified(kafka.topic_prefix): spec for spec in FEED_SPECS}
        self.running = False
        self.error: str | None = None
        self.lag: int | None = None
        self._last_applied: float | None = None

    def last_event_age(self) -> float | None:
        return None if self._last_applied is None else time.monotonic() - self._last_applied

    async def run(self) -> None:
        """Follow the topics until cancelled; a broker that goes away is retried, not fatal."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except (AIOKafkaError, KafkaError, OSError) as exc:
                self.error = f"{type(exc).__name__}: {exc}"
                log.warning("feed: Kafka at %s: %s; retrying in %.0fs", self.kafka.bootstrap, exc, RETRY_S)
            except Exception as exc:  # one per long-running loop: log, keep the API up, try again
                self.error = f"{type(exc).__name__}: {exc}"
                log.exception("feed failed; restarting in %.0fs", RETRY_S)
            finally:
                self.running = False
            await asyncio.sleep(RETRY_S)

    async def _follow(self) -> None:
        await ensure_topics(self.kafka, (*FEED_SPECS, *WRITTEN_SPECS))
        consumer = AIOKafkaConsumer(**client_options(self.kafka), group_id=self.group, enable_auto_commit=True,
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            consumer.subscribe(list(self.specs), listener=_ResumeFromReadModel(consumer, self.store))
            self.running, self.error = True, None
            log.info("feed: following %d topics as group %s", len(self.specs), self.group)
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=500)
                for records in batches.values():
                    for record in records:
                        await self.handle(record)
                await self._measure_lag(consumer)
        finally:
            await consumer.stop()

    async def handle(self, record: ConsumerRecord) -> None:
        spec = self.specs[record.topic]
        try:
            event = spec.decode(record.value)
        except EventDecodeError as exc:
            await self._reject(record, exc)
            return
        try:
            kind, changed = self.store.apply(event, record.topic, record.partition, record.offset)
        except Exception as exc:  # a record the read model cannot take must not stop the feed
            log.exception("feed: %s[%d]@%d cannot be applied", record.topic, record.partition, record.offset)
            await self._reject(record, exc)
            return
        self._last_applied = time.monotonic()
        self._count(spec, "applied" if changed else "unchanged")
        log.debug("feed: %s %s (%s)", kind, event.event_id, "applied" if changed else "unchanged")

    async def _reject(self, record: ConsumerRecord, error: Exception) -> None:
        letter = dead_letter(topic=record.topic, raw=record.value, key=record.key, partition=record.partition,
                             offset=record.offset, error=error, stage=STAGE, tenant=self.tenant)
        await self.publisher.send(DEAD_LETTER, letter)
        self.store.apply(None, record.topic, record.partition, record.offset)
        self._count(self.specs[record.topic], "dead_lettered")
        log.warning("feed dead-lettered %s[%d]@%d: %s", record.topic, record.partition, record.offset, letter.reason)

    def _count(self, spec: TopicSpec, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.feed_records.labels(spec.short, outcome).inc()

    async def _measure_lag(self, consumer: AIOKafkaConsumer) -> None:
        lag = 0
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            if end is not None:
                lag += max(0, end - await consumer.position(tp))
        self.lag = lag
        if self.metrics is not None:
            self.metrics.feed_lag.set(lag)
