"""The PgBouncer plugin: parsers and rules on rows recorded from PgBouncer 1.18, then collection, snapshot, peers,
health and actions against a real PgBouncer in front of the session's PostgreSQL, with conditions created for real
(clients queueing behind a full pool, a paused and a killed database, a lowered client limit, a backend that is
down)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from kubestack.contract.base import ResourceRef
from kubestack.contract.events import ConfigChange, ConfigDiff, Finding, PeerRole, Severity
from kubestack.errors import ActionError, ActionParamsError, ConfigError, PreconditionFailedError, TargetAuthError
from kubestack.plugins.base import LocalRunner
from kubestack.plugins.kubernetes.config import DiscoveryConfig
from kubestack.plugins.kubernetes.discovery import discover_targets
from kubestack.plugins.pgbouncer import PgBouncerConfig, PgBouncerPlugin
from kubestack.plugins.pgbouncer.checks import Observation, evaluate
from kubestack.plugins.pgbouncer.declaration import ACTIONS
from kubestack.plugins.pgbouncer.parse import parse_config, parse_databases, parse_lists, parse_pools, parse_stats
from kubestack.plugins.pgbouncer.peers import client_peers, server_peers
from kubestack.plugins.pgbouncer.risks import config_risks
from kubestack.plugins.remedy import Clue
from tests.factories import SOURCE
from tests.services.pgbouncer import POOL_SIZE, PgBouncerServer, running_pgbouncer
from tests.services.postgresql import PostgresServer

# --- rows recorded from PgBouncer 1.18 (SHOW ... through psycopg) ----------------------------------------------

POOLS = [
    {"database": "pgbouncer", "user": "pgbouncer", "cl_active": 1, "cl_waiting": 0, "sv_active": 0, "sv_idle": 0,
     "sv_used": 0, "sv_tested": 0, "sv_login": 0, "maxwait": 0, "maxwait_us": 0, "pool_mode": "statement"},
    {"database": "shop", "user": "kubestack", "cl_active": 2, "cl_waiting": 1, "sv_active": 2, "sv_idle": 0,
     "sv_used": 0, "sv_tested": 0, "sv_login": 0, "maxwait": 3, "maxwait_us": 43202, "pool_mode": "session"},
    {"database": "gone", "user": "kubestack", "cl_active": 0, "cl_waiting": 1, "sv_active": 0, "sv_idle": 0,
     "sv_used": 0, "sv_tested": 0, "sv_login": 0, "maxwait": 2, "maxwait_us": 0, "pool_mode": "session"},
]
DATABASES = [
    {"name": "gone", "host": "127.0.0.1", "port": 56761, "database": "shop", "force_user": None, "pool_size": 2,
     "min_pool_size": 0, "reserve_pool": 0, "pool_mode": None, "max_connections": 0, "current_connections": 0,
     "paused": 0, "disabled": 0},
    {"name": "pgbouncer", "host": None, "port": 56651, "database": "pgbouncer", "force_user": "pgbouncer",
     "pool_size": 2, "min_pool_size": 0, "reserve_pool": 0, "pool_mode": "statement", "max_connections": 0,
     "current_connections": 0, "paused": 0, "disabled": 0},
    {"name": "shop", "host": "127.0.0.1", "port": 39769, "database": "shop", "force_user": None, "pool_size": 2,
     "min_pool_size": 0, "reserve_pool": 0, "pool_mode": None, "max_connections": 0, "current_connections": 2,
     "paused": 0, "disabled": 0},
    {"name": "spare", "host": "127.0.0.1", "port": 39769, "database": "shop", "force_user": None, "pool_size": 2,
     "min_pool_size": 0, "reserve_pool": 0, "pool_mode": None, "max_connections": 0, "current_connections": 0,
     "paused": 1, "disabled": 0},
]
STATS = [
    {"database": "pgbouncer", "total_xact_count": Decimal(3), "avg_wait_time": Decimal(0)},
    {"database": "shop", "total_xact_count": Decimal(3), "total_query_count": Decimal(3),
     "total_received": Decimal(28), "total_sent": Decimal(132), "total_xact_time": Decimal(7817),
     "total_query_time": Decimal(7817), "total_wait_time": Decimal(1_979_784), "avg_xact_count": Decimal(1),
     "avg_wait_time": Decimal(615_000)},
]
LISTS = [{"list": "databases", "items": 4}, {"list": "pools", "items": 3}, {"list": "used_clients", "items": 18},
         {"list": "free_clients", "items": 31}]
CONFIG = [{"key": "default_pool_size", "value": "2", "default": "20", "changeable": "yes"},
          {"key": "max_client_conn", "value": "20", "default": "100", "changeable": "yes"},
          {"key": "stats_period", "value": "2", "default": "60", "changeable": "yes"},
          {"key": "auth_hba_file", "value": None, "default": "", "changeable": "yes"}]
CLIENTS = [{"type": "C", "user": "pgb_admin", "database": "pgbouncer", "addr": "127.0.0.1", "application_name": ""},
           {"type": "C", "user": "kubestack", "database": "shop", "addr": "10.0.0.7", "application_name": "orders"},
           {"type": "C", "user": "kubestack", "database": "shop", "addr": "10.0.0.7", "application_name": "orders"},
           {"type": "C", "user": "kubestack", "database": "shop", "addr": "unix", "application_name": ""}]


def recorded(**unreachable: str) -> Observation:
    return Observation(pools=parse_pools(POOLS), databases=parse_databases(DATABASES), stats=parse_stats(STATS),
                       lists=parse_lists(LISTS), config=parse_config(CONFIG), unreachable=unreachable)


def by_rule(findings: list[Finding]) -> dict[str, Finding]:
    return {f.rule_id: f for f in findings}


def test_parsers_leave_out_the_admin_console_and_read_waits_and_backends() -> None:
    pools = parse_pools(POOLS)
    assert [p.db for p in pools] == ["shop", "gone"]
    assert pools[0].maxwait_s == pytest.approx(3.043202) and pools[0].servers == 2
    databases = parse_databases(DATABASES)
    assert [(d.name, d.backend, d.paused) for d in databases] == [
        ("gone", "127.0.0.1:56761", False), ("shop", "127.0.0.1:39769", False), ("spare", "127.0.0.1:39769", True)]
    assert parse_stats(STATS)["shop"]["total_wait_time"] == 1_979_784 and "pgbouncer" not in parse_stats(STATS)
    assert parse_config(CONFIG)["auth_hba_file"] == "" and parse_lists(LISTS)["used_clients"] == 18


def test_rules_on_recorded_rows() -> None:
    limits = PgBouncerConfig(wait_max_s=1, avg_wait_max_ms=100)
    found = by_rule(evaluate(recorded(**{"127.0.0.1:56761": "Connection refused"}), limits))
    assert set(found) == {"pgbouncer.clients_waiting", "pgbouncer.pool_exhausted", "pgbouncer.backend_unreachable",
                          "pgbouncer.database_paused", "pgbouncer.client_connections_near_limit",
                          "pgbouncer.avg_wait_high"}
    exhausted = found["pgbouncer.pool_exhausted"].evidence
    assert (exhausted["db"], exhausted["pool_size"], exhausted["cl_waiting"]) == ("shop", 2, 1)  # not gone: no servers
    assert found["pgbouncer.backend_unreachable"].evidence["databases"] == ["gone"]
    assert found["pgbouncer.avg_wait_high"].evidence["avg_wait_ms"] == {"shop": 615.0}
    assert found["pgbouncer.client_connections_near_limit"].severity == Severity.WARNING  # 18 of 20
    calm = PgBouncerConfig(wait_max_s=5, avg_wait_max_ms=1000, clients_high_ratio=1)
    assert {f.rule_id for f in evaluate(recorded(), calm)} == {"pgbouncer.pool_exhausted", "pgbouncer.database_paused"}


def test_peers_name_the_pooled_servers_and_group_clients() -> None:
    servers = server_peers(parse_databases(DATABASES))
    assert [(p.role, p.address, p.count, p.name) for p in servers] == [
        (PeerRole.SERVER, "127.0.0.1:39769", 2, None), (PeerRole.SERVER, "127.0.0.1:56761", 1, "gone")]
    assert [(p.address, p.count, p.name) for p in client_peers(CLIENTS)] == [("10.0.0.7", 2, "orders"),
                                                                              ("localhost", 1, None)]


def _change(**diffs: tuple[str, str]) -> ConfigChange:
    return ConfigChange(source=SOURCE, resource=ResourceRef(kind="pgbouncer", name="pool-1"),
                        previous_digest="a" * 64, digest="b" * 64,
                        observed={"pgbouncer_client_connections": 15, "pgbouncer_server_connections": 4},
                        changes=[ConfigDiff(key=k, old=o, new=n) for k, (o, n) in diffs.items()])


def test_config_risks() -> None:
    found = by_rule(config_risks(_change(default_pool_size=("20", "5"), max_client_conn=("100", "10"),
                                         pool_mode=("session", "transaction"), auth_type=("scram-sha-256", "trust"))))
    assert set(found) == {"pgbouncer.pool_size_lowered", "pgbouncer.max_client_conn_lowered",
                          "pgbouncer.pool_mode_changed", "pgbouncer.auth_weakened"}
    assert found["pgbouncer.max_client_conn_lowered"].severity == Severity.CRITICAL  # below the 15 connected
    assert found["pgbouncer.pool_mode_changed"].severity == Severity.CRITICAL
    assert config_risks(_change(default_pool_size=("5", "20"), max_client_conn=("10", "100"),
                                auth_type=("md5", "scram-sha-256"))) == []


def _spec(action_id: str):  # noqa: ANN202
    return next(a for a in ACTIONS if a.id == action_id)


def test_remedies_derive_params_the_actions_accept() -> None:
    found = by_rule(evaluate(recorded(), PgBouncerConfig(wait_max_s=1)))
    spec = _spec("pgbouncer.set_default_pool_size")
    [(params, effect)] = list(spec.answers[1].derive(Clue(rule="pgbouncer.pool_exhausted",
                                                          evidence=found["pgbouncer.pool_exhausted"].evidence)))
    assert params == {"size": 3} and spec.accepts(params) and "from 2 to 3" in effect
    [(params, _)] = list(spec.answers[0].derive(Clue(rule="pgbouncer.pool_size_lowered",
                                                     change={"key": "default_pool_size", "old": "20", "new": "5"})))
    assert spec.check(params) == {"size": 20}
    resume = _spec("pgbouncer.resume")
    [(params, _)] = list(resume.answers[0].derive(Clue(rule="pgbouncer.database_paused",
                                                       evidence=found["pgbouncer.database_paused"].evidence)))
    assert params == {"db": "spare"} and resume.accepts(params)
    with pytest.raises(ActionParamsError, match="parameter 'db'"):
        resume.check({"db": "shop; SHUTDOWN"})
    with pytest.raises(ActionParamsError, match="parameter 'size'"):
        spec.check({"size": 0})


def test_discovery_finds_a_pgbouncer_pod() -> None:
    pod = {"metadata": {"name": "pool-0", "namespace": "shop", "labels": {"app": "pool"}},
           "spec": {"containers": [{"name": "pgbouncer", "image": "docker.io/bitnami/pgbouncer:1.18.0",
                                    "ports": [{"containerPort": 6432}]}]}}
    service = {"metadata": {"name": "pool", "namespace": "shop"},
               "spec": {"selector": {"app": "pool"}, "ports": [{"port": 6432}]}}
    [target] = discover_targets("prod", [pod], [service], {}, DiscoveryConfig(kinds=["pgbouncer"]))
    assert target["type"] == "pgbouncer"
    assert target["config"] == {"host": "pool.shop.svc.cluster.local", "port": 6432}
    PgBouncerConfig.model_validate(target["config"])


def test_a_runner_is_refused() -> None:
    with pytest.raises(ConfigError, match="admin console directly"):
        PgBouncerPlugin.create(PgBouncerConfig(), LocalRunner())


# --- live ------------------------------------------------------------------------------------------------------


def _config(server: PgBouncerServer, **limits: Any) -> PgBouncerConfig:
    return PgBouncerConfig.model_validate({"host": server.host, "port": server.port, "user": server.admin_user,
                                           "password": {"value": server.admin_password}, **limits})


@pytest.fixture()
async def plugin(pgbouncer_server: PgBouncerServer) -> AsyncIterator[PgBouncerPlugin]:
    built = PgBouncerPlugin.create(_config(pgbouncer_server, wait_max_s=0.5, avg_wait_max_ms=100))
    try:
        yield built
    finally:
        await built.close()


async def eventually(check: Callable[[], Awaitable[Any]], timeout_s: float = 15) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.2)


async def _client(server: PgBouncerServer, dbname: str = "shop") -> psycopg.AsyncConnection:
    return await psycopg.AsyncConnection.connect(host=server.host, port=server.port, dbname=dbname,
                                                 user=server.app_user, password=server.app_password, autocommit=True)


@contextlib.asynccontextmanager
async def full_pool(server: PgBouncerServer, dbname: str = "shop") -> AsyncIterator[asyncio.Task]:
    """Every server connection of the pool held by a session (pool_mode session) and one more client queued."""
    holders = [await _client(server, dbname) for _ in range(POOL_SIZE)]
    for conn in holders:
        await conn.execute("select 1")

    async def waiter() -> None:
        async with await _client(server, dbname) as conn:
            await conn.execute("select 1")

    task = asyncio.create_task(waiter())
    try:
        yield task
    finally:
        for conn in holders:
            await conn.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


async def test_collect_snapshot_and_peers(plugin: PgBouncerPlugin, pgbouncer_server: PgBouncerServer,
                                          postgresql_server: PostgresServer) -> None:
    async with await _client(pgbouncer_server) as conn:
        await conn.execute("select 1")
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in await plugin.collect()}
        peers = await plugin.peers()
    assert samples[("pgbouncer_max_client_conn", ())] == 20
    assert samples[("pgbouncer_client_connections", ())] >= 2
    assert samples[("pgbouncer_pool_size", (("db", "shop"), ("user", "kubestack")))] == POOL_SIZE
    assert samples[("pgbouncer_pool_server_connections", (("db", "shop"), ("user", "kubestack")))] >= 1
    assert samples[("pgbouncer_xacts_total", (("db", "shop"),))] >= 1
    assert samples[("pgbouncer_backends_unreachable", ())] == 0
    snapshot = await plugin.snapshot_config()
    assert snapshot["default_pool_size"] == str(POOL_SIZE) and snapshot["pool_mode"] == "session"
    backend = f"{postgresql_server.host}:{postgresql_server.port}"
    assert {(p.role, p.address) for p in peers} >= {(PeerRole.SERVER, backend), (PeerRole.CLIENT, "127.0.0.1")}


async def test_a_full_pool_queues_clients_and_a_bigger_pool_serves_them(plugin: PgBouncerPlugin,
                                                                         pgbouncer_server: PgBouncerServer) -> None:
    """The pool of 2 held by two sessions, a third client waits: clients_waiting and pool_exhausted fire; the
    remedy they propose raises default_pool_size (dry run, then for real), the waiter is served and the wait it
    had shows as avg_wait_high; the undo puts the old size back."""
    async with full_pool(pgbouncer_server) as waiter:
        async def waiting() -> dict[str, Finding]:
            found = by_rule(await plugin.check_health())
            return found if {"pgbouncer.clients_waiting", "pgbouncer.pool_exhausted"} <= set(found) else {}

        found = await eventually(waiting)
        assert found, "no clients_waiting/pool_exhausted while a client queues"
        evidence = found["pgbouncer.pool_exhausted"].evidence
        assert (evidence["db"], evidence["pool_size"], evidence["cl_waiting"]) == ("shop", POOL_SIZE, 1)
        spec = _spec("pgbouncer.set_default_pool_size")
        [(params, _)] = list(spec.answers[1].derive(Clue(rule="pgbouncer.pool_exhausted", evidence=evidence)))
        dry = await plugin.execute(spec.id, params, dry_run=True)
        assert dry.dry_run and dry.before["default_pool_size"] == POOL_SIZE and not waiter.done()
        done = await plugin.execute(spec.id, params)
        assert done.undo == (spec.id, {"size": POOL_SIZE})
        await asyncio.wait_for(waiter, 10)
        slow = await eventually(lambda: _rule(plugin, "pgbouncer.avg_wait_high"), timeout_s=8)
        assert slow and slow.evidence["avg_wait_ms"]["shop"] >= 100
    undone = await plugin.execute(*done.undo)
    assert undone.before["default_pool_size"] == params["size"]
    assert (await plugin.snapshot_config())["default_pool_size"] == str(POOL_SIZE)


async def _rule(plugin: PgBouncerPlugin, rule: str) -> Finding | None:
    return by_rule(await plugin.check_health()).get(rule)


async def test_pause_holds_clients_and_resume_lets_them_go(plugin: PgBouncerPlugin,
                                                           pgbouncer_server: PgBouncerServer) -> None:
    with pytest.raises(PreconditionFailedError, match="not paused"):
        await plugin.execute("pgbouncer.resume", {"db": "spare"}, dry_run=True)
    dry = await plugin.execute("pgbouncer.pause", {"db": "spare"}, dry_run=True)
    assert dry.dry_run and not await _rule(plugin, "pgbouncer.database_paused")
    paused = await plugin.execute("pgbouncer.pause", {"db": "spare"})
    assert paused.undo == ("pgbouncer.resume", {"db": "spare"})
    held = asyncio.create_task(_select(pgbouncer_server, "spare"))
    try:
        finding = await eventually(lambda: _rule(plugin, "pgbouncer.database_paused"))
        assert finding.evidence["databases"][0]["db"] == "spare"
        resume = _spec("pgbouncer.resume")
        [(params, _)] = list(resume.answers[0].derive(Clue(rule=finding.rule_id, evidence=finding.evidence)))
        assert (await plugin.execute(resume.id, params, dry_run=True)).before["paused"] == 1
        assert not held.done()
        await plugin.execute(resume.id, params)
        assert await asyncio.wait_for(held, 10) == 1
    finally:
        with contextlib.suppress(PreconditionFailedError):
            await plugin.execute("pgbouncer.resume", {"db": "spare"})
        held.cancel()
    assert not await _rule(plugin, "pgbouncer.database_paused")


async def _select(server: PgBouncerServer, dbname: str) -> int:
    async with await _client(server, dbname) as conn:
        return (await (await conn.execute("select 1")).fetchone())[0]


async def test_kill_drops_a_database_s_connections_until_resume(plugin: PgBouncerPlugin,
                                                                pgbouncer_server: PgBouncerServer) -> None:
    conn = await _client(pgbouncer_server, "spare")
    await conn.execute("select 1")
    dry = await plugin.execute("pgbouncer.kill", {"db": "spare"}, dry_run=True)
    assert dry.before["current_connections"] >= 1
    await conn.execute("select 1")  # the dry run changed nothing
    killed = await plugin.execute("pgbouncer.kill", {"db": "spare"})
    with pytest.raises(psycopg.OperationalError):
        await conn.execute("select 1")
    await conn.close()
    assert await eventually(lambda: _rule(plugin, "pgbouncer.database_paused"))
    await plugin.execute(*killed.undo)
    assert await _select(pgbouncer_server, "spare") == 1
    with pytest.raises(PreconditionFailedError, match="no pooled database 'nowhere'"):
        await plugin.execute("pgbouncer.kill", {"db": "nowhere"}, dry_run=True)


async def test_a_lowered_client_limit_is_near_and_the_remedy_raises_it(plugin: PgBouncerPlugin,
                                                                       pgbouncer_server: PgBouncerServer) -> None:
    conns = [await psycopg.AsyncConnection.connect(
        host=pgbouncer_server.host, port=pgbouncer_server.port, dbname="pgbouncer", user=pgbouncer_server.stats_user,
        password=pgbouncer_server.stats_password, autocommit=True) for _ in range(3)]
    try:
        await plugin.collect()  # the plugin's own admin connection counts too
        with pytest.raises(PreconditionFailedError, match="not above the"):
            await plugin.execute("pgbouncer.set_max_client_conn", {"limit": 4}, dry_run=True)
        lowered = await plugin.execute("pgbouncer.set_max_client_conn", {"limit": 5})
        try:
            finding = await eventually(lambda: _rule(plugin, "pgbouncer.client_connections_near_limit"))
            assert finding.evidence["max_client_conn"] == 5 and finding.evidence["used_clients"] == 4
            spec = _spec("pgbouncer.set_max_client_conn")
            [(params, _)] = list(spec.answers[1].derive(Clue(rule=finding.rule_id, evidence=finding.evidence)))
            assert params == {"limit": 7}
        finally:
            await plugin.execute(*lowered.undo)
    finally:
        for conn in conns:
            await conn.close()
    assert (await plugin.snapshot_config())["max_client_conn"] == "20"
    assert not await _rule(plugin, "pgbouncer.client_connections_near_limit")


async def test_a_stats_user_may_look_but_not_act(pgbouncer_server: PgBouncerServer) -> None:
    config = PgBouncerConfig.model_validate({"host": pgbouncer_server.host, "port": pgbouncer_server.port,
                                             "user": pgbouncer_server.stats_user,
                                             "password": {"value": pgbouncer_server.stats_password}})
    watcher = PgBouncerPlugin.create(config)
    try:
        assert await watcher.collect()
        with pytest.raises(ActionError, match="admin access needed"):
            await watcher.execute("pgbouncer.set_default_pool_size", {"size": 3})
    finally:
        await watcher.close()
    wrong = PgBouncerPlugin.create(config.model_copy(update={"password": None}))
    with pytest.raises(TargetAuthError):
        await wrong.collect()
    await wrong.close()


@pytest.fixture(scope="module")
def pgbouncer_with_backend_down(postgresql_server: PostgresServer) -> Iterator[PgBouncerServer]:
    with running_pgbouncer(postgresql_server, gone=True) as server:
        yield server


async def test_a_backend_that_is_down_is_reported_and_its_clients_wait(
        pgbouncer_with_backend_down: PgBouncerServer) -> None:
    server = pgbouncer_with_backend_down
    watcher = PgBouncerPlugin.create(_config(server, wait_max_s=0.5))
    stuck = asyncio.create_task(_select(server, "gone"))
    try:
        found = await eventually(lambda: _waiting_on_gone(watcher))
        down = found["pgbouncer.backend_unreachable"]
        assert down.evidence == {"backend": f"127.0.0.1:{server.dead_port}", "databases": ["gone"],
                                 "reason": down.evidence["reason"], "cl_waiting": 1}
        assert "pgbouncer.pool_exhausted" not in found  # a pool with no servers is not the bottleneck
        samples = {s.name: s.value for s in await watcher.collect() if not s.labels}
        assert samples["pgbouncer_backends_unreachable"] == 1
    finally:
        stuck.cancel()
        await watcher.close()


async def _waiting_on_gone(watcher: PgBouncerPlugin) -> dict[str, Finding]:
    """Until the backend is down and the client queued for it (waiting in its login: PgBouncer 1.18 keeps no maxwait
    for a pool that never had a server, so clients_waiting does not speak for it)."""
    found = by_rule(await watcher.check_health())
    down = found.get("pgbouncer.backend_unreachable")
    return found if down is not None and down.evidence["cl_waiting"] else {}
