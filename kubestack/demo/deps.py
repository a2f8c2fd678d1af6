"""The demo's clients: a small PostgreSQL pool whose connections are replaced after a lifetime (as real pools do, so
a server out of connection slots is felt), a MariaDB pool run in threads, and the cache and the producer. Every call
is bounded by the config's timeout on the server side too (statement, lock and lock-wait timeouts), and a connection
that failed is dropped, never reused."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import psycopg
import pymysql

from kubestack.demo.config import DemoConfig, Endpoint


def postgres_conninfo(endpoint: Endpoint, timeout_s: float) -> dict:
    ms = int(timeout_s * 1000)
    return {"host": endpoint.host, "port": endpoint.port, "user": endpoint.user,
            "password": endpoint.password.get_secret_value(), "dbname": endpoint.database,
            "connect_timeout": max(1, int(timeout_s)), "autocommit": True, "application_name": "kubestack-demo",
            "options": f"-c statement_timeout={ms} -c lock_timeout={ms}"}


class PostgresPool:
    def __init__(self, endpoint: Endpoint, size: int, lifetime_s: float, timeout_s: float) -> None:
        self._conninfo = postgres_conninfo(endpoint, timeout_s)
        self._slots = asyncio.Semaphore(size)
        self._idle: list[tuple[psycopg.AsyncConnection, float]] = []
        self.lifetime_s = lifetime_s
        self.timeout_s = timeout_s

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        async with self._slots:
            conn, born = None, 0.0
            while self._idle:
                conn, born = self._idle.pop()
                if time.monotonic() - born < self.lifetime_s and not conn.closed:
                    break
                await conn.close()
                conn = None
            if conn is None:
                conn = await asyncio.wait_for(psycopg.AsyncConnection.connect(**self._conninfo), self.timeout_s + 1)
                born = time.monotonic()
            try:
                yield conn
            except BaseException:
                await conn.close()
                raise
            self._idle.append((conn, born))

    async def close(self) -> None:
        while self._idle:
            await self._idle.pop()[0].close()


class MariadbPool:
    """Blocking pymysql connections used from threads, at most ``size`` at once."""

    def __init__(self, endpoint: Endpoint, size: int, timeout_s: float) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._slots = asyncio.Semaphore(size)
        self._idle: list[pymysql.connections.Connection] = []

    def _connect(self) -> pymysql.connections.Connection:
        wait = max(1, int(self.timeout_s))
        conn = pymysql.connect(host=self.endpoint.host, port=self.endpoint.port, user=self.endpoint.user,
                               password=self.endpoint.password.get_secret_value(), database=self.endpoint.database,
                               autocommit=True, connect_timeout=wait, read_timeout=wait + 1, write_timeout=wait + 1)
        with conn.cursor() as cur:
            cur.execute(f"SET SESSION innodb_lock_wait_timeout = {wait}")
            cur.execute(f"SET SESSION max_statement_time = {self.timeout_s:g}")
        return conn

    def _run(self, conn: pymysql.connections.Connection | None, statements: list[tuple[str, tuple]]):
        conn = conn or self._connect()
        try:
            with conn.cursor() as cur:
                for sql, args in statements:
                    cur.execute(sql, args)
        except BaseException:
            conn.close()
            raise
        return conn

    async def execute(self, *statements: tuple[str, tuple]) -> None:
        async with self._slots:
            conn = self._idle.pop() if self._idle else None
            conn = await asyncio.to_thread(self._run, conn, list(statements))
            self._idle.append(conn)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[MariadbTransaction]:
        """One transaction on a pooled connection, committed when the block ends; on any error the connection is
        dropped (the server rolls the transaction back)."""
        async with self._slots:
            conn = self._idle.pop() if self._idle else None
            conn = await asyncio.to_thread(self._run, conn, [("BEGIN", ())])
            try:
                yield MariadbTransaction(self, conn)
                await asyncio.to_thread(conn.commit)
            except BaseException:
                with contextlib.suppress(Exception):
                    conn.close()
                raise
            self._idle.append(conn)

    async def close(self) -> None:
        for conn in self._idle:
            with contextlib.suppress(Exception):
                conn.close()
        self._idle.clear()


class MariadbTransaction:
    def __init__(self, pool: MariadbPool, conn: pymysql.connections.Connection) -> None:
        self.pool, self.conn = pool, conn

    async def execute(self, *statements: tuple[str, tuple]) -> None:
        await asyncio.to_thread(self.pool._run, self.conn, list(statements))


def peers_of(config: DemoConfig, *names: str) -> dict[str, str]:
    """name -> address of the dependencies a part talks to (for its ``kubestack_peer_info`` series)."""
    known = {"redis": config.redis.address, "postgresql": config.postgresql.address,
             "mariadb": config.mariadb.address, "kafka": config.kafka_bootstrap.split(",")[0]}
    return {name: known[name] for name in names}
