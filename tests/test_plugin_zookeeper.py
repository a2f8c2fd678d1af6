"""The ZooKeeper plugin: parsers and rules on four-letter-word output recorded from a real ensemble
(tests/data/zookeeper), then collection, snapshot, health and the purge against real servers (Debian's ZooKeeper 3.8)
with conditions created for real: followers stopped until the quorum is lost, followers paused while writes pile up,
one client IP at maxClientCnxns, a session dropped until it expires with its ephemeral node, snapshots piling up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kubestack.contract.base import ResourceRef
from kubestack.contract.events import ConfigChange, ConfigDiff, PeerRole
from kubestack.errors import ActionError, ActionParamsError, PreconditionFailedError, TargetUnreachableError
from kubestack.plugins.kubernetes.config import DiscoveryConfig
from kubestack.plugins.kubernetes.discovery import discover_targets
from kubestack.plugins.remedy import Clue
from kubestack.plugins.zookeeper import ZooKeeperConfig, ZooKeeperPlugin
from kubestack.plugins.zookeeper.checks import MemberView, Observation, evaluate
from kubestack.plugins.zookeeper.declaration import ACTIONS
from kubestack.plugins.zookeeper.parse import parse_conf, parse_cons, parse_dump, parse_mntr, parse_srvr, serving
from kubestack.plugins.zookeeper.purge import parse_listing, plan
from kubestack.plugins.zookeeper.risks import config_risks
from kubestack.plugins.zookeeper.sessions import SessionWatch
from tests.factories import SOURCE
from tests.services.process import free_port
from tests.services.zookeeper import ZkEnsemble, ZkServer, ZkSession, start_ensemble

DATA = Path(__file__).parent / "data" / "zookeeper"


def recorded(name: str) -> str:
    return (DATA / name).read_text()


def rules(findings: list) -> dict:
    return {f.rule_id: f for f in findings}


def recorded_observation(**changes: object) -> Observation:
    settings, _ = parse_conf(recorded("conf_ensemble.txt"))
    fields = {"address": "127.0.0.1:2181", "serving": True, "mntr": parse_mntr(recorded("mntr_leader.txt")),
              "ruok": "imok", "isro": "rw", "settings": settings,
              "views": {"127.0.0.1:2181": MemberView("127.0.0.1:2181", True, "leader")},
              "connections": parse_cons(recorded("cons.txt"))}
    return Observation(**(fields | changes))


# --- parsers and rules on recorded output ----------------------------------------------------------


def test_four_letter_words_are_parsed() -> None:
    mntr = parse_mntr(recorded("mntr_leader.txt"))
    assert mntr["zk_server_state"] == "leader" and mntr["zk_synced_followers"] == "2"
    settings, members = parse_conf(recorded("conf_ensemble.txt"))
    assert settings["maxClientCnxns"] == "60" and "membership:" not in settings
    assert [(m.sid, m.host, m.role, m.client) for m in members] == [
        (1, "127.0.0.1", "participant", None), (2, "127.0.0.1", "participant", None),
        (3, "127.0.0.1", "participant", None)]
    _, dynamic = parse_conf("server.4=zk-4.zk:2888:3888:participant;0.0.0.0:2181\n")
    assert dynamic[0].client == "zk-4.zk:2181"
    with_session, without = parse_cons(recorded("cons.txt"))
    assert (with_session.ip, with_session.session, with_session.fields["to"]) == ("127.0.0.1", "0x20000be9eb50000",
                                                                                  "3000")
    assert without.session is None
    assert parse_dump(recorded("dump_leader.txt")) == {"0x20000be9eb50000": ["/locks/a"]}
    assert parse_srvr(recorded("srvr_follower.txt"))["Mode"] == "follower"
    assert not serving(recorded("mntr_not_serving.txt")) and parse_mntr(recorded("mntr_not_serving.txt")) == {}


def test_rules_on_recorded_output() -> None:
    assert evaluate(recorded_observation(), ZooKeeperConfig()) == []
    lost = rules(evaluate(recorded_observation(
        serving=False, mntr={}, views={"a:1": MemberView("a:1", False), "b:1": MemberView("b:1", False, error="x"),
                                       "127.0.0.1:2181": MemberView("127.0.0.1:2181", False)}), ZooKeeperConfig()))
    assert lost["zookeeper.not_serving"].evidence["quorum"] == 2
    assert lost["zookeeper.member_down"].severity == "critical"
    crowded = rules(evaluate(recorded_observation(settings={"maxClientCnxns": "1"}), ZooKeeperConfig()))
    assert crowded["zookeeper.connections_near_limit"].evidence["by_ip"] == {"127.0.0.1": 1}


def test_a_session_that_vanishes_while_disconnected_expired() -> None:
    watch = SessionWatch(window_s=60)
    owners = {"0x1": ["/locks/a"], "0x2": ["/svc/b"]}
    assert watch.update(owners, {"0x1", "0x2"}, now=100) == []
    assert watch.update(owners, {"0x2"}, now=101) == [] and watch.orphans == {"0x1": ("/locks/a",)}
    assert watch.update({"0x1": ["/locks/a"]}, {"0x1"}, now=102) == []  # 0x2 closed over its connection; 0x1 is back
    assert watch.update({"0x1": ["/locks/a"]}, set(), now=103) == []
    assert watch.update({"0x1": ["/locks/a"]}, None, now=104) == []  # a member did not answer: nothing inferred
    [expiry] = watch.update({}, set(), now=105)
    assert (expiry.session, expiry.ephemerals, expiry.disconnected_s) == ("0x1", ("/locks/a",), 2)
    assert watch.recent(now=166) == []


def test_the_purge_keeps_the_newest_snapshots_and_the_logs_they_need() -> None:
    listing = "\n".join(f"{name}\t{size}" for name, size in (
        ("snapshot.0", 10), ("log.1", 100), ("log.5", 100), ("snapshot.7", 20), ("log.9", 100), ("snapshot.d", 30),
        ("log.f", 100), ("snapshot.15", 40), ("log.17", 100), ("myid", 2), ("snapshot.x", 1)))
    files = parse_listing("/data/version-2", listing)
    assert len(files) == 9
    purge = plan(files, 3)
    assert [f.name for f in purge.remove] == ["log.1", "snapshot.0"]  # log.5 holds what follows snapshot.7
    assert {f.name for f in purge.keep} == {"snapshot.15", "snapshot.d", "snapshot.7", "log.5", "log.9", "log.f",
                                            "log.17"}
    assert purge.freed == 110 and purge.remove[0].path == "/data/version-2/log.1"
    assert plan(files, 4).remove == []


def change(observed: dict[str, float] | None = None, **diffs: tuple[str | None, str | None]) -> ConfigChange:
    return ConfigChange(source=SOURCE, resource=ResourceRef(kind="zookeeper", name="zk"), previous_digest="a" * 64,
                        digest="b" * 64, observed=observed or {},
                        changes=[ConfigDiff(key=k, old=o, new=n) for k, (o, n) in diffs.items()])


def test_risky_configuration_changes() -> None:
    lowered = rules(config_risks(change({"zookeeper_connections_max_per_ip": 40}, maxClientCnxns=("60", "30"))))
    assert lowered["zookeeper.max_cnxns_lowered"].severity == "critical"
    assert rules(config_risks(change(maxClientCnxns=("0", "100"))))["zookeeper.max_cnxns_lowered"].severity == "warning"
    assert config_risks(change(maxClientCnxns=("60", "100"))) == []
    assert "zookeeper.session_timeout_lowered" in rules(config_risks(change(maxSessionTimeout=("40000", "4000"))))
    removed = rules(config_risks(change(**{"server.3": ("127.0.0.1:2888:3888:participant", None)})))
    assert "fewer members" in removed["zookeeper.ensemble_changed"].message
    shared = rules(config_risks(change(txnlog_dedicated=("yes", "no"), dataLogDir=("/log/version-2", "/d/version-2"))))
    assert shared["zookeeper.txnlog_shared"].evidence["dataLogDir"]["new"] == "/d/version-2"


def test_the_purge_answers_a_large_data_dir_and_refuses_to_keep_too_few() -> None:
    [spec] = [a for a in ACTIONS if a.id == "zookeeper.purge_snapshots"]
    [(params, effect)] = spec.answers[0].derive(Clue(rule="zookeeper.data_dir_large",
                                                     evidence={"bytes": 10, "dataDir": "/d"}))
    assert spec.accepts(params) and "zkCleanup.sh" in effect
    with pytest.raises(ActionParamsError, match="keep"):
        spec.check({"keep": 2})


def test_discovery_finds_a_zookeeper_pod() -> None:
    pod = {"metadata": {"name": "zk-0", "namespace": "data", "labels": {"app": "zk"}},
           "spec": {"containers": [{"name": "zookeeper", "image": "docker.io/library/zookeeper:3.8.4",
                                    "ports": [{"containerPort": 2181}, {"containerPort": 2888}]}]}}
    service = {"metadata": {"name": "zk", "namespace": "data"},
               "spec": {"selector": {"app": "zk"}, "ports": [{"port": 2181}]}}
    [target] = discover_targets("prod", [pod], [service], {}, DiscoveryConfig(kinds=["zookeeper"]))
    assert target["type"] == "zookeeper"
    assert ZooKeeperConfig.model_validate(target["config"]).address == "zk.data.svc.cluster.local:2181"


# --- live ------------------------------------------------------------------------------------------


def config_for(server: ZkServer, **extra: object) -> ZooKeeperConfig:
    return ZooKeeperConfig.model_validate({"host": server.host, "port": server.port, "timeout_s": 3} | extra)


@pytest.fixture()
async def plugin(zookeeper_server: ZkServer) -> AsyncIterator[ZooKeeperPlugin]:
    instance = ZooKeeperPlugin.create(config_for(zookeeper_server))
    yield instance
    await instance.close()


async def test_live_collect_snapshot_health_and_peers(plugin: ZooKeeperPlugin, zookeeper_server: ZkServer) -> None:
    session = ZkSession(zookeeper_server.port)
    try:
        session.create("/live")
        samples = {s.name: s.value for s in await plugin.collect()}
        snapshot = await plugin.snapshot_config()
        findings = await plugin.check_health()
        peers = await plugin.peers()
    finally:
        session.close()
    assert samples["zookeeper_serving"] == 1 and samples["zookeeper_members"] == 1
    assert samples["zookeeper_znodes"] >= 5 and samples["zookeeper_max_client_cnxns"] == 60
    assert samples["zookeeper_connections_max_per_ip"] >= 1 and samples["zookeeper_data_dir_bytes"] > 0
    assert snapshot["clientPort"] == str(zookeeper_server.port) and snapshot["version"] == "3.8.0"
    assert snapshot["txnlog_dedicated"] == "no" and "dataDirSize" not in snapshot
    assert findings == []
    assert [(p.role, p.address) for p in peers] == [(PeerRole.CLIENT, "127.0.0.1")]


async def test_a_closed_port_is_unreachable() -> None:
    instance = ZooKeeperPlugin.create(ZooKeeperConfig(port=free_port(), timeout_s=2))
    try:
        with pytest.raises(TargetUnreachableError, match="cannot be reached"):
            await instance.collect()
    finally:
        await instance.close()


async def test_a_dropped_session_expires_with_its_ephemeral_node(plugin: ZooKeeperPlugin,
                                                               zookeeper_server: ZkServer) -> None:
    session = ZkSession(zookeeper_server.port, timeout_ms=1000)
    assert session.create("/expiring-lock", ephemeral=True) == 0
    assert "zookeeper.session_expirations" not in rules(await plugin.check_health())
    session.drop()
    await plugin.check_health()  # the session still exists, without a connection
    deadline = time.monotonic() + 15
    while "zookeeper.session_expirations" not in (found := rules(await plugin.check_health())):
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.2)
    [expired] = found["zookeeper.session_expirations"].evidence["expired"]
    assert expired["session"] == hex(session.session_id) and expired["ephemerals"] == ["/expiring-lock"]


async def test_disk_latency_is_judged_over_the_round(zookeeper_server: ZkServer) -> None:
    """Every real fsync is counted in whole ms by ZooKeeper: with a limit of a hundredth of a ms the rule fires on
    what the server measured, once some fsync took a millisecond."""
    strict = ZooKeeperPlugin.create(config_for(zookeeper_server, fsync_max_ms=0.01, fsync_min_ops=1))
    session = ZkSession(zookeeper_server.port)
    try:
        await strict.check_health()
        deadline = time.monotonic() + 20
        for i in range(10_000):
            session.create(f"/fsync-{i}", b"d" * 4000)
            if i % 20 == 19 and "zookeeper.slow_fsync" in (found := rules(await strict.check_health())):
                break
            assert time.monotonic() < deadline, "no fsync took a millisecond"
    finally:
        session.close()
        await strict.close()
    assert found["zookeeper.slow_fsync"].evidence["avg_fsync_ms"] > 0.01


@pytest.fixture()
def limited(tmp_path: Path) -> Iterator[ZkServer]:
    ensemble = start_ensemble(tmp_path, 1, max_cnxns=10)
    yield ensemble.servers[0]
    ensemble.stop()


async def test_one_client_ip_at_max_client_cnxns(limited: ZkServer) -> None:
    instance = ZooKeeperPlugin.create(config_for(limited))
    sessions = [ZkSession(limited.port) for _ in range(8)]
    extra, refused = [], 0
    try:
        near = rules(await instance.check_health())
        for _ in range(4):
            try:
                extra.append(ZkSession(limited.port))
            except (ConnectionError, OSError):
                refused += 1
        for session in extra:  # back under the limit: the plugin's own connection counts too
            session.close()
        found = rules(await instance.check_health())
        samples = {s.name: s.value for s in await instance.collect()}
    finally:
        for session in sessions:
            session.close()
        await instance.close()
    assert near["zookeeper.connections_near_limit"].evidence["by_ip"] == {"127.0.0.1": 8}
    assert "zookeeper.connections_rejected" not in near  # the first round is the baseline
    assert len(extra) == 2 and refused == 2
    assert found["zookeeper.connections_rejected"].evidence["rejected"] >= refused
    assert samples["zookeeper_connections_max_per_ip"] == 8 and samples["zookeeper_connections_rejected_total"] >= 2


@pytest.fixture()
def trio(tmp_path: Path) -> Iterator[ZkEnsemble]:
    ensemble = start_ensemble(tmp_path, 3, sync_limit=25)
    yield ensemble
    ensemble.stop()


def members(ensemble: ZkEnsemble) -> list[str]:
    """The members' client addresses: the servers here listen on different ports of one host, so the plugin cannot
    take them from the server.N lines (it would on hosts that share the client port)."""
    return [s.address for s in ensemble.servers]


async def test_stopped_members_then_a_lost_quorum(trio: ZkEnsemble) -> None:
    leader = trio.wait_serving()
    follower, other = [s for s in trio.servers if s is not leader]
    instance = ZooKeeperPlugin.create(config_for(follower, members=members(trio)))
    try:
        assert await instance.check_health() == []
        peers = {(p.role, p.address) for p in await instance.peers()}
        other.stop()
        one_down = rules(await instance.check_health())
        leader.stop()
        deadline = time.monotonic() + 20
        while "zookeeper.not_serving" not in (lost := rules(await instance.check_health())):
            assert time.monotonic() < deadline, lost
            await asyncio.sleep(0.2)
        samples = {s.name: s.value for s in await instance.collect()}
    finally:
        await instance.close()
    assert (PeerRole.PRIMARY, leader.address) in peers and (PeerRole.REPLICA, other.address) in peers
    assert one_down["zookeeper.member_down"].severity == "warning"
    assert [d["member"] for d in one_down["zookeeper.member_down"].evidence["down"]] == [other.address]
    assert lost["zookeeper.not_serving"].evidence["serving"] == [] and lost["zookeeper.not_serving"].evidence[
        "quorum"] == 2
    assert lost["zookeeper.member_down"].severity == "critical"
    assert samples["zookeeper_serving"] == 0 and samples["zookeeper_members_serving"] == 0


async def test_writes_pile_up_while_the_followers_hang(trio: ZkEnsemble) -> None:
    leader = trio.wait_serving()
    followers = [s for s in trio.servers if s is not leader]
    instance = ZooKeeperPlugin.create(config_for(leader, members=members(trio), timeout_s=0.5,
                                                 latency_max_ms=200))
    session = ZkSession(leader.port, timeout_ms=4000)
    try:
        await instance.check_health()
        for server in followers:
            server.pause()
        session.pipeline([session.create_request(f"/stalled-{i}", b"w") for i in range(100)])
        deadline = time.monotonic() + 3
        while "zookeeper.outstanding_requests" not in (stalled := rules(await instance.check_health())):
            assert time.monotonic() < deadline, stalled
        await asyncio.sleep(max(0.0, 0.8 - (3 - (deadline - time.monotonic()))))
        for server in followers:
            server.resume()
        deadline = time.monotonic() + 10
        while "zookeeper.high_latency" not in (slow := rules(await instance.check_health())):
            assert time.monotonic() < deadline, slow
            await asyncio.sleep(0.2)
    finally:
        for server in followers:
            server.resume()
        session.close()
        await instance.close()
    assert stalled["zookeeper.outstanding_requests"].evidence["outstanding_requests"] > 10
    assert stalled["zookeeper.member_down"].evidence["down"][0]["error"]  # the hung followers do not answer
    assert slow["zookeeper.high_latency"].evidence["update"]["avg_ms"] > 200


async def test_old_snapshots_are_purged_and_the_server_restarts_on_what_is_left(tmp_path: Path) -> None:
    ensemble = start_ensemble(tmp_path, 1, extra={"snapCount": "10"})
    server = ensemble.servers[0]
    try:
        session = ZkSession(server.port)
        for i in range(60):
            session.create(f"/data-{i}", b"s" * 5000)
        session.close()
        size = int(parse_conf(server.word("conf"))[0]["dataDirSize"])
        instance = ZooKeeperPlugin.create(config_for(server, data_dir_max_bytes=int(size * 0.8)))
        try:
            found = rules(await instance.check_health())
            dry = await instance.execute("zookeeper.purge_snapshots", {"keep": "3"}, dry_run=True)
            assert len(list((tmp_path / "zk1" / "data" / "version-2").glob("snapshot.*"))) == dry.before["snapshots"]
            done = await instance.execute("zookeeper.purge_snapshots", {"keep": 3})
            after = rules(await instance.check_health())
            with pytest.raises(PreconditionFailedError, match="nothing to purge"):
                await instance.execute("zookeeper.purge_snapshots", {"keep": 3})
            with pytest.raises(ActionError, match="forbidden"):
                await instance.execute("zookeeper.reconfig_remove", {})
        finally:
            await instance.close()
        assert found["zookeeper.data_dir_large"].evidence["bytes"] == size
        assert dry.dry_run and dry.before["snapshots"] > 3 and dry.undo is None
        assert done.output.startswith("done: delete")
        assert len(list((tmp_path / "zk1" / "data" / "version-2").glob("snapshot.*"))) == 3
        assert "zookeeper.data_dir_large" not in after
        server.stop()
        server.start()
        ensemble.wait_serving()
        assert "zk_znode_count\t65" in server.word("mntr")  # 60 + /, /zookeeper and its config and quota nodes
    finally:
        ensemble.stop()
