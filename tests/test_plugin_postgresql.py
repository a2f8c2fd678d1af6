"""The PostgreSQL plugin: parsers and rules on recorded psql output, then live against a real PostgreSQL 15
(direct psycopg connection and psql through a LocalRunner), with real lock waits, idle transactions, slots,
a nearly full connection table and a streaming standby."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from kubestack.contract.base import utcnow
from kubestack.contract.events import Finding, Peer, PeerRole, Severity
from kubestack.errors import TargetAuthError, TargetUnreachableError
from kubestack.plugins.base import LocalRunner
from kubestack.plugins.postgresql import PostgreSQLConfig, PostgreSQLPlugin, queries
from kubestack.plugins.postgresql.checks import evaluate
from kubestack.plugins.postgresql.metrics import background_samples
from kubestack.plugins.postgresql.parse import (
    Observation,
    parse_activity,
    parse_blocking,
    parse_databases,
    parse_key_values,
    parse_numbers,
    parse_psql_rows,
    parse_replication,
    parse_server,
    parse_slots,
    redact_settings,
)
from kubestack.plugins.postgresql.peers import client_peers, postgresql_peers
from tests.services.postgresql import SUPERUSER, PostgresServer, running_postgresql, standby_of
from tests.services.process import free_port

DATA = Path(__file__).parent / "data" / "postgresql"


def recorded(name: str) -> list[tuple[str | None, ...]]:
    return parse_psql_rows((DATA / f"{name}.txt").read_text())


def recorded_observation() -> Observation:
    return Observation(server=parse_server(recorded("server")), databases=parse_databases(recorded("databases")),
                       sessions=parse_activity(recorded("activity")), lock_waits=parse_blocking(recorded("blocking")),
                       replicas=parse_replication(recorded("replication")), slots=parse_slots(recorded("slots")),
                       blocking_query=queries.blocking_sql(150018))


def config_for(server: PostgresServer, **overrides: object) -> PostgreSQLConfig:
    return PostgreSQLConfig.model_validate({"host": server.host, "port": server.port, "dbname": server.dbname,
                                            "user": server.user, "password": {"value": server.password}, **overrides})


def rules(findings: list[Finding], rule_id: str) -> list[Finding]:
    return [f for f in findings if f.rule_id == rule_id]


# --- recorded output ------------------------------------------------------------------------------


def test_psql_rows_keep_null_apart_from_empty_cells() -> None:
    rows = recorded("server")
    assert rows == [("150018", "100", "3", "200000000", "false", "2.252087", "27656696", None)]
    activity = recorded("activity")
    checkpointer = ("31057", "", "", "", "", "checkpointer", "Activity", "CheckpointerMain", None, None, "", "false")
    assert checkpointer in activity


def test_server_row_of_a_primary_and_of_a_standby() -> None:
    primary, standby = parse_server(recorded("server")), parse_server(recorded("server-standby"))
    assert (primary.version_num, primary.max_connections, primary.reserved_connections) == (150018, 100, 3)
    assert primary.autovacuum_freeze_max_age == 200_000_000
    assert not primary.in_recovery and primary.wal_bytes == 27656696 and primary.replay_lag_s is None
    assert standby.in_recovery and standby.replay_lag_s == pytest.approx(0.864525)


def test_databases_give_counters_and_cache_hit_ratio() -> None:
    dbs = {db.name: db for db in parse_databases(recorded("databases"))}
    assert set(dbs) == {"postgres", "shop", "template0", "template1"}
    shop = dbs["shop"]
    assert (shop.backends, shop.commits, shop.blocks_read, shop.blocks_hit, shop.tuples_inserted) == (4, 52, 77, 39114,
                                                                                                       10020)
    assert shop.size_bytes == 8273255 and shop.xid_age == 14
    assert shop.cache_hit_ratio == pytest.approx(39114 / (39114 + 77))
    assert dbs["template0"].cache_hit_ratio is None


def test_recorded_lock_wait_names_both_pids_and_queries() -> None:
    [wait] = parse_blocking(recorded("blocking"))
    assert (wait.blocked_pid, wait.blocking_pid) == (31069, 31067)
    assert wait.blocked_query == "update t set v = 2 where id = 1"
    assert wait.blocking_query == "update t set v = 1 where id = 1"
    assert wait.blocking_state == "idle in transaction"
    assert (wait.lock_type, wait.lock_mode) == ("transactionid", "ShareLock")
    assert wait.wait_s == pytest.approx(2.191284)


def test_rules_on_a_recorded_round_follow_the_thresholds() -> None:
    obs = recorded_observation()
    assert evaluate(obs, PostgreSQLConfig()) == []  # 2 s waits and idle time are under the defaults
    strict = PostgreSQLConfig(lock_wait_s=1, idle_in_transaction_s=1, long_transaction_s=1, slot_retained_max_bytes=0)
    findings = evaluate(obs, strict)
    [lock] = rules(findings, "postgresql.lock_wait")
    assert lock.evidence["blocked_pid"] == 31069 and lock.evidence["blocking_pid"] == 31067
    assert lock.evidence["wait_s"] == pytest.approx(2.191, abs=1e-3)
    assert "pg_blocking_pids" in lock.query
    [idle] = rules(findings, "postgresql.idle_in_transaction")
    assert [s["pid"] for s in idle.evidence["sessions"]] == [31067]
    [slot] = rules(findings, "postgresql.inactive_slot_retaining_wal")
    assert slot.evidence == {"slot": "standby_gone", "slot_type": "physical", "active": False,
                             "retained_bytes": 5634800.0, "wal_status": "reserved", "threshold_bytes": 0}


def test_recorded_standby_lag_and_active_slot() -> None:
    [replica] = parse_replication(recorded("replication"))
    assert (replica.name, replica.state, replica.sync_state, replica.lag_bytes) == ("standby1", "streaming", "async", 0)
    obs = recorded_observation()
    obs = Observation(**{**obs.__dict__, "replicas": [replica], "slots": parse_slots(recorded("slots-active"))})
    findings = evaluate(obs, PostgreSQLConfig(slot_retained_max_bytes=0))
    assert rules(findings, "postgresql.inactive_slot_retaining_wal") == []
    [lag] = rules(evaluate(obs, PostgreSQLConfig(replica_lag_max_s=0.01)), "postgresql.replica_lag")
    assert lag.evidence["replica"] == "standby1" and lag.evidence["replay_lag_s"] == pytest.approx(0.022433)


def test_background_writer_counters_become_samples() -> None:
    counters = parse_numbers(parse_key_values(recorded("bgwriter")))
    assert "stats_reset" not in counters and counters["buffers_alloc"] == 1795
    names = {s.name: s.value for s in background_samples(counters, utcnow())}
    assert names["postgresql_buffers_alloc_total"] == 1795
    assert names["postgresql_checkpoints_timed_total"] == 0


def test_settings_snapshot_hides_credentials() -> None:
    settings = parse_key_values(recorded("settings"))
    assert settings["max_connections"] == "100" and settings["archive_command"] == "(disabled)"
    redacted = redact_settings(settings | {"primary_conninfo": "host=db1 user=rep password='s3 cr3t' port=5432",
                                           "ssl_passphrase_command": "echo hunter2"})
    assert redacted["primary_conninfo"] == "host=db1 user=rep password=******** port=5432"
    assert "ssl_passphrase_command" not in redacted


# --- live -----------------------------------------------------------------------------------------


@pytest.fixture()
async def plugin(postgresql_server: PostgresServer) -> AsyncIterator[PostgreSQLPlugin]:
    instance = PostgreSQLPlugin.create(config_for(postgresql_server))
    yield instance
    await instance.close()


async def admin_async(server: PostgresServer, autocommit: bool = True) -> psycopg.AsyncConnection:
    return await psycopg.AsyncConnection.connect(host=str(server.socket_dir), port=server.port, user=SUPERUSER,
                                                 dbname=server.dbname, autocommit=autocommit)


async def test_live_collect_direct_and_through_psql_agree(postgresql_server: PostgresServer,
                                                          plugin: PostgreSQLPlugin) -> None:
    direct = await plugin.collect()
    by_name = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in direct}
    assert by_name[("postgresql_max_connections", ())] == 100
    assert by_name[("postgresql_in_recovery", ())] == 0
    assert by_name[("postgresql_wal_position_bytes_total", ())] > 0
    assert 0 < by_name[("postgresql_connections_used_ratio", ())] < 1
    assert ("postgresql_db_commits_total", (("db", "shop"),)) in by_name
    assert by_name[("postgresql_db_xid_age", (("db", "shop"),))] >= 0
    via_psql = PostgreSQLPlugin.create(config_for(postgresql_server), LocalRunner())
    cli = await via_psql.collect()
    assert {s.name for s in cli} == {s.name for s in direct}
    assert {tuple(sorted(s.labels.items())) for s in cli if s.name == "postgresql_db_size_bytes"} == {
        (("db", name),) for name in ("postgres", "shop", "template0", "template1")}


async def test_live_snapshot_is_pg_settings(plugin: PostgreSQLPlugin) -> None:
    config = await plugin.snapshot_config()
    assert config["max_connections"] == "100"
    assert config["listen_addresses"] == "127.0.0.1"
    assert "ssl_passphrase_command" not in config


async def test_live_lock_wait_names_blocked_and_blocking_pid(postgresql_server: PostgresServer) -> None:
    setup = await admin_async(postgresql_server)
    await setup.execute("create table if not exists stock (id int primary key, qty int)")
    await setup.execute("insert into stock values (1, 10) on conflict (id) do update set qty = 10")
    holder, waiter = await admin_async(postgresql_server, autocommit=False), await admin_async(postgresql_server)
    plugin = PostgreSQLPlugin.create(config_for(postgresql_server, lock_wait_s=0.2))
    try:
        holder_pid, waiter_pid = holder.info.backend_pid, waiter.info.backend_pid
        await holder.execute("update stock set qty = qty - 1 where id = 1")
        blocked = asyncio.create_task(waiter.execute("update stock set qty = qty - 2 where id = 1"))
        lock = []
        for _ in range(50):
            await asyncio.sleep(0.1)
            lock = rules(await plugin.check_health(), "postgresql.lock_wait")
            if lock:
                break
        assert len(lock) == 1
        evidence = lock[0].evidence
        assert (evidence["blocked_pid"], evidence["blocking_pid"]) == (waiter_pid, holder_pid)
        assert evidence["blocked_query"] == "update stock set qty = qty - 2 where id = 1"
        assert evidence["blocking_query"] == "update stock set qty = qty - 1 where id = 1"
        assert evidence["blocking_state"] == "idle in transaction"
        assert evidence["wait_s"] >= 0.2
        samples = {s.name: s.value for s in await plugin.collect() if not s.labels}
        assert samples["postgresql_blocked_sessions"] == 1 and samples["postgresql_lock_waiting_sessions"] == 1
        await holder.rollback()
        await blocked
    finally:
        await plugin.close()
        for conn in (holder, waiter, setup):
            await conn.close()


async def test_live_idle_in_transaction_and_long_transaction(postgresql_server: PostgresServer) -> None:
    idle = await admin_async(postgresql_server, autocommit=False)
    plugin = PostgreSQLPlugin.create(config_for(postgresql_server, idle_in_transaction_s=0.3, long_transaction_s=0.3),
                                     LocalRunner())
    try:
        await idle.execute("select count(*) from pg_class")
        await asyncio.sleep(0.5)
        findings = await plugin.check_health()
        [finding] = rules(findings, "postgresql.idle_in_transaction")
        [session] = [s for s in finding.evidence["sessions"] if s["pid"] == idle.info.backend_pid]
        assert session["state"] == "idle in transaction" and session["state_age_s"] >= 0.3
        assert session["query"] == "select count(*) from pg_class"
        assert idle.info.backend_pid in [s["pid"] for s in rules(findings, "postgresql.long_transaction")[0]
                                         .evidence["sessions"]]
    finally:
        await idle.close()
        await plugin.close()
    assert rules(await PostgreSQLPlugin.create(config_for(postgresql_server, idle_in_transaction_s=0.3))
                 .check_health(), "postgresql.idle_in_transaction") == []


async def test_live_inactive_slot_and_xid_age(postgresql_server: PostgresServer, plugin: PostgreSQLPlugin) -> None:
    setup = await admin_async(postgresql_server)
    await setup.execute("select pg_create_physical_replication_slot('gone_standby', true)")
    try:
        await setup.execute("create table if not exists filler as select g from generate_series(1, 20000) g")
        strict = PostgreSQLPlugin.create(config_for(postgresql_server, slot_retained_max_bytes=0,
                                                    xid_age_warning_ratio=1e-9))
        findings = await strict.check_health()
        await strict.close()
        [slot] = rules(findings, "postgresql.inactive_slot_retaining_wal")
        assert slot.evidence["slot"] == "gone_standby" and slot.evidence["retained_bytes"] > 0
        ages = {row[0]: row[1] for row in await (await setup.execute(
            "select datname, age(datfrozenxid) from pg_database")).fetchall()}
        xid = {f.evidence["db"]: f.evidence["xid_age"] for f in rules(findings, "postgresql.xid_age_high")}
        assert xid["shop"] >= ages["shop"] > 0
        assert rules(await plugin.check_health(), "postgresql.xid_age_high") == []
    finally:
        await setup.execute("select pg_drop_replication_slot('gone_standby')")
        await setup.close()


async def test_live_standby_is_seen_from_both_sides(postgresql_server: PostgresServer,
                                                    plugin: PostgreSQLPlugin) -> None:
    with standby_of(postgresql_server) as port:
        streaming = []
        for _ in range(50):
            streaming = [s for s in await plugin.collect() if s.name == "postgresql_replica_streaming"]
            if streaming and streaming[0].value == 1:
                break
            await asyncio.sleep(0.1)
        assert [(s.labels, s.value) for s in streaming] == [({"replica": "standby1"}, 1.0)]
        on_standby = PostgreSQLPlugin.create(config_for(postgresql_server, port=port), LocalRunner())
        samples = {s.name: s.value for s in await on_standby.collect() if not s.labels}
        assert samples["postgresql_in_recovery"] == 1
        assert samples["postgresql_wal_position_bytes_total"] > 0


async def test_connections_near_max_on_a_small_server() -> None:
    with running_postgresql("postgresql-small", max_connections="10") as small:  # 7 slots for ordinary roles
        plugin = PostgreSQLPlugin.create(config_for(small))
        clients = [small.admin() for _ in range(5)]
        try:
            [finding] = rules(await plugin.check_health(), "postgresql.connections_near_max")
            assert finding.severity == Severity.WARNING  # 6 of 7 with the plugin's own connection
            assert finding.evidence["client_connections"] == 6 and finding.evidence["max_connections"] == 10
            assert finding.evidence["connections_used_ratio"] == pytest.approx(6 / 7, abs=1e-4)
            clients.append(small.admin())
            [finding] = rules(await plugin.check_health(), "postgresql.connections_near_max")
            assert finding.severity == Severity.CRITICAL
        finally:
            await plugin.close()
            for conn in clients:
                conn.close()


async def test_wrong_password_is_an_auth_error(postgresql_server: PostgresServer) -> None:
    config = config_for(postgresql_server, password={"value": "not-the-password"})
    for runner in (None, LocalRunner()):
        plugin = PostgreSQLPlugin.create(config, runner)
        with pytest.raises(TargetAuthError, match="password authentication failed"):
            await plugin.collect()
        await plugin.close()


async def test_closed_port_is_unreachable(postgresql_server: PostgresServer) -> None:
    config = config_for(postgresql_server, port=free_port())
    for runner in (None, LocalRunner()):
        plugin = PostgreSQLPlugin.create(config, runner)
        with pytest.raises(TargetUnreachableError, match="cannot be reached"):
            await plugin.snapshot_config()
        await plugin.close()


# --- peers: clients, standbys and the primary ----------------------------------------------------------


def test_peers_from_recorded_activity_replication_and_wal_receiver() -> None:
    on_primary = postgresql_peers(recorded("connections"), parse_replication(recorded("replication-primary")),
                                  recorded("wal-receiver-primary"))
    assert on_primary == [Peer(role=PeerRole.REPLICA, address="localhost", name="standby1"),  # over the socket
                          Peer(role=PeerRole.CLIENT, address="127.0.0.1", count=3),  # 2 named checkout, 1 unnamed
                          Peer(role=PeerRole.CLIENT, address="localhost", name="psql-admin")]
    assert client_peers(recorded("connections")[2:]) == [
        Peer(role=PeerRole.CLIENT, address="127.0.0.1", name="checkout", count=2)]
    primary = recorded("wal-receiver")[0]
    assert postgresql_peers([], [], [primary]) == [Peer(role=PeerRole.PRIMARY, address=f"localhost:{primary[1]}")]
    assert postgresql_peers([], [], [("10.0.0.7", "5432", "streaming")]) == [
        Peer(role=PeerRole.PRIMARY, address="10.0.0.7:5432")]
    assert client_peers([("10.0.0.9/32", "5000", "api"), ("", "", "")]) == [  # an inet cast; a background process
        Peer(role=PeerRole.CLIENT, address="10.0.0.9", name="api")]


async def test_live_peers_of_a_primary_and_its_standby(postgresql_server: PostgresServer) -> None:
    apps = [await psycopg.AsyncConnection.connect(host=postgresql_server.host, port=postgresql_server.port,
                                                  user=postgresql_server.user, password=postgresql_server.password,
                                                  dbname=postgresql_server.dbname, application_name="checkout")
            for _ in range(2)]
    try:
        with standby_of(postgresql_server) as port:
            for runner in (None, LocalRunner()):
                primary = PostgreSQLPlugin.create(config_for(postgresql_server), runner)
                standby = PostgreSQLPlugin.create(config_for(postgresql_server, port=port), runner)
                try:
                    async with asyncio.timeout(30):
                        on_primary = await primary.peers()
                        while PeerRole.REPLICA not in {p.role for p in on_primary}:
                            await asyncio.sleep(0.1)
                            on_primary = await primary.peers()
                    on_standby = await standby.peers()
                finally:
                    await primary.close()
                    await standby.close()
                assert Peer(role=PeerRole.REPLICA, address="localhost", name="standby1") in on_primary
                [tcp] = [p for p in on_primary if p.role == PeerRole.CLIENT and p.address == "127.0.0.1"]
                assert tcp.count >= 2  # the two apps; the plugin's own session is left out
                assert on_standby[0] == Peer(role=PeerRole.PRIMARY, address=f"localhost:{postgresql_server.port}")
    finally:
        for app in apps:
            await app.close()
