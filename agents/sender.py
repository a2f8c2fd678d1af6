"""The agent's Publisher: events are appended to the disk spool first; one sender task moves them to Kafka
in spool order through a single idempotent producer (so retries never duplicate and each resource keeps its
order), and removes them from the spool only once acknowledged. While Kafka is away the spool grows (up to
its bound) and is replayed in order when it returns; what a failed attempt may have written all the same is
read back first, so it is not sent twice (``indoubt``)."""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidTopicError,
    KafkaConnectionError,
    KafkaError as AIOKafkaError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
)

from kubestack.agents.indoubt import InDoubt
from kubestack.agents.metrics import AgentMetrics
from kubestack.agents.spool import Spool, SpooledRecord
from kubestack.bus import producer_options
from kubestack.contract.base import Event
from kubestack.contract.topics import TopicSpec
from kubestack.commonsettings import KafkaSettings

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 15.0
_POISON = (MessageSizeTooLargeError, TopicAuthorizationFailedError, InvalidTopicError, RecordTooLargeError)


class SpoolingPublisher:
    def __init__(self, kafka: KafkaSettings, spool: Spool, metrics: AgentMetrics, chunk: int = 500) -> None:
        self.kafka = kafka.for_component("agent")
        self.spool = spool
        self.metrics = metrics
        self.chunk = chunk
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task | None = None
        self._acked: set[int] = set()
        self._in_doubt = InDoubt()

    async def publish(self, spec: TopicSpec, event: Event) -> None:
        await self.publish_many([(spec, event)])

    async def publish_many(self, items: list[tuple[TopicSpec, Event]]) -> None:
        records = []
        for spec, event in items:
            key, value = spec.encode(event)
            records.append((spec.qualified(self.kafka.topic_prefix), key, value))
        self.spool.append(records)
        self._observe_spool()
        self._idle.clear()
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kafka-sender")

    async def flush(self, timeout_s: float) -> bool:
        """Wait until the spool is empty (True) or ``timeout_s`` passes (False: the rest stays spooled)."""
        if self.spool.pending == 0:
            return True
        self._wake.set()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def stop(self, flush_timeout_s: float = 5.0) -> None:
        flushed = await self.flush(flush_timeout_s)
        if not flushed:
            log.warning("Kafka did not take %d spooled events before stop; they are sent at next start",
                        self.spool.pending)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._producer is not None:
            await self._producer.stop()
        self.spool.close()

    async def _run(self) -> None:
        while True:
            try:
                await self._pump()
            except asyncio.CancelledError:
                raise
            except Exception:  # one per long-running loop: the spool keeps the events, try again
                log.exception("sender failed; retrying in %.0fs", _MAX_BACKOFF_S)
                self.spool.rewind()
                await asyncio.sleep(_MAX_BACKOFF_S)

    async def _pump(self) -> None:
        backoff = 0.5
        while True:
            if self._producer is None and not await self._connect():
                await asyncio.sleep(backoff)
                backoff = min(_MAX_BACKOFF_S, backoff * 2)
                continue
            records = self.spool.read(self.chunk)
            if not records:
                self._idle.set()
                self._wake.clear()
                await self._sleep(1.0)
                continue
            if await self._send(records):
                backoff = 0.5
            else:
                self.spool.rewind()
                await asyncio.sleep(backoff)
                backoff = min(_MAX_BACKOFF_S, backoff * 2)

    async def _connect(self) -> bool:
        producer = AIOKafkaProducer(**producer_options(self.kafka), compression_type="gzip", linger_ms=5)
        try:
            await producer.start()
        except (KafkaConnectionError, AIOKafkaError, OSError) as exc:
            await producer.stop()
            self.metrics.kafka_up.set(0)
            log.warning("Kafka at %s unreachable (%s); spooling to %s (%d pending)", self.kafka.bootstrap, exc,
                        self.spool.directory, self.spool.pending)
            return False
        if self._in_doubt and not await self._settle():
            await producer.stop()
            return False
        self._producer = producer
        log.info("connected to Kafka at %s; %d spooled events to replay", self.kafka.bootstrap, self.spool.pending)
        return True

    async def _settle(self) -> bool:
        """Drop from the resend what a failed attempt did write (see ``indoubt``). False when Kafka is away."""
        try:
            self._acked |= await self._in_doubt.settle(self.kafka)
        except (KafkaConnectionError, AIOKafkaError, OSError) as exc:
            log.warning("could not read back %d in-doubt events yet (%r)", len(self._in_doubt), exc)
            return False
        return True

    async def _send(self, records: list[SpooledRecord]) -> bool:
        """Send ``records`` in order and commit the acknowledged prefix. False when some must be retried: then
        the producer is replaced (a failed batch leaves an idempotent producer's sequence numbers unusable),
        records acknowledged after the failure are remembered so the retry does not send them twice, and the
        unacknowledged ones are in doubt until read back."""
        enqueued: list[tuple[SpooledRecord, asyncio.Future]] = []
        complete = True
        attempted_ms = int(time.time() * 1000)
        for record in records:
            if record.seq in self._acked:
                continue
            try:
                future = await self._producer.send(record.topic, record.value, key=record.key)
            except AIOKafkaError as exc:  # no metadata, no connection, buffer full: retry later, in order
                log.warning("Kafka not taking events (%r); %d pending in the spool", exc, self.spool.pending)
                complete = False
                break
            enqueued.append((record, future))
        for record, future in enqueued:
            try:
                await future
                self.metrics.events_sent.labels(record.topic).inc()
            except _POISON as exc:  # this record can never be written: keeping it would block the spool
                log.error("Kafka refused event %d for %s for good: %r", record.seq, record.topic, exc)
                self.metrics.undeliverable.labels(record.topic).inc()
            except AIOKafkaError as exc:
                log.warning("event %d for %s not acknowledged (%r); will retry", record.seq, record.topic, exc)
                self._in_doubt.add(record, attempted_ms)   # it may have been written all the same
                complete = False
                continue
            self._acked.add(record.seq)
        self._commit_prefix(records)
        self.metrics.kafka_up.set(1 if complete else 0)
        if not complete:
            await self._producer.stop()
            self._producer = None
        self._observe_spool()
        return complete

    def _commit_prefix(self, records: list[SpooledRecord]) -> None:
        last = None
        for record in records:
            if record.seq not in self._acked:
                break
            last = record.seq
        if last is not None:
            self.spool.commit(last)
            self._acked = {seq for seq in self._acked if seq > last}

    def _observe_spool(self) -> None:
        self.metrics.spool_pending.set(self.spool.pending)
        self.metrics.spool_bytes.set(self.spool.size_bytes)
        self.metrics.spool_dropped.set(self.spool.dropped)

    async def _sleep(self, seconds: float) -> None:
        """Idle wait: returns early when ``publish`` brings something to send."""
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            pass
