"""Record real capacity series: a size-limited tmpfs and a Redis with ``maxmemory``, filled by real writers.

    .venv/bin/python bench/forecast/record.py SCENARIO [--seconds 720] [--seed 1] [--out bench/forecast/recorded]

Scenarios (run as root: the filesystem ones mount a tmpfs):

- ``fs_fill``: a 64 MiB tmpfs filled by a writer whose rate varies (a "daily" swing, random bursts, a slow
  rise) until the filesystem is full (ENOSPC); sampled with ``os.statvfs`` every second.
- ``fs_rotate``: the same tmpfs holding a log that is rotated (``rotate 1``: the previous file kept, the one
  before deleted) every 40-80 s (3.3-6.7 compressed hours); it never fills (a sawtooth).
- ``redis_fill``: a real redis-server (``tests/services/redis.py``) with ``maxmemory 32mb`` and
  ``noeviction``, a writer adding keys at a varying rate until Redis answers OOM; ``INFO memory`` every second.
- ``redis_expiry``: the same Redis, keys written with a TTL in waves (cache expiry): memory rises and falls.

Time is compressed: each real second is written as five minutes (``COMPRESS = 300``), so a 12-minute run is
a 60-hour series at a 5-minute step, the resolution capacity series are usually scraped at. The CSV is
``timestamp,value`` (epoch seconds, compressed time from a fixed origin) and ``recorded/meta.json`` gives
per file the capacity, the compressed time of the real exhaustion (None when it never filled) and how it
was made.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.services.redis import start_redis  # noqa: E402

COMPRESS = 300.0
ORIGIN = 1_700_000_000.0          # compressed time starts here (2023-11-14T22:13:20Z)
DAY_REAL = 86_400 / COMPRESS      # one compressed day in real seconds (288 s)


def rate_factor(rng: random.Random, elapsed: float, total: float) -> float:
    """A varying write rate: a daily swing, a slow rise over the run and a lognormal burst factor."""
    daily = 1.0 + 0.6 * math.sin(2 * math.pi * elapsed / DAY_REAL)
    rise = 0.6 + 0.8 * elapsed / total
    return max(0.05, daily * rise * rng.lognormvariate(0.0, 0.35))


class Recorder:
    def __init__(self, sample) -> None:
        self.sample = sample
        self.rows: list[tuple[float, float]] = []
        self.start = time.monotonic()
        self.next_at = self.start

    def due(self) -> bool:
        return time.monotonic() >= self.next_at

    def take(self) -> None:
        elapsed = time.monotonic() - self.start
        self.rows.append((ORIGIN + elapsed * COMPRESS, float(self.sample())))
        self.next_at += 1.0

    def compressed(self) -> float:
        return ORIGIN + (time.monotonic() - self.start) * COMPRESS


def _statvfs_used(path: Path) -> tuple[float, float]:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_blocks * st.f_frsize


def run_fs(kind: str, seconds: float, seed: int) -> tuple[list[tuple[float, float]], float, float | None]:
    rng = random.Random(seed)
    mount = Path(tempfile.mkdtemp(prefix="forecast-tmpfs-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)
    try:
        capacity = _statvfs_used(mount)[1]
        rec = Recorder(lambda: _statvfs_used(mount)[0])
        full_at = _write_fs(kind, mount, rec, rng, seconds, capacity)
        return rec.rows, capacity, full_at
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
        mount.rmdir()


def _write_fs(kind: str, mount: Path, rec: Recorder, rng: random.Random, seconds: float,
              capacity: float) -> float | None:
    # fs_fill: mean rate fills 64 MiB in about 55 compressed hours; fs_rotate: peaks near 40% of the size
    mean = capacity / (55 * 3600 / COMPRESS) if kind == "fs_fill" else capacity * 0.12 / 60
    factor, factor_until, full_at, after_full = 1.0, 0.0, None, 0.0
    log, index, rotate_at = None, 0, rng.uniform(40, 80)
    while time.monotonic() - rec.start < seconds:
        elapsed = time.monotonic() - rec.start
        if elapsed >= factor_until:
            factor, factor_until = rate_factor(rng, elapsed, seconds), elapsed + rng.uniform(2, 8)
        if kind == "fs_rotate" and elapsed >= rotate_at:
            index += 1
            (mount / f"app.log.{index - 2}").unlink(missing_ok=True)
            if log is not None:
                log.close()
                (mount / "app.log").rename(mount / f"app.log.{index - 1}")
            log, rotate_at = None, elapsed + rng.uniform(40, 80)
        if log is None:
            log = (mount / "app.log").open("ab", buffering=0) if kind == "fs_rotate" else None
        chunk = b"x" * int(mean * factor * 0.1)
        if full_at is None:
            try:
                target = log or (mount / f"data-{int(elapsed) // 10:04d}.bin").open("ab", buffering=0)
                target.write(chunk)
                if target is not log:
                    target.close()
            except OSError:   # ENOSPC: the filesystem is full
                full_at, after_full = rec.compressed(), elapsed
        if rec.due():
            rec.take()
        if full_at is not None and elapsed - after_full > 20:
            break
        time.sleep(0.1)
    if log is not None:
        log.close()
    return full_at


def run_redis(kind: str, seconds: float, seed: int) -> tuple[list[tuple[float, float]], float, float | None]:
    import redis

    rng = random.Random(seed)
    base = Path(tempfile.mkdtemp(prefix="forecast-redis-"))
    process, server = start_redis("forecast", base, secrets.token_hex(8), "--maxmemory", "32mb",
                                  "--maxmemory-policy", "noeviction")
    try:
        client = server.connect()
        capacity = float(client.info("memory")["maxmemory"])
        rec = Recorder(lambda: client.info("memory")["used_memory"])
        baseline = float(client.info("memory")["used_memory"])
        mean = (capacity - baseline) / (55 * 3600 / COMPRESS) if kind == "redis_fill" else capacity * 0.004
        factor, factor_until, full_at, after_full, n = 1.0, 0.0, None, 0.0, 0
        while time.monotonic() - rec.start < seconds:
            elapsed = time.monotonic() - rec.start
            if elapsed >= factor_until:
                factor, factor_until = rate_factor(rng, elapsed, seconds), elapsed + rng.uniform(2, 8)
            if kind == "redis_expiry" and (elapsed % 60) > 30:
                factor = 0.0   # waves: 30 s of writes, 30 s of nothing while keys expire
            count = int(mean * factor * 0.1 / 1100)
            if full_at is None and count:
                pipe = client.pipeline(transaction=False)
                for _ in range(count):
                    n += 1
                    pipe.set(f"k:{n}", "v" * 1000, ex=45 if kind == "redis_expiry" else None)
                try:
                    pipe.execute()
                except redis.exceptions.OutOfMemoryError:   # OOM command not allowed: Redis is full
                    full_at, after_full = rec.compressed(), elapsed
            if rec.due():
                rec.take()
            if full_at is not None and elapsed - after_full > 20:
                break
            time.sleep(0.1)
        client.close()
        return rec.rows, capacity, full_at
    finally:
        process.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=("fs_fill", "fs_rotate", "redis_fill", "redis_expiry"))
    parser.add_argument("--seconds", type=float, default=720.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "recorded")
    args = parser.parse_args()
    runner = run_fs if args.scenario.startswith("fs_") else run_redis
    rows, capacity, full_at = runner(args.scenario, args.seconds, args.seed)
    name = f"{args.scenario}_s{args.seed}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.csv").write_text("timestamp,value\n" + "".join(f"{t:.0f},{v:.0f}\n" for t, v in rows))
    meta_path = args.out / "meta.json"
    with (Path(tempfile.gettempdir()) / "forecast-record-meta.lock").open("w") as lock:   # runs may overlap
        fcntl.flock(lock, fcntl.LOCK_EX)
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        meta[f"{name}.csv"] = {"capacity": capacity, "exhausted_at": full_at, "scenario": args.scenario,
                               "seed": args.seed, "compress": COMPRESS, "real_seconds": args.seconds}
        meta_path.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    print(f"{name}: {len(rows)} samples, capacity {capacity:.0f}, exhausted at {full_at}")


if __name__ == "__main__":
    main()
