"""Maximum sustained samples/s from the agent's publisher into Kafka, side by side with a bare aiokafka
producer sending the same payloads to the same broker in the same run (the ratio is what counts).

    .venv/bin/python bench/agent/throughput.py [--seconds 20] [--samples-per-batch 100] [--bootstrap HOST:PORT]

Without --bootstrap it starts its own broker on free ports (stopped at the end). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

from kubestack.agents.metrics import AgentMetrics
from kubestack.agents.sender import SpoolingPublisher
from kubestack.agents.spool import Spool
from kubestack.bus import client_options, ensure_topics
from kubestack.contract.base import ResourceRef, Source, utcnow
from kubestack.contract.events import MetricBatch, Sample
from kubestack.contract.topics import METRICS
from kubestack.deploy.kafka.launcher import LocalKafka
from kubestack.settings import KafkaSettings, LocalKafkaSettings


SOURCE = Source(agent="agent/bench", host="bench")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def batch(resource: int, size: int) -> MetricBatch:
    now = utcnow()
    return MetricBatch(source=SOURCE, resource=ResourceRef(kind="redis", name=f"r{resource}", host="bench"),
                       interval_s=10, samples=[Sample(name=f"redis_metric_{i}", value=i * 1.5, ts=now,
                                                      labels={"role": "master"}) for i in range(size)])


async def baseline(kafka: KafkaSettings, seconds: float, size: int) -> float:
    """Bare producer: pre-encoded payloads, the same producer settings as the agent."""
    payloads = [METRICS.encode(batch(r, size)) for r in range(64)]
    topic = METRICS.qualified(kafka.topic_prefix)
    producer = AIOKafkaProducer(**client_options(kafka), enable_idempotence=True, acks="all",
                                compression_type="gzip", linger_ms=5)
    await producer.start()
    sent, start = 0, time.perf_counter()
    try:
        while time.perf_counter() - start < seconds:
            futures = [await producer.send(topic, value, key=key) for key, value in payloads]
            await asyncio.gather(*futures)
            sent += len(payloads)
    finally:
        await producer.stop()
    return sent * size / (time.perf_counter() - start)


async def agent_path(kafka: KafkaSettings, seconds: float, size: int, spool_dir: Path) -> float:
    """The agent's way: build the events, append to the disk spool, the sender moves them to Kafka."""
    publisher = SpoolingPublisher(kafka, Spool(spool_dir, max_bytes=4 * 1024**3), AgentMetrics())
    publisher.start()
    published, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        await publisher.publish_many([(METRICS, batch(r, size)) for r in range(64)])
        published += 64
        if publisher.spool.pending > 5000:  # stay at a sustainable rate: do not just fill the disk
            await asyncio.sleep(0.01)
        else:
            await asyncio.sleep(0)
    await publisher.flush(timeout_s=300)
    elapsed = time.perf_counter() - start
    await publisher.stop()
    return published * size / elapsed


async def main(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        broker = None
        if args.bootstrap is None:
            broker = LocalKafka(LocalKafkaSettings(port=free_port(), controller_port=free_port()), Path(tmp))
            await asyncio.to_thread(broker.up)
            args.bootstrap = broker.settings.bootstrap
        try:
            kafka = KafkaSettings(bootstrap=args.bootstrap, topic_prefix=f"bench.{int(time.time())}.")
            await ensure_topics(kafka, (METRICS,))
            base = await baseline(kafka, args.seconds, args.samples_per_batch)
            agent = await agent_path(kafka, args.seconds, args.samples_per_batch, Path(tmp) / "spool")
        finally:
            if broker is not None:
                await asyncio.to_thread(broker.stop)
    return {"samples_per_batch": args.samples_per_batch, "agent_samples_per_s": round(agent),
            "baseline_samples_per_s": round(base), "ratio": round(agent / base, 3)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--samples-per-batch", type=int, default=100)
    parser.add_argument("--bootstrap")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
