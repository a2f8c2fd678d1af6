"""Real faults for the fault tests: each one puts a real server into a state an operator would be paged about
(memory full, a stall, connections exhausted, a held row lock, a risky CONFIG SET, a burst of failed logins that
only its log shows) and takes it back out.

The clients here are blocking (redis-py, pymysql, psycopg); every call runs in a thread so the agent, which
collects on the test's event loop, keeps its rhythm while a fault is being injected."""

from __future__ import annotations

import asyncio
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import psycopg
import pymysql
import redis

from tests.services.mariadb import MariadbServer
from tests.services.postgresql import PostgresServer
from tests.services.redis import RedisServer

FILL_VALUE = "x" * 10_240
FILL_BATCH = 500


def redis_client(server: RedisServer, timeout_s: float = 30.0) -> redis.Redis:
    """A client that outlasts a stall (redis-py's default socket timeout is 5 s)."""
    return redis.Redis(host=server.host, port=server.port, password=server.password, decode_responses=True,
                       protocol=2, socket_timeout=timeout_s)


class FaultNotInjectedError(AssertionError):
    """The server never reached the faulty state the test wanted (so a missing incident would prove nothing)."""


@dataclass
class Fault(ABC):
    """One fault: ``inject`` puts it in place, ``restore`` returns the server to health."""

    name: str
    kind: str
    target: str
    expects: str
    """The signal the fault should raise (for the summary table)."""
    causes: tuple[str, ...] = field(default=(), kw_only=True)
    """Root causes a diagnosis may name first (prefixes); by default ``expects``."""

    @property
    def accepted_causes(self) -> tuple[str, ...]:
        return self.causes or (self.expects,)

    async def inject(self) -> None:
        await asyncio.to_thread(self._inject)

    async def restore(self) -> None:
        await asyncio.to_thread(self._restore)

    @abstractmethod
    def _inject(self) -> None: ...

    @abstractmethod
    def _restore(self) -> None: ...


def fill_redis(client: redis.Redis, stop_when, limit_bytes: int) -> int:
    """SET 10 KiB values in pipelines until ``stop_when(info)`` holds; the number of keys written."""
    written = 0
    while not stop_when(client.info()):
        if written * len(FILL_VALUE) > limit_bytes:
            raise FaultNotInjectedError(f"wrote {written} keys and the condition never held: {client.info('memory')}")
        pipe = client.pipeline(transaction=False)
        for i in range(written, written + FILL_BATCH):
            pipe.set(f"fill:{i}", FILL_VALUE)
        pipe.execute()
        written += FILL_BATCH
    return written


@dataclass
class RedisMemoryFull(Fault):
    """Writes keys until Redis sits at maxmemory and allkeys-lru has evicted some."""

    server: RedisServer = field(kw_only=True)

    def _inject(self) -> None:
        with self.server.connect() as client:
            limit = int(client.config_get("maxmemory")["maxmemory"])
            fill_redis(client, lambda info: info["evicted_keys"] > 0, 4 * limit)

    def _restore(self) -> None:
        with self.server.connect() as client:
            client.flushall()


@dataclass
class RedisStall(Fault):
    """``DEBUG SLEEP`` longer than the plugin's timeout, from its own connection: collection times out."""

    server: RedisServer = field(kw_only=True)
    seconds: float = field(default=8.0, kw_only=True)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    def _inject(self) -> None:
        def sleep() -> None:
            with redis_client(self.server, self.seconds + 10) as client:
                client.execute_command("DEBUG", "SLEEP", self.seconds)

        self._thread = threading.Thread(target=sleep, name="redis-debug-sleep", daemon=True)
        self._thread.start()

    def _restore(self) -> None:
        if self._thread is not None:
            self._thread.join()


@dataclass
class RedisMaxmemoryLowered(Fault):
    """A risky change: with data in Redis, ``CONFIG SET maxmemory`` far below what is used."""

    server: RedisServer = field(kw_only=True)
    data_bytes: int = field(default=20 * 1024 * 1024, kw_only=True)
    lowered: str = field(default="10mb", kw_only=True)
    _previous: str = field(default="", init=False, repr=False)

    def _inject(self) -> None:
        with self.server.connect() as client:
            self._previous = client.config_get("maxmemory")["maxmemory"]
            fill_redis(client, lambda info: info["used_memory"] >= self.data_bytes, 2 * self.data_bytes)
            client.config_set("maxmemory", self.lowered)

    def _restore(self) -> None:
        with self.server.connect() as client:
            client.config_set("maxmemory", self._previous)
            client.flushall()


def _scalar(conn: pymysql.connections.Connection, sql: str) -> str:
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[1 if sql.upper().startswith("SHOW") else 0]


