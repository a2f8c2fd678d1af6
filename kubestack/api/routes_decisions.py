"""Deciding: approve or reject a pending proposal (operator and up)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from kubestack.api.auth import Principal
from kubestack.apisettings import Role
from kubestack.api.context import ApiContext, context, require
from kubestack.api.decisions import decide
from kubestack.api.views import DecisionResponse, ErrorBody, ReasonBody
from kubestack.contract.events import Decision

ERRORS = {
    400: {"model": ErrorBody, "description": "The body is not JSON"},
    401: {"model": ErrorBody, "description": "No token, or an unknown one"},
    403: {"model": ErrorBody, "description": "The token's role is below operator (audited)"},
    404: {"model": ErrorBody, "description": "No such proposal (or another tenant's)"},
    409: {"model": ErrorBody, "description": "The proposal is not pending, or is forbidden"},
    422: {"model": ErrorBody, "description": "The body is invalid, e.g. no reason"},
    503: {"model": ErrorBody, "description": "Kafka did not take the decision; nothing was decided"},
}

router = APIRouter(prefix="/api/v1/proposals", tags=["proposals"], responses=ERRORS)

Ctx = Annotated[ApiContext, Depends(context)]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]


@router.post("/{proposal_id}/approve", status_code=202, response_model=DecisionResponse)
async def approve(ctx: Ctx, who: Operator, proposal_id: str, body: ReasonBody) -> DecisionResponse:
    """Approve a pending proposal: a RemediationDecision for the executor and an audit entry."""
    return await decide(ctx, proposal_id=proposal_id, decision=Decision.APPROVE, actor=who.name, via=body.via,
                        reason=body.reason, scope=who.tenant, role=who.role.value)


@router.post("/{proposal_id}/reject", status_code=202, response_model=DecisionResponse)
async def reject(ctx: Ctx, who: Operator, proposal_id: str, body: ReasonBody) -> DecisionResponse:
    """Reject a pending proposal, with the reason."""
    return await decide(ctx, proposal_id=proposal_id, decision=Decision.REJECT, actor=who.name, via=body.via,
                        reason=body.reason, scope=who.tenant, role=who.role.value)
