"""What the MySQL plugin asks of a server, and two ways to ask it: pymysql (run in a worker thread) or the
``mysql``/``mariadb`` command line through a ``CommandRunner``. Both produce rows of strings that the same
``parse`` functions read, and both turn connection failures into ``TargetError`` subclasses."""

from __future__ import annotations

import asyncio
import logging
import re
from abc import ABC, abstractmethod
from typing import Any, Protocol

import pymysql

from kubestack.errors import (
    ActionParamsError,
    CommandFailedError,
    TargetAuthError,
    TargetError,
    TargetTimeoutError,
    TargetUnreachableError,
)
from kubestack.plugins.base import CommandRunner
from kubestack.plugins.mysql import queries
from kubestack.plugins.mysql.config import MySQLConfig
from kubestack.plugins.mysql.parse import Row, ServerVersion, name_value, parse_batch, parse_version

log = logging.getLogger(__name__)

_AUTH_CODES = {1044, 1045, 1698}
_ACCESS_DENIED = 1227  # a privilege the statement needs is missing (the login itself worked)
_UNREACHABLE_CODES = {2002, 2003, 2005, 2006, 2013}


def classify(code: int, message: str, where: str) -> TargetError | None:
    """The ``TargetError`` a client error code means (same codes for pymysql and the CLI), or None."""
    if "timed out" in message.lower():
        return TargetTimeoutError(f"MySQL at {where} gave no answer in time: {message}")
    if code in _AUTH_CODES:
        return TargetAuthError(f"MySQL at {where} refused the login: {message}")
    if code in _UNREACHABLE_CODES:
        return TargetUnreachableError(f"MySQL at {where} cannot be reached: {message}")
    return None


class MySQLClient(Protocol):
    async def server(self) -> ServerVersion:
        """Flavor and version, asked once: some statements differ between MariaDB and MySQL."""
        ...

    async def global_status(self) -> dict[str, str]: ...

    async def global_variables(self) -> dict[str, str]: ...

    async def replica_status(self) -> list[Row]:
        """SHOW REPLICA/SLAVE STATUS rows; empty when the server is not a replica."""
        ...

    async def long_queries(self, min_seconds: int, limit: int) -> list[Row]: ...

    async def lock_waits(self, limit: int) -> list[Row]: ...

    async def innodb_status(self) -> str: ...

    async def connections(self) -> list[Row]:
        """Host, user and command of every other connection (processlist)."""
        ...

    async def replica_hosts(self) -> list[Row]:
        """SHOW SLAVE HOSTS rows; empty when the user lacks the privilege it needs."""
        ...

    async def rows(self, sql: str) -> list[Row]:
        """Result rows of one statement, every value as text (None for NULL)."""
        ...

    async def kill(self, thread_id: int, *, query_only: bool) -> None:
        """``KILL QUERY`` (the running statement) or ``KILL CONNECTION`` of one thread."""
        ...

    async def set_global(self, name: str, value: int) -> None:
        """``SET GLOBAL name = value`` for a numeric variable."""
        ...

    async def close(self) -> None: ...


class _QueryClient(ABC):
    """The plugin's questions, over one primitive a subclass supplies: ``rows(sql)``."""

    def __init__(self, config: MySQLConfig) -> None:
        self.config = config
        self._server: ServerVersion | None = None

    @abstractmethod
    async def rows(self, sql: str) -> list[Row]:
        """Result rows of one statement, every value as text (None for NULL)."""

    async def server(self) -> ServerVersion:
        if self._server is None:
            self._server = parse_version(str((await self.rows(queries.VERSION))[0]["version"]))
        return self._server

    async def global_status(self) -> dict[str, str]:
        return name_value(await self.rows(queries.GLOBAL_STATUS))

    async def global_variables(self) -> dict[str, str]:
        return name_value(await self.rows(queries.GLOBAL_VARIABLES))

    async def replica_status(self) -> list[Row]:
        return await self.rows(queries.replica_status_sql(await self.server()))

    async def long_queries(self, min_seconds: int, limit: int) -> list[Row]:
        return await self.rows(queries.long_queries_sql(min_seconds=min_seconds, limit=limit))

    async def lock_waits(self, limit: int) -> list[Row]:
        return await self.rows(queries.lock_waits_sql(await self.server(), limit=limit))

    async def innodb_status(self) -> str:
        rows = await self.rows(queries.INNODB_STATUS)
        return str(rows[0]["Status"]) if rows else ""

    async def connections(self) -> list[Row]:
        return await self.rows(queries.connections_sql())

    async def replica_hosts(self) -> list[Row]:
        try:
            return await self.rows(queries.REPLICA_HOSTS)
        except CommandFailedError as exc:
            if exc.returncode == _ACCESS_DENIED or f"ERROR {_ACCESS_DENIED}" in exc.stderr:
                log.debug("MySQL at %s: %s is not allowed; replicas are known by host only", self.config.address,
                          queries.REPLICA_HOSTS)
                return []
            raise

    async def kill(self, thread_id: int, *, query_only: bool) -> None:
        await self.rows(f"KILL {'QUERY' if query_only else 'CONNECTION'} {int(thread_id)}")

    async def set_global(self, name: str, value: int) -> None:
        if not re.fullmatch(r"[a-z_]+", name):
            raise ActionParamsError(f"not a system variable name: {name!r}")
        await self.rows(f"SET GLOBAL {name} = {int(value)}")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return value.decode(errors="replace")
    return str(value)


