"""Redis actions: parameter checks (pure) and the preconditions on recorded CLIENT LIST output, then each action
against a live server of this module's own (so that maxmemory changes and kills disturb no other test), through
the direct client and through redis-cli: what it changes, what the dry run leaves alone, what the undo restores."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from kubestack.errors import ActionError, ActionParamsError, PreconditionFailedError, UnknownActionError
from kubestack.plugins.base import ActionRunner, LocalRunner
from kubestack.plugins.mysql import MySQLConfig, MySQLPlugin
from kubestack.plugins.postgresql import PostgreSQLConfig, PostgreSQLPlugin
from kubestack.plugins.redis import RedisConfig, RedisPlugin
from kubestack.plugins.base import declared
from kubestack.plugins.redis.actions import client_problems
from kubestack.plugins.redis.parse import parse_client_list
from kubestack.plugins.redis.declaration import ACTIONS
from tests.services.redis import RedisServer, start_redis, start_replica

DATA = Path(__file__).parent / "data" / "redis"


def check(action_id: str, params: dict) -> dict:
    """The action's parameters as its declared model checks and normalises them."""
    return declared(ACTIONS, action_id, "Redis").check(params)


# --- every plugin of this change runs actions ------------------------------------------------------


@pytest.mark.parametrize("plugin_class, config", [
    (RedisPlugin, RedisConfig()), (MySQLPlugin, MySQLConfig()), (PostgreSQLPlugin, PostgreSQLConfig())],
    ids=["redis", "mysql", "postgresql"])
async def test_plugins_are_action_runners(plugin_class: type, config: object) -> None:
    plugin = plugin_class.create(config)
    try:
        assert isinstance(plugin, ActionRunner)
    finally:
        await plugin.close()


# --- pure: parameters and preconditions --------------------------------------------------------------


@pytest.mark.parametrize("params, normalised", [
    ({"bytes": 0}, {"bytes": 0}), ({"bytes": "26214400"}, {"bytes": 26214400}), ({"bytes": 1}, {"bytes": 1})])
def test_set_maxmemory_params(params: dict, normalised: dict) -> None:
    assert check("redis.set_maxmemory", params) == normalised


@pytest.mark.parametrize("params, says", [
    ({}, "'bytes' is missing"), ({"bytes": -1}, "'bytes' must be greater than or equal to 0, not -1"),
    ({"bytes": True}, "'bytes': a boolean is not a number"), ({"bytes": "10mb"}, "'bytes' must be a valid integer"),
    ({"bytes": 1.5}, "'bytes' must be a valid integer"), ({"bytes": 1, "policy": "x"}, "unknown parameter 'policy'")])
def test_set_maxmemory_rejects_bad_params(params: dict, says: str) -> None:
    with pytest.raises(ActionParamsError, match=says):
        check("redis.set_maxmemory", params)


def test_policy_params() -> None:
    assert check("redis.set_maxmemory_policy", {"policy": "allkeys-lru"}) == {"policy": "allkeys-lru"}
    with pytest.raises(ActionParamsError, match="'policy' must be 'noeviction', .*'allkeys-lfu'"):
        check("redis.set_maxmemory_policy", {"policy": "lru"})
    with pytest.raises(ActionParamsError, match="'policy'"):
        check("redis.set_maxmemory_policy", {})


@pytest.mark.parametrize("params, normalised", [
    ({"client_id": "71"}, {"client_id": 71}), ({"addr": "127.0.0.1:35674"}, {"addr": "127.0.0.1:35674"}),
    ({"addr": "[::1]:6000", "client_id": None}, {"addr": "[::1]:6000"}),
    ({"addr": "/run/redis/redis.sock:0"}, {"addr": "/run/redis/redis.sock:0"})])
def test_client_kill_params(params: dict, normalised: dict) -> None:
    assert check("redis.client_kill", params) == normalised


@pytest.mark.parametrize("params, says", [
    ({}, "exactly one of 'client_id'"), ({"client_id": 7, "addr": "1.2.3.4:5"}, "exactly one"),
    ({"client_id": 0}, "'client_id' must be greater than or equal to 1"),
    ({"addr": "1.2.3.4"}, "'addr' is '1.2.3.4'; expected ip:port"), ({"addr": 17}, "'addr' must be a valid string")])
def test_client_kill_rejects_bad_params(params: dict, says: str) -> None:
    with pytest.raises(ActionParamsError, match=says):
        check("redis.client_kill", params)


def test_the_declared_client_kill_params_are_each_optional() -> None:
    spec = declared(ACTIONS, "redis.client_kill", "Redis")
    assert set(spec.parameters["properties"]) == {"client_id", "addr"}
    assert "required" not in spec.parameters


