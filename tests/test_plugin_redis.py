"""The Redis plugin: parsers and rules on output recorded from a real server (tests/data/redis), then collection,
snapshot and health against a live one, with conditions created for real (a full noeviction instance, a blocked
client, refused connections, a failed background save, a replica that lost its primary)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio

from kubestack.contract.base import utcnow
from kubestack.contract.events import Peer, PeerRole
from kubestack.errors import TargetAuthError, TargetTimeoutError, TargetUnreachableError
from kubestack.plugins.base import LocalRunner
from kubestack.plugins.redis import RedisConfig, RedisPlugin
from kubestack.plugins.redis.checks import Observation, evaluate
from kubestack.plugins.redis.client import classify_cli_error
from kubestack.plugins.redis.metrics import info_samples
from kubestack.plugins.redis.parse import (
    SlowlogEntry,
    parse_client_list,
    parse_config_pairs,
    parse_info,
    parse_keyspace,
    parse_replicas,
    parse_slowlog,
)
from kubestack.plugins.redis.peers import client_host, client_peers, redis_peers
from kubestack.plugins.redis.plugin import redact
from tests.services.process import free_port
from tests.services.redis import RedisServer, start_replica

DATA = Path(__file__).parent / "data" / "redis"


def recorded(name: str) -> str:
    return (DATA / name).read_text()


def recorded_observation(info: str = "info_primary.txt", **config: str) -> Observation:
    slowlog = parse_slowlog(json.loads(recorded("slowlog_get.json")))
    return Observation(info=parse_info(recorded(info)),
                       config=parse_config_pairs(json.loads(recorded("config_get.json"))) | config,
                       slowlog=slowlog, clients=parse_client_list(recorded("client_list.txt")),
                       now=slowlog[0].started_at + 5)


def rules(findings: list) -> dict:
    return {f.rule_id: f for f in findings}


# --- parsers and rules on recorded output ----------------------------------------------------------


def test_info_sections_and_fields_are_parsed() -> None:
    info = parse_info(recorded("info_primary.txt"))
    assert {"server", "clients", "memory", "persistence", "stats", "replication", "cpu", "keyspace"} <= set(info)
    assert info["server"]["redis_version"] == "7.0.15"
    assert info["clients"]["blocked_clients"] == "1"
    assert info["memory"]["maxmemory_policy"] == "volatile-lru"
    [replica] = parse_replicas(info)
    assert (replica.ip, replica.port, replica.state, replica.offset) == ("127.0.0.1", "16380", "online", 181)
    [db0] = parse_keyspace(info)
    assert (db0.db, db0.keys, db0.expires) == ("db0", 5, 1)


def test_samples_from_recorded_info() -> None:
    info = parse_info(recorded("info_primary.txt"))
    samples = {(s.name, tuple(s.labels.items())): s.value for s in info_samples(info, utcnow())}
    used = float(info["memory"]["used_memory"])
    assert samples[("redis_used_memory_bytes", ())] == used
    assert samples[("redis_memory_used_ratio", ())] == pytest.approx(used / 104857600)
    assert samples[("redis_blocked_clients", ())] == 1
    assert samples[("redis_rdb_last_bgsave_ok", ())] == 1
    assert samples[("redis_latest_fork_seconds", ())] == pytest.approx(float(info["stats"]["latest_fork_usec"]) / 1e6)
    replica = (("replica", "127.0.0.1:16380"),)
    assert samples[("redis_replica_lag_bytes", replica)] == float(info["replication"]["master_repl_offset"]) - 181
    assert samples[("redis_db_keys", (("db", "db0"),))] == 5


def test_config_slowlog_and_client_list_replies_are_parsed() -> None:
    config = parse_config_pairs(json.loads(recorded("config_get.json")))
    assert config["maxmemory"] == "104857600" and config["requirepass"] == "s3cret" and config["masterauth"] == ""
    assert redact(config)["requirepass"] == "<redacted>" and redact(config)["masterauth"] == ""
    with pytest.raises(ValueError, match="odd number"):
        parse_config_pairs(["maxmemory"])
    [entry] = parse_slowlog(json.loads(recorded("slowlog_get.json")))
    assert entry.duration_us == 36099 and entry.command.startswith("EVAL local i=0")
    clients = parse_client_list(recorded("client_list.txt"))
    assert [c["cmd"] for c in clients if "b" in c["flags"]] == ["blpop"]


def test_rules_on_the_recorded_primary() -> None:
    found = rules(evaluate(recorded_observation(), RedisConfig(replica_lag_max_s=0)))
    assert set(found) == {"redis.blocked_clients", "redis.slow_commands", "redis.replica_lagging"}
    assert found["redis.blocked_clients"].evidence["clients"][0]["cmd"] == "blpop"
    assert found["redis.slow_commands"].evidence["entries"][0]["duration_us"] == 36099
    assert found["redis.replica_lagging"].evidence["replicas"][0]["replica"] == "127.0.0.1:16380"
    assert "redis.replica_lagging" not in rules(evaluate(recorded_observation(), RedisConfig()))


def test_the_plugins_own_commands_in_the_slowlog_are_not_slow_commands() -> None:
    """On a starved host the agent's INFO can pass the threshold: that is not a client running something slow."""
    obs = recorded_observation()
    own = [SlowlogEntry(id=90 + i, started_at=obs.now - 1, duration_us=25_000, command=c, client="127.0.0.1:5000")
           for i, c in enumerate(("INFO", "CONFIG GET *", "SLOWLOG GET 10", "CLIENT LIST", "info"))]
    alone = Observation(info=obs.info, config=obs.config, slowlog=own, clients=[], now=obs.now)
    assert "redis.slow_commands" not in rules(evaluate(alone, RedisConfig()))
    mixed = Observation(info=obs.info, config=obs.config, slowlog=own + obs.slowlog, clients=[], now=obs.now)
    entries = rules(evaluate(mixed, RedisConfig()))["redis.slow_commands"].evidence["entries"]
    assert {e["id"] for e in entries} == {e.id for e in obs.slowlog if e.started_at >= obs.now - 300}


