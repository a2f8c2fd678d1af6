"""What the PostgreSQL plugin asks of a server (rows of text for a statement), and two ways to ask it: a direct
psycopg 3 async connection, or ``psql`` run through a ``CommandRunner`` (locally or over SSH). Both turn
connection failures into ``TargetError`` subclasses.

The password never appears on a command line: ``psql`` is started by ``sh``, which reads it from stdin into
``PGPASSWORD`` and then execs ``psql``."""

from __future__ import annotations

import logging
import re
from typing import Protocol

import psycopg
from psycopg.conninfo import make_conninfo

from kubestack.errors import (
    CommandFailedError,
    TargetAuthError,
    TargetError,
    TargetTimeoutError,
    TargetUnreachableError,
)
from kubestack.plugins.base import CommandRunner
from kubestack.plugins.postgresql.config import PostgreSQLConfig
from kubestack.plugins.postgresql.parse import parse_psql_rows

log = logging.getLogger(__name__)

_AUTH_MARKERS = ("password authentication failed", "no pg_hba.conf entry", "authentication failed",
                 "no password supplied", "permission denied for database")
_MISSING_LOGIN = re.compile(r'(role|database) ".*" does not exist')  # a login problem, not an outage
_TIMEOUT_MARKERS = ("timeout expired", "canceling statement due to statement timeout")
_UNREACHABLE_MARKERS = ("could not connect", "connection refused", "could not translate host name",
                        "no such file or directory", "connection to server", "server closed the connection",
                        "is the server running", "the database system is")
_QUERY_CANCELED = "57014"
_SH_READ_PASSWORD = 'IFS= read -r PGPASSWORD; export PGPASSWORD; exec "$0" "$@"'

Rows = list[tuple[str | None, ...]]


class PostgreSQLClient(Protocol):
    async def rows(self, sql: str) -> Rows:
        """The result of one statement, every cell as text (None for NULL)."""
        ...

    async def write(self, sql: str) -> Rows:
        """A statement that changes something (ALTER SYSTEM, ALTER ROLE, select pg_terminate_backend(...)): its rows,
        or none when it returns none."""
        ...

    async def close(self) -> None: ...


def classify(message: str, where: str) -> TargetError | None:
    """The ``TargetError`` a libpq/psql failure message means, or None for an ordinary SQL error."""
    lowered = message.lower()
    reason = message.strip().splitlines()[0] if message.strip() else "no reason given"
    if any(marker in lowered for marker in _TIMEOUT_MARKERS):
        return TargetTimeoutError(f"PostgreSQL at {where} gave no answer in time: {reason}")
    if any(marker in lowered for marker in _AUTH_MARKERS) or _MISSING_LOGIN.search(message):
        return TargetAuthError(f"PostgreSQL at {where} refused the login: {reason}")
    if any(marker in lowered for marker in _UNREACHABLE_MARKERS):
        return TargetUnreachableError(f"PostgreSQL at {where} cannot be reached: {reason}")
    return None


def _conninfo(config: PostgreSQLConfig) -> str:
    """Connection string without the password; statements time out on the server after ``timeout_s``."""
    return make_conninfo(host=config.host, port=config.port, dbname=config.dbname, user=config.user,
                         sslmode=config.sslmode, connect_timeout=max(2, round(config.timeout_s)),
                         application_name="kubestack",
                         options=f"-c statement_timeout={int(config.timeout_s * 1000)}")


class DirectPostgreSQLClient:
    """One autocommit psycopg connection, opened on first use and reopened after it breaks."""

    def __init__(self, config: PostgreSQLConfig) -> None:
        self._config = config
        self._conn: psycopg.AsyncConnection | None = None

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            password = self._config.password.resolve() if self._config.password else None
            try:
                self._conn = await psycopg.AsyncConnection.connect(_conninfo(self._config), password=password,
                                                                   autocommit=True)
            except psycopg.OperationalError as exc:
                raise self._error(exc) from exc
        return self._conn

    def _error(self, exc: psycopg.Error) -> TargetError:
        where = self._config.address
        if exc.sqlstate == _QUERY_CANCELED:
            return TargetTimeoutError(f"PostgreSQL at {where} gave no answer in {self._config.timeout_s:g}s")
        return classify(str(exc), where) or TargetUnreachableError(f"PostgreSQL at {where} failed: {exc}")

    async def rows(self, sql: str) -> Rows:
        conn = await self._connection()
        try:
            async with conn.cursor() as cur:
                await cur.execute(sql)
                return [tuple(row) for row in await cur.fetchall()] if cur.description else []
        except psycopg.OperationalError as exc:
            if conn.broken:
                log.info("connection to PostgreSQL at %s broke; the next call reconnects", self._config.address)
                await self.close()
            raise self._error(exc) from exc
        except psycopg.Error as exc:
            raise CommandFailedError(["postgresql", sql], 1, str(exc)) from exc

    async def write(self, sql: str) -> Rows:
        return await self.rows(sql)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


class PsqlClient:
    """``psql`` through a runner: unaligned, tuples only, tab-separated, NULL printed as ``\\N``."""

    def __init__(self, config: PostgreSQLConfig, runner: CommandRunner) -> None:
        self._config = config
        self._runner = runner

    def argv(self, sql: str, *, with_password: bool) -> list[str]:
        psql = [self._config.psql, "-X", "-q", "-A", "-t", "-F", "\t", "-P", "null=\\N", "-v", "ON_ERROR_STOP=1",
                "-d", _conninfo(self._config), "-c", sql]
        return ["sh", "-c", _SH_READ_PASSWORD, *psql] if with_password else psql

    async def rows(self, sql: str) -> Rows:
        password = self._config.password.resolve() if self._config.password else None
        argv = self.argv(sql, with_password=password is not None)
        try:
            out = await self._runner.run(argv, timeout=self._config.timeout_s + 5,
                                         stdin=f"{password}\n" if password is not None else None)
        except CommandFailedError as exc:
            error = classify(exc.stderr, self._config.address)
            if error is not None:
                raise error from exc
            raise
        return parse_psql_rows(out)

    async def write(self, sql: str) -> Rows:
        """``psql -q`` prints no command tag: a statement without rows gives none."""
        return await self.rows(sql)

    async def close(self) -> None:
        """Nothing to close: every statement is its own ``psql`` process."""
