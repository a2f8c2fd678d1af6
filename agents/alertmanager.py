"""An Alertmanager webhook receiver: alerts people already have become ``Anomaly`` events on the bus.

Point a ``webhook_configs`` receiver at ``http://HOST:PORT/alerts`` (payload version 4). Each **firing** alert
becomes one ``Anomaly`` on the anomalies topic: detector ``alertmanager``, signal = ``alertname``, score 1.0,
severity from the ``severity`` label, window from ``startsAt`` to now, the alert's labels, annotations,
fingerprint and generatorURL in ``details``. **Resolved** alerts are acknowledged and counted in the response
but not published: an anomaly is an observation, and the correlation stage closes incidents on its own clock.

The resource an alert is about comes from its labels: kind from ``kind``, else ``job``, else ``service``;
name from ``instance``, else ``service``, else ``pod``, else ``alertmanager``; ``namespace``, ``cluster`` and
``host``/``node`` when present.

Bad JSON or a payload of the wrong shape gets 400 with what is wrong (Alertmanager does not retry 4xx); a
wrong or missing bearer token, when one is configured, 401; a publisher that cannot accept the events, 503
(Alertmanager retries those).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import socket
from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from kubestack.agents.publisher import Publisher
from kubestack.contract.base import ResourceRef, Source, utcnow
from kubestack.contract.events import Anomaly, Severity
from kubestack.contract.topics import ANOMALIES
from kubestack.errors import KubestackError, validation_problems

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/alerts"
DETECTOR = "alertmanager"
MAX_BODY_BYTES = 8 * 1024 * 1024

_SEVERITIES = {
    "critical": Severity.CRITICAL, "error": Severity.CRITICAL, "page": Severity.CRITICAL, "high": Severity.CRITICAL,
    "warning": Severity.WARNING, "warn": Severity.WARNING, "medium": Severity.WARNING,
    "info": Severity.INFO, "informational": Severity.INFO, "low": Severity.INFO, "none": Severity.INFO,
}


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Alert(_Payload):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: AwareDatetime = Field(alias="startsAt")
    ends_at: AwareDatetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = ""

    @field_validator("labels")
    @classmethod
    def _has_alertname(cls, labels: dict[str, str]) -> dict[str, str]:
        if not labels.get("alertname"):
            raise ValueError("alertname label is missing")
        return labels


class WebhookPayload(_Payload):
    version: Literal["4"]
    receiver: str
    status: Literal["firing", "resolved"]
    alerts: list[Alert]
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    group_key: str = Field(default="", alias="groupKey")
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts")


def severity_of(labels: dict[str, str]) -> Severity:
    """The ``severity`` label mapped to ours; missing or unknown values count as warning."""
    return _SEVERITIES.get(labels.get("severity", "").strip().lower(), Severity.WARNING)


def resource_of(labels: dict[str, str]) -> ResourceRef:
    def first(*keys: str) -> str | None:
        return next((labels[key] for key in keys if labels.get(key)), None)

    return ResourceRef(kind=first("kind", "job") or "service",
                       name=first("instance", "service", "pod") or "alertmanager",
                       namespace=first("namespace"), cluster=first("cluster"), host=first("host", "node"))


def anomaly_of(alert: Alert, payload: WebhookPayload, *, source: Source, tenant: str = "default",
               now: datetime | None = None) -> Anomaly:
    """The ``Anomaly`` for one firing alert."""
    now = now or utcnow()
    return Anomaly(
        source=source, resource=resource_of(alert.labels), tenant=tenant, ts=now,
        detector=DETECTOR, signal=alert.labels["alertname"], score=1.0, severity=severity_of(alert.labels),
        window_start=min(alert.starts_at, now), window_end=now,
        details={"labels": alert.labels, "annotations": alert.annotations, "fingerprint": alert.fingerprint,
                 "generator_url": alert.generator_url, "receiver": payload.receiver,
                 "group_key": payload.group_key, "external_url": payload.external_url})


def _bad_request(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


class _Receiver:
    def __init__(self, publisher: Publisher, token: str | None, source: Source, tenant: str) -> None:
        self.publisher = publisher
        self.token = token
        self.source = source
        self.tenant = tenant
        self.published = 0
        self.resolved = 0

    def _authorized(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), self.token.encode())

    async def handle(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            log.warning("rejected an Alertmanager webhook from %s: wrong or missing bearer token", request.remote)
            return web.json_response({"error": "wrong or missing bearer token"}, status=401,
                                     headers={"WWW-Authenticate": "Bearer"})
        try:
            body = json.loads(await request.read())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _bad_request(f"body is not valid JSON: {exc}")
        try:
            payload = WebhookPayload.model_validate(body)
        except ValidationError as exc:
            problems = validation_problems(exc, limit=5, whole="body")
            return _bad_request(f"not an Alertmanager webhook payload (version 4): {problems}")
        now = utcnow()
        firing = [alert for alert in payload.alerts if alert.status == "firing"]
        events = [(ANOMALIES, anomaly_of(alert, payload, source=self.source, tenant=self.tenant, now=now))
                  for alert in firing]
        try:
            if events:
                await self.publisher.publish_many(events)
        except KubestackError as exc:
            log.error("could not publish %d alerts from %s: %s", len(events), payload.group_key, exc)
            return web.json_response({"error": f"cannot accept alerts now: {exc}"}, status=503)
        resolved = len(payload.alerts) - len(firing)
        self.published += len(events)
        self.resolved += resolved
        log.info("alert group %s: published %d firing, acknowledged %d resolved", payload.group_key, len(events),
                 resolved)
        return web.json_response({"published": len(events), "resolved": resolved})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"published": self.published, "resolved": self.resolved})


RECEIVER = web.AppKey("receiver", _Receiver)


def create_app(publisher: Publisher, token: str | None = None, *, source: Source | None = None,
               tenant: str = "default") -> web.Application:
    """The receiver as an aiohttp application: ``POST /alerts`` and ``GET /healthz`` (counts so far)."""
    receiver = _Receiver(publisher, token, source or Source(agent="alertmanager-receiver", host=socket.gethostname()),
                         tenant)
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[RECEIVER] = receiver
    app.router.add_post(WEBHOOK_PATH, receiver.handle)
    app.router.add_get("/healthz", receiver.health)
    return app


async def run_receiver(host: str, port: int, publisher: Publisher, *, token: str | None = None,
                       source: Source | None = None, tenant: str = "default",
                       started: asyncio.Event | None = None) -> None:
    """Serve the receiver until cancelled; sets ``started`` once it listens."""
    runner = web.AppRunner(create_app(publisher, token, source=source, tenant=tenant), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        log.info("Alertmanager webhook receiver listening on http://%s:%d%s", host, port, WEBHOOK_PATH)
        if started is not None:
            started.set()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
