"""Operators mark a ranked cause of an incident right or wrong (operator and up): the verdict
(``pipeline.feedback.CauseVerdict``, with the incident's signature) is published as an audit entry
``rca.feedback``, which is how it is kept (the audit topic, a year) and how the root-cause engine learns it for
similar incidents. ``GET`` lists the verdicts given on an incident. The Slack buttons on a cause (``routes_slack``)
record theirs through ``record_verdict`` too.

``GET /{id}/similar``: the similar past incidents of the tenant its latest root-cause report names
(``pipeline.memory``), with what was done about each and whether it worked (viewer and up)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from kubestack.api.auth import Principal
from kubestack.api.context import ApiContext, context, principal, require
from kubestack.api.errors import BadRequestError, NotFoundError, UnavailableError
from kubestack.api.queries import get_incident
from kubestack.api.views import ErrorBody, IncidentView
from kubestack.apisettings import Role
from kubestack.contract.events import SimilarIncident
from kubestack.errors import KafkaUnavailableError
from kubestack.pipeline.feedback import AUDIT_ACTION, CauseVerdict, verdict

ERRORS = {
    401: {"model": ErrorBody, "description": "No token, or an unknown one"},
    403: {"model": ErrorBody, "description": "The token's role is below operator (audited)"},
    400: {"model": ErrorBody, "description": "The component named has no signal in the incident"},
    404: {"model": ErrorBody, "description": "No such incident (or another tenant's)"},
    422: {"model": ErrorBody, "description": "The body is invalid"},
    503: {"model": ErrorBody, "description": "Kafka did not take the verdict; nothing was kept"},
}

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"], responses=ERRORS)
Ctx = Annotated[ApiContext, Depends(context)]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Caller = Annotated[Principal, Depends(principal)]


class FeedbackBody(BaseModel):
    component: str = Field(min_length=1, description="Resource key of the ranked cause, as the report names it")
    verdict: Literal["right", "wrong"]
    cause: str | None = Field(default=None, description="The cause; default: the lead cause of its signals")
    comment: str = Field(default="", max_length=1000)


class VerdictList(BaseModel):
    items: list[CauseVerdict]


@router.post("/{incident_id}/feedback", status_code=202, response_model=CauseVerdict)
async def give(ctx: Ctx, who: Operator, incident_id: str, body: FeedbackBody) -> CauseVerdict:
    """Mark a ranked cause right or wrong; kept in the audit trail and learned for similar incidents."""
    found = get_incident(ctx.store.reader(), incident_id, who.tenant)
    if found is None:
        raise NotFoundError(f"no incident {incident_id!r}")
    return await record_verdict(ctx, found, body.component, body.verdict == "right", who.name, body.cause,
                                body.comment)


async def record_verdict(ctx: ApiContext, found: IncidentView, component: str, right: bool, actor: str,
                         cause: str | None = None, comment: str = "", via: str = "api") -> CauseVerdict:
    """Audit ``actor``'s verdict on ``component``'s cause in ``found``; ``BadRequestError`` when the component has
    no signal in it, ``UnavailableError`` when Kafka does not take it."""
    if component not in {r.key for r in found.resources} | {s.resource for s in found.signals}:
        raise BadRequestError(f"incident {found.incident_id} has no signal on {component}")
    try:
        made = verdict(found, component, right, actor, datetime.now(timezone.utc), cause)
    except ValueError as exc:
        raise BadRequestError(str(exc)) from exc
    details = made.model_dump(mode="json") | {"comment": comment, "via": via}
    try:
        await ctx.publisher.audit(actor=actor, action=AUDIT_ACTION, subject_id=found.incident_id, tenant=found.tenant,
                                  resource=found.resource, details=details)
    except KafkaUnavailableError as exc:
        raise UnavailableError(f"the verdict could not be published, nothing was kept: {exc}") from exc
    return made


@router.get("/{incident_id}/feedback", response_model=VerdictList)
def given(ctx: Ctx, who: Caller, incident_id: str) -> VerdictList:
    """The verdicts operators gave on this incident's causes, oldest first."""
    conn = ctx.store.reader()
    if get_incident(conn, incident_id, who.tenant) is None:
        raise NotFoundError(f"no incident {incident_id!r}")
    rows = conn.execute("SELECT body FROM audit ORDER BY seq").fetchall()
    records = (json.loads(row["body"]) for row in rows)
    return VerdictList(items=[CauseVerdict.model_validate(r["details"]) for r in records
                              if r.get("action") == AUDIT_ACTION and r.get("subject_id") == incident_id])


class SimilarList(BaseModel):
    items: list[SimilarIncident]


@router.get("/{incident_id}/similar", response_model=SimilarList)
def similar(ctx: Ctx, who: Caller, incident_id: str) -> SimilarList:
    """The similar past incidents of this one's tenant, most alike first, with what was done and whether it worked
    (empty until its root-cause report is in, or when nothing alike happened before)."""
    found = get_incident(ctx.store.reader(), incident_id, who.tenant)
    if found is None:
        raise NotFoundError(f"no incident {incident_id!r}")
    return SimilarList(items=found.rca.similar if found.rca is not None else [])
