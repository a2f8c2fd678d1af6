"""What the PgBouncer plugin asks of the admin console, and how: one psycopg connection to the virtual ``pgbouncer``
database. The console speaks only the simple query protocol, so every statement goes through a client-side-binding
cursor (``AsyncClientCursor``: no Parse/Bind, no prepared statements); it has no transactions (autocommit)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

import psycopg
from psycopg.conninfo import make_conninfo

from kubestack.errors import (
    CommandFailedError,
    TargetAuthError,
    TargetError,
    TargetTimeoutError,
    TargetUnreachableError,
)
from kubestack.plugins.pgbouncer.config import PgBouncerConfig
from kubestack.plugins.pgbouncer.parse import ADMIN_DB

log = logging.getLogger(__name__)

_AUTH_MARKERS = ("password authentication failed", "no such user", "not allowed", "admin access needed",
                 "authentication failed", "no password supplied")
_UNREACHABLE_MARKERS = ("connection refused", "could not connect", "could not translate host name",
                        "connection to server", "server closed the connection", "is the server running")

Row = dict[str, Any]


class PgBouncerClient(Protocol):
    async def show(self, what: str) -> list[Row]:
        """``SHOW <what>`` (POOLS, STATS, LISTS, DATABASES, CONFIG, CLIENTS, SERVERS): its rows as column → value."""
        ...

    async def command(self, statement: str) -> None:
        """An admin command that changes something (SET, PAUSE, RESUME, KILL, RELOAD)."""
        ...

    async def close(self) -> None: ...


def classify(message: str, where: str) -> TargetError | None:
    lowered = message.lower()
    reason = message.strip().splitlines()[0] if message.strip() else "no reason given"
    if "timeout expired" in lowered:
        return TargetTimeoutError(f"PgBouncer at {where} gave no answer in time: {reason}")
    if any(marker in lowered for marker in _AUTH_MARKERS):
        return TargetAuthError(f"PgBouncer at {where} refused the login or the command: {reason}")
    if any(marker in lowered for marker in _UNREACHABLE_MARKERS):
        return TargetUnreachableError(f"PgBouncer at {where} cannot be reached: {reason}")
    return None


class DirectPgBouncerClient:
    """One autocommit connection to the admin console, opened on first use and reopened after it breaks."""

    def __init__(self, config: PgBouncerConfig) -> None:
        self._config = config
        self._conn: psycopg.AsyncConnection | None = None

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            c = self._config
            password = c.password.resolve() if c.password else None
            conninfo = make_conninfo(host=c.host, port=c.port, dbname=ADMIN_DB, user=c.user,
                                     connect_timeout=max(2, round(c.timeout_s)), sslmode="disable")
            try:
                self._conn = await psycopg.AsyncConnection.connect(conninfo, password=password, autocommit=True,
                                                                   cursor_factory=psycopg.AsyncClientCursor)
            except psycopg.OperationalError as exc:
                raise self._error(exc) from exc
        return self._conn

    def _error(self, exc: psycopg.Error) -> TargetError:
        where = self._config.address
        return classify(str(exc), where) or TargetUnreachableError(f"PgBouncer at {where} failed: {exc}")

    async def _run(self, statement: str) -> list[Row]:
        conn = await self._connection()
        try:
            async with conn.cursor() as cur:
                await asyncio.wait_for(cur.execute(statement, prepare=False), self._config.timeout_s)
                if cur.description is None:
                    return []
                names = [d.name for d in cur.description]
                return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]
        except TimeoutError as exc:
            await self.close()
            raise TargetTimeoutError(f"PgBouncer at {self._config.address} gave no answer to {statement} in "
                                     f"{self._config.timeout_s:g}s") from exc
        except psycopg.OperationalError as exc:
            if conn.broken:
                log.info("admin connection to PgBouncer at %s broke; the next call reconnects", self._config.address)
                await self.close()
            error = classify(str(exc), self._config.address)
            if error is not None and not isinstance(error, TargetAuthError):
                raise error from exc
            raise CommandFailedError(["pgbouncer", statement], 1, str(exc)) from exc
        except psycopg.Error as exc:
            raise CommandFailedError(["pgbouncer", statement], 1, str(exc)) from exc

    async def show(self, what: str) -> list[Row]:
        return await self._run(f"SHOW {what}")

    async def command(self, statement: str) -> None:
        await self._run(statement)

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()
