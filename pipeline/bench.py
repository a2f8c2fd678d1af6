"""``kubestack bench pipeline``: how fast the worker turns metrics into incidents, measured side by side.

- throughput: the same pre-produced metric batches are read by a bare aiokafka consumer (the baseline) and
  processed by a real worker (decode, inventory, detection, routing, correlation); samples/s of each and the
  ratio. The worker's progress is read from its committed offsets.
- latency: while background batches stream in at a sustained rate, health findings on fresh resources are
  sent stamped with their time; the time until their incident is on the incidents topic, p50 and p99.
- detector cost: µs per sample and state bytes per series of the stream's detection, in process; decode cost: µs
  per sample of decoding and checking the same metric records as the worker does, in process.
- scale-out: on ``brokers`` local brokers (replication 3 and min.insync.replicas 2 from three on), each group size
  of ``workers`` (e.g. 1, 2, 3 workers sharing the partitions) is measured on the same batches: total and
  per-worker samples/s, the workers' CPU seconds per million samples (the figure that carries to other machines)
  and the latency. The first group's figures are also the top-level ones.

Not a test: figures depend on the machine; compare the ratios.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from kubestack.bus import client_options, describe_cluster, ensure_topics
from kubestack.contract.base import ResourceRef, Source, utcnow
from kubestack.contract.events import Finding, HealthReport, MetricBatch, Severity
from kubestack.contract.topics import HEALTH, INCIDENTS, METRICS
from kubestack.pipeline.detection import ResourceDetectors
from kubestack.settings import KafkaSettings

SOURCE = Source(agent="bench", host="bench")


def _batch(resource: int, round_: int, samples: int, start: float) -> MetricBatch:
    ts = utcnow() - timedelta(seconds=start - round_ * 10.0)
    return MetricBatch(source=SOURCE, resource=ResourceRef(kind="redis", name=f"r{resource}", host=f"h{resource}"),
                       interval_s=10, ts=ts, names=[f"m{i}" for i in range(samples)],
                       values=[100.0 + (round_ * 7 + i) % 5 for i in range(samples)])


async def _produce(kafka: KafkaSettings, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(**client_options(kafka), linger_ms=5, compression_type="gzip")
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _baseline(kafka: KafkaSettings, topic: str) -> float:
    """Records per second a bare consumer reads the whole topic at."""
    consumer = AIOKafkaConsumer(**client_options(kafka), enable_auto_commit=False, auto_offset_reset="earliest",
                                group_id=f"bench-baseline-{uuid.uuid4().hex[:6]}")
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(kafka.partitions_of(METRICS))]  # as ensure_topics made it
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        total = remaining = sum(ends.values())
        start = time.perf_counter()
        while remaining > 0:
            if time.perf_counter() - start > 300:
                raise TimeoutError(f"the baseline consumer still misses {remaining} records after 300 s")
            for records in (await consumer.getmany(timeout_ms=500)).values():
                remaining -= len(records)
        return total / (time.perf_counter() - start)
    finally:
        await consumer.stop()


async def _committed(kafka: KafkaSettings, group: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0)


def _start_worker(kafka: KafkaSettings, app_id: str, home: Path) -> subprocess.Popen:
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "KUBESTACK_KAFKA__BOOTSTRAP": kafka.bootstrap, "KUBESTACK_KAFKA__TOPIC_PREFIX":
           kafka.topic_prefix, "KUBESTACK_KAFKA__REPLICATION_FACTOR": str(kafka.replication_factor),
           "KUBESTACK_WORKER__APP_ID": app_id, "KUBESTACK_HOME": str(home)}
    if kafka.min_insync_replicas is not None:
        env["KUBESTACK_KAFKA__MIN_INSYNC_REPLICAS"] = str(kafka.min_insync_replicas)
    log = (home / "worker.log").open("w")
    return subprocess.Popen([sys.executable, "-m", "kubestack", "worker"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


async def _wait_ready(home: Path, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while "Worker ready" not in (home / "worker.log").read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker not ready; see {home / 'worker.log'}")
        await asyncio.sleep(0.2)


def _cpu_s(pids: list[int]) -> float:
    """User and system CPU seconds the processes (all their threads) have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15 of stat(5))
    return total


