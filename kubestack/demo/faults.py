"""Faults to inject into the demo's dependencies, each felt by the shop or its order-writer (a different component
from the one at fault): ``inject`` puts the fault in place, ``restore`` takes it out (both blocking; run them in a
thread from async code). Every fault acts only on the servers of the demo's config, through its own credentials.

=================  ===========  ==========================================================================
name               cause        what the application feels
=================  ===========  ==========================================================================
pg-row-lock        postgresql   a transaction holds the hot products' stock rows: orders wait, then 503
pg-connections     postgresql   another client takes every connection slot: new connections refused, 503
redis-maxmemory    redis        maxmemory cut far below the cache: evictions, misses, reads go to PostgreSQL
redis-stall        redis        the cache process is stopped (SIGSTOP): every lookup times out, slow reads
kafka-pause        kafka        the broker is stopped (SIGSTOP): orders cannot be published, 503, lag
mariadb-lock       mysql        a transaction locks the end of the orders table: new orders wait, then 503
mariadb-flood      mysql        slow reports lock the end of the orders table in turn: orders queue, time out
cpu-hog            host         busy processes on every core: everything on the host slows down
volume-full        host         the filesystem of the order-events tablespace filled: the order-writer fails
=================  ===========  ==========================================================================
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
import pymysql
import redis

from kubestack.demo.config import DemoConfig
from kubestack.demo.deps import postgres_conninfo
from kubestack.errors import KubestackError


class FaultError(KubestackError):
    """A fault could not be put in place (so a missing incident would prove nothing), or is unknown."""


@dataclass
class Fault(ABC):
    config: DemoConfig
    name: str = field(init=False, default="")
    cause: str = field(init=False, default="")
    """The plugin (resource kind) of the component at fault."""
    summary: str = field(init=False, default="")

    @abstractmethod
    def inject(self) -> None: ...

    @abstractmethod
    def restore(self) -> None: ...


def _redis(config: DemoConfig, timeout_s: float = 5.0) -> redis.Redis:
    return redis.Redis(host=config.redis.host, port=config.redis.port,
                       password=config.redis.password.get_secret_value() or None, socket_timeout=timeout_s,
                       decode_responses=True)


def _postgres(config: DemoConfig, **options: object) -> psycopg.Connection:
    info = postgres_conninfo(config.postgresql, config.timeout_s) | {"options": "", "connect_timeout": 5,
                                                                     "application_name": "kubestack-demo-fault"}
    return psycopg.connect(**(info | options))


def _mariadb(config: DemoConfig) -> pymysql.connections.Connection:
    m = config.mariadb
    return pymysql.connect(host=m.host, port=m.port, user=m.user, password=m.password.get_secret_value(),
                           database=m.database, connect_timeout=5)


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError as exc:
        raise FaultError(f"process {pid} is gone") from exc


@dataclass
class PostgresRowLock(Fault):
    _holder: psycopg.Connection | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.name, self.cause = "pg-row-lock", "postgresql"
        self.summary = "a transaction holds the hot products' stock rows: orders wait on the lock, then fail"

    def inject(self) -> None:
        self._holder = _postgres(self.config, autocommit=False)
        rows = self._holder.execute("SELECT product_id FROM stock WHERE product_id <= %s FOR UPDATE",
                                    (self.config.hot_products,)).fetchall()
        if not rows:
            raise FaultError("no stock rows to lock: is the demo's schema in place?")

    def restore(self) -> None:
        if self._holder is not None:
            with contextlib.suppress(psycopg.Error):
                self._holder.rollback()
            self._holder.close()
            self._holder = None


@dataclass
class PostgresConnectionsExhausted(Fault):
    """A leaking client: takes every free connection slot and keeps grabbing each one that frees up."""

    _held: list = field(default_factory=list, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _thief: threading.Thread | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.name, self.cause = "pg-connections", "postgresql"
        self.summary = "a leaking client takes every connection slot: the shop's new connections are refused"

    def _grab(self) -> bool:
        """One more connection; False when the server refuses it for want of slots."""
        try:
            self._held.append(_postgres(self.config, autocommit=True))
        except psycopg.OperationalError as exc:
            if "too many" in str(exc) or "remaining connection slots" in str(exc):
                return False
            raise FaultError(f"a connection failed for another reason: {exc}") from exc
        return True

    def _keep_grabbing(self) -> None:
        while not self._stop.wait(0.05):
            with contextlib.suppress(FaultError):
                while self._grab():
                    pass

    def inject(self) -> None:
        for _ in range(1000):
            if not self._grab():
                self._stop.clear()
                self._thief = threading.Thread(target=self._keep_grabbing, name="pg-connection-thief", daemon=True)
                self._thief.start()
                return
        raise FaultError("1000 connections and PostgreSQL still accepts more")

    def restore(self) -> None:
        self._stop.set()
        if self._thief is not None:
            self._thief.join(timeout=30)
            self._thief = None
        for conn in self._held:
            conn.close()
        self._held.clear()


@dataclass
class RedisMaxmemoryLowered(Fault):
    lowered: str = "1mb"
    _previous: str = field(default="", init=False, repr=False)

    def __post_init__(self) -> None:
        self.name, self.cause = "redis-maxmemory", "redis"
        self.summary = (f"maxmemory cut to {self.lowered}: the cache evicts what it holds, reads miss and go to "
                        "PostgreSQL")

    def inject(self) -> None:
        with _redis(self.config) as client:
            self._previous = client.config_get("maxmemory")["maxmemory"]
            client.config_set("maxmemory", self.lowered)
            if client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction":
                raise FaultError("the cache's policy is noeviction: lowering maxmemory would fail writes instead")

    def restore(self) -> None:
        with _redis(self.config) as client:
            client.config_set("maxmemory", self._previous or "0")


def redis_pid(config: DemoConfig) -> int:
    with _redis(config) as client:
        return int(client.info("server")["process_id"])


@dataclass
class RedisStall(Fault):
    _pid: int | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.name, self.cause = "redis-stall", "redis"
        self.summary = "the cache process is stopped (SIGSTOP): every lookup waits for its timeout"

    def inject(self) -> None:
        self._pid = redis_pid(self.config)
        _signal(self._pid, signal.SIGSTOP)

    def restore(self) -> None:
        if self._pid is not None:
            _signal(self._pid, signal.SIGCONT)
            self._pid = None


@dataclass
class KafkaPaused(Fault):
    broker_pid: Callable[[], int | None] = field(default=lambda: None)
    """The pid of the demo's own broker (never a broker the pipeline itself runs on)."""
    _pid: int | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.name, self.cause = "kafka-pause", "kafka"
        self.summary = "the broker is stopped (SIGSTOP): orders cannot be published, the order-writer lags"

    def inject(self) -> None:
        pid = self.broker_pid()
        if pid is None:
            raise FaultError("the demo has no broker of its own to pause (pausing the stack's broker would stop "
                             "the pipeline that should see the fault)")
        self._pid = pid
        _signal(pid, signal.SIGSTOP)

    def restore(self) -> None:
        if self._pid is not None:
            _signal(self._pid, signal.SIGCONT)
            self._pid = None


