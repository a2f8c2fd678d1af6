"""What the PostgreSQL plugin asks of a server (rows of text for a statement), and two ways to ask it: a direct
connection speaking the protocol itself (``wire.py``), or ``psql`` run through a ``CommandRunner`` (locally or over
SSH). Both turn connection failures into ``TargetError`` subclasses.

The password never appears on a command line: ``psql`` is started by ``sh``, which reads it from stdin into
``PGPASSWORD`` and then execs ``psql``."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Protocol

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
from kubestack.plugins.postgresql.wire import (
    Login,
    PgConnection,
    PgLoginError,
    PgProtocolError,
    PgServerError,
    PgTlsRefusedError,
    Rows,
)

log = logging.getLogger(__name__)

_AUTH_MARKERS = ("password authentication failed", "no pg_hba.conf entry", "authentication failed",
                 "no password supplied", "permission denied for database")
_MISSING_LOGIN = re.compile(r'(role|database) ".*" does not exist')  # a login problem, not an outage
_TIMEOUT_MARKERS = ("timeout expired", "canceling statement due to statement timeout")
_UNREACHABLE_MARKERS = ("could not connect", "connection refused", "could not translate host name",
                        "no such file or directory", "connection to server", "server closed the connection",
                        "is the server running", "the database system is")
_QUERY_CANCELED = "57014"
_LOGIN_CLASSES = ("28", "3D")  # invalid authorization, no such database: a login problem, not an outage
_OPERATIONAL_CLASSES = ("08", "27", "28", "2F", "38", "39", "3B", "40", "53", "54", "55", "57", "58", "F0", "HV")
"""SQLSTATE classes psycopg raised as OperationalError: the server's state, not the statement, is at fault."""
_SH_READ_PASSWORD = 'IFS= read -r PGPASSWORD; export PGPASSWORD; exec "$0" "$@"'


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
    """libpq connection string for ``psql``, without the password; statements time out on the server after
    ``timeout_s``."""
    params = {"host": config.host, "port": config.port, "dbname": config.dbname, "user": config.user,
              "sslmode": config.sslmode, "sslrootcert": config.sslrootcert, "connect_timeout": _connect_timeout(config),
              "application_name": "kubestack", "options": _statement_timeout(config)}
    return " ".join(f"{key}={_conninfo_value(str(value))}" for key, value in params.items() if value is not None)


def _conninfo_value(value: str) -> str:
    """Quoted as libpq reads it: in single quotes, with backslash and quote escaped, when it holds either or a space."""
    if value and not any(c in value for c in " '\\"):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _connect_timeout(config: PostgreSQLConfig) -> int:
    return max(2, round(config.timeout_s))


def _statement_timeout(config: PostgreSQLConfig) -> str:
    return f"-c statement_timeout={int(config.timeout_s * 1000)}"


def _login(config: PostgreSQLConfig) -> Login:
    return Login(host=config.host, port=config.port, user=config.user, dbname=config.dbname,
                 password=config.password.resolve() if config.password else None, sslmode=config.sslmode,
                 root_cert=config.sslrootcert,
                 parameters={"application_name": "kubestack", "options": _statement_timeout(config)})


class DirectPostgreSQLClient:
    """One session over the protocol spoken in ``wire.py``, opened on first use, one statement at a time, closed
    after anything but an ordinary SQL error so that the next call starts afresh."""

    def __init__(self, config: PostgreSQLConfig) -> None:
        self._config = config
        self._conn: PgConnection | None = None
        self._lock = asyncio.Lock()

    async def _connection(self) -> PgConnection:
        if self._conn is None:
            where = self._config.address
            try:
                self._conn = await asyncio.wait_for(PgConnection.connect(_login(self._config)),
                                                    _connect_timeout(self._config))
            except PgServerError as exc:
                raise self._server_error(exc) from exc
            except PgTlsRefusedError as exc:
                raise TargetUnreachableError(f"PostgreSQL at {where} cannot be reached: {exc}") from exc
            except PgLoginError as exc:
                raise TargetAuthError(f"PostgreSQL at {where} refused the login: {exc}") from exc
            except TimeoutError as exc:
                raise TargetTimeoutError(f"PostgreSQL at {where} did not complete the login in "
                                         f"{_connect_timeout(self._config)}s") from exc
            except (OSError, asyncio.IncompleteReadError, PgProtocolError) as exc:
                raise TargetUnreachableError(f"PostgreSQL at {where} cannot be reached: {_reason(exc)}") from exc
        return self._conn

    def _server_error(self, exc: PgServerError) -> TargetError:
        where = self._config.address
        if exc.sqlstate == _QUERY_CANCELED:
            return TargetTimeoutError(f"PostgreSQL at {where} gave no answer in {self._config.timeout_s:g}s")
        if exc.sqlstate[:2] in _LOGIN_CLASSES:
            return TargetAuthError(f"PostgreSQL at {where} refused the login: {exc}")
        return classify(str(exc), where) or TargetUnreachableError(f"PostgreSQL at {where} failed: {exc}")

    async def rows(self, sql: str) -> Rows:
        async with self._lock:
            conn = await self._connection()
            try:
                return await asyncio.wait_for(conn.query(sql), self._config.timeout_s + 5)
            except PgServerError as exc:
                if exc.fatal:
                    log.info("PostgreSQL at %s ended the session; the next call reconnects", self._config.address)
                    await self._close_now()
                if exc.fatal or exc.sqlstate[:2] in _OPERATIONAL_CLASSES:
                    raise self._server_error(exc) from exc
                raise CommandFailedError(["postgresql", sql], 1, str(exc)) from exc
            except TimeoutError as exc:
                await self._close_now()
                raise TargetTimeoutError(f"PostgreSQL at {self._config.address} gave no answer in "
                                         f"{self._config.timeout_s + 5:g}s") from exc
            except (OSError, asyncio.IncompleteReadError, PgProtocolError) as exc:
                log.info("connection to PostgreSQL at %s broke; the next call reconnects", self._config.address)
                await self._close_now()
                raise TargetUnreachableError(f"PostgreSQL at {self._config.address} cannot be reached: "
                                             f"{_reason(exc)}") from exc
            except BaseException:  # cancelled mid-reply: what is left on the socket belongs to no one
                await self._close_now()
                raise

    async def write(self, sql: str) -> Rows:
        return await self.rows(sql)

    async def _close_now(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def close(self) -> None:
        await self._close_now()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.IncompleteReadError):
        return "the server closed the connection"
    return str(exc) or type(exc).__name__


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
