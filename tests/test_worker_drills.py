"""Drills against one real worker on the real broker: events of the wrong kind on the health topic are
dead-lettered with the reason, 10,000 malformed messages over the input topics are all dead-lettered while valid
traffic keeps flowing, and one busy tenant (350 health reports with 4 KB of evidence) neither stops the worker for
the others nor makes it crash-loop on its own state after a restart."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from kubestack.bus import client_options
from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import Finding, HealthReport, IncidentStatus, Severity
from kubestack.contract.topics import CONFIG_CHANGES, DEAD_LETTER, HEALTH, INCIDENTS, LOGS, METRICS, TOPICS, TopicSpec
from kubestack.errors import EventDecodeError
from tests.cli import Followed, cli_env, follow
from tests.factories import example
from tests.kafka_io import consume

pytestmark = pytest.mark.kafka

INPUTS = (METRICS, LOGS, CONFIG_CHANGES, HEALTH)
SOURCE = Source(agent="agent/drill", host="drill-host")


class Worker:
    """``kubestack worker`` with its own topic prefix and app id; it can be restarted on the same state."""

    def __init__(self, kafka, unique: str, home) -> None:
        self.kafka = kafka
        self.prefix, self.app_id = f"test.drill.{unique}.", f"test-drill-{unique}"
        # the worker killed with -9 holds its partitions for the session timeout (60 s by default) before its
        # restart gets them: 20 s here, still far above a heartbeat's delay on the loaded 2-CPU machine
        self.env = cli_env(KUBESTACK_KAFKA__BOOTSTRAP=kafka.bootstrap, KUBESTACK_KAFKA__TOPIC_PREFIX=self.prefix,
                           KUBESTACK_WORKER__APP_ID=self.app_id, KUBESTACK_HOME=str(home),
                           KUBESTACK_WORKER__SESSION_TIMEOUT_S="20")
        self.home = home
        self.process: Followed | None = None
        self.outputs: list[str] = []

    def start(self) -> None:
        self.process = follow("worker", env=self.env)
        assert self.process.wait_for("Worker ready"), self.process.output[-6000:]

    def stop(self) -> int:
        code = self.process.stop()
        self.outputs.append(self.process.output)
        return code

    def topic(self, spec: TopicSpec) -> str:
        return spec.qualified(self.prefix)

    @property
    def alive(self) -> bool:
        return self.process.proc.poll() is None


@pytest.fixture(scope="module")
def worker(kafka, tmp_path_factory) -> Iterator[Worker]:
    import uuid

    running = Worker(kafka, uuid.uuid4().hex[:10], tmp_path_factory.mktemp("drill-home"))
    running.start()
    try:
        yield running
    finally:
        code = running.stop()
        assert code == 0, running.outputs[-1][-6000:]


async def send_many(kafka, records: list[tuple[str, bytes | None, bytes | None]]) -> None:
    """(topic, key, value) records, pipelined (the tests' ``produce`` waits for each one)."""
    producer = AIOKafkaProducer(**client_options(kafka), linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=value, key=key) for topic, key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def health(resource: ResourceRef, tenant: str, *rules: str, evidence: dict | None = None) -> HealthReport:
    return HealthReport(source=SOURCE, resource=resource, tenant=tenant, findings=[
        Finding(rule_id=rule, severity=Severity.CRITICAL, message=f"{rule} fired", evidence=evidence or {})
        for rule in rules])


async def collect(worker: Worker, spec: TopicSpec, keep, count: int, timeout_s: float = 60.0) -> list:
    """The decoded events of ``spec``'s topic (from its beginning) for which ``keep`` holds: once ``count`` of them
    are in (and whatever else arrived with them), or what there is after ``timeout_s``. One consumer reads on."""
    consumer = AIOKafkaConsumer(**client_options(worker.kafka), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(worker.topic(spec), p) for p in range(spec.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: list = []
        deadline = time.monotonic() + timeout_s
        while len(found) < count and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                found += [e for e in (spec.decode(r.value) for r in records) if keep(e)]
        return found
    finally:
        await consumer.stop()


async def incidents_of(worker: Worker, tenant: str, count: int, timeout_s: float = 60.0) -> list:
    """At least ``count`` incident events of ``tenant``, in the order of their (one) partition."""
    found = await collect(worker, INCIDENTS, lambda i: i.tenant == tenant, count, timeout_s)
    return sorted(found, key=lambda i: int(i.event_id.rsplit("-r", 1)[1])) if found else found


async def letters_keyed(worker: Worker, prefix: str, count: int, timeout_s: float = 60.0) -> list:
    return await collect(worker, DEAD_LETTER, lambda d: (d.key or "").startswith(prefix), count, timeout_s)


# --- wrong kinds on the health topic -------------------------------------------------------------------------


async def test_drill_events_of_another_kind_on_the_health_topic_are_dead_lettered(worker: Worker) -> None:
    """A ConfigChange- or MetricBatch-shaped message decoded as an empty, healthy report and resolved the
    incident of its resource; now it is dead-lettered, named, and the incident stays open."""
    cache = ResourceRef(kind="redis", name="cache-kind", host="kind-host")
    await send_many(worker.kafka, [(worker.topic(HEALTH), cache.key.encode(),
                                    HEALTH.encode(health(cache, "kind", "redis.evictions"))[1])])
    assert [i.status for i in await incidents_of(worker, "kind", 1)] == [IncidentStatus.OPEN]
    wrong = []
    for n in range(71):
        spec = (CONFIG_CHANGES, METRICS)[n % 2]
        event = example(spec, cache).model_copy(update={"tenant": "kind"})
        wrong.append((worker.topic(HEALTH), f"kind-{n}".encode(), spec.encode(event)[1]))
    await send_many(worker.kafka, wrong)
    letters = await letters_keyed(worker, "kind-", 71)
    assert len(letters) == 71
    assert all(d.original_topic == worker.topic(HEALTH) and d.stage == "route" for d in letters)
    assert all(d.reason.startswith("not a HealthReport: a ") for d in letters)
    assert sum("ConfigChange" in d.reason for d in letters) == 36 and sum("MetricBatch" in d.reason
                                                                         for d in letters) == 35
    later = await incidents_of(worker, "kind", 2, timeout_s=5)  # reads for 5 s: a second revision would show
    assert [i.status for i in later] == [IncidentStatus.OPEN], "a message of another kind changed the incident"


# --- fuzz: 10,000 malformed messages ---------------------------------------------------------------------------


def _mutations(spec: TopicSpec, rng: random.Random) -> bytes | None:
    """One malformed message for ``spec``'s topic, built from a valid one."""
    valid = json.loads(spec.encode(example(spec))[1])
    choice = rng.randrange(12)
    if choice == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
    if choice == 1:
        text = json.dumps(valid)
        return text[:rng.randrange(1, len(text) - 1)].encode()
    if choice == 2:
        return rng.choice([b"[]", b"null", b"42", b'"text"', b"true", b"[" * 5000, b"{}", b"   "])
    if choice == 3:
        other = rng.choice([t for t in TOPICS if t.model is not spec.model])
        return other.encode(example(other))[1]
    if choice == 4:
        field = rng.choice(["source", "resource", "ts", "tenant"])
        valid[field] = rng.choice({"source": [5, "", None, [1], {"agent": 1}], "resource": [5, "", None, {"kind": 1}],
                                   "ts": ["2026-01-01T00:00:00", "", None, [1], "yesterday"],
                                   "tenant": ["", None, 5, [1]]}[field])
        return json.dumps(valid).encode()
    if choice == 5:
        valid.pop(rng.choice(["source", "resource"]))
        return json.dumps(valid).encode()
    if choice == 6:
        return json.dumps(valid).encode().replace(b'"', b"\xff", 1)
    return _typed(spec, valid, rng)


def _typed(spec: TopicSpec, valid: dict, rng: random.Random) -> bytes:
    """A wrong value where the topic's own fields are: NaN, infinities, booleans, text as numbers, empty lists."""
    if spec is METRICS:
        bad = rng.choice(["NaN", "Infinity", "-Infinity", "1e999", "true", "false", '"12"', "null", "{}"])
        text = json.dumps(valid).replace('"values": [1500000000.0', f'"values": [{bad}', 1)
        return text.encode() if rng.random() < 0.8 else json.dumps(valid | {"samples": []}).encode()
    if spec is LOGS:
        return json.dumps(valid | rng.choice([{"lines": []}, {"lines": [{"line": 5}]}, {"lines": "x"}])).encode()
    if spec is CONFIG_CHANGES:
        return json.dumps(valid | rng.choice([{"changes": []}, {"observed": {"used": True}}, {"digest": None}])
                          ).encode().replace(b'{"used": true}', rng.choice([b'{"used": NaN}', b'{"used": true}']))
    finding = valid["findings"][0] | rng.choice([{"severity": "fatal"}, {"message": ""}, {"rule_id": None}])
    return json.dumps(valid | {"findings": [finding]}).encode()


def fuzz_corpus(count: int, seed: int = 16) -> list[tuple[TopicSpec, bytes | None]]:
    rng = random.Random(seed)
    corpus = []
    for n in range(count):
        spec = INPUTS[n % len(INPUTS)]
        corpus.append((spec, _mutations(spec, rng)))
    return corpus


def test_every_fuzzed_message_fails_to_decode_with_a_reason() -> None:
    """The corpus the drill sends is malformed through and through (checked here, without a broker)."""
    for spec, raw in fuzz_corpus(10_000):
        with pytest.raises(EventDecodeError) as caught:
            spec.decode(raw)
        assert caught.value.reason


async def test_drill_10000_malformed_messages_are_all_dead_lettered_while_valid_traffic_flows(worker) -> None:
    corpus = fuzz_corpus(10_000)
    records: list[tuple[str, bytes | None, bytes | None]] = []
    valid = 0
    for n, (spec, raw) in enumerate(corpus):
        records.append((worker.topic(spec), f"fuzz-{n}".encode(), raw))
        if n % 500 == 0:  # valid reports among them, each of its own unrelated resource: one incident each
            resource = ResourceRef(kind="redis", name=f"fuzz-valid-{valid}", host=f"fuzz-host-{valid}")
            records.append((worker.topic(HEALTH), resource.key.encode(),
                            HEALTH.encode(health(resource, "fuzz", "redis.evictions"))[1]))
            valid += 1
    started = time.monotonic()
    await send_many(worker.kafka, records)
    letters = await letters_keyed(worker, "fuzz-", len(corpus), timeout_s=90)
    took = time.monotonic() - started
    opened = await incidents_of(worker, "fuzz", valid)
    print(f"fuzz: {len(letters)} of {len(corpus)} malformed messages dead-lettered and {len(opened)} of {valid} "
          f"valid reports made incidents in {took:.1f}s")
    assert worker.alive, worker.process.output[-6000:]
    assert len({d.key for d in letters}) == len(corpus), "every malformed message dead-lettered once at least"
    assert all(d.reason and d.error_type == "EventDecodeError" for d in letters), \
        {d.error_type for d in letters}
    stages = {d.original_topic.rsplit(".", 2)[-2]: d.stage for d in letters}
    assert stages == {"metrics": "intake", "logs": "logs", "config-changes": "config-risk", "health": "route"}
    assert {i.resources[0].name for i in opened} == {f"fuzz-valid-{n}" for n in range(valid)}


# --- one busy tenant -----------------------------------------------------------------------------------------


async def test_drill_a_busy_tenant_does_not_stop_the_worker_or_crash_loop_it(worker: Worker) -> None:
    """350 health reports with 4 KB of evidence in one tenant made a 1 MB state record at report 198: the
    worker exited for every tenant, and crashed again on restart. Here: 35 hosts of 10 Redis instances each, so
    35 incidents of 10 signals in one tenant (the pure tests take one incident of 350)."""
    reports = []
    for n in range(350):
        resource = ResourceRef(kind="redis", name=f"busy-{n}", host=f"busy-host-{n // 10}")
        reports.append((worker.topic(HEALTH), resource.key.encode(),
                        HEALTH.encode(health(resource, "busy", "redis.slowlog",
                                             evidence={"slowlog": "x" * 4096, "n": n}))[1]))
    await send_many(worker.kafka, reports)
    busy = await incidents_of(worker, "busy", 350, timeout_s=120)
    assert worker.alive, worker.process.output[-6000:]
    assert len(busy) == 350 and len({i.incident_id for i in busy}) == 35
    calm = ResourceRef(kind="mysql", name="calm-db", host="calm-host")
    await send_many(worker.kafka, [(worker.topic(HEALTH), calm.key.encode(),
                                    HEALTH.encode(health(calm, "calm", "mysql.down"))[1])])
    assert await incidents_of(worker, "calm", 1), "another tenant's signal made no incident"

    changelog = await consume(worker.kafka, f"{worker.app_id}-correlation-changelog", 10**9,
                              f"cl-{time.monotonic_ns()}", timeout_s=5)
    largest = max(len(r.value or b"") for r in changelog)
    print(f"busy tenant: {len(busy)} incident revisions of 35 incidents, largest "
          f"{max(len(INCIDENTS.encode(i)[1]) for i in busy)} bytes; {len(changelog)} state records, largest "
          f"{largest} bytes")
    assert largest <= 512 * 1024

    assert (worker.home / "worker").stat().st_mode & 0o777 == 0o700, "the worker's data is private to its user"
    assert worker.stop() == 0, worker.outputs[-1][-6000:]
    worker.start()  # the same app id: the tables come back from their changelogs
    more = ResourceRef(kind="redis", name="busy-after-restart", host="busy-host-0")
    await send_many(worker.kafka, [(worker.topic(HEALTH), more.key.encode(),
                                    HEALTH.encode(health(more, "busy", "redis.evictions"))[1])])
    after = await incidents_of(worker, "busy", 351, timeout_s=60)
    await asyncio.sleep(3)
    assert worker.alive, worker.process.output[-6000:]
    grown = [i for i in after if any(r.name == "busy-after-restart" for r in i.resources)]
    assert grown and grown[-1].event_id.endswith("-r11"), "the state came back from the changelog and grew on"


# --- kill -9 mid-stream ----------------------------------------------------------------------------------------


def test_the_session_timeout_setting_is_the_workers_and_its_heartbeats_follow(tmp_path) -> None:
    """What the drill's worker runs with (the default is Faust's 60 s, heartbeats every 3 s)."""
    from kubestack.pipeline.app import create_app
    from kubestack.settings import Settings, WorkerSettings

    for timeout_s, heartbeat_s in ((60.0, 3.0), (20.0, 2.0)):
        app = create_app(Settings(home=tmp_path, worker=WorkerSettings(session_timeout_s=timeout_s)))
        assert (app.conf.broker_session_timeout, app.conf.broker_heartbeat_interval) == (timeout_s, heartbeat_s)


async def test_drill_kill_9_mid_stream_loses_no_incident_revision_and_repeats_none(worker: Worker) -> None:
    """A worker killed with SIGKILL while reports stream in, and started again on the same app id: what it had
    not committed is read again, and what it had already sent may be sent again. For a consumer that drops
    repeats by ``event_id`` nothing is lost and nothing is told twice: every signal makes exactly one revision
    (each incident ends at r2, none at r3), and a revision sent twice is the same event both times."""
    tenant = f"kill9-{time.monotonic_ns()}"
    reports = []
    for n in range(120):  # 60 hosts of two Redis each: 60 incidents of two signals
        resource = ResourceRef(kind="redis", name=f"kill-{n}", host=f"kill-host-{n // 2}")
        reports.append((worker.topic(HEALTH), resource.key.encode(),
                        HEALTH.encode(health(resource, tenant, "redis.slowlog"))[1]))
    await send_many(worker.kafka, reports[::2])  # one signal of every incident
    assert len(await incidents_of(worker, tenant, 20, timeout_s=60)) >= 20
    await send_many(worker.kafka, reports[1::2])  # the second ones, while ...
    worker.process.proc.kill()  # ... the worker dies mid-stream
    worker.process.proc.wait(timeout=30)
    worker.outputs.append(worker.process.output)
    restarted = time.monotonic()
    worker.start()  # the same app id: tables from their changelogs, input from the last committed offsets
    ready = time.monotonic() - restarted
    deadline = time.monotonic() + 90
    while True:  # all there is, repeats included, until every revision is in (or the deadline)
        seen = await incidents_of(worker, tenant, 10**6, timeout_s=2)
        if len({e.event_id for e in seen}) >= 120 or time.monotonic() > deadline:
            break
    flowing = time.monotonic() - restarted
    seen = await incidents_of(worker, tenant, 10**6, timeout_s=3)  # and the repeats that come late
    by_id: dict[str, list] = {}
    for event in seen:
        by_id.setdefault(event.event_id, []).append(event)
    revisions: dict[str, set[int]] = {}
    for event_id in by_id:
        incident_id, revision = event_id.rsplit("-r", 1)
        revisions.setdefault(incident_id, set()).add(int(revision))
    print(f"kill -9: {len(seen)} incident events, {len(by_id)} distinct revisions of {len(revisions)} incidents, "
          f"{len(seen) - len(by_id)} repeats dropped by event_id; worker ready {ready:.1f}s after the restart, "
          f"every revision in after {flowing:.1f}s")
    assert worker.alive, worker.process.output[-6000:]
    assert len(revisions) == 60, "an incident was lost"
    assert all(r == {1, 2} for r in revisions.values()), {i: r for i, r in revisions.items() if r != {1, 2}}
    for event_id, events in by_id.items():  # a repeat is the very same revision, so dropping it loses nothing
        first = events[0].model_dump(mode="json", exclude={"ts"})
        assert all(e.model_dump(mode="json", exclude={"ts"}) == first for e in events[1:]), event_id
