"""The etcd plugin: parsers and rules on output recorded from a real member (tests/data/etcd), then collection,
snapshot, health and actions against real members (Debian's etcd 3.4) with conditions created for real: a leader
stopped in a three-member cluster, a quorum lost, a database filled to its quota until NOSPACE, history compacted
but not defragmented, a CORRUPT alarm raised on a member."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kubestack.contract.base import ResourceRef
from kubestack.contract.events import ConfigChange, ConfigDiff, PeerRole
from kubestack.errors import (
    ActionError,
    ActionParamsError,
    PreconditionFailedError,
    TargetUnreachableError,
    UnknownActionError,
)
from kubestack.plugins.etcd import EtcdConfig, EtcdPlugin
from kubestack.plugins.etcd.checks import Observation, evaluate
from kubestack.plugins.etcd.declaration import ACTIONS
from kubestack.plugins.etcd.leadership import LeaderHistory
from kubestack.plugins.etcd.parse import (
    buckets,
    metric,
    parse_alarms,
    parse_members,
    parse_metrics,
    parse_status,
    quantile,
)
from kubestack.plugins.etcd.risks import config_risks
from kubestack.plugins.kubernetes.config import DiscoveryConfig
from kubestack.plugins.kubernetes.discovery import discover_targets
from kubestack.plugins.remedy import Clue
from tests.factories import SOURCE
from tests.services.etcd import EtcdCluster, EtcdMember, call, start_cluster
from tests.services.process import free_port

DATA = Path(__file__).parent / "data" / "etcd"
QUOTA = 2 * 1024 * 1024


def recorded(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def rules(findings: list) -> dict:
    return {f.rule_id: f for f in findings}


def recorded_observation(**changes: object) -> Observation:
    status = parse_status(recorded("status.json"))
    members = parse_members(recorded("member_list.json"))
    fields = {"status": status, "members": members, "views": {status.member_id: status},
              "alarms": [], "metrics": parse_metrics((DATA / "metrics.txt").read_text())}
    return Observation(**(fields | changes))


# --- parsers and rules on recorded output ----------------------------------------------------------


def test_status_members_alarms_and_metrics_are_parsed() -> None:
    status = parse_status(recorded("status.json"))
    assert status.has_leader and status.leader == status.member_id == "13668033151171901709"
    assert (status.db_size, status.db_in_use, status.revision, status.version) == (626688, 622592, 18, "3.4.23")
    members = parse_members(recorded("member_list.json"))
    assert [(m.name, m.endpoint) for m in members] == [("n1", "127.0.0.1:23791")]
    assert parse_alarms(recorded("alarms_nospace.json"))[0].alarm == "NOSPACE"
    assert parse_alarms({}) == []
    metrics = parse_metrics((DATA / "metrics.txt").read_text())
    assert metric(metrics, "etcd_server_quota_backend_bytes") == 1048576
    assert metric(metrics, "no_such_series") is None


def test_the_quantile_is_over_what_happened_between_two_rounds() -> None:
    before = {0.001: 10.0, 0.002: 10.0, 0.004: 10.0, float("inf"): 10.0}
    now = {0.001: 10.0, 0.002: 15.0, 0.004: 20.0, float("inf"): 20.0}
    assert quantile(now, before, 0.99) == (0.004, 10)
    assert quantile(now, None, 0.5) == (0.001, 20)
    assert quantile(before, before, 0.99) == (None, 0)
    beyond = {0.001: 0.0, 0.002: 0.0, float("inf"): 4.0}
    assert quantile(beyond, None, 0.99) == (0.002, 4)  # past the last bound reads as "at least" it


def test_rules_on_recorded_output() -> None:
    metrics = parse_metrics((DATA / "metrics.txt").read_text())
    assert evaluate(recorded_observation(), EtcdConfig()) == []
    near = rules(evaluate(recorded_observation(), EtcdConfig(quota_high_ratio=0.5)))
    assert near["etcd.db_near_quota"].evidence["db_used_ratio"] == round(626688 / 1048576, 4)
    assert buckets(metrics, "etcd_disk_wal_fsync_duration_seconds")
    alarmed = rules(evaluate(recorded_observation(alarms=parse_alarms(recorded("alarms_nospace.json"))),
                             EtcdConfig()))
    assert alarmed["etcd.nospace_alarm"].severity == "critical"
    assert alarmed["etcd.nospace_alarm"].evidence["alarms"] == [
        {"member": "n1", "id": "13668033151171901709", "alarm": "NOSPACE"}]


def test_leader_history_remembers_a_change_for_its_window() -> None:
    status = parse_status(recorded("status.json"))
    history = LeaderHistory(window_s=60)
    assert history.update(status, 1, now=1000) == []
    assert history.update(status, 1, now=1010) == []
    moved = parse_status(recorded("status.json") | {"leader": "42", "raftTerm": "3"})
    [change] = history.update(moved, 2, now=1020)
    assert (change.old_leader, change.new_leader, change.term, change.changes_seen) == (status.leader, "42", 3, 1)
    assert len(history.update(moved, 2, now=1070)) == 1
    assert history.update(moved, 2, now=1081) == []


def change(**diffs: tuple[str | None, str | None]) -> ConfigChange:
    return ConfigChange(source=SOURCE, resource=ResourceRef(kind="etcd", name="e"), previous_digest="a" * 64,
                        digest="b" * 64, changes=[ConfigDiff(key=k, old=o, new=n) for k, (o, n) in diffs.items()],
                        observed={"etcd_db_size_bytes": 900.0})


def test_risky_configuration_changes() -> None:
    found = rules(config_risks(change(quota_backend_bytes=("2000", "800"))))
    assert found["etcd.quota_lowered"].severity == "critical"
    assert rules(config_risks(change(quota_backend_bytes=("2000", "1000"))))["etcd.quota_lowered"].severity == "warning"
    assert config_risks(change(quota_backend_bytes=("1000", "2000"))) == []
    shrunk = rules(config_risks(change(members=("3", "2"), **{"member.m2.client_urls": ("http://a:2379", None)})))
    assert "tolerate" in shrunk["etcd.membership_changed"].message
    assert "etcd.tls_disabled" in rules(config_risks(change(**{"member.m0.client_urls": ("https://a:2379",
                                                                                          "http://a:2379")})))
    assert rules(config_risks(change(version=("3.5.9", "3.4.23"))))["etcd.version_changed"].severity == "critical"


def test_remedies_derive_their_parameters_from_the_evidence() -> None:
    specs = {a.id: a for a in ACTIONS}
    evidence = {"member": "m0", "db_size": 1000, "db_size_in_use": 200}
    [(params, _)] = specs["etcd.defragment"].answers[0].derive(Clue(rule="etcd.db_fragmented", evidence=evidence))
    assert params == {"member": "m0"} and specs["etcd.defragment"].accepts(params)
    [(params, _)] = specs["etcd.reclaim_space"].answers[0].derive(Clue(rule="etcd.nospace_alarm", evidence=evidence))
    assert specs["etcd.reclaim_space"].accepts(params)
    with pytest.raises(ActionParamsError, match="retain_revisions"):
        specs["etcd.reclaim_space"].check({"retain_revisions": -1})


def test_discovery_finds_an_etcd_pod() -> None:
    pod = {"metadata": {"name": "etcd-0", "namespace": "infra", "labels": {"app.kubernetes.io/name": "etcd"}},
           "spec": {"containers": [{"name": "etcd", "image": "registry.k8s.io/etcd:3.5.9-0",
                                    "ports": [{"containerPort": 2379}, {"containerPort": 2380}]}]}}
    service = {"metadata": {"name": "etcd", "namespace": "infra"},
               "spec": {"selector": {"app.kubernetes.io/name": "etcd"}, "ports": [{"port": 2379}]}}
    [target] = discover_targets("prod", [pod], [service], {}, DiscoveryConfig(kinds=["etcd"]))
    assert target["type"] == "etcd"
    assert EtcdConfig.model_validate(target["config"]).url == "http://etcd.infra.svc.cluster.local:2379"


# --- live ------------------------------------------------------------------------------------------


def config_for(member: EtcdMember, **extra: object) -> EtcdConfig:
    return EtcdConfig.model_validate({"host": member.host, "port": member.port, "timeout_s": 3} | extra)


@pytest.fixture()
async def plugin(etcd_server: EtcdMember) -> AsyncIterator[EtcdPlugin]:
    instance = EtcdPlugin.create(config_for(etcd_server))
    yield instance
    await instance.close()


async def test_live_collect_snapshot_health_and_peers(plugin: EtcdPlugin, etcd_server: EtcdMember) -> None:
    etcd_server.put("live/key", "v")
    samples = {s.name: s.value for s in await plugin.collect()}
    snapshot = await plugin.snapshot_config()
    assert samples["etcd_has_leader"] == 1 and samples["etcd_members"] == samples["etcd_members_reachable"] == 1
    assert samples["etcd_db_size_bytes"] > 0 and samples["etcd_quota_backend_bytes"] == 2 * 1024**3  # the default
    assert samples["etcd_puts_total"] >= 1 and samples["etcd_alarms_active"] == 0
    assert 0 < samples["etcd_db_used_ratio"] < 0.01
    assert snapshot["version"] == "3.4.23" and snapshot["members"] == "1"
    assert snapshot[f"member.{etcd_server.name}.client_urls"] == etcd_server.url
    assert await plugin.check_health() == []
    assert await plugin.peers() == []


async def test_a_closed_port_is_unreachable() -> None:
    instance = EtcdPlugin.create(EtcdConfig(port=free_port(), timeout_s=2))
    try:
        with pytest.raises(TargetUnreachableError, match="cannot be reached"):
            await instance.collect()
    finally:
        await instance.close()


async def test_disk_latency_is_judged_over_the_round(plugin: EtcdPlugin, etcd_server: EtcdMember) -> None:
    """Every real fsync takes longer than a microsecond: the rule fires on what the member measured."""
    strict = EtcdPlugin.create(config_for(etcd_server, fsync_p99_max_s=1e-6, commit_p99_max_s=1e-6))
    try:
        await strict.check_health()  # the first round sets the baseline
        assert "etcd.slow_disk" not in rules(await strict.check_health())  # no write in between: nothing to judge
        for i in range(20):
            etcd_server.put(f"disk/{i}", "v")
        found = rules(await strict.check_health())
    finally:
        await strict.close()
    assert found["etcd.slow_disk"].evidence["wal_fsync"]["count"] >= 5
    assert found["etcd.slow_disk"].evidence["wal_fsync"]["p99_s"] >= 0.001


@pytest.fixture()
def trio(tmp_path: Path) -> Iterator[EtcdCluster]:
    cluster = start_cluster(tmp_path, 3)
    yield cluster
    cluster.stop()


async def test_a_stopped_leader_is_a_leader_change_and_a_member_down(trio: EtcdCluster) -> None:
    leader = trio.leader()
    survivor = next(m for m in trio.members if m is not leader)
    instance = EtcdPlugin.create(config_for(survivor))
    try:
        first = await instance.check_health()
        peers = await instance.peers()
        leader.stop()
        new_leader = trio.leader(among=[m for m in trio.members if m is not leader])
        found = rules(await instance.check_health())
        samples = {s.name: s.value for s in await instance.collect()}
        after = await instance.peers()
    finally:
        await instance.close()
    assert first == []
    assert {(p.role, p.name) for p in peers} == {(PeerRole.PRIMARY, leader.name)} | {
        (PeerRole.REPLICA, m.name) for m in trio.members if m not in (leader, survivor)}
    assert found["etcd.leader_changes"].evidence["leader"] == new_leader.name
    assert found["etcd.member_down"].severity == "warning"
    assert [d["member"] for d in found["etcd.member_down"].evidence["down"]] == [leader.name]
    assert samples["etcd_members_reachable"] == 2 and samples["etcd_leader_changes_total"] >= 2
    assert (PeerRole.PRIMARY, new_leader.name) in {(p.role, p.name) for p in after} or new_leader is survivor


async def test_a_lost_quorum_has_no_leader(trio: EtcdCluster) -> None:
    last, *others = trio.members
    for member in others:
        member.stop()
    instance = EtcdPlugin.create(config_for(last))
    try:
        deadline = time.monotonic() + 10
        while "etcd.no_leader" not in (found := rules(await instance.check_health())):
            assert time.monotonic() < deadline, found
        samples = {s.name: s.value for s in await instance.collect()}
    finally:
        await instance.close()
    assert found["etcd.no_leader"].evidence["reachable"] == 1 and found["etcd.no_leader"].evidence["quorum"] == 2
    assert found["etcd.member_down"].severity == "critical"
    assert samples["etcd_has_leader"] == 0 and "etcd_alarms_active" not in samples


@pytest.fixture()
def small(tmp_path: Path) -> Iterator[EtcdMember]:
    """A fresh member with a 2 MiB backend quota."""
    cluster = start_cluster(tmp_path, 1, quota_bytes=QUOTA, prefix="small")
    yield cluster.members[0]
    cluster.stop()


def fill(member: EtcdMember, until_ratio: float | None = None, size: int = 100_000) -> dict:
    """Rewrites a few keys with ``size``-byte values (each revision is kept) until the db reaches ``until_ratio`` of
    the quota, or until etcd refuses a write; returns the last reply. The db file grows by steps of hundreds of KB,
    and etcd refuses a write whose size would take it past the quota: small values stop short of NOSPACE."""
    for i in range(2000):
        reply = member.put(f"fill/{i % 3}", b"x" * size)
        if "error" in reply or (until_ratio and int(member.status()["dbSize"]) >= until_ratio * QUOTA):
            return reply
    raise AssertionError("etcd never filled up")


async def test_a_full_database_raises_nospace_and_reclaim_space_recovers_it(small: EtcdMember) -> None:
    instance = EtcdPlugin.create(config_for(small))
    try:
        fill(small, until_ratio=0.8, size=10_000)
        near = rules(await instance.check_health())
        refused = fill(small)
        full = rules(await instance.check_health())
        dry = await instance.execute("etcd.reclaim_space", {"retain_revisions": "0"}, dry_run=True)
        still = rules(await instance.check_health())
        done = await instance.execute("etcd.reclaim_space", {})
        after = rules(await instance.check_health())
        samples = {s.name: s.value for s in await instance.collect()}
        with pytest.raises(PreconditionFailedError, match="no started member named 'nobody'"):
            await instance.execute("etcd.defragment", {"member": "nobody"})
        with pytest.raises(ActionError, match="forbidden"):
            await instance.execute("etcd.member_remove", {})
        with pytest.raises(UnknownActionError):
            await instance.execute("etcd.snapshot_restore", {})
    finally:
        await instance.close()
    assert near["etcd.db_near_quota"].evidence["quota_backend_bytes"] == QUOTA
    assert "etcd.nospace_alarm" not in near
    assert refused["message"] == "etcdserver: mvcc: database space exceeded"
    assert full["etcd.nospace_alarm"].severity == "critical"
    assert "compact to revision" in dry.output and dry.before["alarms"] and dry.undo is None
    assert "etcd.nospace_alarm" in still  # the dry run changed nothing
    assert done.output.startswith("done:") and "etcd.nospace_alarm" not in after and "etcd.db_near_quota" not in after
    assert samples["etcd_db_size_bytes"] < 0.5 * QUOTA and samples["etcd_alarms_active"] == 0
    assert "error" not in small.put("after/recovery", "v")


async def test_compacted_history_is_fragmented_until_defragmented(small: EtcdMember) -> None:
    fill(small, until_ratio=0.5, size=20_000)  # small steps: a 100 KB value can jump the file past the quota
    status = small.status()
    revision = int(status["header"]["revision"])
    assert "error" not in call(small.url, "/v3/kv/compaction", {"revision": str(revision), "physical": True})
    if status.get("errors"):  # it reached the quota anyway: after a compaction etcd takes writes once disarmed
        call(small.url, "/v3/maintenance/alarm", {"action": "DEACTIVATE", "alarm": "NOSPACE",
                                                  "memberID": status["header"]["member_id"]})
    instance = EtcdPlugin.create(config_for(small, fragmented_min_bytes=256 * 1024))
    try:
        deadline = time.monotonic() + 15
        while "etcd.db_fragmented" not in (found := rules(await instance.check_health())):
            assert time.monotonic() < deadline, f"bbolt never freed the compacted pages: {small.status()}"
            small.put("tick", "v")  # the freed pages are counted as the backend commits
            await asyncio.sleep(0.2)
        dry = await instance.execute("etcd.defragment", {"member": small.name}, dry_run=True)
        assert "etcd.db_fragmented" in rules(await instance.check_health())
        done = await instance.execute("etcd.defragment", {"member": small.name})
        after = rules(await instance.check_health())
    finally:
        await instance.close()
    evidence = found["etcd.db_fragmented"].evidence
    assert evidence["member"] == small.name and evidence["free_bytes"] >= 256 * 1024
    assert dry.before["db_size"] == evidence["db_size"] and dry.dry_run
    assert "freed" in done.output and "etcd.db_fragmented" not in after


async def test_a_corrupt_alarm_is_critical(small: EtcdMember) -> None:
    member_id = small.status()["header"]["member_id"]
    call(small.url, "/v3/maintenance/alarm", {"action": "ACTIVATE", "memberID": member_id, "alarm": "CORRUPT"})
    instance = EtcdPlugin.create(config_for(small))
    try:
        found = rules(await instance.check_health())
    finally:
        await instance.close()
    assert found["etcd.corrupt_alarm"].evidence["alarms"] == [{"member": small.name, "id": member_id,
                                                               "alarm": "CORRUPT"}]
    assert "error" in small.put("refused/while/corrupt", "v")