def test_failed_bgsave_and_lost_primary_are_critical() -> None:
    failed = rules(evaluate(recorded_observation("info_bgsave_err.txt"), RedisConfig()))["redis.rdb_bgsave_failed"]
    assert failed.severity == "critical" and failed.evidence["rdb_last_bgsave_status"] == "err"
    lost = rules(evaluate(recorded_observation("info_replica_link_down.txt"), RedisConfig()))["redis.replica_link_down"]
    assert lost.evidence["master_port"] == "1" and lost.evidence["master_link_status"] == "down"


def test_no_auth_on_a_public_bind_is_critical() -> None:
    exposed = recorded_observation(bind="0.0.0.0", **{"protected-mode": "no", "requirepass": ""})
    finding = rules(evaluate(exposed, RedisConfig()))["redis.no_auth_exposed"]
    assert finding.severity == "critical" and finding.evidence["bind"] == "0.0.0.0"
    for safe in (recorded_observation(bind="0.0.0.0", **{"protected-mode": "no"}),  # has a requirepass
                 recorded_observation(bind="127.0.0.1 -::1", **{"protected-mode": "no", "requirepass": ""}),
                 recorded_observation(bind="10.0.0.5", **{"protected-mode": "yes", "requirepass": ""})):
        assert "redis.no_auth_exposed" not in rules(evaluate(safe, RedisConfig()))


def test_fragmentation_needs_both_ratio_and_wasted_bytes() -> None:
    obs = recorded_observation()
    memory = {"mem_fragmentation_ratio": "2.50", "used_memory": str(200 << 20), "used_memory_rss": str(500 << 20)}
    info = {**obs.info, "memory": obs.info["memory"] | memory}
    fragmented = Observation(info=info, config=obs.config, slowlog=[], clients=[], now=obs.now)
    finding = rules(evaluate(fragmented, RedisConfig()))["redis.high_fragmentation"]
    assert finding.evidence["mem_fragmentation_ratio"] == 2.5
    assert "redis.high_fragmentation" not in rules(evaluate(fragmented, RedisConfig(fragmentation_min_bytes=1 << 30)))


def test_cli_errors_are_classified() -> None:
    assert isinstance(classify_cli_error("Could not connect to Redis at 127.0.0.1:1: Connection refused", "x"),
                      TargetUnreachableError)
    assert isinstance(classify_cli_error("AUTH failed: WRONGPASS invalid username-password pair", "x"),
                      TargetAuthError)
    assert classify_cli_error("ERR unknown command 'NOSUCH'", "x") is None


