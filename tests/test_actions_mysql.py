"""MySQL/MariaDB actions: parameter checks and preconditions (pure), then each action against the session's
MariaDB, through pymysql and through the mysql client: a real sleeping statement stopped, a real connection
closed, max_connections raised and put back; dry runs and refused preconditions change nothing."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import AsyncIterator, Iterator

import pymysql
import pytest

from kubestack.errors import ActionParamsError, PreconditionFailedError, UnknownActionError
from kubestack.plugins.base import LocalRunner, declared
from kubestack.plugins.mysql import MySQLConfig, MySQLPlugin
from kubestack.plugins.mysql.actions import margin, max_connections_problems, thread_problems
from kubestack.plugins.mysql.declaration import ACTIONS
from tests.services.mariadb import MariadbServer

OPS_USER = "kubestack_ops"


def check(action_id: str, params: dict) -> dict:
    """The action's parameters as its declared model checks and normalises them."""
    return declared(ACTIONS, action_id, "MySQL").check(params)


# --- pure ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["mysql.kill_query", "mysql.kill_connection"])
def test_kill_params(action: str) -> None:
    assert check(action, {"id": "42"}) == {"id": 42}
    for bad, says in (({}, "'id' is missing"), ({"id": 0}, "'id' must be greater than or equal to 1"),
                      ({"id": "4; DROP TABLE t"}, "'id' must be a valid integer"), ({"id": True}, "'id': a boolean"),
                      ({"id": 4, "value": 3}, "unknown parameter")):
        with pytest.raises(ActionParamsError, match=says):
            check(action, bad)


def test_max_connections_params() -> None:
    assert check("mysql.set_max_connections", {"value": 300}) == {"value": 300}
    for bad in ({}, {"value": 0}, {"value": 100_001}, {"value": "many"}, {"value": 2.5}):
        with pytest.raises(ActionParamsError, match="'value'"):
            check("mysql.set_max_connections", bad)
    with pytest.raises(UnknownActionError):
        check("mysql.drop_database", {})


def test_thread_preconditions() -> None:
    app = {"id": "9", "user": "app", "command": "Query", "own": "0"}
    assert thread_problems(app, 9, query_only=True) == []
    assert thread_problems(None, 9, query_only=False) == ["no connection has id 9"]
    assert "this plugin's own" in thread_problems(app | {"own": "1"}, 9, query_only=False)[0]
    assert "system or replication" in thread_problems(app | {"command": "Slave_SQL"}, 9, query_only=False)[0]
    assert "system or replication" in thread_problems(app | {"user": "event_scheduler"}, 9, query_only=False)[0]
    assert "idle (Sleep)" in thread_problems(app | {"command": "Sleep"}, 9, query_only=True)[0]
    assert thread_problems(app | {"command": "Sleep"}, 9, query_only=False) == []


def test_max_connections_preconditions() -> None:
    assert margin(3) == 5 and margin(200) == 20
    state = {"THREADS_CONNECTED": "100", "OPEN_FILES_LIMIT": "1000"}
    assert max_connections_problems(110, state) == []
    assert "below the 100 connections in use plus a margin of 10" in max_connections_problems(109, state)[0]
    assert "above open_files_limit 1000" in max_connections_problems(1001, state)[0]


# --- live ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ops_password(mariadb_server: MariadbServer) -> Iterator[str]:
    """A user with what the actions need beyond the monitoring grants."""
    password = secrets.token_hex(8)
    with mariadb_server.admin() as admin, admin.cursor() as cur:
        cur.execute(f"CREATE USER '{OPS_USER}'@'%%' IDENTIFIED BY %s", (password,))
        cur.execute(f"GRANT PROCESS, CONNECTION ADMIN ON *.* TO '{OPS_USER}'@'%'")
        cur.execute("CREATE USER IF NOT EXISTS 'app'@'%%' IDENTIFIED BY %s", (password,))
    yield password
    with mariadb_server.admin() as admin, admin.cursor() as cur:
        cur.execute(f"DROP USER '{OPS_USER}'@'%'")
        cur.execute("DROP USER 'app'@'%'")


@pytest.fixture(params=[False, True], ids=["direct", "mysql-cli"])
async def plugin(request: pytest.FixtureRequest, mariadb_server: MariadbServer,
                 ops_password: str) -> AsyncIterator[MySQLPlugin]:
    config = MySQLConfig.model_validate({"host": mariadb_server.host, "port": mariadb_server.port, "user": OPS_USER,
                                         "password": {"value": ops_password}, "cli": "mariadb"})
    instance = MySQLPlugin.create(config, LocalRunner() if request.param else None)
    yield instance
    await instance.close()


class Sleeper:
    """An application connection running ``SELECT SLEEP(60)`` in a thread, and what became of it."""

    def __init__(self, server: MariadbServer, password: str) -> None:
        self.conn = pymysql.connect(host=server.host, port=server.port, user="app", password=password,
                                    autocommit=True)
        self.id = self.conn.thread_id()
        self.result: object = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with self.conn.cursor() as cur:
                cur.execute("SELECT SLEEP(60)")
                self.result = cur.fetchone()[0]
        except pymysql.err.MySQLError as exc:
            self.result = exc

    def finished(self, timeout: float) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()


def command_of(server: MariadbServer, thread_id: int) -> str | None:
    with server.admin() as admin, admin.cursor() as cur:
        cur.execute("SELECT COMMAND FROM information_schema.PROCESSLIST WHERE ID = %s", (thread_id,))
        row = cur.fetchone()
    return row[0] if row else None