def test_unknown_and_forbidden_actions_are_refused_before_anything_runs() -> None:
    with pytest.raises(UnknownActionError, match="redis.nope is not a Redis action"):
        declared(ACTIONS, "redis.nope", "Redis")
    with pytest.raises(ActionError, match="forbidden") as caught:
        declared(ACTIONS, "redis.flushall", "Redis")
    assert not isinstance(caught.value, UnknownActionError)


def test_client_preconditions_on_recorded_client_list() -> None:
    clients = parse_client_list((DATA / "client_list.txt").read_text())
    target, problems = client_problems(clients, {"client_id": 71})
    assert target is not None and target["cmd"] == "blpop" and problems == []
    assert client_problems(clients, {"addr": "127.0.0.1:35674"})[0] == target
    assert "replication link (flags S)" in client_problems(clients, {"client_id": 56})[1][0]
    assert "own connection" in client_problems(clients, {"client_id": 73})[1][0]
    assert client_problems(clients, {"addr": "127.0.0.1:1"}) == (None, ["no client with addr 127.0.0.1:1 is connected"])


# --- live ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    process, server = start_redis("actions", tmp_path_factory.mktemp("redis-actions"), secrets.token_hex(8))
    try:
        yield server
    finally:
        process.stop()


@pytest.fixture()
def admin(own_redis: RedisServer) -> Iterator[redis.Redis]:
    client = own_redis.connect()
    config = client.config_get("maxmemory*")
    yield client
    client.config_set("maxmemory", config["maxmemory"])
    client.config_set("maxmemory-policy", config["maxmemory-policy"])
    client.close()


@pytest.fixture(params=[False, True], ids=["direct", "redis-cli"])
async def plugin(request: pytest.FixtureRequest, own_redis: RedisServer) -> AsyncIterator[RedisPlugin]:
    config = RedisConfig.model_validate({"host": own_redis.host, "port": own_redis.port,
                                         "password": {"value": own_redis.password}})
    instance = RedisPlugin.create(config, LocalRunner() if request.param else None)
    yield instance
    await instance.close()


def used_memory(admin: redis.Redis) -> int:
    return int(admin.info("memory")["used_memory"])


async def test_set_maxmemory_dry_run_then_for_real_then_undo(plugin: RedisPlugin, admin: redis.Redis) -> None:
    admin.config_set("maxmemory", 10485760)
    target = 26214400
    dry = await plugin.execute("redis.set_maxmemory", {"bytes": target}, dry_run=True)
    assert admin.config_get("maxmemory")["maxmemory"] == "10485760"
    assert dry.dry_run and dry.output.startswith(f"CONFIG SET maxmemory {target} (now 10485760; used_memory ")
    assert dry.undo == ("redis.set_maxmemory", {"bytes": 10485760})

    done = await plugin.execute("redis.set_maxmemory", {"bytes": str(target)})
    assert admin.config_get("maxmemory")["maxmemory"] == str(target)
    assert not done.dry_run and done.before["maxmemory"] == 10485760 and done.params == {"bytes": target}
    assert done.output.startswith("done: CONFIG SET maxmemory 26214400")

    action, params = done.undo
    restored = await plugin.execute(action, params)
    assert admin.config_get("maxmemory")["maxmemory"] == "10485760"
    assert restored.undo == ("redis.set_maxmemory", {"bytes": target})


async def test_a_limit_below_the_data_with_noeviction_is_refused(plugin: RedisPlugin, admin: redis.Redis) -> None:
    admin.mset({f"fill:{i}": "x" * 1024 for i in range(2000)})
    admin.config_set("maxmemory", 0)
    admin.config_set("maxmemory-policy", "noeviction")
    too_small = used_memory(admin) // 2
    for dry_run in (True, False):
        with pytest.raises(PreconditionFailedError, match="below used_memory .* noeviction") as caught:
            await plugin.execute("redis.set_maxmemory", {"bytes": too_small}, dry_run=dry_run)
        assert caught.value.action == "redis.set_maxmemory" and len(caught.value.problems) == 1
    assert admin.config_get("maxmemory")["maxmemory"] == "0" and admin.dbsize() >= 2000

    admin.config_set("maxmemory-policy", "allkeys-lru")  # a policy that evicts may go below the data
    outcome = await plugin.execute("redis.set_maxmemory", {"bytes": too_small}, dry_run=True)
    assert outcome.before["maxmemory_policy"] == "allkeys-lru" and admin.dbsize() >= 2000


async def test_a_limit_above_the_host_memory_is_refused(plugin: RedisPlugin, admin: redis.Redis) -> None:
    total = int(admin.info("memory")["total_system_memory"])
    with pytest.raises(PreconditionFailedError, match=f"above the host's total memory {total}"):
        await plugin.execute("redis.set_maxmemory", {"bytes": total + 1})
    assert admin.config_get("maxmemory")["maxmemory"] == "0"


