"""Records in doubt after a failed send, and how to settle them before they are sent again.

A batch that fails (connection lost, broker shutting down, request timed out) may still have been written: the
broker appended it and the answer was lost. The idempotent producer that sent it could have told a retry from a
duplicate, but it is replaced after a failure (its sequence numbers are unusable), and a new producer id makes
any resend a new record. So before resending, the sender reads back what reached the topic since the first
attempt (producers stamp records with the time of ``send``, so ``offsets_for_times`` gives a safe start) and
drops what it finds. The scan is bounded: past the bound the rest are sent again, and a repeat is possible
(consumers drop repeats by ``event_id``)."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition

from kubestack.agents.spool import SpooledRecord
from kubestack.bus import client_options
from kubestack.commonsettings import KafkaSettings

log = logging.getLogger(__name__)

_CLOCK_MARGIN_MS = 2_000   # the producer stamps a record a little after the attempt time noted here


def _fingerprint(key: bytes | None, value: bytes) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(len(key or b"").to_bytes(4, "big"))
    digest.update(key or b"")
    digest.update(value)
    return digest.digest()


@dataclass
class InDoubt:
    """Spool sequence numbers whose write may or may not have happened, by topic and content."""

    since_ms: dict[str, int] = field(default_factory=dict)          # topic -> earliest attempt
    by_print: dict[tuple[str, bytes], int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.by_print)

    def add(self, record: SpooledRecord, attempted_ms: int) -> None:
        self.by_print[(record.topic, _fingerprint(record.key, record.value))] = record.seq
        self.since_ms[record.topic] = min(self.since_ms.get(record.topic, attempted_ms), attempted_ms)

    def clear(self) -> None:
        self.since_ms.clear()
        self.by_print.clear()

    async def settle(self, kafka: KafkaSettings, max_records: int = 200_000, max_s: float = 30.0) -> set[int]:
        """The in-doubt sequence numbers found written. Raises aiokafka errors when Kafka is away again (the
        caller keeps them in doubt and tries later); on success the set is cleared either way."""
        consumer = AIOKafkaConsumer(**client_options(kafka), enable_auto_commit=False, group_id=None)
        await consumer.start()
        try:
            found, complete = await self._scan(consumer, max_records, time.monotonic() + max_s)
        finally:
            await consumer.stop()
        if not complete and len(found) < len(self):
            log.warning("gave up reading back the topics after %d records or %.0fs; %d in-doubt events are sent "
                        "again and may repeat", max_records, max_s, len(self) - len(found))
        log.info("%d of %d in-doubt events were already written; %d are sent again", len(found), len(self),
                 len(self) - len(found))
        self.clear()
        return found

    async def _scan(self, consumer: AIOKafkaConsumer, max_records: int, deadline: float) -> tuple[set[int], bool]:
        """(found, whether everything written since the first attempt was read)."""
        await consumer._client.set_topics(sorted(self.since_ms))   # fresh metadata for these topics, in one call
        starts: dict[TopicPartition, int] = {}
        for topic, since in self.since_ms.items():
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            times = await consumer.offsets_for_times({tp: max(0, since - _CLOCK_MARGIN_MS) for tp in tps})
            starts.update({tp: found.offset for tp, found in times.items() if found is not None})
        if not starts:
            return set(), True
        ends = await consumer.end_offsets(list(starts))
        pending = {tp for tp in starts if ends[tp] > starts[tp]}
        consumer.assign(list(pending))
        for tp in pending:
            consumer.seek(tp, starts[tp])
        found: set[int] = set()
        scanned = 0
        while pending and scanned < max_records and time.monotonic() < deadline:
            batches = await consumer.getmany(*pending, timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        break
                    scanned += 1
                    seq = self.by_print.get((tp.topic, _fingerprint(record.key, record.value)))
                    if seq is not None:
                        found.add(seq)
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
            if len(found) == len(self):
                return found, True
        return found, not pending
