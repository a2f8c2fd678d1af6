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
mariadb-lock       mysql        a transaction holds the hot products' inventory rows: orders wait, then 503
mariadb-flood      mysql        a flood of slow queries fills the server: orders slow down, then time out
cpu-hog            host         busy processes on every core: everything on the host slows down
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
    _held: list = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.name, self.cause = "pg-connections", "postgresql"
        self.summary = "another client takes every connection slot: the shop's new connections are refused"

    def inject(self) -> None:
        for _ in range(1000):
            try:
                self._held.append(_postgres(self.config, autocommit=True))
            except psycopg.OperationalError as exc:
                if "too many" in str(exc) or "remaining connection slots" in str(exc):
                    return
                raise FaultError(f"a connection failed for another reason: {exc}") from exc
        raise FaultError("1000 connections and PostgreSQL still accepts more")

    def restore(self) -> None:
        for conn in self._held:
            conn.close()
        self._held.clear()


@dataclass
class RedisMaxmemoryLowered(Fault):
    lowered: str = "2mb"
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


@dataclass
class MariadbRowLock(Fault):
    _holder: pymysql.connections.Connection | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.name, self.cause = "mariadb-lock", "mysql"
        self.summary = "a transaction holds the hot products' inventory rows: orders wait on the lock, then fail"

    def inject(self) -> None:
        self._holder = _mariadb(self.config)
        self._holder.begin()
        with self._holder.cursor() as cur:
            if not cur.execute("SELECT product_id FROM inventory WHERE product_id <= %s FOR UPDATE",
                               (self.config.hot_products,)):
                raise FaultError("no inventory rows to lock: is the demo's schema in place?")

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
        self.summary = (f"{self.clients} clients run slow queries that lock the inventory in turn: orders queue "
                        "behind them")

    def _flood(self) -> None:
        with contextlib.suppress(pymysql.Error), _mariadb(self.config) as conn, conn.cursor() as cur:
            while not self._stop.is_set():
                conn.begin()
                cur.execute("SELECT product_id FROM inventory WHERE product_id <= %s FOR UPDATE",
                            (self.config.hot_products,))
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


FAULTS: dict[str, type[Fault]] = {cls(DemoConfig.model_construct()).name: cls for cls in (
    PostgresRowLock, PostgresConnectionsExhausted, RedisMaxmemoryLowered, RedisStall, KafkaPaused, MariadbRowLock,
    MariadbSlowFlood, CpuHog)}


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