async def _throughput(kafka: KafkaSettings, app_id: str, total: int, timeout_s: float,
                      pids: list[int]) -> tuple[float, float]:
    """Records per second the group commits at, in steady state: from its first commit to its last (commits
    come every few seconds, so the volume must span many commit intervals), and the workers' CPU seconds over
    the same records. With too little volume for that, from when they were ready to their last commit."""
    topic = METRICS.qualified(kafka.topic_prefix)
    deadline = time.monotonic() + timeout_s
    first: tuple[float, int, float] = (time.perf_counter(), 0, _cpu_s(pids))
    while (done := await _committed(kafka, app_id, topic)) < total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the workers committed {done} of {total} records within {timeout_s:.0f} s")
        if first[1] == 0 and done > 0:
            first = (time.perf_counter(), done, _cpu_s(pids))
        await asyncio.sleep(0.2)
    if done == first[1]:
        raise RuntimeError("no progress measured")
    return (done - first[1]) / (time.perf_counter() - first[0]), (_cpu_s(pids) - first[2]) / (done - first[1])


async def _latency(kafka: KafkaSettings, seconds: float, rate: float, background: int) -> list[float]:
    """Send a finding on a fresh resource ``rate`` times a second (with background metric load); ms until its
    incident is on the topic."""
    incidents = AIOKafkaConsumer(INCIDENTS.qualified(kafka.topic_prefix), **client_options(kafka),
                                 auto_offset_reset="latest", group_id=f"bench-lat-{uuid.uuid4().hex[:6]}")
    await incidents.start()
    producer = AIOKafkaProducer(**client_options(kafka), linger_ms=0)
    await producer.start()
    sent: dict[str, float] = {}
    latencies: list[float] = []

    async def receive() -> None:
        async for record in incidents:
            incident = INCIDENTS.decode(record.value)
            key = incident.resources[0].name if incident.resources else ""
            if key in sent and incident.status == "open":
                latencies.append((time.time() - sent.pop(key)) * 1000)

    receiver = asyncio.create_task(receive())
    try:
        await asyncio.sleep(2.0)  # the consumer's assignment
        end, n = time.monotonic() + seconds, 0
        while time.monotonic() < end:
            n += 1
            name = f"lat-{n}"
            report = HealthReport(source=SOURCE, resource=ResourceRef(kind="redis", name=name, host=name),
                                  findings=[Finding(rule_id="bench.finding", severity=Severity.CRITICAL,
                                                    message="bench")])
            key, value = HEALTH.encode(report)
            sent[name] = report.ts.timestamp()
            await producer.send(HEALTH.qualified(kafka.topic_prefix), value, key=key)
            for i in range(background):
                b_key, b_value = METRICS.encode(_batch(10_000 + i, n, 20, 0))
                await producer.send(METRICS.qualified(kafka.topic_prefix), b_value, key=b_key)
            await asyncio.sleep(1.0 / rate)
        await asyncio.sleep(5.0)
    finally:
        receiver.cancel()
        await producer.stop()
        await incidents.stop()
    return latencies


def detector_cost(series: int = 200, rounds: int = 300) -> tuple[float, float]:
    """µs per sample and state bytes per series of the stream's detection, in process."""
    detectors = ResourceDetectors(threshold=0.5)
    batches = [_batch(0, r, series, rounds * 10) for r in range(rounds)]
    start = time.perf_counter()
    for batch in batches:
        detectors.observe(batch, SOURCE)
    elapsed = time.perf_counter() - start
    state = json.dumps(detectors.to_state())
    return elapsed / (series * rounds) * 1e6, len(state) / series


def decode_cost(records: list[tuple[bytes, bytes]], limit: int = 2000) -> float:
    """µs per sample of decoding and checking metric records as the worker does (``METRICS.decode``), in process."""
    values = [value for _, value in records[:limit]]
    start = time.perf_counter()
    samples = sum(len(METRICS.decode(value).names) for value in values)
    return (time.perf_counter() - start) / samples * 1e6


