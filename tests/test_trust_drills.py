"""Drills on the real broker against a real worker and a real Redis: whoever can write Kafka cannot act. A decision
naming "alice" that the API did not sign is refused and audited, not executed; a high-risk proposal that claims low
risk is not auto-approved; an approval in another tenant for a resource named like this tenant's target finds no
target. A decision signed with the API's key ring, for the tenant's own target, is executed: the control that shows
the refusals are the checks, not a worker that acts on nothing."""

from __future__ import annotations

import asyncio
import secrets
import socket
import time

import pytest
import yaml

from kubestack.agents.config import AgentIdentity, TargetConfig
from kubestack.agents.targets import resource_of
from kubestack.approval import DecisionKeys, proposal_digest
from kubestack.bus import ensure_topics
from kubestack.contract.base import Source
from kubestack.contract.events import Decision, RemediationDecision, RemediationProposal, ResultStatus, Risk
from kubestack.contract.topics import REMEDIATION_DECISIONS, REMEDIATION_PROPOSALS
from kubestack.settings import KafkaSettings
from tests.cli import cli_env, start, wait_for_line
from tests.fault_watch import Seen, TopicWatch
from tests.kafka_io import produce
from tests.services.redis import start_redis

pytestmark = pytest.mark.kafka

FORGER = Source(agent="agent/forger", host=socket.gethostname())
BOUND_S = 60.0


