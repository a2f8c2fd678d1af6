"""Reading: incidents with their root cause and proposals, proposals, predictions, the audit trail."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from kubestack.api.auth import Principal
from kubestack.apisettings import Role
from kubestack.api.context import ApiContext, context, principal
from kubestack.api.errors import NotFoundError
from kubestack.api.queries import get_incident, list_audit, list_incidents, list_predictions, list_proposals
from kubestack.api.views import (
    AuditList,
    ErrorBody,
    IncidentList,
    IncidentView,
    PredictionList,
    ProposalList,
    shown_to,
)
from kubestack.contract.events import PredictionStatus, ResultStatus, Severity

AUTH_ERRORS = {401: {"model": ErrorBody, "description": "No token, or an unknown one"},
               422: {"model": ErrorBody, "description": "A parameter is invalid (the detail says which)"}}

router = APIRouter(prefix="/api/v1", responses=AUTH_ERRORS)

Ctx = Annotated[ApiContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
Limit = Annotated[int, Query(ge=1, le=500, description="At most this many items, newest first")]


@router.get("/incidents", tags=["incidents"], response_model=IncidentList)
def incidents(ctx: Ctx, who: Caller,
              status: Annotated[Literal["open", "resolved"] | None, Query(description="open includes updated")] = None,
              severity: Severity | None = None,
              resource: Annotated[str | None, Query(description="Resource key or name")] = None,
              limit: Limit = 100) -> IncidentList:
    """Incidents (latest revision each) the token's tenant may see, with root cause and proposals; redacted below
    the operator role."""
    return shown_to(who.role, IncidentList(items=list_incidents(
        ctx.store.reader(), who.tenant, status=status, severity=severity.value if severity else None,
        resource=resource, limit=limit)))


@router.get("/incidents/{incident_id}", tags=["incidents"], response_model=IncidentView,
            responses={404: {"model": ErrorBody, "description": "No such incident (or another tenant's)"}})
def incident(ctx: Ctx, who: Caller, incident_id: str) -> IncidentView:
    """One incident: signals as a timeline, its latest root-cause report, its proposals."""
    found = get_incident(ctx.store.reader(), incident_id, who.tenant)
    if found is None:
        raise NotFoundError(f"no incident {incident_id!r}")
    return shown_to(who.role, found)


@router.get("/proposals", tags=["proposals"], response_model=ProposalList)
def proposals(ctx: Ctx, who: Caller, state: ResultStatus | None = None, incident_id: str | None = None,
              limit: Limit = 100) -> ProposalList:
    """Remediation proposals with their state, decision and results."""
    return shown_to(who.role, ProposalList(items=list_proposals(
        ctx.store.reader(), who.tenant, state=state.value if state else None, incident_id=incident_id, limit=limit)))


@router.get("/predictions", tags=["predictions"], response_model=PredictionList)
def predictions(ctx: Ctx, who: Caller, status: PredictionStatus | None = None, limit: Limit = 100) -> PredictionList:
    """Capacity exhaustion predictions, the latest per resource and signal."""
    return shown_to(who.role, PredictionList(items=list_predictions(
        ctx.store.reader(), who.tenant, status=status.value if status else None, limit=limit)))


@router.get("/audit", tags=["audit"], response_model=AuditList)
def audit(ctx: Ctx, who: Caller, limit: Limit = 100) -> AuditList:
    """The hash-chained audit trail, newest first: an admin sees every tenant's, others their tenant's."""
    scope = who.tenant if who.tenant is not None or who.can(Role.ADMIN) else ctx.settings.tenant
    return shown_to(who.role, AuditList(items=list_audit(ctx.store.reader(), scope, limit=limit)))
