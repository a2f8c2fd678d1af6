"""Record real series at rest (and under real faults) from Redis, MariaDB and PostgreSQL, as the stream sees them.

    .venv/bin/python bench/anomaly/record.py [--clean-s 600] [--interval 1] [--out bench/anomaly/recorded]

Starts the test suite's servers on free ports, puts light steady traffic on them (the fault tests' load),
collects with the real plugins every ``interval`` seconds, turns counters into rates with
:class:`~kubestack.models.counters.CounterRate` exactly as ``pipeline/detection.py`` does, and writes:

- ``clean/<target>__<series>.csv``: the first ``clean_s`` seconds, no fault (label: no anomalies); series
  constant all along are left out;
- ``faults/<target>__<series>.csv``: the whole recording, clean part then a fault phase in which faults of
  ``tests/fault_injection.py`` are injected and restored; ``faults/labels.json`` gives, per file, the fault
  onsets (the generator's format: one timestamp per anomaly). Only the series the fault is about are kept
  (``FAULT_SERIES``): a fault does not show in every metric of its server, and an unlabelled reaction in an
  unrelated metric is not a false alarm one can count honestly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import re
import secrets
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kubestack.models.counters import CounterRate, is_counter  # noqa: E402
from kubestack.pipeline.detection import series_key  # noqa: E402
from kubestack.plugins.registry import get_plugin  # noqa: E402
from tests.fault_injection import (  # noqa: E402
    MariadbConnectionsExhausted, MariadbRowLock, PostgresConnectionsExhausted, PostgresRowLock, RedisMemoryFull,
    redis_client)
from tests.services.mariadb import running_mariadb  # noqa: E402
from tests.services.postgresql import running_postgresql  # noqa: E402
from tests.services.redis import start_redis  # noqa: E402

# fault name -> (target, regular expressions of the series it is about)
FAULT_SERIES = {
    "redis-memory-full": ("redis", (r"^redis_(used_memory|evicted|memory|keys|db_keys|rss)",)),
    "mariadb-row-lock": ("mysql", (r"lock", r"^mysql_threads_running")),
    "postgres-connections": ("postgresql", (r"connection", r"backends", r"^pg_sessions", r"activity")),
    "mariadb-connections": ("mysql", (r"^mysql_threads_connected", r"connection")),
    "postgres-row-lock": ("postgresql", (r"lock", r"wait")),
}


class Load(threading.Thread):
    """Light steady traffic (the fault tests' load): a few commands on each server every 0.2 s."""

    def __init__(self, cache, mariadb, postgres) -> None:
        super().__init__(name="record-load", daemon=True)
        self.servers = cache, mariadb, postgres
        self.stopping = threading.Event()

    def run(self) -> None:
        cache, mariadb, postgres = self.servers
        rounds = 0
        with redis_client(cache) as r, mariadb.admin() as m, postgres.admin() as p:
            while not self.stopping.wait(0.2):
                with contextlib.suppress(Exception):
                    r.incr("load:rounds")
                    r.set(f"load:{rounds % 50}", "v" * 100)
                    with m.cursor() as cur:
                        cur.execute("SELECT qty FROM shop.stock WHERE id = 2")
                    p.execute("SELECT qty FROM stock WHERE id = 2").fetchone()
                rounds += 1


def seed(mariadb, postgres) -> None:
    with mariadb.admin() as admin, admin.cursor() as cur:
        cur.execute("CREATE TABLE shop.stock (id INT PRIMARY KEY, qty INT) ENGINE=InnoDB")
        cur.execute("INSERT INTO shop.stock VALUES (1, 100), (2, 100)")
    with postgres.admin() as admin:
        admin.execute("CREATE TABLE stock (id int PRIMARY KEY, qty int)")
        admin.execute("INSERT INTO stock VALUES (1, 100), (2, 100)")


class Recorder:
    """Collects every target each tick; keeps ``(ts, value)`` per series, counters as rates."""

    def __init__(self, plugins: dict) -> None:
        self.plugins = plugins
        self.rates: dict[str, CounterRate] = {}
        self.series: dict[str, list[tuple[float, float]]] = {}

    async def tick(self) -> None:
        results = await asyncio.gather(*(p.collect() for p in self.plugins.values()), return_exceptions=True)
        for target, samples in zip(self.plugins, results):
            if isinstance(samples, BaseException):
                continue
            for sample in samples:
                key = f"{target}__{series_key(sample)}"
                ts, value = sample.ts.timestamp(), sample.value
                if is_counter(sample.name):
                    value = self.rates.setdefault(key, CounterRate()).update(ts, value)
                if math.isfinite(value):
                    self.series.setdefault(key, []).append((ts, value))

    async def run_until(self, end: float, interval: float) -> None:
        while time.time() < end:
            t0 = time.monotonic()
            await self.tick()
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - t0)))