async def test_forged_decisions_and_claims_do_not_act(kafka: KafkaSettings, tmp_path) -> None:
    prefix = f"drill.{secrets.token_hex(4)}."
    redis_proc, cache = start_redis("drill", tmp_path, secrets.token_hex(8), "--maxmemory-policy", "noeviction")
    target = {"type": "redis", "name": "cache-acme",
              "config": {"host": cache.host, "port": cache.port, "password": {"value": cache.password}}}
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump({"agent": {"name": "acme-agent", "tenant": "acme"},
                                                         "targets": [target]}))
    keys_path = tmp_path / "keys" / "decision-keys.json"
    ring = DecisionKeys.load_or_create(keys_path)  # the API's ring; the forger has Kafka, not this file
    config = {"home": str(tmp_path / "worker"), "kafka": {"bootstrap": kafka.bootstrap, "topic_prefix": prefix},
              "worker": {"app_id": f"drill-{secrets.token_hex(4)}"},
              "remediation": {"targets": str(tmp_path / "agent.yaml"), "auto_approve_low": True,
                              "decision_keys": str(keys_path)}}
    (tmp_path / "kubestack.yaml").write_text(yaml.safe_dump(config))
    settings = kafka.model_copy(update={"topic_prefix": prefix})
    await ensure_topics(settings)
    resource = resource_of(TargetConfig.model_validate(target), AgentIdentity(name="acme-agent", tenant="acme"))
    watch = TopicWatch(settings)
    await watch.start()
    worker = start("worker", env=cli_env(KUBESTACK_CONFIG=str(tmp_path / "kubestack.yaml")))
    lines: list[str] = []
    try:
        assert await asyncio.to_thread(wait_for_line, worker, "Worker ready", lines), "".join(lines)
        asyncio.get_running_loop().run_in_executor(None, lambda: [lines.append(x) for x in worker.stdout])

        def proposal(pid: str, risk: Risk, tenant: str = "acme", policy: str = "allkeys-lru") -> RemediationProposal:
            return RemediationProposal(source=FORGER, resource=resource, tenant=tenant, proposal_id=pid,
                                       incident_id=f"inc-{pid}", action="redis.set_maxmemory_policy",
                                       params={"policy": policy}, risk=risk)

        def decision(item: RemediationProposal, actor: str, role: str = "operator") -> RemediationDecision:
            return RemediationDecision(source=FORGER, resource=item.resource, tenant=item.tenant,
                                       proposal_id=item.proposal_id, incident_id=item.incident_id,
                                       decision=Decision.APPROVE, actor=actor, reason="drill", role=role,
                                       proposal_digest=proposal_digest(item))

        async def publish(spec, *events) -> None:
            await produce(settings, spec.qualified(prefix), [spec.encode(e) for e in events])

        def results(pid: str) -> list[ResultStatus]:
            return [r.status for r in watch.seen.results if r.proposal_id == pid]

        forged, claims_low, elsewhere, control = (proposal(f"drill-{n}-{secrets.token_hex(3)}", risk, tenant, policy)
                                                  for n, risk, tenant, policy in (
                                                      ("forged", Risk.MEDIUM, "acme", "allkeys-lru"),
                                                      ("claims-low", Risk.LOW, "acme", "allkeys-lfu"),
                                                      ("globex", Risk.MEDIUM, "globex", "volatile-lru"),
                                                      ("control", Risk.MEDIUM, "acme", "allkeys-random")))
        await publish(REMEDIATION_PROPOSALS, forged, claims_low, elsewhere, control)
        every = (forged, claims_low, elsewhere, control)
        assert await watch.wait_for(lambda s: all(ResultStatus.PENDING in results(p.proposal_id) for p in every),
                                    BOUND_S), [(r.proposal_id, r.status, r.output) for r in watch.seen.results]

        # 1. a decision naming alice, unsigned; another signed with a ring that is not the API's; a viewer's
        started = time.monotonic()
        await publish(REMEDIATION_DECISIONS, decision(forged, "alice"),
                      DecisionKeys.create().sign(decision(forged, "alice")),
                      ring.sign(decision(forged, "vera", role="viewer")))

        def refusals(seen: Seen) -> list[str]:
            return [r.details["reason"] for r in seen.audit
                    if r.action == "decision.refused" and r.subject_id == forged.proposal_id]

        assert await watch.wait_for(lambda s: len(refusals(s)) == 3, BOUND_S), "".join(lines[-40:])
        refused_s = time.monotonic() - started
        reasons = refusals(watch.seen)
        assert any("unsigned" in r for r in reasons) and any("does not match" in r for r in reasons)
        assert any("role 'viewer'" in r for r in reasons)
        assert {r.details["claimed_actor"] for r in watch.seen.audit if r.action == "decision.refused"} >= {"alice"}

        # 3. an approval in tenant globex, signed by the API for a globex operator, for a resource named like acme's
        await publish(REMEDIATION_DECISIONS, ring.sign(decision(elsewhere, "globex-op")))
        assert await watch.wait_for(lambda s: ResultStatus.FAILED in results(elsewhere.proposal_id), BOUND_S)
        failed = next(r for r in watch.seen.results if r.proposal_id == elsewhere.proposal_id
                      and r.status == ResultStatus.FAILED)
        assert "no target redis/cache-acme of tenant globex" in failed.output, failed.output
        assert await watch.wait_for(lambda s: any(r.action == "proposal.failed" and r.subject_id ==
                                                  elsewhere.proposal_id for r in s.audit), BOUND_S)

        # the control: the API's signature, this tenant, its own target
        await publish(REMEDIATION_DECISIONS, ring.sign(decision(control, "otto")))
        assert await watch.wait_for(lambda s: ResultStatus.EXECUTED in results(control.proposal_id), BOUND_S), \
            [(r.status, r.output) for r in watch.seen.results if r.proposal_id == control.proposal_id]
        assert cache.connect().config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-random"

        assert results(forged.proposal_id) == [ResultStatus.PENDING], "the forged decisions moved nothing"
        # 2. with auto_approve_low on, the medium-risk action that claimed low still waits for a person
        assert results(claims_low.proposal_id) == [ResultStatus.PENDING]
        waiting = next(r for r in watch.seen.results if r.proposal_id == claims_low.proposal_id)
        assert waiting.output.startswith("medium risk"), waiting.output
        created = next(r for r in watch.seen.audit
                       if r.action == "proposal.created" and r.subject_id == claims_low.proposal_id)
        assert (created.details["risk"], created.details["claimed_risk"]) == ("medium", "low")
        print(f"\nforged decisions refused and audited in {refused_s:.1f}s; refusals: {reasons}; "
              f"cross-tenant approval: {failed.output[:120]}")
    finally:
        await watch.stop()
        worker.terminate()
        await asyncio.to_thread(worker.wait, 60)
        redis_proc.stop()
