"""The MySQL/MariaDB plugin: parsers and rules on output recorded from a real MariaDB (tests/data/mysql), then
collection, snapshot and health against a live one, with conditions created for real (a long statement, a row
lock held while another transaction waits, connections near a lowered max_connections, a replica that cannot
reach its primary, a deadlock)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pymysql
import pymysql.cursors
import pytest

from kubestack.contract.events import Peer, PeerRole
from kubestack.errors import TargetAuthError, TargetTimeoutError, TargetUnreachableError
from kubestack.plugins.base import LocalRunner
from kubestack.plugins.mysql import MySQLConfig, MySQLPlugin
from kubestack.plugins.mysql import queries
from kubestack.plugins.mysql.checks import Observation, evaluate
from kubestack.plugins.mysql.client import classify
from kubestack.plugins.mysql.parse import (
    buffer_pool_hit_ratio,
    name_value,
    parse_batch,
    parse_innodb_status,
    parse_replica_status,
    parse_version,
)
from kubestack.plugins.mysql.peers import connection_host, mysql_peers
from tests.services.mariadb import MariadbServer
from tests.services.process import free_port

DATA = Path(__file__).parent / "data" / "mysql"


def recorded(name: str) -> list:
    return parse_batch((DATA / name).read_text())


def recorded_observation(*, replicas: str = "replica_status_none.tsv", long_queries: str = "long_queries.tsv",
                         lock_waits: str = "lock_waits.tsv") -> Observation:
    return Observation(status=name_value(recorded("global_status.tsv")),
                       variables=name_value(recorded("global_variables.tsv")),
                       replicas=parse_replica_status(recorded(replicas)), long_queries=recorded(long_queries),
                       lock_waits=recorded(lock_waits), replica_query="SHOW REPLICA STATUS",
                       long_queries_query="PROCESSLIST", lock_waits_query="INNODB_LOCK_WAITS")


def rules(findings: list) -> dict:
    return {f.rule_id: f for f in findings}


# --- parsers and rules on recorded output ----------------------------------------------------------


def test_batch_output_is_unescaped_with_nulls() -> None:
    [query] = recorded("long_queries.tsv")
    assert query["info"] == "SELECT SLEEP(3) /* report\tquery\n */"
    assert query["db"] is None and query["state"] == "User sleep"
    assert recorded("replica_status_none.tsv") == []
    with pytest.raises(ValueError, match="fields"):
        parse_batch("a\tb\n1\n")


def test_status_and_variables_from_recorded_output() -> None:
    status, variables = name_value(recorded("global_status.tsv")), name_value(recorded("global_variables.tsv"))
    assert status["Innodb_deadlocks"] == "1" and status["Innodb_row_lock_waits"] == "2"
    assert variables["max_connections"] == "151"
    assert buffer_pool_hit_ratio(status) == pytest.approx(1 - 170 / 1894)
    [version] = recorded("version.tsv")
    assert parse_version(str(version["version"])).flavor == "mariadb"


def test_replica_and_innodb_status_from_recorded_output() -> None:
    [replica] = parse_replica_status(recorded("replica_status_connecting.tsv"))
    assert (replica.source, replica.io_running, replica.sql_running) == ("127.0.0.1:1", "Connecting", "Yes")
    assert replica.seconds_behind is None and "Connection refused" in replica.last_io_error
    [innodb] = recorded("innodb_status_deadlock.tsv")
    parsed = parse_innodb_status(str(innodb["Status"]))
    assert parsed.latest_deadlock_at == "2026-11-23 14:07:54" and parsed.history_list_length == 0


def test_mysql8_replica_columns_are_understood() -> None:
    [replica] = parse_replica_status([{"Source_Host": "db1", "Source_Port": "3306", "Replica_IO_Running": "Yes",
                                       "Replica_SQL_Running": "Yes", "Seconds_Behind_Source": "900",
                                       "Channel_Name": "", "Last_IO_Error": "", "Last_SQL_Error": ""}])
    found = rules(evaluate(dataclasses.replace(recorded_observation(), replicas=[replica]), MySQLConfig()))
    assert found["mysql.replica_lagging"].evidence["seconds_behind"] == 900


@pytest.mark.parametrize(("version", "flavor", "replica_sql", "lock_table"), [
    ("10.11.19-MariaDB-0+deb12u1", "mariadb", "SHOW REPLICA STATUS", "INNODB_LOCK_WAITS"),
    ("5.5.5-10.3.39-MariaDB", "mariadb", "SHOW SLAVE STATUS", "INNODB_LOCK_WAITS"),
    ("8.0.36", "mysql", "SHOW REPLICA STATUS", "data_lock_waits"),
    ("5.7.44-log", "mysql", "SHOW SLAVE STATUS", "INNODB_LOCK_WAITS"),
])
def test_statements_follow_the_server_dialect(version: str, flavor: str, replica_sql: str, lock_table: str) -> None:
    server = parse_version(version)
    assert server.flavor == flavor
    assert queries.replica_status_sql(server) == replica_sql
    assert lock_table in queries.lock_waits_sql(server)


def test_rules_on_recorded_conditions() -> None:
    obs = recorded_observation(replicas="replica_status_connecting.tsv")
    found = rules(evaluate(obs, MySQLConfig(long_query_s=1, lock_wait_min_s=1, buffer_pool_min_requests=0)))
    assert set(found) == {"mysql.long_running_query", "mysql.row_lock_waits", "mysql.buffer_pool_hit_rate_low",
                          "mysql.replica_stopped"}
    assert found["mysql.long_running_query"].evidence["queries"][0]["state"] == "User sleep"
    wait = found["mysql.row_lock_waits"].evidence["waits"][0]
    assert (wait["blocking_command"], wait["lock_table"]) == ("Sleep", "`shop`.`stock`")
    assert found["mysql.buffer_pool_hit_rate_low"].evidence["innodb_buffer_pool_reads"] == 170
    assert found["mysql.replica_stopped"].severity == "critical"
    # defaults: a cold buffer pool is not judged, a 2 s wait and a 1 s statement are not reported
    assert set(rules(evaluate(obs, MySQLConfig()))) == {"mysql.replica_stopped"}


def test_client_error_codes_are_classified() -> None:
    assert isinstance(classify(1045, "Access denied", "x"), TargetAuthError)
    assert isinstance(classify(2003, "Can't connect", "x"), TargetUnreachableError)
    assert classify(1205, "Lock wait timeout exceeded; try restarting transaction", "x") is None
    assert classify(1146, "Table doesn't exist", "x") is None


# --- live ----------------------------------------------------------------------------------------------


def config_for(server: MariadbServer, **extra: object) -> MySQLConfig:
    return MySQLConfig.model_validate({"host": server.host, "port": server.port, "user": server.user,
                                       "password": {"value": server.password}} | extra)


@pytest.fixture()
async def plugin(mariadb_server: MariadbServer) -> AsyncIterator[MySQLPlugin]:
    instance = MySQLPlugin.create(config_for(mariadb_server, long_query_s=1, lock_wait_min_s=1))
    yield instance
    await instance.close()


@pytest.fixture()
def admin(mariadb_server: MariadbServer) -> Iterator[pymysql.connections.Connection]:
    connection = mariadb_server.admin()
    with connection.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS shop.stock (id INT PRIMARY KEY, qty INT) ENGINE=InnoDB")
        cur.execute("INSERT IGNORE INTO shop.stock VALUES (1, 10), (2, 20)")
    yield connection
    connection.close()


def execute(connection: pymysql.connections.Connection, sql: str) -> list[tuple]:
    with connection.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def in_background(work: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


async def until(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("through_cli", [False, True], ids=["pymysql", "mysql-cli"])
async def test_live_collect_snapshot_and_health(mariadb_server: MariadbServer, through_cli: bool) -> None:
    instance = MySQLPlugin.create(config_for(mariadb_server), LocalRunner() if through_cli else None)
    try:
        samples = {s.name: s for s in await instance.collect()}
        snapshot = await instance.snapshot_config()
        findings = await instance.check_health()
    finally:
        await instance.close()
    assert samples["mysql_threads_connected"].value >= 1
    assert samples["mysql_max_connections"].value == 151
    assert 0 < samples["mysql_connections_used_ratio"].value < 1
    assert "mysql_innodb_deadlocks_total" in samples and "mysql_innodb_history_list_length" in samples
    assert snapshot["port"] == str(mariadb_server.port) and "gtid_current_pos" not in snapshot
    assert findings == []


async def test_direct_and_cli_clients_report_the_same_series(mariadb_server: MariadbServer) -> None:
    direct = MySQLPlugin.create(config_for(mariadb_server))
    cli = MySQLPlugin.create(config_for(mariadb_server, cli="mariadb"), LocalRunner())
    try:
        assert {s.name for s in await direct.collect()} == {s.name for s in await cli.collect()}
        assert await direct.snapshot_config() == await cli.snapshot_config()
    finally:
        await direct.close()
        await cli.close()


async def test_long_running_statement_is_reported(plugin: MySQLPlugin, mariadb_server: MariadbServer,
                                                  admin: pymysql.connections.Connection) -> None:
    sleeper, interrupted = mariadb_server.admin(), []

    def nap() -> None:
        try:
            execute(sleeper, "SELECT SLEEP(30) AS nap")
        except pymysql.err.OperationalError as exc:  # KILL QUERY below
            interrupted.append(exc.args[0])

    thread = in_background(nap)
    try:
        await until(lambda: (execute(admin, "SELECT MAX(TIME) FROM information_schema.PROCESSLIST "
                                            "WHERE INFO = 'SELECT SLEEP(30) AS nap'")[0][0] or 0) >= 1)
        found = rules(await plugin.check_health())
    finally:
        execute(admin, f"KILL QUERY {sleeper.thread_id()}")
        await asyncio.to_thread(thread.join)
        sleeper.close()
    [query] = found["mysql.long_running_query"].evidence["queries"]
    assert query["user"] == "root" and query["info"] == "SELECT SLEEP(30) AS nap" and query["time"] >= 1
    assert query["state"] == "User sleep" and query["id"] == sleeper.thread_id()
    assert interrupted == [1317]


async def test_row_lock_wait_names_the_blocker(plugin: MySQLPlugin, mariadb_server: MariadbServer,
                                               admin: pymysql.connections.Connection) -> None:
    holder, waiter = mariadb_server.admin(), mariadb_server.admin()
    holder.begin()
    execute(holder, "SELECT * FROM shop.stock WHERE id = 1 FOR UPDATE")
    execute(waiter, "SET SESSION innodb_lock_wait_timeout = 20")
    thread = in_background(lambda: execute(waiter, "UPDATE shop.stock SET qty = qty - 1 WHERE id = 1"))
    try:
        await until(lambda: execute(admin, "SELECT COUNT(*) FROM information_schema.INNODB_TRX "
                                           "WHERE trx_state = 'LOCK WAIT' "
                                           "AND TIMESTAMPDIFF(SECOND, trx_wait_started, NOW()) >= 1")[0][0] > 0)
        samples = {s.name: s.value for s in await plugin.collect()}
        found = rules(await plugin.check_health())
    finally:
        holder.rollback()
        await asyncio.to_thread(thread.join)
        holder.close()
        waiter.close()
    assert samples["mysql_innodb_row_lock_current_waits"] == 1
    [wait] = found["mysql.row_lock_waits"].evidence["waits"]
    assert wait["waiting_id"] == waiter.thread_id() and wait["blocking_id"] == holder.thread_id()
    assert wait["waiting_query"] == "UPDATE shop.stock SET qty = qty - 1 WHERE id = 1"
    assert wait["blocking_command"] == "Sleep" and wait["lock_table"] == "`shop`.`stock`" and wait["wait_s"] >= 1


async def test_connections_near_max_connections(plugin: MySQLPlugin, mariadb_server: MariadbServer,
                                                admin: pymysql.connections.Connection) -> None:
    execute(admin, "SET GLOBAL max_connections = 10")
    opened = []
    try:
        await plugin.collect()
        while int(execute(admin, "SHOW GLOBAL STATUS LIKE 'Threads_connected'")[0][1]) < 9:
            opened.append(mariadb_server.connect())
        found = rules(await plugin.check_health())
    finally:
        for connection in opened:
            connection.close()
        execute(admin, "SET GLOBAL max_connections = 151")
    finding = found["mysql.connections_near_max"]
    assert finding.severity == "warning"
    assert finding.evidence["max_connections"] == 10 and finding.evidence["threads_connected"] == 9


def last_io_errno(connection: pymysql.connections.Connection) -> int:
    with connection.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute("SHOW SLAVE STATUS")
        return int(cur.fetchone()["Last_IO_Errno"])


async def test_replica_that_cannot_reach_its_primary(plugin: MySQLPlugin,
                                                     admin: pymysql.connections.Connection) -> None:
    execute(admin, f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={free_port()}, MASTER_USER='repl', "
                   "MASTER_PASSWORD='x', MASTER_CONNECT_RETRY=1")
    execute(admin, "START SLAVE")
    try:
        await until(lambda: last_io_errno(admin) != 0)
        samples = {(s.name, s.labels.get("source")) for s in await plugin.collect() if s.name.startswith("mysql_repl")}
        found = rules(await plugin.check_health())
    finally:
        execute(admin, "STOP SLAVE")
        execute(admin, "RESET SLAVE ALL")
    finding = found["mysql.replica_stopped"]
    assert finding.evidence["io_running"] == "Connecting" and finding.evidence["last_io_error"]
    assert finding.query == "SHOW REPLICA STATUS"
    assert {name for name, _ in samples} == {"mysql_replica_io_running", "mysql_replica_sql_running"}


async def test_deadlocks_are_counted(plugin: MySQLPlugin, mariadb_server: MariadbServer,
                                     admin: pymysql.connections.Connection) -> None:
    before = {s.name: s.value for s in await plugin.collect()}["mysql_innodb_deadlocks_total"]
    first, second = mariadb_server.admin(), mariadb_server.admin()
    first.begin()
    second.begin()
    execute(first, "UPDATE shop.stock SET qty = qty + 1 WHERE id = 1")
    execute(second, "UPDATE shop.stock SET qty = qty + 1 WHERE id = 2")
    errors: list[int] = []

    def cross(connection: pymysql.connections.Connection, row: int) -> None:
        try:
            execute(connection, f"UPDATE shop.stock SET qty = qty + 1 WHERE id = {row}")
        except pymysql.err.OperationalError as exc:
            errors.append(exc.args[0])
            connection.rollback()

    thread = in_background(lambda: cross(first, 2))
    await until(lambda: execute(admin, "SELECT COUNT(*) FROM information_schema.INNODB_TRX "
                                       "WHERE trx_state = 'LOCK WAIT'")[0][0] > 0)
    cross(second, 1)
    await asyncio.to_thread(thread.join)
    first.rollback()
    second.rollback()
    first.close()
    second.close()
    assert errors == [1213]
    after = {s.name: s.value for s in await plugin.collect()}["mysql_innodb_deadlocks_total"]
    assert after == before + 1
    assert parse_innodb_status(await plugin.client.innodb_status()).latest_deadlock_at is not None


@pytest.mark.parametrize("through_cli", [False, True], ids=["pymysql", "mysql-cli"])
async def test_wrong_password_and_closed_port(mariadb_server: MariadbServer, through_cli: bool) -> None:
    runner = LocalRunner() if through_cli else None
    cases = [(config_for(mariadb_server, password={"value": "wrong"}), TargetAuthError, "refused the login"),
             (config_for(mariadb_server, port=free_port()), TargetUnreachableError, "cannot be reached")]
    for config, error, reason in cases:
        instance = MySQLPlugin.create(config, runner)
        try:
            with pytest.raises(error, match=reason):
                await instance.collect()
        finally:
            await instance.close()


@pytest.fixture()
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never sends the handshake, as a hung server does."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.mark.parametrize("through_cli", [False, True], ids=["pymysql", "mysql-cli"])
async def test_a_hung_server_times_out(silent_port: int, through_cli: bool) -> None:
    instance = MySQLPlugin.create(MySQLConfig(port=silent_port, timeout_s=0.5), LocalRunner() if through_cli else None)
    try:
        with pytest.raises(TargetTimeoutError, match="no answer"):
            await instance.collect()
    finally:
        await instance.close()


# --- peers: clients and replication partners --------------------------------------------------------


def test_peers_from_recorded_processlist_replica_hosts_and_replica_status() -> None:
    connections = recorded("connections_primary.tsv")
    on_primary = mysql_peers(connections, recorded("replica_hosts.tsv"), [])
    assert on_primary == [Peer(role=PeerRole.REPLICA, address="127.0.0.1:23307", name="2"),
                          Peer(role=PeerRole.CLIENT, address="127.0.0.1", count=3),
                          Peer(role=PeerRole.CLIENT, address="localhost")]
    # without the privilege SHOW SLAVE HOSTS needs, the replica is known by its dump thread's host
    assert mysql_peers(connections, [], [])[0] == Peer(role=PeerRole.REPLICA, address="127.0.0.1")
    on_replica = mysql_peers([], [], parse_replica_status(recorded("replica_status_running.tsv")))
    assert on_replica == [Peer(role=PeerRole.PRIMARY, address="127.0.0.1:23306")]
    assert [connection_host(h) for h in ("10.0.0.5:40000", "[fe80::1]:40000", "localhost")] == \
        ["10.0.0.5", "fe80::1", "localhost"]


@pytest.mark.parametrize("through_cli", [False, True], ids=["pymysql", "mysql-cli"])
async def test_live_peers_are_clients_and_the_primary(mariadb_server: MariadbServer,
                                                      admin: pymysql.connections.Connection, through_cli: bool) -> None:
    closed = free_port()
    apps = [mariadb_server.connect() for _ in range(2)]
    execute(admin, f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={closed}, MASTER_USER='repl', "
                   "MASTER_PASSWORD='x'")
    instance = MySQLPlugin.create(config_for(mariadb_server), LocalRunner() if through_cli else None)
    try:
        peers = await instance.peers()  # as the monitoring user: SHOW SLAVE HOSTS is refused, and that is fine
    finally:
        await instance.close()
        execute(admin, "RESET SLAVE ALL")
        for app in apps:
            app.close()
    assert peers[0] == Peer(role=PeerRole.PRIMARY, address=f"127.0.0.1:{closed}")
    clients = {p.address: p.count for p in peers if p.role == PeerRole.CLIENT}
    assert clients["127.0.0.1"] >= 2 and clients["localhost"] >= 1  # the apps; root on the socket
    assert not [p for p in peers if p.role == PeerRole.REPLICA]


def test_ipv6_primary_and_replica_addresses_are_bracketed() -> None:
    [replica] = mysql_peers([], [{"Server_id": "3", "Host": "fd00::8", "Port": "3306", "Master_id": "1"}], [])
    assert replica.address == "[fd00::8]:3306"
    [status] = parse_replica_status(recorded("replica_status_running.tsv"))
    [primary] = mysql_peers([], [], [dataclasses.replace(status, source="fd00::7:3306")])
    assert primary.address == "[fd00::7]:3306"
