"""The API served by uvicorn on a free port in the test session's event loop, over the session's Kafka broker
(topics under a unique prefix), with one token per role and tenant, a Slack signing secret and an agent config."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import uvicorn
import yaml

from kubestack.api.app import create_app
from kubestack.api.auth import new_token, token_spec
from kubestack.apisettings import ApiSettings, Role
from kubestack.bus import ensure_topics
from kubestack.contract.base import Event, ResourceRef, Source, utcnow
from kubestack.contract.events import (
    Hypothesis,
    Incident,
    IncidentSignal,
    RcaReport,
    RemediationProposal,
    Risk,
    Severity,
    SignalKind,
)
from kubestack.contract.topics import TopicSpec
from kubestack.settings import KafkaSettings, Settings
from tests.kafka_io import produce
from tests.services.process import free_port

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKENS = {  # name: (role, tenant)
    "vera": (Role.VIEWER, None),
    "otto": (Role.OPERATOR, None),
    "ada": (Role.ADMIN, None),
    "acme-op": (Role.OPERATOR, "acme"),
    "acme-viewer": (Role.VIEWER, "acme"),
}
SLACK_USERS = {  # Slack user id: who they are here (U0CA5 presses the recorded button)
    "U0CA5": {"role": "operator", "tenants": ["default"]},
    "UVERA": {"token": "vera"},
    "UACME": {"token": "acme-op"},
}
TARGET_PASSWORD = "s3cret-never-shown"


@dataclass
class ApiServer:
    url: str
    settings: Settings
    api: ApiSettings
    tokens: dict[str, str] = field(default_factory=dict)
    app: object = None

    @property
    def kafka(self) -> KafkaSettings:
        return self.settings.kafka

    def topic(self, spec: TopicSpec) -> str:
        return spec.qualified(self.kafka.topic_prefix)

    def client(self, name: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.tokens[name]}"} if name else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)

    async def publish(self, spec: TopicSpec, *events: Event) -> None:
        await produce(self.kafka, self.topic(spec), [spec.encode(e) for e in events])

    async def wait_for(self, path: str, ready, name: str = "ada", timeout_s: float = 30.0) -> httpx.Response:
        """GET ``path`` until ``ready(response)`` holds (the feed has caught up), or fail saying what was seen."""
        async with self.client(name) as client:
            deadline = asyncio.get_running_loop().time() + timeout_s
            while True:
                response = await client.get(path)
                if ready(response):
                    return response
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"{path} not ready after {timeout_s}s: {response.status_code} "
                                         f"{response.text[:500]}")
                await asyncio.sleep(0.2)


LABEL_WITH_SECRET = "https://ops:label-s3cret-Pw@wiki.example/redis"
"""A target label someone pasted a credential into: operators see it, viewers see it redacted."""


def _agent_config(folder: Path, redis_port: int) -> Path:
    path = folder / "agent.yaml"
    path.write_text(yaml.safe_dump({
        "agent": {"name": "api-test-agent", "tenant": "default"},
        "targets": [
            {"type": "host", "name": "this-host", "labels": {"service": "ops"}},
            {"type": "redis", "name": "cache-nowhere", "labels": {"wiki": LABEL_WITH_SECRET},
             "config": {"host": "127.0.0.1", "port": redis_port, "password": {"value": TARGET_PASSWORD},
                        "timeout_s": 1}},
        ],
    }))
    return path


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def api_server(kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ApiServer]:
    home = tmp_path_factory.mktemp("api-home")
    prefix = f"test.api.{uuid.uuid4().hex[:8]}."
    settings = Settings(home=home, kafka=kafka.model_copy(update={"topic_prefix": prefix}))
    secrets = {name: new_token() for name in TOKENS}
    api = ApiSettings(
        port=free_port(),
        tokens=[token_spec(secrets[name], name, role, tenant) for name, (role, tenant) in TOKENS.items()],
        slack_signing_secret=SLACK_SECRET,
        slack_users=SLACK_USERS,
        agent_config=_agent_config(home, free_port()),
        feed_group=f"test-api-feed-{uuid.uuid4().hex[:8]}",
    )
    await ensure_topics(settings.kafka)
    app = create_app(settings, api)
    server = uvicorn.Server(uvicorn.Config(app, host=api.host, port=api.port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield ApiServer(url=f"http://{api.host}:{api.port}", settings=settings, api=api, tokens=secrets, app=app)
    finally:
        server.should_exit = True
        await task


# --- events the tests publish ---------------------------------------------------------------------

SOURCE = Source(agent="worker/test", host="test-host")


def resource(name: str = "cache-1", kind: str = "redis") -> ResourceRef:
    return ResourceRef(kind=kind, name=name, host="db-1", labels={"service": "checkout"})


def incident(tenant: str = "default", *, revision: int = 1, title: str = "Redis memory pressure",
             status: str = "open", res: ResourceRef | None = None, incident_id: str | None = None) -> Incident:
    res = res or resource()
    incident_id = incident_id or uuid.uuid4().hex
    now = utcnow()
    signals = [
        IncidentSignal(event_id="e2", kind=SignalKind.ANOMALY, name="robust:redis_used_memory_bytes",
                       resource=res.key, first_seen=now - timedelta(minutes=3), last_seen=now,
                       severity=Severity.WARNING, summary="used memory jumped", score=0.93),
        IncidentSignal(event_id="e1", kind=SignalKind.FINDING, name="redis.maxmemory_lowered", resource=res.key,
                       first_seen=now - timedelta(minutes=9), last_seen=now, severity=Severity.CRITICAL,
                       summary="maxmemory lowered from 2gb to 100mb"),
    ]
    return Incident(event_id=f"{incident_id}-r{revision}", source=SOURCE, resource=res, tenant=tenant,
                    incident_id=incident_id, title=title, status=status, severity=Severity.CRITICAL,
                    opened_at=now - timedelta(minutes=9), resources=[res], member_event_ids=["e1", "e2"],
                    summary=f"revision {revision}", signals=signals)


def rca(inc: Incident, cause: str = "maxmemory lowered below used memory") -> RcaReport:
    return RcaReport(source=SOURCE, resource=inc.resource, tenant=inc.tenant, incident_id=inc.incident_id,
                     narrative=f"{cause} [e1], then memory pressure [e2].",
                     hypotheses=[Hypothesis(rank=1, component=inc.resource.key, cause=cause, confidence=0.87,
                                            evidence_ids=["e1"], runbooks=["redis/maxmemory"]),
                                 Hypothesis(rank=2, component=inc.resource.key, cause="traffic spike",
                                            confidence=0.2, evidence_ids=["e2"])])


def proposal(inc: Incident, risk: Risk = Risk.LOW) -> RemediationProposal:
    return RemediationProposal(source=SOURCE, resource=inc.resource, tenant=inc.tenant, incident_id=inc.incident_id,
                               action="redis.config_set", params={"parameter": "maxmemory", "value": "2gb"},
                               risk=risk, expected_effect="memory pressure ends",
                               rollback="CONFIG SET maxmemory 100mb")