async def sleeping(server: MariadbServer, password: str) -> Sleeper:
    sleeper = Sleeper(server, password)
    for _ in range(100):
        if command_of(server, sleeper.id) == "Query":
            return sleeper
        await asyncio.sleep(0.05)
    raise AssertionError("the sleeping statement never started")


async def test_kill_query_stops_the_statement_and_keeps_the_connection(plugin: MySQLPlugin, ops_password: str,
                                                                        mariadb_server: MariadbServer) -> None:
    sleeper = await sleeping(mariadb_server, ops_password)
    try:
        dry = await plugin.execute("mysql.kill_query", {"id": sleeper.id}, dry_run=True)
        assert dry.output.startswith(f"KILL QUERY {sleeper.id} (user app, host 127.0.0.1:")
        assert "SELECT SLEEP(60)" in dry.output and command_of(mariadb_server, sleeper.id) == "Query"

        done = await plugin.execute("mysql.kill_query", {"id": str(sleeper.id)})
        assert done.undo is None and done.before["command"] == "Query" and done.before["user"] == "app"
        assert await asyncio.to_thread(sleeper.finished, 10)
        assert command_of(mariadb_server, sleeper.id) == "Sleep"  # the connection stays
        with pytest.raises(PreconditionFailedError, match="idle \\(Sleep\\)"):
            await plugin.execute("mysql.kill_query", {"id": sleeper.id})
    finally:
        sleeper.conn.close()


async def test_kill_connection_closes_it(plugin: MySQLPlugin, ops_password: str,
                                         mariadb_server: MariadbServer) -> None:
    sleeper = await sleeping(mariadb_server, ops_password)
    try:
        await plugin.execute("mysql.kill_connection", {"id": sleeper.id}, dry_run=True)
        assert command_of(mariadb_server, sleeper.id) == "Query"
        done = await plugin.execute("mysql.kill_connection", {"id": sleeper.id})
        assert done.output.startswith(f"done: KILL CONNECTION {sleeper.id}")
        assert await asyncio.to_thread(sleeper.finished, 10)
        for _ in range(100):
            if command_of(mariadb_server, sleeper.id) is None:
                break
            await asyncio.sleep(0.05)
        assert command_of(mariadb_server, sleeper.id) is None
        with pytest.raises(PreconditionFailedError, match=f"no connection has id {sleeper.id}"):
            await plugin.execute("mysql.kill_connection", {"id": sleeper.id})
    finally:
        sleeper.conn.close()


async def test_kills_spare_our_own_connection_and_system_threads(mariadb_server: MariadbServer,
                                                                 ops_password: str) -> None:
    config = MySQLConfig.model_validate({"host": mariadb_server.host, "port": mariadb_server.port, "user": OPS_USER,
                                         "password": {"value": ops_password}})
    plugin = MySQLPlugin.create(config)
    admin = mariadb_server.admin()
    try:
        [own] = await plugin.client.rows("SELECT CONNECTION_ID() AS id")
        with pytest.raises(PreconditionFailedError, match="this plugin's own"):
            await plugin.execute("mysql.kill_connection", {"id": own["id"]})
        with admin.cursor() as cur:
            cur.execute("SET GLOBAL event_scheduler = ON")
            for _ in range(100):
                cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'event_scheduler'")
                row = cur.fetchone()
                if row:
                    break
                await asyncio.sleep(0.05)
        for action in ("mysql.kill_connection", "mysql.kill_query"):
            with pytest.raises(PreconditionFailedError, match="system or replication thread"):
                await plugin.execute(action, {"id": row[0]})
        assert command_of(mariadb_server, row[0]) == "Daemon"
        assert (await plugin.client.rows("SELECT CONNECTION_ID() AS id"))[0]["id"] == own["id"]
    finally:
        with admin.cursor() as cur:
            cur.execute("SET GLOBAL event_scheduler = OFF")
        admin.close()
        await plugin.close()


def max_connections(server: MariadbServer) -> int:
    with server.admin() as admin, admin.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.max_connections")
        return int(cur.fetchone()[0])


async def test_set_max_connections_and_its_undo(plugin: MySQLPlugin, mariadb_server: MariadbServer) -> None:
    original = max_connections(mariadb_server)
    try:
        dry = await plugin.execute("mysql.set_max_connections", {"value": original + 17}, dry_run=True)
        assert dry.output.startswith(f"SET GLOBAL max_connections = {original + 17} (now {original}; ")
        assert max_connections(mariadb_server) == original

        done = await plugin.execute("mysql.set_max_connections", {"value": original + 17})
        assert max_connections(mariadb_server) == original + 17
        assert done.before["max_connections"] == original and done.before["threads_connected"] >= 1
        assert done.undo == ("mysql.set_max_connections", {"value": original})
        await plugin.execute(*done.undo)
        assert max_connections(mariadb_server) == original
    finally:
        with mariadb_server.admin() as admin, admin.cursor() as cur:
            cur.execute(f"SET GLOBAL max_connections = {original}")


async def test_max_connections_below_those_in_use_is_refused(plugin: MySQLPlugin,
                                                             mariadb_server: MariadbServer) -> None:
    original = max_connections(mariadb_server)
    for dry_run in (True, False):
        with pytest.raises(PreconditionFailedError, match="below the .* connections in use plus a margin") as caught:
            await plugin.execute("mysql.set_max_connections", {"value": 2}, dry_run=dry_run)
        assert caught.value.action == "mysql.set_max_connections"
    with pytest.raises(ActionParamsError, match="'value' must be greater than or equal to 1, not -5"):
        await plugin.execute("mysql.set_max_connections", {"value": -5})
    assert max_connections(mariadb_server) == original
