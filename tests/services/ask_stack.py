"""The real stack a question or an MCP tool reaches: a Redis server of its own (no maxmemory, so a live check finds
``redis.no_maxmemory``), the API served by uvicorn over the session's broker with an agent config naming that
Redis, one token per role (and a viewer of another tenant), and an incident about the Redis with its root-cause
report, two pending proposals and the health reports that make its neighbours."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn
import yaml

from kubestack.api.app import create_app
from kubestack.api.auth import new_token, token_spec
from kubestack.api.targets import Targets
from kubestack.apisettings import ApiSettings, Role
from kubestack.bus import ensure_topics
from kubestack.contract.base import ResourceRef
from kubestack.contract.events import HealthReport, Incident, Peer, PeerRole, RemediationProposal
from kubestack.contract.topics import HEALTH, INCIDENTS, RCA_REPORTS, REMEDIATION_PROPOSALS
from kubestack.knowledge.index import build, default_folder
from kubestack.settings import KafkaSettings, Settings
from tests.services.kubestack_api import SOURCE, ApiServer, incident, proposal, rca
from tests.services.process import free_port
from tests.services.redis import RedisServer, start_redis

TOKENS = {"vic": (Role.VIEWER, None), "opal": (Role.OPERATOR, None), "acme-vic": (Role.VIEWER, "acme")}
CACHE = "cache-live"
APP_HOST = "app-7"


@dataclass
class AskStack:
    api: ApiServer
    redis: RedisServer
    cache: ResourceRef
    app: ResourceRef
    incident: Incident
    proposals: list[RemediationProposal]


def _agent_config(folder: Path, redis: RedisServer) -> Path:
    path = folder / "agent.yaml"
    path.write_text(yaml.safe_dump({"agent": {"name": "ask-stack", "tenant": "default"}, "targets": [
        {"type": "redis", "name": CACHE, "config": {"host": redis.host, "port": redis.port,
                                                    "password": {"value": redis.password}, "timeout_s": 3}}]}))
    return path


@contextlib.asynccontextmanager
async def ask_stack(kafka: KafkaSettings, folder: Path) -> AsyncIterator[AskStack]:
    process, redis = start_redis("ask", folder, secrets.token_hex(8))
    home = folder / "home"
    home.mkdir()
    settings = Settings(home=home, kafka=kafka.model_copy(update={"topic_prefix": f"test.ask.{uuid.uuid4().hex[:8]}."}))
    keys = {name: new_token() for name in TOKENS}
    agent = _agent_config(home, redis)
    await asyncio.to_thread(build, default_folder(home))  # what the first question would build: not on its clock
    api = ApiSettings(port=free_port(), agent_config=agent, feed_group=f"test-ask-feed-{uuid.uuid4().hex[:8]}",
                      tokens=[token_spec(keys[n], n, role, tenant) for n, (role, tenant) in TOKENS.items()])
    await ensure_topics(settings.kafka)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, api), host=api.host, port=api.port, log_config=None,
                                           lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        served = ApiServer(url=f"http://{api.host}:{api.port}", settings=settings, api=api, tokens=keys)
        targets = Targets(agent)
        cache = targets.resource(targets.config.targets[0])
        stack = await _seed(served, redis, cache)
        yield stack
    finally:
        server.should_exit = True
        await task
        process.stop()


async def _seed(api: ApiServer, redis: RedisServer, cache: ResourceRef) -> AskStack:
    """An incident about the Redis (a ranked cause with its evidence, two pending proposals) and health reports:
    the Redis sees clients from the application's host."""
    app = ResourceRef(kind="host", name=APP_HOST, host=APP_HOST)
    inc = incident(res=cache, title=f"Redis {CACHE} slow and out of memory")
    pending = [proposal(inc), proposal(inc)]
    await api.publish(INCIDENTS, inc)
    await api.publish(RCA_REPORTS, rca(inc))
    await api.publish(REMEDIATION_PROPOSALS, *pending)
    await api.publish(HEALTH, HealthReport(source=SOURCE, resource=cache, peers=[Peer(role=PeerRole.CLIENT,
                                                                                       address=APP_HOST, count=4)]),
                      HealthReport(source=SOURCE, resource=app))
    await api.wait_for("/api/v1/proposals?state=pending",
                       lambda r: len(r.json()["items"]) == len(pending), name="opal")
    await api.wait_for("/api/v1/targets", lambda r: len(r.json()["resources"]) == 2, name="opal")
    return AskStack(api=api, redis=redis, cache=cache, app=app, incident=inc, proposals=pending)
