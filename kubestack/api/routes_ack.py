"""Acknowledge and un-acknowledge an incident (operator and up, own tenant), audited; PagerDuty's ack both ways.

Our ack sends PagerDuty an Events API v2 ``acknowledge`` for the incident's dedup key (its id) when PagerDuty is
configured (``notify.pagerduty``), and Opsgenie an acknowledge of the alert whose alias is the incident id when it
is (``notify.opsgenie``); neither API has an un-acknowledge, so an un-ack is ours only. A PagerDuty v3
webhook (``incident.acknowledged`` / ``incident.unacknowledged``, signed ``X-PagerDuty-Signature: v1=<hex
HMAC-SHA256 of the body>`` with ``api.pagerduty_webhook_secret``) acks ours through the same path and checks: the
incident (``data.incident_key``, our id) must exist; a bad or missing signature is a 401, audited.

The ack state is kept beside the read model (table ``incident_acks``); the audit trail says who and when.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sqlite3
from typing import Annotated, Literal
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from kubestack.api.auth import Principal
from kubestack.api.context import ApiContext, context, principal, require
from kubestack.api.errors import BadRequestError, ConflictError, NotFoundError, UnauthorizedError
from kubestack.api.queries import get_incident
from kubestack.api.views import ErrorBody
from kubestack.apisettings import Role
from kubestack.contract.base import utcnow
from kubestack.contract.events import Incident
from kubestack.errors import KafkaUnavailableError
from kubestack.pipeline.notify.messages import Outgoing
from kubestack.pipeline.notify.opsgenie import SOURCE as OPSGENIE_SOURCE
from kubestack.pipeline.notify.outgoing import VendorOutgoing
from kubestack.pipeline.notify.send import deliver
from kubestack.redaction import redact

log = logging.getLogger(__name__)

ERRORS = {
    401: {"model": ErrorBody, "description": "No token (or no valid PagerDuty signature)"},
    403: {"model": ErrorBody, "description": "Below operator (audited)"},
    404: {"model": ErrorBody, "description": "No such incident (or another tenant's)"},
    409: {"model": ErrorBody, "description": "Already acknowledged / not acknowledged"},
}
SCHEMA = """CREATE TABLE IF NOT EXISTS incident_acks (incident_id TEXT PRIMARY KEY, tenant TEXT NOT NULL,
  actor TEXT NOT NULL, via TEXT NOT NULL, ts TEXT NOT NULL)"""
PD_EVENTS = {"incident.acknowledged": True, "incident.unacknowledged": False}

router = APIRouter(prefix="/api/v1", tags=["incidents"], responses=ERRORS)

Ctx = Annotated[ApiContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000)
    via: Literal["api", "cli", "console"] = "api"


class AckState(BaseModel):
    incident_id: str
    acknowledged: bool
    actor: str | None = None
    via: str | None = None
    ts: str | None = None
    pagerduty: str | None = Field(default=None, description="What PagerDuty was told: sent, failed: ..., not "
                                                            "configured, or none (an un-ack, or it came from it)")
    opsgenie: str | None = Field(default=None, description="What Opsgenie was told, the same way")


class IgnoredEvent(BaseModel):
    ignored: str = Field(description="The event type of a PagerDuty webhook that is not an (un)acknowledgement")


def _table(conn: sqlite3.Connection) -> sqlite3.Connection:
    conn.execute(SCHEMA)
    return conn


def ack_state(conn: sqlite3.Connection, incident_id: str) -> AckState:
    row = _table(conn).execute("SELECT actor, via, ts FROM incident_acks WHERE incident_id = ?",
                               (incident_id,)).fetchone()
    if row is None:
        return AckState(incident_id=incident_id, acknowledged=False)
    return AckState(incident_id=incident_id, acknowledged=True, actor=row["actor"], via=row["via"], ts=row["ts"])


@router.get("/incidents/{incident_id}/ack", response_model=AckState)
def get_ack(ctx: Ctx, who: Caller, incident_id: str) -> AckState:
    _incident(ctx, incident_id, who.tenant)
    return ack_state(ctx.store.reader(), incident_id)


@router.post("/incidents/{incident_id}/ack", response_model=AckState)
async def ack(ctx: Ctx, who: Operator, incident_id: str, body: AckBody | None = None) -> AckState:
    """Acknowledge: someone is on it. PagerDuty's alert of the incident is acknowledged too."""
    body = body or AckBody()
    return await set_ack(ctx, _incident(ctx, incident_id, who.tenant), True, actor=who.name, via=body.via,
                         reason=body.reason, role=who.role.value)


@router.post("/incidents/{incident_id}/unack", response_model=AckState)
async def unack(ctx: Ctx, who: Operator, incident_id: str, body: AckBody | None = None) -> AckState:
    """Take the acknowledgement back: nobody is on it any more."""
    body = body or AckBody()
    return await set_ack(ctx, _incident(ctx, incident_id, who.tenant), False, actor=who.name, via=body.via,
                         reason=body.reason, role=who.role.value)


