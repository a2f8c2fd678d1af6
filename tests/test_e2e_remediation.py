"""End to end, with every part real: a risky change on a real Redis goes agent → Kafka → detection → incident →
root cause → proposal → Slack and PagerDuty (real local receivers) → approval through the API → execution on
the Redis → verified recovery → the incident resolves → the audit chain verifies. ``pytest -s`` prints the times
from fault to notification and from approval to verified recovery."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid

import pytest
import uvicorn
import yaml

from kubestack.agents.config import AgentConfig
from kubestack.agents.runtime import Agent
from kubestack.api.app import create_app
from kubestack.api.auth import new_token, token_spec
from kubestack.apisettings import ApiSettings, Role
from kubestack.bus import ensure_topics
from kubestack.contract.events import IncidentStatus, ResultStatus
from kubestack.settings import KafkaSettings, Settings
from tests.cli import cli_env, run, start, wait_for_line
from tests.fault_injection import RedisMaxmemoryLowered
from tests.fault_watch import Seen, TopicWatch
from tests.services.process import free_port
from tests.services.receivers import Receivers
from tests.services.redis import start_redis

pytestmark = pytest.mark.kafka

TARGET = "cache-e2e"
LIMIT = 64 * 1024 * 1024
BOUND_S = 60.0


def _agent_yaml(path, cache) -> dict:
    config = {"agent": {"name": f"e2e-{uuid.uuid4().hex[:6]}", "metrics_listen": None},
              "targets": [{"type": "redis", "name": TARGET, "interval": 1, "health_interval": 1,
                           "config_interval": 1, "config": {"host": cache.host, "port": cache.port,
                                                            "password": {"value": cache.password},
                                                            "timeout_s": 2}}]}
    path.write_text(yaml.safe_dump(config))
    return config


@contextlib.asynccontextmanager
async def _api(settings: Settings, api: ApiSettings):
    server = uvicorn.Server(uvicorn.Config(create_app(settings, api), host=api.host, port=api.port, log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://{api.host}:{api.port}"
    finally:
        server.should_exit = True
        await task


async def test_a_redis_fault_is_fixed_through_an_approval_and_everyone_hears_about_it(
        kafka: KafkaSettings, receivers: Receivers, tmp_path) -> None:
    import httpx

    prefix = f"e2e.{secrets.token_hex(4)}."
    redis_proc, cache = start_redis("e2e", tmp_path, secrets.token_hex(8), "--maxmemory", str(LIMIT),
                                    "--maxmemory-policy", "allkeys-lru")
    agent_config = _agent_yaml(tmp_path / "agent.yaml", cache)
    worker_home = tmp_path / "worker"
    config = {"home": str(worker_home), "kafka": {"bootstrap": kafka.bootstrap, "topic_prefix": prefix},
              "worker": {"app_id": f"e2e-{secrets.token_hex(4)}", "correlation_window_s": 10,
                         "incident_quiet_s": 15},
              "remediation": {"targets": str(tmp_path / "agent.yaml"), "verify_window_s": 30,
                              "decision_keys": str(tmp_path / "api-home" / "keys" / "decision-keys.json"),
                              "verify_interval_s": 1, "verify_hold_s": 3},
              "notify": receivers.notify_config()}
    (tmp_path / "kubestack.yaml").write_text(yaml.safe_dump(config))
    env = cli_env(KUBESTACK_CONFIG=str(tmp_path / "kubestack.yaml"))
    settings = Settings(home=tmp_path / "api-home", kafka=kafka.model_copy(update={"topic_prefix": prefix}))
    await ensure_topics(settings.kafka)
    tokens = {"otto": new_token(), "vera": new_token()}
    api = ApiSettings(port=free_port(), feed_group=f"e2e-api-{secrets.token_hex(4)}", tokens=[
        token_spec(tokens["otto"], "otto", Role.OPERATOR, None), token_spec(tokens["vera"], "vera", Role.VIEWER, None)])
    watch = TopicWatch(settings.kafka)
    await watch.start()
    worker = start("worker", env=env)
    stop = asyncio.Event()
    running = None
    try:
        lines: list[str] = []
        assert await asyncio.to_thread(wait_for_line, worker, "Worker ready", lines), "".join(lines)
        asyncio.get_running_loop().run_in_executor(None, lambda: [lines.append(x) for x in worker.stdout])
        agent = Agent(AgentConfig.model_validate(agent_config), settings)
        key = agent.collectors[0].resource.key
        running = asyncio.create_task(agent.run(stop))
        assert await watch.wait_for(lambda s: any(h.resource.key == key and h.reachable for h in s.health), 60)
        async with _api(settings, api) as url:
            fault = RedisMaxmemoryLowered("e2e", "redis", TARGET, "redis.maxmemory_lowered", server=cache)
            injected = time.monotonic()
            await fault.inject()

            def pending(seen: Seen):
                proposal = next((p for p in seen.proposals if p.resource.key == key
                                 and p.action == "redis.set_maxmemory" and p.params == {"bytes": str(LIMIT)}), None)
                return proposal if proposal and any(r.proposal_id == proposal.proposal_id and
                                                    r.status == ResultStatus.PENDING for r in seen.results) else None

            proposal = await watch.wait_for(pending, BOUND_S)
            assert proposal, f"no pending undo proposal: {[p.action for p in watch.seen.proposals]}\n{''.join(lines)}"

            def buttons() -> bool:
                return any(proposal.proposal_id in json.dumps(m) and '"approve"' in json.dumps(m)
                           for m in receivers.slack.received)

            assert await _until(buttons, BOUND_S), f"no approval message in Slack: {receivers.slack.received}"
            notified_s = time.monotonic() - injected
            alert = receivers.pagerduty.alerts.get(proposal.incident_id)
            assert alert and alert["status"] == "triggered", receivers.pagerduty.alerts

            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                refused = await client.post(f"/api/v1/proposals/{proposal.proposal_id}/approve",
                                            json={"reason": "looks right"},
                                            headers={"Authorization": f"Bearer {tokens['vera']}"})
                assert refused.status_code == 403, refused.text
                for _ in range(100):  # the API's read model catches up with the proposal
                    approved = await client.post(f"/api/v1/proposals/{proposal.proposal_id}/approve",
                                                 json={"reason": "the change was a mistake"},
                                                 headers={"Authorization": f"Bearer {tokens['otto']}"})
                    if approved.status_code != 404:
                        break
                    await asyncio.sleep(0.2)
                assert approved.status_code == 202, approved.text
            approved_at = time.monotonic()

            def outcome(seen: Seen):
                return next((r for r in seen.results if r.proposal_id == proposal.proposal_id
                             and r.status in (ResultStatus.VERIFIED, ResultStatus.FAILED, ResultStatus.ROLLED_BACK)),
                            None)

            final = await watch.wait_for(outcome, BOUND_S)
            assert final and final.status == ResultStatus.VERIFIED, f"{final}\n{''.join(lines[-80:])}"
            recovered_s = time.monotonic() - approved_at
            assert int(cache.connect().config_get("maxmemory")["maxmemory"]) == LIMIT, "executed on the real Redis"
            statuses = [r.status for r in watch.seen.results if r.proposal_id == proposal.proposal_id]
            assert statuses == [ResultStatus.PENDING, ResultStatus.APPROVED, ResultStatus.EXECUTED,
                                ResultStatus.VERIFIED]
            assert next(r for r in watch.seen.results if r.status == ResultStatus.APPROVED
                        and r.proposal_id == proposal.proposal_id).actor == "otto"

            resolved = await watch.wait_for(lambda s: any(i.incident_id == proposal.incident_id and
                                                          i.status == IncidentStatus.RESOLVED for i in s.incidents),
                                            BOUND_S)
            assert resolved, "the incident did not resolve after the fix"
            assert await _until(lambda: receivers.pagerduty.alerts[proposal.incident_id]["status"] == "resolved",
                                BOUND_S), receivers.pagerduty.alerts[proposal.incident_id]

            def audited(seen: Seen) -> bool:
                done = {(r.action, r.actor) for r in seen.audit if r.subject_id == proposal.proposal_id}
                return {("proposal.approved", "otto"), ("proposal.verified", "stage:remediation")} <= done

            assert await watch.wait_for(audited, BOUND_S), [(r.action, r.actor) for r in watch.seen.audit]
            store = worker_home / "audit" / "audit.jsonl"
            checked = await asyncio.to_thread(run, "audit", "verify", "--store", str(store), "--topic",
                                              env=cli_env(KUBESTACK_KAFKA__BOOTSTRAP=kafka.bootstrap,
                                                          KUBESTACK_KAFKA__TOPIC_PREFIX=prefix))
            assert checked.returncode == 0, checked.stdout + checked.stderr
            print(f"\nfault → approval message in Slack: {notified_s:.1f}s; approval → verified recovery: "
                  f"{recovered_s:.1f}s; audit chain of {len(watch.seen.audit)} records verifies")
    finally:
        stop.set()
        if running is not None:
            await running
        await watch.stop()
        worker.terminate()
        await asyncio.to_thread(worker.wait, 60)
        redis_proc.stop()


async def _until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.2)
    return condition()