async def _group(kafka: KafkaSettings, workers: int, home: Path, total: int, samples: int, seconds: float,
                 rate: float, background: int) -> dict:
    """``workers`` workers of one new group over the same batches: throughput, CPU, latency."""
    app_id = f"bench-worker-{uuid.uuid4().hex[:8]}"
    processes: list[subprocess.Popen] = []
    try:
        started = time.perf_counter()
        homes = [home / f"{app_id}-{i}" for i in range(workers)]
        processes = [_start_worker(kafka, app_id, h) for h in homes]
        await asyncio.gather(*[_wait_ready(h) for h in homes])
        ready_s = time.perf_counter() - started
        rate_records, cpu_per_record = await _throughput(kafka, app_id, total, 1800, [p.pid for p in processes])
        latencies = sorted(await _latency(kafka, seconds, rate, background))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(60)
    return {
        "workers": workers,
        "samples_per_s": round(rate_records * samples),
        "per_worker_samples_per_s": round(rate_records * samples / workers),
        "cpu_s_per_million_samples": round(cpu_per_record / samples * 1e6, 1),
        "latency_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "latency_p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1)
        if latencies else None,
        "latency_samples": len(latencies),
        "worker_start_s": round(ready_s, 1),
    }


async def run(kafka: KafkaSettings | None, seconds: float, resources: int = 100, samples: int = 20,
              rate: float = 5.0, brokers: int = 1, workers: tuple[int, ...] = (1,)) -> dict:
    """Every figure of the benchmark; starts its own ``brokers`` on free ports when ``kafka`` is None."""
    from kubestack.deploy.kafka.launcher import LocalKafka
    from kubestack.settings import LocalKafkaSettings

    with tempfile.TemporaryDirectory() as tmp:
        home, cluster = Path(tmp), None
        if kafka is None:
            ports = [_free_port() for _ in range(2 * brokers)]
            local = LocalKafkaSettings(brokers=brokers, ports=ports[:brokers], controller_ports=ports[brokers:])
            cluster = LocalKafka(local, home)
            await asyncio.to_thread(cluster.up)
            kafka = KafkaSettings(bootstrap=local.bootstrap, replication_factor=local.replication_factor,
                                  min_insync_replicas=local.min_insync_replicas if brokers > 1 else None)
        unique = uuid.uuid4().hex[:8]
        kafka = kafka.model_copy(update={"topic_prefix": f"bench.{unique}."})
        try:
            await ensure_topics(kafka)
            brokers_seen = len((await describe_cluster(kafka)).brokers)
            rounds = max(10, int(seconds * 5))
            records = [METRICS.encode(_batch(r, n, samples, rounds * 10)) for n in range(rounds)
                       for r in range(resources)]
            topic = METRICS.qualified(kafka.topic_prefix)
            await _produce(kafka, topic, records)
            baseline_rate = await _baseline(kafka, topic)
            groups = [await _group(kafka, m, home, len(records), samples, seconds, rate, max(1, resources // 10))
                      for m in workers]
        finally:
            if cluster is not None:
                await asyncio.to_thread(cluster.stop)
    us, per_series = detector_cost()
    decode_us = decode_cost(records)
    baseline = baseline_rate * samples
    for group in groups:
        group["ratio"] = float(f"{group['samples_per_s'] / baseline:.3g}")  # a tiny run is far under 0.001
    first = groups[0]
    return {
        "samples_per_s": first["samples_per_s"],
        "baseline_samples_per_s": round(baseline),
        "ratio": first["ratio"],
        "latency_p50_ms": first["latency_p50_ms"],
        "latency_p99_ms": first["latency_p99_ms"],
        "latency_samples": first["latency_samples"],
        "detector_us_per_sample": round(us, 2),
        "decode_us_per_sample": round(decode_us, 2),
        "bytes_per_series": round(per_series),
        "batches": len(records), "samples_per_batch": samples, "worker_start_s": first["worker_start_s"],
        "brokers": brokers_seen, "metrics_partitions": kafka.partitions_of(METRICS),
        "groups": groups,
    }


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