TAIL_LOCK = "SELECT id FROM orders WHERE id > (SELECT coalesce(max(id), 0) - 10 FROM orders) FOR UPDATE"
"""A next-key lock on the last orders and the gap after them: every new order's INSERT waits for it."""


@dataclass
class MariadbRowLock(Fault):
    _holder: pymysql.connections.Connection | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.name, self.cause = "mariadb-lock", "mysql"
        self.summary = "a transaction locks the end of the orders table: new orders wait on the lock, then fail"

    def inject(self) -> None:
        self._holder = _mariadb(self.config)
        self._holder.begin()
        with self._holder.cursor() as cur:
            cur.execute(TAIL_LOCK)

    def restore(self) -> None:
        if self._holder is not None:
            with contextlib.suppress(pymysql.Error):
                self._holder.rollback()
            self._holder.close()
            self._holder = None


@dataclass
class MariadbSlowFlood(Fault):
    clients: int = 12
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.name, self.cause = "mariadb-flood", "mysql"
        self.summary = (f"{self.clients} clients run slow reports that lock the end of the orders table in turn: "
                        "new orders queue behind them")

    def _flood(self) -> None:
        with contextlib.suppress(pymysql.Error), _mariadb(self.config) as conn, conn.cursor() as cur:
            while not self._stop.is_set():
                conn.begin()
                cur.execute(TAIL_LOCK)
                cur.execute("SELECT SLEEP(1.5)")
                conn.rollback()

    def inject(self) -> None:
        self._stop.clear()
        for i in range(self.clients):
            thread = threading.Thread(target=self._flood, name=f"mariadb-flood-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def restore(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()


@dataclass
class CpuHog(Fault):
    per_core: int = 2
    _procs: list[subprocess.Popen] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.name, self.cause = "cpu-hog", "host"
        self.summary = f"{self.per_core} busy processes per core: the shop and its servers wait for the CPU"

    def inject(self) -> None:
        for _ in range(self.per_core * (os.cpu_count() or 1)):
            self._procs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"],
                                                stdin=subprocess.DEVNULL, start_new_session=True))

    def restore(self) -> None:
        for proc in self._procs:
            proc.kill()
        for proc in self._procs:
            proc.wait()
        self._procs.clear()


