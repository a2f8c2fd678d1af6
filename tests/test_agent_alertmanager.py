"""The Alertmanager webhook receiver: the pure mapping on recorded payloads, real HTTP against the real aiohttp
server, and a real Alertmanager delivering to it."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kubestack.agents.alertmanager import (
    WEBHOOK_PATH,
    WebhookPayload,
    anomaly_of,
    resource_of,
    run_receiver,
    severity_of,
)
from kubestack.contract.base import Event, Source
from kubestack.contract.events import Anomaly, Severity
from kubestack.contract.topics import ANOMALIES, TopicSpec
from kubestack.errors import KafkaUnavailableError
from tests.services.alertmanager import AlertmanagerServer
from tests.services.process import free_port

DATA = Path(__file__).parent / "data" / "alertmanager"
SOURCE = Source(agent="alertmanager-receiver", host="collector-1")
TOKEN = "receiver-token"


def recorded(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())


class CollectingPublisher:
    """The Publisher protocol, in memory."""

    def __init__(self) -> None:
        self.events: list[tuple[TopicSpec, Event]] = []

    async def publish(self, spec: TopicSpec, event: Event) -> None:
        self.events.append((spec, event))

    async def publish_many(self, items: list[tuple[TopicSpec, Event]]) -> None:
        self.events.extend(items)


class UnavailablePublisher(CollectingPublisher):
    async def publish_many(self, items: list[tuple[TopicSpec, Event]]) -> None:
        raise KafkaUnavailableError("Kafka at 127.0.0.1:1 does not answer and the spool is full")


@dataclass
class Receiver:
    url: str
    publisher: CollectingPublisher
    task: asyncio.Task = field(repr=False)

    async def post(self, body: bytes | dict | list, token: str | None = TOKEN) -> tuple[int, dict]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with aiohttp.ClientSession() as http, http.post(self.url, data=data, headers=headers) as response:
            return response.status, await response.json()


async def _start(publisher: CollectingPublisher, port: int, token: str | None) -> Receiver:
    started = asyncio.Event()
    task = asyncio.create_task(run_receiver("127.0.0.1", port, publisher, token=token, source=SOURCE,
                                            tenant="acme", started=started))
    await asyncio.wait_for(started.wait(), 10)
    return Receiver(url=f"http://127.0.0.1:{port}{WEBHOOK_PATH}", publisher=publisher, task=task)


async def _stop(receiver: Receiver) -> None:
    receiver.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await receiver.task


@pytest.fixture()
async def receiver() -> AsyncIterator[Receiver]:
    running = await _start(CollectingPublisher(), free_port(), TOKEN)
    yield running
    await _stop(running)


# --- the pure mapping ---------------------------------------------------------------------------------


def test_firing_alert_becomes_an_anomaly() -> None:
    payload = WebhookPayload.model_validate(recorded("firing"))
    now = datetime(2026, 11, 23, 14, 10, tzinfo=timezone.utc)
    anomaly = anomaly_of(payload.alerts[0], payload, source=SOURCE, tenant="acme", now=now)

    assert (anomaly.detector, anomaly.signal, anomaly.score) == ("alertmanager", "RedisMemoryHigh", 1.0)
    assert anomaly.severity is Severity.CRITICAL
    assert anomaly.window_start == datetime(2026, 11, 23, 14, 4, 33, 176667, tzinfo=timezone.utc)
    assert anomaly.window_end == now == anomaly.ts
    assert anomaly.resource.key == "prod-eu/shop/redis/redis-0.redis:6379"
    assert anomaly.tenant == "acme"
    assert anomaly.details["fingerprint"] == "4bb6bba4e42367de"
    assert anomaly.details["generator_url"] == "http://prometheus:9090/graph?g0.expr=redis_memory_used_bytes"
    assert anomaly.details["annotations"]["summary"] == "Redis memory above 90%"
    assert anomaly.details["labels"]["service"] == "redis"
    assert anomaly.details["group_key"] == '{}:{alertname="RedisMemoryHigh", namespace="shop"}'
    assert ANOMALIES.model.model_validate_json(anomaly.model_dump_json()) == anomaly


def test_alert_starting_after_now_gets_an_empty_window() -> None:
    payload = WebhookPayload.model_validate(recorded("firing"))
    before = payload.alerts[0].starts_at - timedelta(seconds=2)  # the receiver's clock is behind
    anomaly = anomaly_of(payload.alerts[0], payload, source=SOURCE, now=before)
    assert anomaly.window_start == anomaly.window_end == before


def test_resource_from_labels_with_fallbacks() -> None:
    assert resource_of({"alertname": "X"}).key == "-/-/service/alertmanager"
    assert resource_of({"alertname": "X", "kind": "mysql", "job": "mysqld", "service": "orders"}).key \
        == "-/-/mysql/orders"
    assert resource_of({"alertname": "X", "job": "kube-state-metrics", "pod": "web-1", "namespace": "shop"}).key \
        == "-/shop/kube-state-metrics/web-1"
    assert resource_of({"alertname": "X", "job": "node", "instance": "db-1:9100", "node": "db-1"}).key \
        == "-/db-1/node/db-1:9100"


@pytest.mark.parametrize(("label", "expected"), [
    ("critical", Severity.CRITICAL), ("Page", Severity.CRITICAL), ("warning", Severity.WARNING),
    ("info", Severity.INFO), ("none", Severity.INFO), ("something-else", Severity.WARNING), (None, Severity.WARNING),
])
def test_severity_label(label: str | None, expected: Severity) -> None:
    labels = {"alertname": "X"} | ({"severity": label} if label is not None else {})
    assert severity_of(labels) is expected


# --- real HTTP against the receiver --------------------------------------------------------------------


async def test_valid_payload_publishes_one_anomaly_per_firing_alert(receiver: Receiver) -> None:
    status, body = await receiver.post(recorded("firing"))

    assert (status, body) == (200, {"published": 2, "resolved": 0})
    assert [spec for spec, _ in receiver.publisher.events] == [ANOMALIES, ANOMALIES]
    anomalies = [event for _, event in receiver.publisher.events]
    assert all(isinstance(a, Anomaly) and a.tenant == "acme" and a.source == SOURCE for a in anomalies)
    assert [(a.resource.name, a.severity) for a in anomalies] == [
        ("redis-0.redis:6379", Severity.CRITICAL), ("redis-1.redis:6379", Severity.WARNING)]


async def test_resolved_alerts_are_acknowledged_not_published(receiver: Receiver) -> None:
    status, body = await receiver.post(recorded("firing_and_resolved"))
    assert (status, body) == (200, {"published": 1, "resolved": 1})
    [(_, anomaly)] = receiver.publisher.events
    assert anomaly.resource.name == "redis-0.redis:6379"


async def test_malformed_json_is_a_400(receiver: Receiver) -> None:
    status, body = await receiver.post(b'{"version": "4", "alerts": [')
    assert status == 400
    assert body["error"].startswith("body is not valid JSON")
    status, body = await receiver.post(b"\xff\xfe not utf-8")
    assert status == 400
    assert receiver.publisher.events == []


async def test_wrong_shape_is_a_400_naming_the_field(receiver: Receiver) -> None:
    payload = recorded("firing")
    del payload["alerts"][1]["startsAt"]
    status, body = await receiver.post(payload)
    assert status == 400
    assert "alerts.1.startsAt: Field required" in body["error"]

    no_name = copy.deepcopy(recorded("firing"))
    del no_name["alerts"][0]["labels"]["alertname"]
    status, body = await receiver.post(no_name)
    assert status == 400
    assert "alerts.0.labels: Value error, alertname label is missing" in body["error"]

    status, body = await receiver.post(recorded("firing") | {"version": "3"})
    assert status == 400
    assert "version: Input should be '4'" in body["error"]

    status, body = await receiver.post([recorded("firing")])
    assert status == 400
    assert "body: Input should be a valid dictionary" in body["error"]
    assert receiver.publisher.events == []


async def test_wrong_or_missing_token_is_a_401(receiver: Receiver) -> None:
    for token in ("not-the-token", None):
        status, body = await receiver.post(recorded("firing"), token=token)
        assert (status, body) == (401, {"error": "wrong or missing bearer token"})
    assert receiver.publisher.events == []


async def test_no_token_configured_accepts_any_caller() -> None:
    running = await _start(CollectingPublisher(), free_port(), None)
    try:
        status, body = await running.post(recorded("firing"), token=None)
    finally:
        await _stop(running)
    assert (status, body["published"]) == (200, 2)


async def test_publisher_that_cannot_accept_is_a_503() -> None:
    running = await _start(UnavailablePublisher(), free_port(), TOKEN)
    try:
        status, body = await running.post(recorded("firing"))
    finally:
        await _stop(running)
    assert status == 503
    assert "spool is full" in body["error"]


# --- a real Alertmanager ----------------------------------------------------------------------------------


async def test_real_alertmanager_delivers_to_the_receiver(alertmanager: AlertmanagerServer) -> None:
    running = await _start(CollectingPublisher(), alertmanager.receiver_port, alertmanager.token)
    try:
        await asyncio.to_thread(alertmanager.push, [{
            "labels": {"alertname": "PostgresReplicationLag", "severity": "critical", "job": "postgresql",
                       "instance": "pg-replica-1:5432", "cluster": "prod-eu"},
            "annotations": {"summary": "replica is 120s behind"},
            "generatorURL": "http://prometheus:9090/graph?g0.expr=pg_replication_lag_seconds",
        }])
        for _ in range(200):
            if running.publisher.events:
                break
            await asyncio.sleep(0.1)
    finally:
        await _stop(running)

    [(spec, anomaly)] = running.publisher.events
    assert spec is ANOMALIES
    assert (anomaly.signal, anomaly.severity) == ("PostgresReplicationLag", Severity.CRITICAL)
    assert anomaly.resource.key == "prod-eu/-/postgresql/pg-replica-1:5432"
    assert anomaly.details["receiver"] == "kubestack"
    assert len(anomaly.details["fingerprint"]) == 16
