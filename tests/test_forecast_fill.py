"""Real fills, forecast by the real worker from what the real agent collects: a filesystem (a size-limited tmpfs)
and Redis memory (maxmemory, noeviction) filled by writers at a varying rate must each raise an exhaustion
notice on the predictions topic before they are full, and it must reach an incident; a filesystem that a
rotation empties every few seconds (a sawtooth that never fills) must raise none.

Time is compressed: the worker runs with ``forecast_time_scale`` = 1/1800, so one real second stands for half an
hour (the 24 h warning horizon is 48 s, the 4 h critical one 8 s) with the very same forecasting code. Mounting
tmpfs needs root (CI runs as root)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import redis

from kubestack.agents.config import AgentConfig
from kubestack.agents.runtime import Agent
from kubestack.bus import ensure_topics
from kubestack.contract.events import Incident, Prediction, PredictionStatus
from kubestack.contract.topics import INCIDENTS, PREDICTIONS
from kubestack.plugins.host.config import PSEUDO_FILESYSTEMS
from kubestack.settings import Settings
from tests.cli import follow, cli_env
from tests.services.redis import start_redis

pytestmark = pytest.mark.kafka

TIME_SCALE = 1 / 1800
FS_SIZE = 24 * 2**20
REDIS_MAXMEMORY = 24 * 2**20
FILL_BOUND_S = 240.0
CHUNK = 64 * 1024


class Writer(threading.Thread):
    """Writes ``CHUNK``s at a rate that changes every few seconds (``rates`` bytes/s, cycled) until ``full`` says
    the target refused; ``full_at`` is when. ``empty_every_s`` turns it into a rotation (a sawtooth)."""

    def __init__(self, name: str, write, rates: tuple[float, ...], empty=None, empty_every_s: float = 0.0) -> None:
        super().__init__(name=name, daemon=True)
        self.write, self.rates, self.empty, self.empty_every_s = write, rates, empty, empty_every_s
        self.stopping = threading.Event()
        self.full_at: datetime | None = None
        self.error: str | None = None

    def run(self) -> None:
        started = last_empty = time.monotonic()
        n = 0
        while not self.stopping.is_set():
            rate = self.rates[int((time.monotonic() - started) / 5) % len(self.rates)]
            try:
                self.write(n)
            except (OSError, redis.ResponseError) as exc:
                self.full_at, self.error = datetime.now(timezone.utc), f"{type(exc).__name__}: {exc}"
                return
            n += 1
            if self.empty is not None and time.monotonic() - last_empty >= self.empty_every_s:
                self.empty()
                last_empty = time.monotonic()
            self.stopping.wait(CHUNK / rate)


def file_writer(directory: Path):
    def write(n: int) -> None:
        with (directory / f"log-{n // 16}.dat").open("ab") as f:
            f.write(os.urandom(CHUNK))
            f.flush()
            os.fsync(f.fileno())
    return write


def rotate(directory: Path):
    def empty() -> None:
        for path in directory.iterdir():
            path.unlink()
    return empty


@contextlib.contextmanager
def tmpfs(path: Path, size: int):
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True,
                   capture_output=True, text=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


class Watch:
    """Predictions and incidents as they arrive (a background consumer)."""

    def __init__(self, settings: Settings) -> None:
        self.kafka = settings.kafka
        self.predictions: list[Prediction] = []
        self.incidents: list[Incident] = []

    async def run(self) -> None:
        from aiokafka import AIOKafkaConsumer

        from kubestack.bus import client_options

        specs = {spec.qualified(self.kafka.topic_prefix): spec for spec in (PREDICTIONS, INCIDENTS)}
        consumer = AIOKafkaConsumer(*specs, **client_options(self.kafka), auto_offset_reset="earliest",
                                    group_id=f"fill-watch-{secrets.token_hex(4)}")
        await consumer.start()
        try:
            async for record in consumer:
                event = specs[record.topic].decode(record.value)
                (self.predictions if isinstance(event, Prediction) else self.incidents).append(event)
        finally:
            await consumer.stop()

    def notices(self, fragment: str) -> list[Prediction]:
        return [p for p in self.predictions if fragment in p.signal and p.status != PredictionStatus.WITHDRAWN]


def agent_config(name: str, cache, host_name: str) -> AgentConfig:
    rhythm = {"interval": 1, "health_interval": 5, "config_interval": 30}
    return AgentConfig.model_validate({
        "agent": {"name": name, "metrics_listen": None},
        "targets": [
            {"type": "redis", "name": "fill-cache", **rhythm,
             "config": {"host": cache.host, "port": cache.port, "password": {"value": cache.password}}},
            {"type": "host", "name": host_name, **rhythm,
             "config": {"skip_filesystems": [f for f in PSEUDO_FILESYSTEMS if f != "tmpfs"], "log_paths": []}},
        ],
    })


async def test_fills_are_foreseen_before_they_are_full_and_a_rotation_is_not(kafka, tmp_path) -> None:
    unique = secrets.token_hex(5)
    settings = Settings(home=tmp_path / "home", kafka=kafka.model_copy(update={"topic_prefix": f"fill.{unique}."}))
    await ensure_topics(settings.kafka)
    env = cli_env(KUBESTACK_KAFKA__BOOTSTRAP=kafka.bootstrap, KUBESTACK_KAFKA__TOPIC_PREFIX=settings.kafka.topic_prefix,
                  KUBESTACK_WORKER__APP_ID=f"fill-worker-{unique}", KUBESTACK_HOME=str(tmp_path / "worker"),
                  KUBESTACK_WORKER__FORECAST_TIME_SCALE=repr(TIME_SCALE),
                  KUBESTACK_WORKER__ANOMALY_THRESHOLD="1", KUBESTACK_WORKER__METRIC_ALONE_SCORE="1",
                  KUBESTACK_WORKER__CORRELATION_WINDOW_S="30")
    watch = Watch(settings)
    with contextlib.ExitStack() as stack:
        redis_proc, cache = start_redis("fill", tmp_path, secrets.token_hex(8), "--maxmemory", str(REDIS_MAXMEMORY),
                                        "--maxmemory-policy", "noeviction")
        stack.callback(redis_proc.stop)
        filling = stack.enter_context(tmpfs(tmp_path / "filling", FS_SIZE))
        rotating = stack.enter_context(tmpfs(tmp_path / "rotating", FS_SIZE))
        worker = follow("worker", env=env)
        stack.callback(worker.stop)
        assert worker.wait_for("Worker ready"), worker.output
        watching = asyncio.create_task(watch.run())
        stack.callback(watching.cancel)

        agent = Agent(agent_config(f"fill-{unique}", cache, f"fill-host-{unique}"), settings)
        stop = asyncio.Event()
        collecting = asyncio.create_task(agent.run(stop))
        client = cache.connect()
        stack.callback(client.close)
        writers = [
            Writer("fs-fill", file_writer(filling), rates=(160e3, 320e3, 220e3)),
            Writer("redis-fill", lambda n: client.set(f"fill:{n}", os.urandom(CHUNK)), rates=(300e3, 150e3, 220e3)),
            Writer("fs-rotate", file_writer(rotating), rates=(900e3, 1400e3), empty=rotate(rotating), empty_every_s=12),
        ]
        await asyncio.sleep(20)  # a calm start: the rotation's first cycles, the fills at their low level
        for writer in writers:
            writer.start()
        fills = writers[:2]
        deadline = time.monotonic() + FILL_BOUND_S
        while any(w.full_at is None for w in fills) and time.monotonic() < deadline:
            await asyncio.sleep(1)
        await asyncio.sleep(5)  # the last batches through the worker
        for writer in writers:
            writer.stopping.set()
        stop.set()
        await asyncio.wait_for(collecting, 60)

    assert all(w.full_at is not None for w in fills), [(w.name, w.error) for w in writers]
    where = f"predictions: {[(p.signal, p.status.value, p.ts.isoformat()) for p in watch.predictions]}\n" \
            f"worker: {worker.output[-3000:]}"
    for writer, fragment in ((fills[0], f"mountpoint={filling}"), (fills[1], "redis_used_memory_bytes")):
        early = [p for p in watch.notices(fragment) if p.ts < writer.full_at]
        assert early, f"no notice for {fragment} before it was full at {writer.full_at}\n{where}"
        first = early[0]
        assert first.exhaustion_lower_bound <= first.exhaustion_at, first
        print(f"\n{writer.name}: first notice {(writer.full_at - first.ts).total_seconds():.0f} s before full "
              f"({(writer.full_at - first.ts).total_seconds() / TIME_SCALE / 3600:.1f} h at scale), "
              f"{first.severity.value}, foreseen at {first.exhaustion_at:%H:%M:%S}, full at {writer.full_at:%H:%M:%S}")
    assert watch.notices(f"mountpoint={rotating}") == [], f"the rotation raised a notice\n{where}"
    assert any("runs out in" in i.summary for i in watch.incidents), \
        f"no incident carries a forecast: {[i.summary for i in watch.incidents]}"