@dataclass
class VolumeFull(Fault):
    """Fills the small filesystem that holds PostgreSQL's order-events tablespace (``config.volume``): the next
    page the table needs cannot be allocated, the order-writer's inserts fail and its lag grows."""

    def __post_init__(self) -> None:
        self.name, self.cause = "volume-full", "host"
        self.summary = "the filesystem of PostgreSQL's order-events tablespace filled: the order-writer's inserts fail"

    def inject(self) -> None:
        if self.config.volume is None:
            raise FaultError("the demo has no volume of its own for its tablespace (filling a shared filesystem "
                             "would break more than the demo)")
        path = self.config.volume / "kubestack-demo-fill"
        with path.open("wb", buffering=0) as out:
            for size in (1024 * 1024, 4096, 512):  # big blocks, then what still fits
                block = b"\0" * size
                try:
                    while True:
                        out.write(block)
                except OSError as exc:
                    if exc.errno != 28:  # ENOSPC: full, as wanted
                        raise FaultError(f"filling {self.config.volume} failed: {exc}") from exc
            os.fsync(out.fileno())

    def restore(self) -> None:
        if self.config.volume is not None:
            (self.config.volume / "kubestack-demo-fill").unlink(missing_ok=True)


FAULTS: dict[str, type[Fault]] = {cls(DemoConfig.model_construct()).name: cls for cls in (
    PostgresRowLock, PostgresConnectionsExhausted, RedisMaxmemoryLowered, RedisStall, KafkaPaused, MariadbRowLock,
    MariadbSlowFlood, CpuHog, VolumeFull)}


def fault(name: str, config: DemoConfig, **options: object) -> Fault:
    """The fault called ``name`` on the demo of ``config``; ``FaultError`` naming the known ones otherwise."""
    if name not in FAULTS:
        raise FaultError(f"no fault {name!r}; known: {', '.join(FAULTS)}")
    return FAULTS[name](config, **options)


def hold(one: Fault, seconds: float, *, poll: Callable[[], None] = lambda: None) -> None:
    """Injects ``one``, keeps it ``seconds`` (calling ``poll`` each second), and always restores it."""
    one.inject()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            poll()
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    finally:
        one.restore()
