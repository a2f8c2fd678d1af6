"""Silences and maintenance windows: list (any role, own tenant), create and end (operator and up), each audited.

The API keeps the silences the way every stage does (``pipeline/silencefeed``: the whole compacted topic, into a
``SilenceBook``); what it creates or ends it publishes there and puts in its own book at once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from kubestack.api.auth import Principal
from kubestack.api.context import ApiContext, context, principal, require
from kubestack.api.errors import BadRequestError, ConflictError, ForbiddenError, NotFoundError, UnavailableError
from kubestack.api.publisher import api_source
from kubestack.api.views import ErrorBody
from kubestack.apisettings import Role
from kubestack.contract.base import ResourceRef, UtcDatetime, new_id, utcnow
from kubestack.contract.events import Silence
from kubestack.contract.topics import SILENCES
from kubestack.errors import KafkaUnavailableError, ScheduleError
from kubestack.pipeline.silencefeed import SilenceFeed
from kubestack.pipeline.silences import SilenceBook, check, current_window, is_over

log = logging.getLogger(__name__)

ERRORS = {
    401: {"model": ErrorBody, "description": "No token, or an unknown one"},
    403: {"model": ErrorBody, "description": "Below operator, or another tenant's (audited)"},
    404: {"model": ErrorBody, "description": "No such silence (or another tenant's)"},
    409: {"model": ErrorBody, "description": "The silence is over already"},
    422: {"model": ErrorBody, "description": "The body is invalid, or its schedule, zone or times (the detail says)"},
    503: {"model": ErrorBody, "description": "Kafka did not take it; nothing changed"},
}

router = APIRouter(prefix="/api/v1/silences", tags=["silences"], responses=ERRORS)


class SilenceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resources: list[str] = Field(default_factory=list, description="Resource keys or names")
    services: list[str] = Field(default_factory=list, description="Values of the resources' 'service' label")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels a resource must all carry")
    starts_at: UtcDatetime | None = Field(default=None, description="Default: now")
    ends_at: UtcDatetime | None = Field(default=None, description="End of a one-off window (or of the recurrence)")
    for_s: int | None = Field(default=None, gt=0, description="A one-off window's length instead of ends_at")
    schedule: str | None = Field(default=None, description="'Sun 02:00-04:00' or a cron spec with duration_s")
    duration_s: int | None = Field(default=None, gt=0, description="Length of each window of a cron schedule")
    timezone: str = Field(default="UTC", description="IANA zone of the schedule, e.g. Europe/Berlin")
    comment: str = Field(min_length=1, max_length=1000, description="Why: the change or work it covers")
    tenant: str | None = Field(default=None, description="Only for a token of every tenant; default: the install's")

    @field_validator("comment")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("comment must not be blank")
        return value


class EndBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=1000)


class SilenceView(BaseModel):
    silence: Silence
    in_force: bool = Field(description="It silences matching resources right now")
    window: tuple[datetime, datetime] | None = Field(description="The window in force now, if any")
    over: bool = Field(description="Ended, or past its end: it will silence nothing again")


class SilenceList(BaseModel):
    items: list[SilenceView]


class Silences:
    """The API's book of silences and the feed that keeps it."""

    def __init__(self, ctx: ApiContext) -> None:
        self.book = SilenceBook()
        self.feed = SilenceFeed(ctx.settings.kafka, self.book, "api")
        self.publisher = ctx.publisher


def install(app: FastAPI, ctx: ApiContext) -> Silences:
    silences = app.state.silences = Silences(ctx)
    app.include_router(router)
    return silences


def start(silences: Silences) -> asyncio.Task:
    return asyncio.create_task(silences.feed.run(), name="api-silences")


def _silences(request: Request) -> Silences:
    return request.app.state.silences