@router.post("/pagerduty/webhook", tags=["incidents"], status_code=200, response_model=AckState | IgnoredEvent)
async def pagerduty_webhook(ctx: Ctx, request: Request) -> AckState | IgnoredEvent:
    """PagerDuty v3 webhook: ``incident.acknowledged`` / ``incident.unacknowledged`` ack ours; other events are
    accepted and ignored."""
    raw = await request.body()
    secret = ctx.api.pagerduty_webhook_secret
    if secret is None or not signature_ok(secret.get_secret_value(), raw,
                                          request.headers.get("x-pagerduty-signature")):
        await ctx.deny(actor="pagerduty", reason="signature", subject_id=request.url.path, tenant=ctx.settings.tenant,
                       details={"configured": secret is not None})
        raise UnauthorizedError("no valid X-PagerDuty-Signature (v1=<HMAC-SHA256 of the body>)"
                                if secret is not None else "api.pagerduty_webhook_secret is not set")
    try:
        event = json.loads(raw)["event"]
        kind, data = event["event_type"], event["data"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequestError(f"not a PagerDuty v3 webhook (event.event_type, event.data): {exc}") from exc
    if kind not in PD_EVENTS:
        return IgnoredEvent(ignored=kind)
    incident_id = data.get("incident_key") or ""
    agent = (event.get("agent") or {}).get("summary") or (event.get("agent") or {}).get("id") or "unknown"
    incident = _incident(ctx, incident_id, None)
    state = await set_ack(ctx, incident, PD_EVENTS[kind], actor=f"pagerduty:{agent}", via="pagerduty",
                          reason=f"PagerDuty {kind} of {data.get('id', '?')}", role=None)
    return state


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """PagerDuty signs the raw body with each of the subscription's secrets: ``v1=<hex>[,v1=<hex>]``."""
    if not header:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(part.strip().removeprefix("v1="), expected)
               for part in header.split(",") if part.strip().startswith("v1="))


def _incident(ctx: ApiContext, incident_id: str, tenant: str | None) -> Incident:
    view = get_incident(ctx.store.reader(), incident_id, tenant) if incident_id else None
    if view is None:
        raise NotFoundError(f"no incident {incident_id!r}")
    return Incident.model_validate(view.model_dump(include=set(Incident.model_fields)))


async def set_ack(ctx: ApiContext, incident: Incident, acknowledged: bool, *, actor: str, via: str, reason: str,
                  role: str | None) -> AckState:
    conn = _table(ctx.store.conn)
    now = utcnow().isoformat()
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        held = conn.execute("SELECT 1 FROM incident_acks WHERE incident_id = ?", (incident.incident_id,)).fetchone()
        if acknowledged and held:
            raise ConflictError(f"incident {incident.incident_id} is acknowledged already")
        if not acknowledged and not held:
            raise ConflictError(f"incident {incident.incident_id} is not acknowledged")
        if acknowledged:
            conn.execute("INSERT INTO incident_acks VALUES (?, ?, ?, ?, ?)",
                         (incident.incident_id, incident.tenant, actor, via, now))
        else:
            conn.execute("DELETE FROM incident_acks WHERE incident_id = ?", (incident.incident_id,))
    told = await _tell_pagerduty(ctx, incident) if acknowledged and via != "pagerduty" else "none"
    told_opsgenie = await _tell_opsgenie(ctx, incident, actor, reason) if acknowledged else "none"
    action = "incident.acknowledged" if acknowledged else "incident.unacknowledged"
    try:
        await ctx.publisher.audit(actor=actor, action=action, subject_id=incident.incident_id, tenant=incident.tenant,
                                  resource=incident.resource, details={"via": via, "reason": reason, "role": role,
                                                                       "pagerduty": told,
                                                                       "opsgenie": told_opsgenie})
    except KafkaUnavailableError as exc:
        log.error("%s of %s by %s not audited: %s", action, incident.incident_id, actor, exc)
    log.info("incident %s %s by %s via %s", incident.incident_id, action.split(".")[1], actor, via)
    state = ack_state(ctx.store.conn, incident.incident_id)
    return state.model_copy(update={"pagerduty": told, "opsgenie": told_opsgenie})


async def _tell_pagerduty(ctx: ApiContext, incident: Incident) -> str:
    settings = ctx.settings.notify
    if settings.pagerduty.routing_key is None:
        return "not configured"
    out = Outgoing(channel="pagerduty", url=SecretStr(settings.pagerduty.events_url),
                   payload={"routing_key": settings.pagerduty.routing_key.get_secret_value(),
                            "event_action": "acknowledge", "dedup_key": incident.incident_id})
    async with httpx.AsyncClient() as client:
        delivery = await deliver(client, out, settings.retry)
    return "sent" if delivery.delivered else f"failed: {redact(delivery.error or '')}"


async def _tell_opsgenie(ctx: ApiContext, incident: Incident, actor: str, reason: str) -> str:
    settings = ctx.settings.notify
    if settings.opsgenie.api_key is None:
        return "not configured"
    path = f"/v2/alerts/{quote(incident.incident_id, safe='')}/acknowledge?identifierType=alias"
    key = settings.opsgenie.api_key.get_secret_value()
    out = VendorOutgoing("opsgenie", SecretStr(settings.opsgenie.base_url + path),
                         {"source": OPSGENIE_SOURCE, "user": actor[:100], "note": reason or f"acknowledged by {actor}"},
                         secret_headers={"Authorization": SecretStr(f"GenieKey {key}")})
    async with httpx.AsyncClient() as client:
        delivery = await deliver(client, out, settings.retry)
    return "sent" if delivery.delivered else f"failed: {redact(delivery.error or '')}"