async def test_set_policy_and_its_undo(plugin: RedisPlugin, admin: redis.Redis) -> None:
    admin.config_set("maxmemory-policy", "noeviction")
    dry = await plugin.execute("redis.set_maxmemory_policy", {"policy": "allkeys-lfu"}, dry_run=True)
    assert dry.output == "CONFIG SET maxmemory-policy allkeys-lfu (now noeviction)"
    assert admin.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    done = await plugin.execute("redis.set_maxmemory_policy", {"policy": "allkeys-lfu"})
    assert admin.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lfu"
    assert done.undo == ("redis.set_maxmemory_policy", {"policy": "noeviction"})
    await plugin.execute(*done.undo)
    assert admin.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    with pytest.raises(ActionParamsError):
        await plugin.execute("redis.set_maxmemory_policy", {"policy": "evict-everything"})


def blocked_client(server: RedisServer, name: str) -> socket.socket:
    """A raw connection blocked in BLPOP (no client library that would reconnect behind our back)."""
    sock = socket.create_connection((server.host, server.port), timeout=10)
    sock.sendall(f"AUTH {server.password}\r\nCLIENT SETNAME {name}\r\n".encode())
    received = b""
    while received.count(b"+OK\r\n") < 2:
        received += sock.recv(100)
    sock.sendall(b"BLPOP nothing-ever-comes 60\r\n")
    return sock


def client_by_name(admin: redis.Redis, name: str) -> dict:
    for _ in range(50):
        found = [c for c in admin.client_list() if c["name"] == name and c["cmd"] == "blpop"]
        if found:
            return found[0]
        admin.execute_command("PING")
    raise AssertionError(f"client {name} never showed up blocked")


@pytest.mark.parametrize("by", ["client_id", "addr"])
async def test_client_kill_ends_a_blocked_client(plugin: RedisPlugin, own_redis: RedisServer, admin: redis.Redis,
                                                 by: str) -> None:
    name = f"blocker-{by}"
    sock = blocked_client(own_redis, name)
    try:
        client = client_by_name(admin, name)
        params = {"client_id": client["id"]} if by == "client_id" else {"addr": client["addr"]}
        dry = await plugin.execute("redis.client_kill", params, dry_run=True)
        assert dry.output.startswith(f"CLIENT KILL ID {client['id']} (addr {client['addr']}, name {name}, cmd blpop")
        assert client_by_name(admin, name)["id"] == client["id"]

        done = await plugin.execute("redis.client_kill", params)
        assert done.undo is None and done.before["name"] == name and done.before["flags"] == "b"
        assert await asyncio.to_thread(sock.recv, 100) == b""  # the server closed it
        assert not [c for c in admin.client_list() if c["name"] == name]
        with pytest.raises(PreconditionFailedError, match="is connected"):
            await plugin.execute("redis.client_kill", params)
    finally:
        sock.close()


async def test_client_kill_spares_our_own_connection(own_redis: RedisServer, admin: redis.Redis) -> None:
    config = RedisConfig.model_validate({"host": own_redis.host, "port": own_redis.port,
                                         "password": {"value": own_redis.password}})
    plugin = RedisPlugin.create(config)
    try:
        own = [c for c in parse_client_list(await plugin.client.client_list()) if c["cmd"] == "client|list"]
        with pytest.raises(PreconditionFailedError, match="own connection"):
            await plugin.execute("redis.client_kill", {"client_id": own[0]["id"]})
        assert await plugin.client.info()  # still connected
    finally:
        await plugin.close()


async def test_client_kill_spares_the_replication_link(plugin: RedisPlugin, own_redis: RedisServer,
                                                       admin: redis.Redis, tmp_path: Path) -> None:
    process, replica = start_replica("actions-replica", tmp_path, own_redis)
    try:
        link = next(c for c in admin.client_list() if "S" in c["flags"])
        with pytest.raises(PreconditionFailedError, match="replication link"):
            await plugin.execute("redis.client_kill", {"addr": link["addr"]})
        assert admin.info("replication")["connected_slaves"] == 1
    finally:
        process.stop()


async def test_flushall_never_runs_not_even_as_a_dry_run(plugin: RedisPlugin, admin: redis.Redis) -> None:
    admin.set("keep-me", "1")
    for dry_run in (True, False):
        with pytest.raises(ActionError, match="forbidden"):
            await plugin.execute("redis.flushall", {}, dry_run=dry_run)
    assert admin.get("keep-me") == "1"
    with pytest.raises(UnknownActionError):
        await plugin.execute("redis.config_rewrite", {})
