"""The Sentinel plugin: parsers and rules on replies recorded from redis-sentinel 7.0, then collection, snapshot,
peers, health and actions against three real sentinels watching a real primary/replica pair, with conditions created
for real (sentinels stopped, a replica stopped, a primary only one sentinel sees down, a stalled sentinel in TILT)
and a real failover."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from kubestack.contract.base import ResourceRef
from kubestack.contract.events import ConfigChange, ConfigDiff, Finding, PeerRole, Severity
from kubestack.errors import ActionParamsError, ConfigError, PreconditionFailedError, TargetUnreachableError
from kubestack.plugins.base import LocalRunner
from kubestack.plugins.kubernetes.config import DiscoveryConfig
from kubestack.plugins.kubernetes.discovery import discover_targets
from kubestack.plugins.remedy import Clue
from kubestack.plugins.sentinel import SentinelConfig, SentinelPlugin
from kubestack.plugins.sentinel.actions import candidate
from kubestack.plugins.sentinel.checks import Observation, Switch, evaluate
from kubestack.plugins.sentinel.declaration import ACTIONS
from kubestack.plugins.sentinel.parse import parse_info, parse_primary, parse_replicas, parse_sentinels
from kubestack.plugins.sentinel.risks import config_risks
from tests.factories import SOURCE
from tests.services.process import free_port
from tests.services.sentinel import DOWN_AFTER_MS, MASTER, QUORUM, SentinelGroup

# --- replies recorded from redis-sentinel 7.0.15 -----------------------------------------------------------------

PRIMARY = ["name", "mymaster", "ip", "127.0.0.1", "port", "33315", "runid", "1c80a1", "flags", "master",
           "link-pending-commands", "0", "link-refcount", "1", "last-ping-sent", "0", "last-ok-ping-reply", "116",
           "last-ping-reply", "116", "down-after-milliseconds", "1000", "info-refresh", "2240", "role-reported",
           "master", "role-reported-time", "2341", "config-epoch", "0", "num-slaves", "1", "num-other-sentinels", "2",
           "quorum", "2", "failover-timeout", "6000", "parallel-syncs", "1"]
REPLICA = ["name", "127.0.0.1:47415", "ip", "127.0.0.1", "port", "47415", "runid", "e09310", "flags", "slave",
           "last-ok-ping-reply", "116", "role-reported", "slave", "master-link-down-time", "0",
           "master-link-status", "ok", "master-host", "127.0.0.1", "master-port", "33315", "slave-priority", "100",
           "slave-repl-offset", "4242", "replica-announced", "1"]
SENTINELS = [["name", "042af13f", "ip", "127.0.0.1", "port", "34429", "runid", "042af13fe6e04da3", "flags",
              "sentinel", "last-hello-message", "4", "voted-leader", "?", "voted-leader-epoch", "0"],
             ["name", "7579fd9b", "ip", "127.0.0.1", "port", "33295", "runid", "7579fd9b62c19c0b", "flags",
              "s_down,sentinel,disconnected", "last-hello-message", "4075", "voted-leader", "?",
              "voted-leader-epoch", "0"]]
INFO = ("# Sentinel\r\nsentinel_masters:1\r\nsentinel_tilt:0\r\nsentinel_tilt_since_seconds:-1\r\n"
        "sentinel_running_scripts:0\r\nsentinel_scripts_queue_length:0\r\nsentinel_simulate_failure_flags:0\r\n"
        "master0:name=mymaster,status=ok,address=127.0.0.1:33315,slaves=1,sentinels=3\r\n")


def with_fields(flat: list[str], **fields: str) -> list[str]:
    out = list(flat)
    for key, value in fields.items():
        out[out.index(key.replace("_", "-")) + 1] = value
    return out


def recorded(primary: list[str] = PRIMARY, replicas: list[list[str]] = (REPLICA,), quorum: str | None = None,
             info: str = INFO, switches: dict[str, Switch] | None = None) -> Observation:
    return Observation(primaries=[parse_primary(primary)], replicas={MASTER: parse_replicas(replicas)},
                       sentinels={MASTER: parse_sentinels(SENTINELS)}, quorum={MASTER: quorum},
                       info=parse_info(info), switches=switches or {})


def by_rule(findings: list[Finding]) -> dict[str, Finding]:
    return {f.rule_id: f for f in findings}


def test_parsers_read_the_primary_its_replicas_and_sentinels() -> None:
    primary = parse_primary(PRIMARY)
    assert (primary.address, primary.quorum, primary.num_other_sentinels, primary.down_after_ms) == (
        "127.0.0.1:33315", 2, 2, 1000)
    [replica] = parse_replicas([REPLICA])
    assert (replica.address, replica.healthy, replica.offset) == ("127.0.0.1:47415", True, 4242)
    assert [s.up for s in parse_sentinels(SENTINELS)] == [True, False]
    assert parse_info(INFO)["sentinel_tilt"] == "0"


def test_rules_on_recorded_replies() -> None:
    limits = SentinelConfig(min_sentinels=3)
    assert set(by_rule(evaluate(recorded(), limits))) == {"sentinel.too_few_sentinels"}  # one of three is down
    found = by_rule(evaluate(recorded(
        primary=with_fields(PRIMARY, flags="master,s_down,o_down", config_epoch="3", role_reported_time="1200"),
        replicas=[with_fields(REPLICA, flags="slave,s_down")], quorum="NOQUORUM 1 usable Sentinels",
        info=INFO.replace("sentinel_tilt:0", "sentinel_tilt:1"),
        switches={MASTER: Switch("127.0.0.1:1", "127.0.0.1:33315", 4.0)}), limits))
    assert set(found) == {"sentinel.failover_happened", "sentinel.primary_down", "sentinel.quorum_unreachable",
                          "sentinel.too_few_replicas", "sentinel.too_few_sentinels", "sentinel.tilt"}
    assert found["sentinel.primary_down"].severity == Severity.CRITICAL
    assert found["sentinel.failover_happened"].evidence["previous_address"] == "127.0.0.1:1"
    assert found["sentinel.too_few_replicas"].evidence["healthy"] == 0
    old = evaluate(recorded(primary=with_fields(PRIMARY, config_epoch="3", role_reported_time="900000")),
                   SentinelConfig(min_sentinels=2))
    assert old == [], "a failover older than the window is history"


def test_the_replica_sentinel_would_promote() -> None:
    low = with_fields(REPLICA, slave_priority="10", slave_repl_offset="1")
    never = with_fields(REPLICA, slave_priority="0", slave_repl_offset="99999")
    behind = with_fields(REPLICA, slave_repl_offset="1")
    assert candidate(parse_replicas([never, behind, REPLICA, low])).priority == 10
    assert candidate(parse_replicas([never, behind, REPLICA])).offset == 4242
    assert candidate(parse_replicas([never])) is None


def _change(*diffs: tuple[str, str, str], sentinels: float = 3) -> ConfigChange:
    return ConfigChange(source=SOURCE, resource=ResourceRef(kind="sentinel", name="s1"), previous_digest="a" * 64,
                        digest="b" * 64, observed={"sentinel_known_sentinels": sentinels},
                        changes=[ConfigDiff(key=k, old=o, new=n) for k, o, n in diffs])


def test_config_risks() -> None:
    found = by_rule(config_risks(_change(("mymaster.down-after-milliseconds", "30000", "1000"),
                                         ("mymaster.quorum", "2", "4"), ("mymaster.failover-timeout", "180000", "3000"),
                                         ("mymaster.address", "10.0.0.5:6379", "10.0.0.6:6379"))))
    assert set(found) == {"sentinel.down_after_changed", "sentinel.quorum_changed",
                          "sentinel.failover_timeout_lowered", "sentinel.primary_switched"}
    assert found["sentinel.quorum_changed"].severity == Severity.CRITICAL  # 4 of 3 known sentinels
    assert config_risks(_change(("mymaster.quorum", "2", "1")))[0].severity == Severity.CRITICAL
    assert config_risks(_change(("mymaster.down-after-milliseconds", "30000", "90000")))[0].rule_id == \
        "sentinel.down_after_changed"
    assert config_risks(_change(("mymaster.down-after-milliseconds", "5000", "10000"),
                                ("mymaster.parallel-syncs", "1", "2"), ("resolve-hostnames", "no", "yes"))) == []


def _spec(action_id: str):  # noqa: ANN202
    return next(a for a in ACTIONS if a.id == action_id)


def test_remedies_derive_params_the_actions_accept() -> None:
    spec = _spec("sentinel.set")
    [(params, _)] = list(spec.answers[0].derive(Clue(rule="sentinel.quorum_changed",
                                                     change={"key": "mymaster.quorum", "old": "2", "new": "1"})))
    assert spec.check(params) == {"master": "mymaster", "option": "quorum", "value": 2}
    assert list(spec.answers[0].derive(Clue(rule="sentinel.primary_switched",
                                            change={"key": "mymaster.address", "old": "a:1", "new": "b:2"}))) == []
    failover = _spec("sentinel.failover")
    s_down = {"master": "mymaster", "flags": ["master", "s_down"], "healthy_replicas": 1}
    [(params, _)] = list(failover.answers[0].derive(Clue(rule="sentinel.primary_down", evidence=s_down)))
    assert failover.accepts(params)
    o_down = s_down | {"flags": ["master", "s_down", "o_down"]}  # the sentinels fail over by themselves
    assert list(failover.answers[0].derive(Clue(rule="sentinel.primary_down", evidence=o_down))) == []
    with pytest.raises(ActionParamsError, match="parameter 'option'"):
        spec.check({"master": "mymaster", "option": "notification-script", "value": 1})
    with pytest.raises(ActionParamsError, match="parameter 'master'"):
        failover.check({"master": "my master"})


def test_discovery_finds_a_sentinel_pod_and_a_runner_is_refused() -> None:
    pod = {"metadata": {"name": "sentinel-0", "namespace": "shop", "labels": {"app.kubernetes.io/name": "sentinel"}},
           "spec": {"containers": [{"name": "sentinel", "image": "docker.io/bitnami/redis-sentinel:7.0",
                                    "ports": [{"containerPort": 26379}]}]}}
    service = {"metadata": {"name": "sentinel", "namespace": "shop"},
               "spec": {"selector": {"app.kubernetes.io/name": "sentinel"}, "ports": [{"port": 26379}]}}
    [target] = discover_targets("prod", [pod], [service], {}, DiscoveryConfig(kinds=["sentinel"]))
    assert (target["type"], target["config"]) == ("sentinel", {"host": "sentinel.shop.svc.cluster.local",
                                                               "port": 26379})
    SentinelConfig.model_validate(target["config"])
    with pytest.raises(ConfigError, match="directly"):
        SentinelPlugin.create(SentinelConfig(), LocalRunner())


# --- live ------------------------------------------------------------------------------------------------------


@pytest.fixture()
async def plugin(sentinel_group: SentinelGroup) -> AsyncIterator[SentinelPlugin]:
    built = SentinelPlugin.create(SentinelConfig(host=sentinel_group.host, port=sentinel_group.sentinels[0],
                                                 min_sentinels=3, min_replicas=1))
    try:
        yield built
    finally:
        await built.close()


async def eventually(check: Callable[[], Awaitable[Any]], timeout_s: float = 20) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.2)


async def _rule(plugin: SentinelPlugin, rule: str) -> Finding | None:
    return by_rule(await plugin.check_health()).get(rule)


async def _healthy(plugin: SentinelPlugin) -> bool:
    return not await plugin.check_health()


async def test_a_healthy_group_collects_snapshots_and_names_its_peers(plugin: SentinelPlugin,
                                                                      sentinel_group: SentinelGroup) -> None:
    assert await eventually(lambda: _healthy(plugin)), await plugin.check_health()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in await plugin.collect()}
    labels = (("master", MASTER),)
    assert samples[("sentinel_masters", ())] == 1 and samples[("sentinel_quorum_ok", labels)] == 1
    assert samples[("sentinel_sentinels_up", labels)] == 3 and samples[("sentinel_replicas_healthy", labels)] == 1
    assert samples[("sentinel_quorum", labels)] == QUORUM
    snapshot = await plugin.snapshot_config()
    primary = f"127.0.0.1:{sentinel_group.current_primary()}"
    assert snapshot[f"{MASTER}.address"] == primary
    assert snapshot[f"{MASTER}.down-after-milliseconds"] == str(DOWN_AFTER_MS)
    assert snapshot["resolve-hostnames"] == "no"
    peers = {p.address: p for p in await plugin.peers()}
    others = {f"127.0.0.1:{port}" for port in sentinel_group.sentinels[1:]}
    assert peers[primary].role == PeerRole.SERVER and peers[primary].name == f"{MASTER} primary"
    assert others <= set(peers) and len(peers) == 4  # primary, replica, two other sentinels


async def test_stopped_sentinels_lose_the_quorum(plugin: SentinelPlugin, sentinel_group: SentinelGroup) -> None:
    with sentinel_group.stalled("sentinel-1"), sentinel_group.stalled("sentinel-2"):
        async def lost() -> dict[str, Finding]:
            found = by_rule(await plugin.check_health())
            return found if {"sentinel.quorum_unreachable", "sentinel.too_few_sentinels"} <= set(found) else {}

        found = await eventually(lost)
        assert found, await plugin.check_health()
        assert "NOQUORUM" in found["sentinel.quorum_unreachable"].evidence["ckquorum"]
        assert found["sentinel.too_few_sentinels"].evidence["sentinels_up"] == 1
        assert found["sentinel.too_few_sentinels"].severity == Severity.CRITICAL  # fewer than the quorum
        with pytest.raises(PreconditionFailedError, match="quorum cannot be reached"):
            await plugin.execute("sentinel.failover", {"master": MASTER}, dry_run=True)
    assert await eventually(lambda: _healthy(plugin)), await plugin.check_health()


async def test_a_stalled_replica_leaves_nothing_to_promote(plugin: SentinelPlugin,
                                                           sentinel_group: SentinelGroup) -> None:
    async def judged_down() -> Finding | None:
        """The finding once the sentinel holds the replica subjectively down: before that its connection to the
        stopped process (which the kernel still accepts) may come and go, and the replica look healthy between."""
        finding = await _rule(plugin, "sentinel.too_few_replicas")
        down = finding and any("s_down" in r["flags"] for r in finding.evidence["replicas"])
        return finding if down else None

    with sentinel_group.stalled(sentinel_group.replica_process()):
        finding = await eventually(judged_down)
        assert finding and finding.evidence["healthy"] == 0 and finding.severity == Severity.CRITICAL
        with pytest.raises(PreconditionFailedError, match="no healthy replica"):
            await plugin.execute("sentinel.failover", {"master": MASTER}, dry_run=True)
    assert await eventually(lambda: _healthy(plugin)), await plugin.check_health()


async def test_a_stalled_sentinel_enters_tilt(plugin: SentinelPlugin, sentinel_group: SentinelGroup) -> None:
    first = sentinel_group.sentinel(0)
    first.execute_command("SENTINEL", "DEBUG", "TILT-PERIOD", "3000")  # leave TILT in 3 s, not 30
    try:
        with sentinel_group.stalled("sentinel-0"):
            await asyncio.sleep(2.5)  # past TILT-TRIGGER (2 s between timer ticks)
        finding = await eventually(lambda: _rule(plugin, "sentinel.tilt"), timeout_s=5)
        assert finding and finding.evidence["sentinel_tilt"] == 1
        assert await eventually(lambda: _healthy(plugin)), await plugin.check_health()
    finally:
        first.execute_command("SENTINEL", "DEBUG", "TILT-PERIOD", "30000")


async def test_set_changes_a_setting_and_its_undo_restores_it(plugin: SentinelPlugin) -> None:
    with pytest.raises(PreconditionFailedError, match="above the 3 sentinels"):
        await plugin.execute("sentinel.set", {"master": MASTER, "option": "quorum", "value": 4}, dry_run=True)
    with pytest.raises(PreconditionFailedError, match="does not monitor 'nosuch'"):
        await plugin.execute("sentinel.set", {"master": "nosuch", "option": "quorum", "value": 2}, dry_run=True)
    params = {"master": MASTER, "option": "failover-timeout", "value": 7000}
    dry = await plugin.execute("sentinel.set", params, dry_run=True)
    assert dry.before["failover-timeout"] == 6000
    assert (await plugin.snapshot_config())[f"{MASTER}.failover-timeout"] == "6000"
    done = await plugin.execute("sentinel.set", params)
    assert (await plugin.snapshot_config())[f"{MASTER}.failover-timeout"] == "7000"
    await plugin.execute(*done.undo)
    assert (await plugin.snapshot_config())[f"{MASTER}.failover-timeout"] == "6000"


async def test_reset_forgets_and_rediscovers(plugin: SentinelPlugin, sentinel_group: SentinelGroup) -> None:
    dry = await plugin.execute("sentinel.reset", {"master": MASTER}, dry_run=True)
    assert len(dry.before["replicas"]) == 1 and len(dry.before["sentinels"]) == 2
    await plugin.execute("sentinel.reset", {"master": MASTER})
    assert await eventually(lambda: _healthy(plugin), timeout_s=30), await plugin.check_health()


async def test_a_primary_down_is_answered_by_a_failover(plugin: SentinelPlugin, sentinel_group: SentinelGroup) -> None:
    """The primary stalls; only this sentinel sees it down, so nothing fails over by itself; the remedy the
    finding proposes (SENTINEL FAILOVER) is dry-run, then run: the replica is promoted, the failover is reported,
    and the old primary comes back as a replica."""
    group = sentinel_group
    old = group.current_primary()
    with group.only_first_sees_failures(), group.stalled(group.primary_process()):
        finding = await eventually(lambda: _rule(plugin, "sentinel.primary_down"))
        assert finding and finding.severity == Severity.WARNING and "o_down" not in finding.evidence["flags"]
        [(params, _)] = list(_spec("sentinel.failover").answers[0].derive(Clue(rule=finding.rule_id,
                                                                              evidence=finding.evidence)))
        dry = await plugin.execute("sentinel.failover", params, dry_run=True)
        assert dry.before["primary"] == f"127.0.0.1:{old}" and "is promoted" in dry.output
        assert group.current_primary() == old
        await plugin.execute("sentinel.failover", params)
        switched = await eventually(lambda: _switch_seen(plugin))  # in progress first, then the move
        assert switched and switched.evidence["previous_address"] == f"127.0.0.1:{old}"
        assert group.current_primary() != old
    new = group.current_primary()
    assert (await plugin.snapshot_config())[f"{MASTER}.address"] == f"127.0.0.1:{new}"
    assert await eventually(lambda: _old_primary_follows(group, old, new), timeout_s=30)
    assert await eventually(lambda: _only_the_failover_reported(plugin), timeout_s=30), await plugin.check_health()


async def _switch_seen(plugin: SentinelPlugin) -> Finding | None:
    finding = await _rule(plugin, "sentinel.failover_happened")
    return finding if finding is not None and "previous_address" in finding.evidence else None


async def _old_primary_follows(group: SentinelGroup, old: int, new: int) -> bool:
    info = group.redis_on(old).info("replication")
    return info.get("role") == "slave" and info.get("master_port") == new and info.get("master_link_status") == "up"


async def _only_the_failover_reported(plugin: SentinelPlugin) -> bool:
    return {f.rule_id for f in await plugin.check_health()} == {"sentinel.failover_happened"}


async def test_an_unreachable_sentinel_is_a_target_error() -> None:
    lost = SentinelPlugin.create(SentinelConfig(port=free_port(), timeout_s=1))
    with pytest.raises(TargetUnreachableError, match="cannot be reached"):
        await lost.collect()
    await lost.close()