# --- live ----------------------------------------------------------------------------------------------


def config_for(server: RedisServer, **extra: object) -> RedisConfig:
    return RedisConfig.model_validate({"host": server.host, "port": server.port,
                                       "password": {"value": server.password}} | extra)


@pytest.fixture()
async def plugin(redis_server: RedisServer) -> AsyncIterator[RedisPlugin]:
    instance = RedisPlugin.create(config_for(redis_server))
    yield instance
    await instance.close()


@pytest.fixture()
def admin(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis_server.connect()
    yield client
    client.close()


@pytest.mark.parametrize("through_cli", [False, True], ids=["direct", "redis-cli"])
async def test_live_collect_snapshot_and_health(redis_server: RedisServer, admin: redis.Redis,
                                                through_cli: bool) -> None:
    admin.set("live:key", "v", ex=600)
    instance = RedisPlugin.create(config_for(redis_server), LocalRunner() if through_cli else None)
    try:
        samples = {s.name: s for s in await instance.collect()}
        snapshot = await instance.snapshot_config()
        found = rules(await instance.check_health())
    finally:
        await instance.close()
    assert samples["redis_connected_clients"].value >= 1
    assert samples["redis_used_memory_bytes"].value > 0
    assert samples["redis_rdb_last_bgsave_ok"].value == 1
    assert "redis_slowlog_length" in samples and "redis_cpu_user_seconds_total" in samples
    assert snapshot["requirepass"] == "<redacted>"
    assert snapshot["port"] == str(redis_server.port) and snapshot["maxmemory-policy"] == "noeviction"
    assert found["redis.no_maxmemory"].evidence["maxmemory"] == 0


async def test_direct_and_cli_clients_report_the_same_series(redis_server: RedisServer) -> None:
    direct, cli = RedisPlugin.create(config_for(redis_server)), RedisPlugin.create(config_for(redis_server),
                                                                                   LocalRunner())
    try:
        assert {s.name for s in await direct.collect()} == {s.name for s in await cli.collect()}
    finally:
        await direct.close()
        await cli.close()


def fill_until_refused(client: redis.Redis, prefix: str) -> None:
    for i in range(10_000):
        try:
            client.set(f"{prefix}:{i}", "x" * 10_000)
        except redis.exceptions.OutOfMemoryError:
            return
    raise AssertionError("maxmemory never refused a write")


@pytest.mark.parametrize(("policy", "rule"), [("noeviction", "redis.noeviction_memory_high"),
                                              ("volatile-lru", "redis.volatile_policy_without_ttl")])
async def test_full_instance_that_cannot_evict(plugin: RedisPlugin, admin: redis.Redis, policy: str,
                                               rule: str) -> None:
    used = int(admin.info("memory")["used_memory"])
    admin.config_set("maxmemory", used + 2_000_000)
    admin.config_set("maxmemory-policy", policy)
    try:
        fill_until_refused(admin, f"fill-{policy}")
        found = rules(await plugin.check_health())
    finally:
        admin.config_set("maxmemory", 0)
        admin.config_set("maxmemory-policy", "noeviction")
        admin.flushall()
    assert "redis.no_maxmemory" not in found
    assert found[rule].evidence["maxmemory_policy"] == policy
    assert found[rule].evidence["memory_used_ratio"] >= 0.9


async def test_blocked_client_is_reported_with_its_command(plugin: RedisPlugin, redis_server: RedisServer,
                                                           admin: redis.Redis) -> None:
    waiter = redis.asyncio.Redis(host=redis_server.host, port=redis_server.port, password=redis_server.password,
                                 protocol=2)
    pop = asyncio.create_task(waiter.blpop(["jobs:live"], timeout=10))
    try:
        while int(admin.info("clients")["blocked_clients"]) == 0:
            await asyncio.sleep(0.05)
        found = rules(await plugin.check_health())
    finally:
        admin.rpush("jobs:live", "go")
        await pop
        await waiter.aclose()
    assert found["redis.blocked_clients"].evidence["blocked_clients"] == 1
    assert [c["cmd"] for c in found["redis.blocked_clients"].evidence["clients"]] == ["blpop"]


async def test_refused_connections_are_reported(plugin: RedisPlugin, redis_server: RedisServer,
                                                admin: redis.Redis) -> None:
    await plugin.collect()  # the plugin's own connection is open before the limit drops
    admin.config_set("maxclients", int(admin.info("clients")["connected_clients"]))
    try:
        with socket.create_connection((redis_server.host, redis_server.port), timeout=5) as refused:
            refused.sendall(b"PING\r\n")
            assert refused.recv(200).startswith(b"-ERR max number of clients reached")
        found = rules(await plugin.check_health())
    finally:
        admin.config_set("maxclients", 10_000)
        admin.config_resetstat()
    assert found["redis.rejected_connections"].evidence["rejected_connections"] >= 1


async def test_slow_commands_come_from_the_slowlog(plugin: RedisPlugin, admin: redis.Redis) -> None:
    admin.config_set("slowlog-log-slower-than", 0)
    try:
        admin.set("slow:key", "v")
        samples = {s.name: s.value for s in await plugin.collect()}
        found = rules(await plugin.check_health())
    finally:
        admin.config_set("slowlog-log-slower-than", 10_000)
        admin.slowlog_reset()
    assert samples["redis_slowlog_length"] >= 1
    commands = [e["command"] for e in found["redis.slow_commands"].evidence["entries"]]
    assert any(c.startswith("SET slow:key") for c in commands)


async def test_failed_background_save_is_critical(plugin: RedisPlugin, admin: redis.Redis, tmp_path: Path) -> None:
    original = admin.config_get("dir")["dir"]
    doomed = tmp_path / "doomed"
    doomed.mkdir()
    admin.config_set("dir", str(doomed))
    doomed.rmdir()  # the server's working directory is gone: the child cannot create its temp file
    try:
        admin.bgsave()
        while int(admin.info("persistence")["rdb_bgsave_in_progress"]):
            await asyncio.sleep(0.05)
        found = rules(await plugin.check_health())
    finally:
        admin.config_set("dir", original)
        admin.bgsave()
        while admin.info("persistence")["rdb_last_bgsave_status"] != "ok":
            await asyncio.sleep(0.05)
    assert found["redis.rdb_bgsave_failed"].evidence["rdb_last_bgsave_status"] == "err"


async def test_replication_offsets_and_a_lost_primary(redis_server: RedisServer, redis_replica: RedisServer,
                                                      plugin: RedisPlugin) -> None:
    primary = {(s.name, tuple(s.labels.items())) for s in await plugin.collect()}
    assert ("redis_replica_offset", (("replica", f"127.0.0.1:{redis_replica.port}"),)) in primary
    replica_plugin = RedisPlugin.create(config_for(redis_replica))
    replica_admin = redis_replica.connect()
    try:
        assert {s.name: s.value for s in await replica_plugin.collect()}["redis_master_link_up"] == 1
        closed = free_port()
        replica_admin.replicaof("127.0.0.1", closed)
        found = rules(await replica_plugin.check_health())
    finally:
        replica_admin.replicaof(redis_server.host, redis_server.port)
        deadline = time.monotonic() + 20
        while replica_admin.info("replication")["master_link_status"] != "up" and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        replica_admin.close()
        await replica_plugin.close()
    assert found["redis.replica_link_down"].evidence["master_port"] == str(closed)


@pytest.mark.parametrize("through_cli", [False, True], ids=["direct", "redis-cli"])
async def test_wrong_password_missing_password_and_closed_port(redis_server: RedisServer, through_cli: bool) -> None:
    runner = LocalRunner() if through_cli else None
    cases = [(config_for(redis_server, password={"value": "wrong"}), TargetAuthError, "refused the credentials"),
             (RedisConfig(host=redis_server.host, port=redis_server.port), TargetAuthError, "refused the credentials"),
             (RedisConfig(host="127.0.0.1", port=free_port()), TargetUnreachableError, "cannot be reached")]
    for config, error, reason in cases:
        instance = RedisPlugin.create(config, runner)
        try:
            with pytest.raises(error, match=reason):
                await instance.collect()
        finally:
            await instance.close()


MONITOR_ACL = ["on", ">monitor-pw", "-@all", "+info", "+config|get", "+slowlog|get", "+slowlog|len", "+client|list"]


@pytest.mark.parametrize("through_cli", [False, True], ids=["direct", "redis-cli"])
async def test_a_least_privilege_acl_user_is_enough(redis_server: RedisServer, admin: redis.Redis,
                                                    through_cli: bool) -> None:
    admin.execute_command("ACL", "SETUSER", "kubestack", *MONITOR_ACL)
    admin.execute_command("ACL", "SETUSER", "nosy", "on", ">nosy-pw", "-@all", "+info", "+slowlog|len")
    runner = LocalRunner() if through_cli else None
    monitor = RedisPlugin.create(config_for(redis_server, user="kubestack", password={"value": "monitor-pw"}), runner)
    nosy = RedisPlugin.create(config_for(redis_server, user="nosy", password={"value": "nosy-pw"}), runner)
    try:
        assert await monitor.collect() and await monitor.snapshot_config()
        assert "redis.no_maxmemory" in rules(await monitor.check_health())
        assert await nosy.collect()
        with pytest.raises(TargetAuthError, match="permission|may not run"):
            await nosy.check_health()
    finally:
        await monitor.close()
        await nosy.close()
        admin.execute_command("ACL", "DELUSER", "kubestack", "nosy")


@pytest.fixture()
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers, as a hung server does."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.mark.parametrize("through_cli", [False, True], ids=["direct", "redis-cli"])
async def test_a_hung_server_times_out(silent_port: int, through_cli: bool) -> None:
    instance = RedisPlugin.create(RedisConfig(port=silent_port, timeout_s=0.5), LocalRunner() if through_cli else None)
    try:
        with pytest.raises(TargetTimeoutError, match="no answer"):
            await instance.collect()
    finally:
        await instance.close()


# --- peers: clients and replication partners --------------------------------------------------------


def test_peers_from_recorded_client_lists_and_replication() -> None:
    on_primary = redis_peers(parse_info(recorded("info_primary.txt")),
                             parse_client_list(recorded("client_list_named.txt")))
    assert on_primary == [Peer(role=PeerRole.REPLICA, address="127.0.0.1:16380"),  # from INFO, not its link
                          Peer(role=PeerRole.CLIENT, address="127.0.0.1", count=3)]  # redis-cli itself left out
    named = client_peers(parse_client_list(recorded("client_list_named.txt"))[1:3])
    assert named == [Peer(role=PeerRole.CLIENT, address="127.0.0.1", name="checkout", count=2)]
    on_replica = redis_peers(parse_info(recorded("info_replica.txt")),
                             parse_client_list(recorded("client_list_replica.txt")))
    assert on_replica == [Peer(role=PeerRole.PRIMARY, address="127.0.0.1:16379"),
                          Peer(role=PeerRole.CLIENT, address="127.0.0.1", count=1),
                          Peer(role=PeerRole.CLIENT, address="localhost", name="reporting", count=1)]
    assert [client_host(a) for a in ("10.0.0.5:6379", "[fe80::1]:5000", "/run/redis.sock:0")] == \
        ["10.0.0.5", "fe80::1", "localhost"]


@pytest.fixture()
def own_replica(redis_server: RedisServer, tmp_path: Path) -> Iterator[RedisServer]:
    """A replica of the session's primary started for this test, returned once its link is up."""
    process, replica = start_replica("peers-replica", tmp_path, redis_server)
    try:
        yield replica
    finally:
        process.stop()


@pytest.mark.parametrize("through_cli", [False, True], ids=["direct", "redis-cli"])
async def test_live_primary_and_replica_report_each_other(redis_server: RedisServer, own_replica: RedisServer,
                                                          through_cli: bool) -> None:
    apps = [redis.Redis(host=own_replica.host, port=own_replica.port, password=own_replica.password,
                        client_name="checkout") for _ in range(2)]
    for app in apps:
        app.ping()
    runner = LocalRunner() if through_cli else None
    primary = RedisPlugin.create(config_for(redis_server), runner)
    replica = RedisPlugin.create(config_for(own_replica), runner)
    try:
        on_primary, on_replica = await primary.peers(), await replica.peers()
    finally:
        await primary.close()
        await replica.close()
        for app in apps:
            app.close()
    assert Peer(role=PeerRole.REPLICA, address=f"127.0.0.1:{own_replica.port}") in on_primary
    assert on_replica == [Peer(role=PeerRole.PRIMARY, address=f"{redis_server.host}:{redis_server.port}"),
                          Peer(role=PeerRole.CLIENT, address="127.0.0.1", name="checkout", count=2)]
