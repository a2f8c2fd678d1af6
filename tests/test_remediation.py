"""The remediation stage: the policy and the state of each proposal (pure), then carrying proposals out on a real
Redis: executed and verified, rolled back when the watched findings do not clear, refused when a precondition
does not hold now, failed when there is no such target."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from kubestack.approval import DecisionKeys, proposal_digest
from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import Decision, RemediationDecision, RemediationProposal, ResultStatus, Risk
from kubestack.agents.targets import TargetSet
from kubestack.pipeline.executor import carry_out
from kubestack.pipeline import remediation
from kubestack.pipeline.remediation import POLICY_AUTO, State, admit, finished
from kubestack.settings import RemediationSettings
from tests.services.redis import RedisServer, start_redis

SRC = Source(agent="worker", host="w1")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
CACHE = ResourceRef(kind="redis", name="cache-r", host=socket.gethostname())
POLICY = RemediationSettings()
KEYS = DecisionKeys.create()


def proposal(risk: Risk = Risk.MEDIUM, action: str = "redis.set_maxmemory_policy", params=None, verify=(),
             pid: str = "prop-1") -> RemediationProposal:
    return RemediationProposal(source=SRC, resource=CACHE, proposal_id=pid, incident_id="inc-1", action=action,
                               params=params if params is not None else {"policy": "allkeys-lru"}, risk=risk,
                               verify_rules=list(verify))


def decision(kind: Decision = Decision.APPROVE, actor: str = "alice", pid: str = "prop-1", role: str = "operator",
             tenant: str = "default", at: datetime = NOW, keys: DecisionKeys | None = KEYS,
             of: RemediationProposal | None = None) -> RemediationDecision:
    """Signed as the API signs it (``keys`` None: unsigned, as anyone with Kafka access could write it), for the
    proposal ``of`` as the person saw it (default: the default proposal)."""
    made = RemediationDecision(source=SRC, resource=CACHE, tenant=tenant, ts=at, proposal_id=pid, incident_id="inc-1",
                               decision=kind, actor=actor, reason="checked", via="api", role=role,
                               proposal_digest=proposal_digest(of or proposal(pid=pid)))
    return keys.sign(made) if keys is not None else made


def decide(kept, made, settings, source, now):
    return remediation.decide(kept, made, settings, source, now, KEYS)


# --- policy and state (pure) ---------------------------------------------------------------------------------


def test_a_medium_risk_proposal_waits_for_a_person_and_is_audited_on_arrival() -> None:
    step = admit(None, proposal(), POLICY, SRC, NOW)
    assert step.state["state"] == State.PENDING and not step.execute
    assert [r.status for r in step.results] == [ResultStatus.PENDING]
    assert [e.action for e in step.entries] == ["proposal.created"]
    assert admit(step.state, proposal(), POLICY, SRC, NOW) is None, "a replayed proposal is ignored"


def test_forbidden_never_runs_and_low_risk_runs_alone_only_when_allowed() -> None:
    forbidden = admit(None, proposal(Risk.FORBIDDEN, "redis.flushall", {}), RemediationSettings(auto_approve_low=True),
                      SRC, NOW)
    assert [r.status for r in forbidden.results] == [ResultStatus.REJECTED] and not forbidden.execute
    assert "never executed" in forbidden.results[0].output
    assert decide(forbidden.state, decision(), POLICY, SRC, NOW) is None, "no one can approve it afterwards"
    low = proposal(Risk.LOW, "redis.set_maxmemory", {"bytes": 1 << 30})
    assert not admit(None, low, POLICY, SRC, NOW).execute, "auto-approval is off by default"
    auto = admit(None, low, RemediationSettings(auto_approve_low=True), SRC, NOW)
    assert auto.execute and auto.results[0].actor == POLICY_AUTO
    assert [e.action for e in auto.entries] == ["proposal.created", "proposal.approved"]
    high = admit(None, proposal(Risk.HIGH), RemediationSettings(auto_approve_low=True), SRC, NOW)
    assert not high.execute and high.results[0].status == ResultStatus.PENDING


def test_the_risk_and_params_come_from_the_declaration_not_from_the_message() -> None:
    auto = RemediationSettings(auto_approve_low=True)
    claims_low = proposal(Risk.LOW, "redis.set_maxmemory_policy", {"policy": "allkeys-lru"})
    step = admit(None, claims_low, auto, SRC, NOW)
    assert not step.execute and step.results[0].status == ResultStatus.PENDING
    assert "medium risk" in step.results[0].output and step.state["proposal"]["risk"] == "medium"
    assert (step.entries[0].details["risk"], step.entries[0].details["claimed_risk"]) == ("medium", "low")
    pg = ResourceRef(kind="postgresql", name="pg-1", host="db-1")
    alter = proposal(Risk.LOW, "postgresql.alter_system_set", {"name": "work_mem", "value": "64MB"}).model_copy(
        update={"resource": pg})
    assert not admit(None, alter, auto, SRC, NOW).execute, "a high-risk action claiming low waits for a person"
    flush = admit(None, proposal(Risk.LOW, "redis.flushall", {}), auto, SRC, NOW)
    assert not flush.execute and flush.results[0].status == ResultStatus.REJECTED
    for made, why in ((proposal(Risk.LOW, "redis.shutdown", {}), "declares the action redis.shutdown"),
                      (proposal(Risk.LOW, "postgresql.alter_system_set", {"name": "work_mem", "value": "1"}),
                       "no plugin of redis resources"),
                      (proposal(Risk.LOW, "redis.set_maxmemory", {"bytes": -1}), "bytes")):
        step = admit(None, made, auto, SRC, NOW)
        assert not step.execute and step.results[0].status == ResultStatus.REJECTED and why in step.results[0].output


def test_an_approval_acts_once_and_a_later_decision_changes_nothing() -> None:
    pending = admit(None, proposal(), POLICY, SRC, NOW).state
    approved = decide(pending, decision(), POLICY, SRC, NOW)
    assert approved.execute and approved.results[0].status == ResultStatus.APPROVED
    assert approved.results[0].actor == "alice" and "approved via api (checked)" in approved.results[0].output
    assert decide(approved.state, decision(Decision.REJECT, "bob"), POLICY, SRC, NOW) is None
    assert decide(approved.state, decision(), POLICY, SRC, NOW) is None, "a replayed approval does not act again"
    executed = finished(approved.state, ResultStatus.EXECUTED)
    assert executed["state"] == State.EXECUTING and decide(executed, decision(), POLICY, SRC, NOW) is None
    assert finished(executed, ResultStatus.VERIFIED)["state"] == State.DONE


def test_a_rejection_closes_and_a_decision_before_its_proposal_waits_for_it() -> None:
    rejected = decide(admit(None, proposal(), POLICY, SRC, NOW).state, decision(Decision.REJECT), POLICY, SRC, NOW)
    assert [r.status for r in rejected.results] == [ResultStatus.REJECTED] and not rejected.execute
    assert [e.action for e in rejected.entries] == ["proposal.rejected"]
    early = decide(None, decision(), POLICY, SRC, NOW)
    assert early.state["state"] == State.AWAITING and not early.results and not early.execute
    arrived = admit(early.state, proposal(), POLICY, SRC, NOW)
    assert arrived.execute and [r.status for r in arrived.results] == [ResultStatus.APPROVED]


def test_with_remediation_off_an_approval_is_recorded_and_nothing_runs() -> None:
    off = RemediationSettings(enabled=False)
    pending = admit(None, proposal(), off, SRC, NOW)
    assert "recorded, not executed" in pending.results[0].output
    approved = decide(pending.state, decision(), off, SRC, NOW)
    assert not approved.execute and approved.results[0].status == ResultStatus.FAILED


def test_only_a_decision_the_api_signed_moves_a_proposal_and_a_refusal_is_audited() -> None:
    pending = admit(None, proposal(), POLICY, SRC, NOW).state
    forged = decision(keys=None)
    other_ring = decision(keys=DecisionKeys.create())
    altered = decision().model_copy(update={"actor": "mallory"})
    expired = decision(at=NOW - timedelta(seconds=POLICY.decision_ttl_s + 1))
    viewer = decision(role="viewer")
    for made, why in ((forged, "unsigned"), (other_ring, "does not match"), (altered, "does not match"),
                      (expired, "expired"), (viewer, "role 'viewer' may not decide")):
        step = decide(pending, made, POLICY, SRC, NOW)
        assert step.state is None and not step.execute and not step.results, why
        [entry] = step.entries
        assert entry.action == "decision.refused" and entry.actor == "stage:remediation"
        assert entry.details["claimed_actor"] == made.actor and why in entry.details["reason"]
    assert decide(None, forged, POLICY, SRC, NOW).state is None, "a forged early decision is not kept either"
    assert remediation.decide(pending, decision(), POLICY, SRC, NOW, None).state is None, "no ring: no decision"
    rotated = DecisionKeys({**KEYS.keys}, KEYS.current)
    rotated.rotate()
    assert decide(pending, rotated.sign(decision(keys=None)), POLICY, SRC, NOW).state is None
    assert remediation.decide(pending, decision(), POLICY, SRC, NOW, rotated).execute, "old keys still check"


def test_a_decision_signed_for_another_tenant_does_not_move_the_proposal() -> None:
    pending = admit(None, proposal(), POLICY, SRC, NOW).state
    step = decide(pending, decision(tenant="globex"), POLICY, SRC, NOW)
    assert not step.execute and step.state["state"] == State.PENDING
    assert [e.action for e in step.entries] == ["decision.refused"] and "tenant" in step.entries[0].details["reason"]


def test_a_decision_acts_only_on_the_proposal_the_person_saw() -> None:
    """A forger who published another proposal under the id first: the approval of what the console showed does
    not run it."""
    forged = proposal(params={"policy": "allkeys-random"})
    pending = admit(None, forged, POLICY, SRC, NOW).state
    step = decide(pending, decision(of=proposal()), POLICY, SRC, NOW)
    assert not step.execute and step.state["state"] == State.PENDING and "other proposal content" in \
        step.entries[0].details["reason"]
    assert decide(step.state, decision(of=forged), POLICY, SRC, NOW).execute, "the digest is kept after a refusal"
    early = decide(None, decision(of=proposal()), POLICY, SRC, NOW).state
    assert not admit(early, forged, POLICY, SRC, NOW).execute, "nor when the decision came first"


def test_the_decision_key_ring_is_private_and_survives_a_reload(tmp_path) -> None:
    path = tmp_path / "keys" / "decision-keys.json"
    ring = DecisionKeys.load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    made = ring.sign(decision(keys=None))
    assert DecisionKeys.load_or_create(path).problem(made, NOW, 60) is None


def test_kubestack_api_decision_key_makes_and_rotates_the_ring(tmp_path) -> None:
    from tests.cli import cli_env, run

    env = cli_env(KUBESTACK_HOME=str(tmp_path))
    made = run("api", "decision-key", env=env)
    assert made.returncode == 0 and "current key k1 (keys k1)" in made.stdout, made.stderr
    path = tmp_path / "keys" / "decision-keys.json"
    signed = DecisionKeys.load(path).sign(decision(keys=None))
    rotated = run("api", "decision-key", "--rotate", env=env)
    assert rotated.returncode == 0 and "current key k2 (keys k1, k2)" in rotated.stdout
    ring = DecisionKeys.load(path)
    assert ring.current == "k2" and ring.problem(signed, NOW, 60) is None and path.stat().st_mode & 0o777 == 0o600


# --- carrying out on a real Redis ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    process, server = start_redis("remediation", tmp_path_factory.mktemp("redis-remediation"), secrets.token_hex(8))
    try:
        yield server
    finally:
        process.stop()


@pytest.fixture
def full(cache: RedisServer) -> Iterator[int]:
    """About 2 MB of data and maxmemory just above it with noeviction: ``redis.noeviction_memory_high``."""
    client = cache.connect()
    client.flushall()
    client.config_set("maxmemory", 0)
    client.config_set("maxmemory-policy", "noeviction")
    for n in range(200):
        client.set(f"k{n}", "x" * 10_000)
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", int(used * 1.02))
    yield used
    client.config_set("maxmemory", 0)
    client.config_set("maxmemory-policy", "noeviction")
    client.close()


def settings(tmp_path, cache: RedisServer, window_s: float = 10.0) -> RemediationSettings:
    path = tmp_path / "targets.yaml"
    path.write_text(yaml.safe_dump({"targets": [{"type": "redis", "name": "cache-r", "config": {
        "host": cache.host, "port": cache.port, "password": {"value": cache.password}}}]}))
    return RemediationSettings(targets=path, verify_window_s=window_s, verify_interval_s=0.5, verify_hold_s=1.0)


async def steps(item: RemediationProposal, config: RemediationSettings) -> list:
    return [step async for step in carry_out(item, TargetSet.load(config.targets), config)]


async def test_restoring_the_limit_is_executed_then_verified(cache: RedisServer, full: int, tmp_path) -> None:
    item = proposal(Risk.LOW, "redis.set_maxmemory", {"bytes": str(full * 4)}, ["redis.noeviction_memory_high"])
    done = await steps(item, settings(tmp_path, cache))
    assert [s.status for s in done] == [ResultStatus.EXECUTED, ResultStatus.VERIFIED], done
    assert done[0].output.startswith("dry run: CONFIG SET maxmemory") and "redis.noeviction_memory_high cleared" \
        in done[1].output
    assert int(cache.connect().config_get("maxmemory")["maxmemory"]) == full * 4


async def test_an_action_that_does_not_help_is_rolled_back(cache: RedisServer, full: int, tmp_path) -> None:
    watched = ["redis.noeviction_memory_high", "redis.memory_near_limit"]
    item = proposal(Risk.MEDIUM, "redis.set_maxmemory_policy", {"policy": "allkeys-lru"}, watched)
    done = await steps(item, settings(tmp_path, cache, window_s=2.0))
    assert [s.status for s in done] == [ResultStatus.EXECUTED, ResultStatus.ROLLED_BACK], done
    assert "still firing after 2s" in done[1].output
    assert cache.connect().config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction", "undone"


async def test_a_precondition_that_no_longer_holds_changes_nothing(cache: RedisServer, full: int, tmp_path) -> None:
    gone = proposal(Risk.MEDIUM, "redis.client_kill", {"addr": "127.0.0.1:1"}, ["redis.slow_commands"])
    [step] = await steps(gone, settings(tmp_path, cache))
    assert step.status == ResultStatus.FAILED and step.output.startswith("preconditions do not hold now")
    too_low = proposal(Risk.LOW, "redis.set_maxmemory", {"bytes": "1048576"}, ["redis.noeviction_memory_high"])
    [step] = await steps(too_low, settings(tmp_path, cache))
    assert step.status == ResultStatus.FAILED
    assert int(cache.connect().config_get("maxmemory")["maxmemory"]) == int(full * 1.02)


async def test_a_proposal_for_a_target_the_stage_does_not_know_fails_with_the_reason(tmp_path, cache) -> None:
    other = proposal().model_copy(update={"resource": CACHE.model_copy(update={"name": "elsewhere"})})
    [step] = await steps(other, settings(tmp_path, cache))
    assert step.status == ResultStatus.FAILED and "no target redis/elsewhere" in step.output


async def test_a_target_is_found_by_tenant_and_host_too_never_by_name_alone(tmp_path, cache: RedisServer,
                                                                           full: int) -> None:
    """The targets are tenant acme's: an approval in another tenant, or for a resource of the same kind and name on
    another host or cluster, finds none and changes nothing."""
    config = settings(tmp_path, cache)
    config.targets.write_text(yaml.safe_dump(yaml.safe_load(config.targets.read_text()) | {
        "agent": {"name": "acme-agent", "tenant": "acme"}}))
    raise_it = proposal(Risk.LOW, "redis.set_maxmemory", {"bytes": str(full * 4)})
    for tenant, resource, says in (
            ("globex", CACHE, "of tenant globex"), ("default", CACHE, "of tenant default"),
            ("acme", CACHE.model_copy(update={"host": "other-host"}), "no target redis/cache-r of tenant acme"),
            ("acme", CACHE.model_copy(update={"cluster": "prod-eu"}), "no target redis/cache-r of tenant acme")):
        [step] = await steps(raise_it.model_copy(update={"tenant": tenant, "resource": resource}), config)
        assert step.status == ResultStatus.FAILED and says in step.output, step.output
    assert int(cache.connect().config_get("maxmemory")["maxmemory"]) == int(full * 1.02), "nothing changed"
    done = await steps(raise_it.model_copy(update={"tenant": "acme"}), config)
    assert done[0].status == ResultStatus.EXECUTED, done
    pinned = yaml.safe_load(config.targets.read_text())
    pinned["targets"][0]["host"] = "cache-host-1"  # the agent reporting it runs elsewhere: both configs say its host
    config.targets.write_text(yaml.safe_dump(pinned))
    [step] = await steps(raise_it.model_copy(update={"tenant": "acme"}), config)
    assert step.status == ResultStatus.FAILED and "no target redis/cache-r of tenant acme" in step.output
    elsewhere = CACHE.model_copy(update={"host": "cache-host-1"})
    again = await steps(raise_it.model_copy(update={"tenant": "acme", "resource": elsewhere,
                                                     "params": {"bytes": str(full * 5)}}), config)
    assert again[0].status == ResultStatus.EXECUTED, again