@dataclass
class MariadbConnectionsExhausted(Fault):
    """``SET GLOBAL max_connections`` low, then client connections up to one below it."""

    server: MariadbServer = field(kw_only=True)
    limit: int = field(default=15, kw_only=True)
    _previous: int = field(default=0, init=False, repr=False)
    _held: list = field(default_factory=list, init=False, repr=False)

    def _inject(self) -> None:
        with self.server.admin() as admin:
            self._previous = int(_scalar(admin, "SELECT @@GLOBAL.max_connections"))
            admin.cursor().execute(f"SET GLOBAL max_connections = {self.limit}")
            while int(_scalar(admin, "SHOW GLOBAL STATUS LIKE 'Threads_connected'")) < self.limit - 1:
                self._held.append(self.server.connect())

    def _restore(self) -> None:
        for conn in self._held:
            conn.close()
        self._held.clear()
        with self.server.admin() as admin:
            admin.cursor().execute(f"SET GLOBAL max_connections = {self._previous}")


@dataclass
class MariadbRowLock(Fault):
    """One transaction holds a row ``FOR UPDATE`` and stays open; another waits for the row."""

    server: MariadbServer = field(kw_only=True)
    _holder: pymysql.connections.Connection | None = field(default=None, init=False, repr=False)
    _waiter: threading.Thread | None = field(default=None, init=False, repr=False)

    def _inject(self) -> None:
        self._holder = self.server.admin()
        self._holder.begin()
        self._holder.cursor().execute("SELECT * FROM shop.stock WHERE id = 1 FOR UPDATE")

        def wait() -> None:
            with self.server.admin() as waiter, waiter.cursor() as cur:
                cur.execute("SET SESSION innodb_lock_wait_timeout = 120")
                cur.execute("UPDATE shop.stock SET qty = qty - 1 WHERE id = 1")

        self._waiter = threading.Thread(target=wait, name="mariadb-lock-waiter", daemon=True)
        self._waiter.start()

    def _restore(self) -> None:
        if self._holder is not None:
            self._holder.rollback()
            self._holder.close()
        if self._waiter is not None:
            self._waiter.join(timeout=30)


@dataclass
class PostgresRowLock(Fault):
    """One transaction updates a row and stays open (idle in transaction); another waits for the row."""

    server: PostgresServer = field(kw_only=True)
    _holder: psycopg.Connection | None = field(default=None, init=False, repr=False)
    _waiter: threading.Thread | None = field(default=None, init=False, repr=False)

    def _inject(self) -> None:
        self._holder = self.server.admin(autocommit=False)
        self._holder.execute("UPDATE stock SET qty = qty - 1 WHERE id = 1")

        def wait() -> None:
            with self.server.admin() as waiter:
                waiter.execute("UPDATE stock SET qty = qty - 2 WHERE id = 1")

        self._waiter = threading.Thread(target=wait, name="postgres-lock-waiter", daemon=True)
        self._waiter.start()

    def _restore(self) -> None:
        if self._holder is not None:
            self._holder.rollback()
            self._holder.close()
        if self._waiter is not None:
            self._waiter.join(timeout=30)


@dataclass
class PostgresConnectionsExhausted(Fault):
    """Client connections up to one below the slots open to ordinary roles (max_connections - reserved)."""

    server: PostgresServer = field(kw_only=True)
    _held: list = field(default_factory=list, init=False, repr=False)

    def _inject(self) -> None:
        with self.server.admin() as admin:
            usable = admin.execute("SELECT current_setting('max_connections')::int "
                                   "- current_setting('superuser_reserved_connections')::int").fetchone()[0]
            clients = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
            while admin.execute(clients).fetchone()[0] < usable - 1:
                self._held.append(self.server.admin())

    def _restore(self) -> None:
        for conn in self._held:
            conn.close()
        self._held.clear()


@dataclass
class PostgresAuthFailures(Fault):
    """A burst of logins with a wrong password over TCP (a client with a stale secret, or someone guessing):
    PostgreSQL refuses each one and logs it (``FATAL:  password authentication failed for user ...``, by default);
    no metric or health rule sees it."""

    server: PostgresServer = field(kw_only=True)
    attempts: int = field(default=20, kw_only=True)
    pause_s: float = field(default=0.05, kw_only=True)

    def _inject(self) -> None:
        for _ in range(self.attempts):
            try:
                psycopg.connect(host=self.server.host, port=self.server.port, user=self.server.user,
                                password="not-" + self.server.password, dbname=self.server.dbname,
                                connect_timeout=5).close()
            except psycopg.OperationalError as exc:
                if "password authentication failed" not in str(exc):
                    raise FaultNotInjectedError(f"the login failed for another reason: {exc}") from exc
            else:
                raise FaultNotInjectedError("PostgreSQL accepted a wrong password")
            time.sleep(self.pause_s)

    def _restore(self) -> None:
        """Nothing to undo: every refused login has ended."""