def _code_message(exc: pymysql.err.MySQLError) -> tuple[int, str]:
    """pymysql errors carry ``(code, message)``; a few carry only a message."""
    if len(exc.args) >= 2 and isinstance(exc.args[0], int):
        return exc.args[0], str(exc.args[1])
    return 0, str(exc)


class DirectMySQLClient(_QueryClient):
    """One pymysql connection, opened on first use and again after a failure; calls run one at a time in a
    worker thread (pymysql blocks and a connection is not shared between threads)."""

    def __init__(self, config: MySQLConfig) -> None:
        super().__init__(config)
        self._conn: pymysql.connections.Connection | None = None
        self._lock = asyncio.Lock()

    def _connect(self) -> pymysql.connections.Connection:
        c = self.config
        return pymysql.connect(host=c.host, port=c.port, unix_socket=c.unix_socket, user=c.user,
                               password=(c.password.resolve() if c.password else None) or "",
                               connect_timeout=c.timeout_s, read_timeout=c.timeout_s, write_timeout=c.timeout_s,
                               autocommit=True, charset="utf8mb4", program_name="kubestack")

    def _query(self, sql: str) -> list[Row]:
        if self._conn is None:
            self._conn = self._connect()
        with self._conn.cursor() as cursor:
            cursor.execute(sql)
            names = [d[0] for d in cursor.description or ()]
            return [{n: _text(v) for n, v in zip(names, row)} for row in cursor.fetchall()]

    async def rows(self, sql: str) -> list[Row]:
        async with self._lock:
            try:
                return await asyncio.to_thread(self._query, sql)
            except pymysql.err.MySQLError as exc:
                code, message = _code_message(exc)
                error = classify(code, message, self.config.address)
                if error is not None:
                    await self._drop()
                    raise error from exc
                raise CommandFailedError(["sql", sql], code, message) from exc

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await asyncio.to_thread(conn.close)  # sends COM_QUIT: may block on a hung server
            except pymysql.err.Error:
                pass  # already broken: the point is to forget it

    async def close(self) -> None:
        async with self._lock:
            await self._drop()


_CLI_ERROR = re.compile(r"ERROR (\d+)")


def _option_value(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class CliMySQLClient(_QueryClient):
    """``mysql -B -e SQL`` through a runner. The password goes in on stdin as an option file
    (``--defaults-extra-file=/dev/stdin``), never on the command line."""

    def __init__(self, config: MySQLConfig, runner: CommandRunner) -> None:
        super().__init__(config)
        self._runner = runner

    def argv(self, sql: str, *, with_password: bool) -> list[str]:
        c = self.config
        argv = [c.cli]
        if with_password:
            argv.append("--defaults-extra-file=/dev/stdin")  # must come first
        argv += ["-S", c.unix_socket] if c.unix_socket else ["-h", c.host, "-P", str(c.port), "--protocol=TCP"]
        return argv + ["-u", c.user, f"--connect-timeout={max(1, int(c.timeout_s))}", "-B", "-e", sql]

    async def rows(self, sql: str) -> list[Row]:
        password = self.config.password.resolve() if self.config.password else None
        argv = self.argv(sql, with_password=password is not None)
        stdin = f"[client]\npassword={_option_value(password)}\n" if password is not None else None
        try:
            out = await self._runner.run(argv, timeout=self.config.timeout_s, stdin=stdin)
        except CommandFailedError as exc:
            match = _CLI_ERROR.search(exc.stderr)
            error = classify(int(match.group(1)) if match else 0, exc.stderr.strip(), self.config.address)
            if error is not None:
                raise error from exc
            raise
        return parse_batch(out)

    async def close(self) -> None:
        """Nothing to close: every call is its own client process."""