def faults(cache, mariadb, postgres) -> list[tuple[str, object]]:
    return [
        ("redis-memory-full", RedisMemoryFull("memory", "memory", "redis", "memory", server=cache)),
        ("mariadb-row-lock", MariadbRowLock("lock", "lock", "mysql", "lock", server=mariadb)),
        ("postgres-connections", PostgresConnectionsExhausted("conn", "conn", "postgresql", "conn",
                                                              server=postgres)),
        ("mariadb-connections", MariadbConnectionsExhausted("conn", "conn", "mysql", "conn", server=mariadb)),
        ("postgres-row-lock", PostgresRowLock("lock", "lock", "postgresql", "lock", server=postgres)),
    ]


async def record(args: argparse.Namespace, cache, mariadb, postgres) -> tuple[Recorder, dict, float]:
    configs = {
        "redis": {"host": cache.host, "port": cache.port, "password": {"value": cache.password}},
        "mysql": {"host": mariadb.host, "port": mariadb.port, "user": mariadb.user,
                  "password": {"value": mariadb.password}, "lock_wait_min_s": 1},
        "postgresql": {"host": postgres.host, "port": postgres.port, "user": postgres.user,
                       "password": {"value": postgres.password}, "dbname": postgres.dbname},
    }
    plugins = {name: get_plugin(name).create(get_plugin(name).config_model.model_validate(cfg))
               for name, cfg in configs.items()}
    rec = Recorder(plugins)
    windows: dict[str, list[tuple[float, float]]] = {}
    try:
        start = time.time()
        clean_end = start + args.clean_s
        await rec.run_until(clean_end, args.interval)
        # two faults at once on different servers (the first three), then the other two
        plan = faults(cache, mariadb, postgres)
        for group in (plan[:3], plan[3:]):
            await rec.run_until(time.time() + args.gap_s, args.interval)
            t_on = time.time()
            for name, fault in group:
                await fault.inject()
                windows.setdefault(name, []).append((t_on, t_on + args.fault_s))
            await rec.run_until(t_on + args.fault_s, args.interval)
            for _, fault in group:
                await fault.restore()
        await rec.run_until(time.time() + args.gap_s, args.interval)
    finally:
        for p in plugins.values():
            with contextlib.suppress(Exception):
                await p.close()
    return rec, windows, clean_end


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(round(ts), timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _file(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", key).strip("_") + ".csv"


def _iso_ms(ts: float) -> str:
    """Milliseconds kept: a rate is a whole number of events over the real interval, which a detector sees."""
    return datetime.fromtimestamp(round(ts, 3), timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _write(path: Path, points: list[tuple[float, float]]) -> None:
    lines = ["timestamp,value", *(f"{_iso_ms(ts)},{v:.6g}" for ts, v in points)]
    path.write_text("\n".join(lines) + "\n")


def save(rec: Recorder, windows: dict, clean_end: float, out: Path) -> tuple[int, int]:
    (out / "clean").mkdir(parents=True, exist_ok=True)
    (out / "faults").mkdir(parents=True, exist_ok=True)
    labels: dict[str, list[str]] = {}
    for key, points in sorted(rec.series.items()):
        if len(points) < 0.5 * (points[-1][0] - points[0][0] + 1) or len(points) < 20:
            continue
        clean = [p for p in points if p[0] < clean_end]
        if len({v for _, v in clean}) > 1:      # constant series never alert (tested); they only take room
            _write(out / "clean" / _file(key), clean)
        target = key.split("__", 1)[0]
        onsets = sorted(t for name, (tgt, patterns) in FAULT_SERIES.items() if tgt == target
                        and any(re.search(p, key.split("__", 1)[1]) for p in patterns)
                        for t, _ in windows.get(name, []))
        if onsets:
            _write(out / "faults" / _file(key), points)
            labels[_file(key)] = [_iso(t) for t in onsets]
    (out / "faults" / "labels.json").write_text(json.dumps(labels, indent=2) + "\n")
    return len(list((out / "clean").glob("*.csv"))), len(labels)


def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        base = Path(tmp)
        process, cache = start_redis("record", base, secrets.token_hex(8), "--maxmemory", "64mb",
                                     "--maxmemory-policy", "allkeys-lru")
        stack.callback(process.stop)
        mariadb = stack.enter_context(running_mariadb(base / "mariadb"))
        postgres = stack.enter_context(running_postgresql("record"))
        seed(mariadb, postgres)
        load = Load(cache, mariadb, postgres)
        load.start()
        stack.callback(load.stopping.set)
        rec, windows, clean_end = asyncio.run(record(args, cache, mariadb, postgres))
    clean, faulty = save(rec, windows, clean_end, args.out)
    print(json.dumps({"series": len(rec.series), "clean_files": clean, "fault_files": faulty,
                      "windows": {k: [[_iso(a), _iso(b)] for a, b in v] for k, v in windows.items()}}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean-s", type=float, default=600.0)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--fault-s", type=float, default=60.0, help="each fault stays in place this long")
    parser.add_argument("--gap-s", type=float, default=60.0, help="health before and after each fault group")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "recorded")
    main(parser.parse_args())
