"""Real fills, forecast by the real worker from what the real agent collects: a filesystem (a size-limited tmpfs)
and Redis memory (maxmemory, noeviction) filled by writers at a varying rate must each raise an exhaustion
notice on the predictions topic before they are full, and it must reach an incident; a filesystem that a
rotation empties every few hours at scale (a sawtooth that never fills) must raise none.

Time is compressed (``tests/dataloss.py``): the worker runs with ``forecast_time_scale`` = 1/3600, so one real second
stands for an hour (the 24 h warning horizon is 24 s, the 4 h critical one 4 s) with the very same forecasting code;
the fills take some 40 h at scale. Mounting tmpfs needs root (CI runs as root)."""

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
from kubestack.plugins.host.config import PSEUDO_FILESYSTEMS
from tests.dataloss import COLLECT_S, at_scale, calm_before_the_fault, hours, until, worker_and_watch
from tests.services.redis import start_redis

pytestmark = pytest.mark.kafka

FS_SIZE = 24 * 2**20
REDIS_MAXMEMORY = 24 * 2**20
FILL_BOUND_S = 120.0
CALM_S = hours(10)        # the series flat before the fills and the rotation
CHUNK = 64 * 1024


class Writer(threading.Thread):
    """Writes ``CHUNK``s at a rate that changes every 2.5 h at scale (``rates`` bytes/s, cycled) until ``full`` says
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
            rate = self.rates[int((time.monotonic() - started) / hours(2.5)) % len(self.rates)]
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


def agent_config(name: str, cache, host_name: str) -> AgentConfig:
    rhythm = {"interval": COLLECT_S, "health_interval": 5, "config_interval": 30}
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
    async with contextlib.AsyncExitStack() as stack:
        redis_proc, cache = start_redis("fill", tmp_path, secrets.token_hex(8), "--maxmemory", str(REDIS_MAXMEMORY),
                                        "--maxmemory-policy", "noeviction")
        stack.callback(redis_proc.stop)
        filling = stack.enter_context(tmpfs(tmp_path / "filling", FS_SIZE))
        rotating = stack.enter_context(tmpfs(tmp_path / "rotating", FS_SIZE))
        settings, watch, worker = await stack.enter_async_context(worker_and_watch(kafka, tmp_path))

        agent = Agent(agent_config(f"fill-{unique}", cache, f"fill-host-{unique}"), settings)
        stop = asyncio.Event()
        collecting = asyncio.create_task(agent.run(stop))
        client = cache.connect()
        stack.callback(client.close)
        writers = [
            Writer("fs-fill", file_writer(filling), rates=(460e3, 900e3, 620e3)),
            Writer("redis-fill", lambda n: client.set(f"fill:{n}", os.urandom(CHUNK)), rates=(780e3, 390e3, 560e3)),
            Writer("fs-rotate", file_writer(rotating), rates=(1800e3, 2800e3), empty=rotate(rotating),
                   empty_every_s=hours(6)),
        ]
        fills, rotation = writers[:2], writers[2]
        # the rotation starts 10 h at scale after the worker (ready or not), so that the forecaster has seen its
        # cycles for 14 h when it may first forecast (a day of history); the fills once the worker is ready
        await asyncio.sleep(max(0.0, CALM_S - (datetime.now(timezone.utc) - watch.started_at).total_seconds()))
        rotation.start()
        await calm_before_the_fault(watch, worker, CALM_S)
        for writer in fills:
            writer.start()
        await until(lambda: all(w.full_at is not None for w in fills), FILL_BOUND_S)
        await until(lambda: any("runs out in" in i.summary for i in watch.incidents), 10)  # the last batches
        for writer in writers:
            writer.stopping.set()
        stop.set()
        await asyncio.wait_for(collecting, 60)

    assert all(w.full_at is not None for w in fills), [(w.name, w.error) for w in writers]
    where = f"predictions: {[(p.signal, p.status.value, p.ts.isoformat()) for _, p in watch.predictions]}\n" \
            f"worker: {worker.output[-3000:]}"
    for writer, fragment in ((fills[0], f"mountpoint={filling}"), (fills[1], "redis_used_memory_bytes")):
        early = [(at, p) for at, p in watch.notices(fragment) if at < writer.full_at]   # arrived before full
        assert early, f"no notice for {fragment} before it was full at {writer.full_at}\n{where}"
        arrived, first = early[0]
        assert first.exhaustion_lower_bound <= first.exhaustion_at, first
        lead = (writer.full_at - arrived).total_seconds()
        print(f"\n{writer.name}: first notice {lead:.0f} s before full ({at_scale(lead)} at scale), "
              f"{first.severity.value}, foreseen at {first.exhaustion_at:%H:%M:%S}, full at {writer.full_at:%H:%M:%S}; "
              f"{watch.timeline(notice=arrived, full=writer.full_at)}")
    assert watch.notices(f"mountpoint={rotating}") == [], f"the rotation raised a notice\n{where}"
    assert any("runs out in" in i.summary for i in watch.incidents), \
        f"no incident carries a forecast: {[i.summary for i in watch.incidents]}"
