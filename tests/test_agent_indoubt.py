"""Settling records in doubt against the real broker: written ones are found, the others are not, and only what
was written since the first attempt is read."""

import time

import pytest

from kubestack.agents.indoubt import InDoubt
from kubestack.agents.spool import SpooledRecord
from kubestack.bus import ensure_topics
from kubestack.contract.topics import METRICS
from tests.kafka_io import produce

pytestmark = pytest.mark.kafka


def _record(seq: int, topic: str) -> SpooledRecord:
    return SpooledRecord(seq=seq, topic=topic, key=f"res-{seq % 3}".encode(), value=f'{{"n": {seq}}}'.encode())


async def test_settle_finds_exactly_the_written_records(kafka, unique) -> None:
    kafka = kafka.model_copy(update={"topic_prefix": f"test.{unique}."})
    await ensure_topics(kafka, (METRICS,))
    topic = METRICS.qualified(kafka.topic_prefix)
    before = [_record(n, topic) for n in range(5)]
    await produce(kafka, topic, [(r.key, r.value) for r in before])     # written before the attempt: not in doubt
    attempted_ms = int(time.time() * 1000)
    written = [_record(n, topic) for n in range(10, 20)]
    lost = [_record(n, topic) for n in range(20, 25)]
    await produce(kafka, topic, [(r.key, r.value) for r in written])

    doubt = InDoubt()
    for record in written + lost:
        doubt.add(record, attempted_ms)
    assert len(doubt) == 15

    assert await doubt.settle(kafka) == {r.seq for r in written}
    assert len(doubt) == 0, "settled either way"


async def test_settle_with_nothing_written_since_the_attempt(kafka, unique) -> None:
    kafka = kafka.model_copy(update={"topic_prefix": f"test.{unique}."})
    await ensure_topics(kafka, (METRICS,))
    topic = METRICS.qualified(kafka.topic_prefix)
    old = _record(1, topic)
    await produce(kafka, topic, [(old.key, old.value)])
    doubt = InDoubt()
    doubt.add(_record(2, topic), int(time.time() * 1000) + 60_000)
    assert await doubt.settle(kafka) == set()