Ctx = Annotated[ApiContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Book = Annotated[Silences, Depends(_silences)]


def view(silence: Silence, now: datetime) -> SilenceView:
    window = current_window(silence, now)
    return SilenceView(silence=silence, in_force=window is not None, window=window, over=is_over(silence, now))


@router.get("", response_model=SilenceList)
def list_silences(who: Caller, silences: Book, ctx: Ctx,
                  state: Annotated[str | None, Query(pattern="^(active|in_force|over)$", description=(
                      "active: not over; in_force: silencing now; over: ended or past"))] = None) -> SilenceList:
    """The silences of the caller's tenant (every tenant's for a token of all), earliest first."""
    now = utcnow()
    views = [view(s, now) for s in silences.book.all(who.tenant)]
    if state == "active":
        views = [v for v in views if not v.over]
    elif state == "in_force":
        views = [v for v in views if v.in_force]
    elif state == "over":
        views = [v for v in views if v.over]
    return SilenceList(items=views)


@router.get("/{silence_id}", response_model=SilenceView)
def get_silence(silence_id: str, who: Caller, silences: Book) -> SilenceView:
    found = silences.book.get(silence_id)
    if found is None or not who.sees(found.tenant):
        raise NotFoundError(f"no silence {silence_id!r}")
    return view(found, utcnow())


@router.post("", status_code=201, response_model=SilenceView)
async def create(body: SilenceBody, who: Operator, silences: Book, ctx: Ctx, request: Request) -> SilenceView:
    """Silence what the matchers name, once or on a schedule: incidents still form, marked silenced; nobody is
    notified and nothing is remediated without a person while it is in force."""
    tenant = await _tenant(ctx, who, body.tenant, request)
    now = utcnow()
    starts_at = body.starts_at or now
    ends_at = body.ends_at
    if body.for_s is not None:
        if ends_at is not None:
            raise BadRequestError("give ends_at or for_s, not both")
        ends_at = starts_at + timedelta(seconds=body.for_s)
    silence_id = new_id()
    try:
        silence = Silence(
            source=api_source(), resource=ResourceRef(kind="silence", name=silence_id), tenant=tenant,
            silence_id=silence_id, matchers_resources=body.resources, matchers_services=body.services,
            matchers_labels=body.labels, starts_at=starts_at, ends_at=ends_at, schedule=body.schedule,
            duration_s=body.duration_s, timezone=body.timezone, created_by=who.name, comment=body.comment)
        check(silence)
    except ScheduleError as exc:
        raise InvalidSilenceError(str(exc)) from exc
    if ends_at is not None and ends_at <= now:
        raise InvalidSilenceError(f"ends_at {ends_at.isoformat()} is in the past: it would silence nothing")
    await _publish(silences, silence)
    await _audit(ctx, who, "silence.created", silence, {
        "resources": body.resources, "services": body.services, "labels": body.labels,
        "starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat() if ends_at else None,
        "schedule": body.schedule, "duration_s": body.duration_s, "timezone": body.timezone,
        "comment": body.comment})
    return view(silence, utcnow())


@router.post("/{silence_id}/end", response_model=SilenceView)
@router.delete("/{silence_id}", response_model=SilenceView)
async def end(silence_id: str, who: Operator, silences: Book, ctx: Ctx, body: EndBody | None = None) -> SilenceView:
    """End a silence now: what it held back and is still open is notified by the notify stage."""
    found = silences.book.get(silence_id)
    if found is None or not who.sees(found.tenant):
        raise NotFoundError(f"no silence {silence_id!r}")
    now = utcnow()
    if is_over(found, now):
        raise ConflictError(f"silence {silence_id} is over already (ended or past its end)")
    ended = found.model_copy(update={"ended_at": now, "ended_by": who.name, "ts": now, "event_id": new_id()})
    await _publish(silences, ended)
    await _audit(ctx, who, "silence.ended", ended, {"reason": body.reason if body else "",
                                                   "comment": found.comment})
    return view(ended, utcnow())


class InvalidSilenceError(BadRequestError):
    status, code = 422, "invalid_silence"


async def _tenant(ctx: ApiContext, who: Principal, asked: str | None, request: Request) -> str:
    if who.tenant is None:
        return asked or ctx.settings.tenant
    if asked is not None and asked != who.tenant:
        await ctx.deny(actor=who.name, reason="tenant", subject_id=request.url.path, tenant=who.tenant,
                       details={"asked_tenant": asked, "method": request.method, "path": request.url.path})
        raise ForbiddenError(f"token {who.name!r} is tenant {who.tenant}'s: it cannot silence tenant {asked}")
    return who.tenant


async def _publish(silences: Silences, silence: Silence) -> None:
    try:
        await silences.publisher.send(SILENCES, silence)
    except KafkaUnavailableError as exc:
        raise UnavailableError(f"the silence could not be published, nothing changed: {exc}") from exc
    silences.book.apply(silence)


async def _audit(ctx: ApiContext, who: Principal, action: str, silence: Silence, details: dict) -> None:
    try:
        await ctx.publisher.audit(actor=who.name, action=action, subject_id=silence.silence_id,
                                  tenant=silence.tenant, details={"role": who.role.value} | details)
    except KafkaUnavailableError as exc:
        log.error("%s %s published but not audited: %s", action, silence.silence_id, exc)
