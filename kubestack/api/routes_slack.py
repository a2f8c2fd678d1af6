"""Slack's interactivity callback: a verified approve/reject button press by a Slack user mapped to an approving role
(``api.slack_users``) becomes a decision (via slack) on a proposal of a tenant they decide for. An unmapped user, a
viewer, or another tenant's proposal is refused and audited (``api.denied``). The ``cause_right`` / ``cause_wrong``
buttons on a root-cause report's cause go the same way, with the same checks, and become an operator's verdict on
the cause (``rca.feedback`` in the audit trail, as ``POST /incidents/{id}/feedback`` records it)."""

from __future__ import annotations

import logging
import time
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request

from kubestack.api import slack
from kubestack.api.context import ApiContext, context
from kubestack.api.decisions import decide
from kubestack.api.errors import ApiError, ForbiddenError, UnauthorizedError, UnavailableError
from kubestack.api.queries import get_incident, get_proposal
from kubestack.api.routes_feedback import record_verdict
from kubestack.api.views import ErrorBody, SlackAck
from kubestack.apisettings import Role
from kubestack.contract.events import ResultStatus

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/slack", tags=["slack"])

Ctx = Annotated[ApiContext, Depends(context)]


@router.post("/actions", response_model=SlackAck,
             responses={400: {"model": ErrorBody, "description": "Not an approve/reject or cause_right/cause_wrong "
                                                                 "block_actions payload, or a cause without signals"},
                        401: {"model": ErrorBody, "description": "Forged or stale request (audited)"},
                        403: {"model": ErrorBody, "description": "A Slack user not mapped to operator or admin "
                                                                 "(audited)"},
                        503: {"model": ErrorBody, "description": "No Slack signing secret configured"}},
             openapi_extra={"requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {
                 "type": "object", "properties": {"payload": {"type": "string",
                                                              "description": "block_actions JSON"}},
                 "required": ["payload"]}}}, "required": True}})
async def actions(ctx: Ctx, request: Request, background: BackgroundTasks) -> SlackAck:
    """Slack button callback, verified with the signing secret (X-Slack-Signature v0, timestamp within 5 min).
    Answers at once; the decision is published right after."""
    if ctx.api.slack_signing_secret is None:
        raise UnavailableError("Slack callbacks are off: set api.slack_signing_secret")
    body = await request.body()
    try:
        slack.verify(ctx.api.slack_signing_secret.get_secret_value(), request.headers.get("x-slack-request-timestamp"),
                     request.headers.get("x-slack-signature"), body, time.time())
    except UnauthorizedError as exc:
        await ctx.deny(actor="slack:unverified", reason=str(exc.detail or "unverified"), subject_id=request.url.path,
                       tenant=ctx.settings.tenant, details={"via": "slack", "message": exc.message,
                                                            "client": request.client.host if request.client else None})
        raise
    press = slack.press(body)
    who = slack.approver(ctx.api, press.user_id)
    if who is None or not who.role.allows(Role.OPERATOR):
        why = "slack_user_unmapped" if who is None else "role"
        subject = press.incident_id if isinstance(press, slack.CausePress) else press.proposal_id
        await ctx.deny(actor=press.actor, reason=why, subject_id=subject, tenant=ctx.settings.tenant,
                       details={"via": "slack", "role": who.role.value if who else None, "needed": "operator"})
        raise ForbiddenError(f"Slack user {press.user_id} may not decide: " + (
            "not in api.slack_users" if who is None else f"role {who.role.value}, operator needed"), why)
    if isinstance(press, slack.CausePress):
        return await _mark(ctx, press, who)
    view = get_proposal(ctx.store.conn, press.proposal_id, None)
    if view is not None and not who.sees(view.proposal.tenant):
        await ctx.deny(actor=press.actor, reason="tenant", subject_id=press.proposal_id, tenant=view.proposal.tenant,
                       details={"via": "slack", "role": who.role.value})
        view = None  # another tenant's proposal is not even known to them
    if view is None:
        return SlackAck(ok=False, message=f"proposal {press.proposal_id} is unknown here")
    if view.state != ResultStatus.PENDING:
        return SlackAck(ok=False, message=f"proposal {press.proposal_id} is already {view.state.value}")
    background.add_task(_decide, ctx, press, who.role)
    return SlackAck(ok=True, message=f"{press.decision.value} of proposal {press.proposal_id} received")


async def _mark(ctx: ApiContext, press: slack.CausePress, who: slack.SlackApprover) -> SlackAck:
    """An operator's verdict on a ranked cause, pressed in Slack."""
    found = get_incident(ctx.store.reader(), press.incident_id, None)
    if found is not None and not who.sees(found.tenant):
        await ctx.deny(actor=press.actor, reason="tenant", subject_id=press.incident_id, tenant=found.tenant,
                       details={"via": "slack", "role": who.role.value})
        found = None  # another tenant's incident is not even known to them
    if found is None:
        return SlackAck(ok=False, message=f"incident {press.incident_id} is unknown here")
    try:
        made = await record_verdict(ctx, found, press.component, press.right, press.actor, press.cause,
                                    press.comment, via="slack")
    except UnavailableError as exc:
        log.warning("Slack verdict on %s by %s not kept: %s", press.incident_id, press.actor, exc)
        return SlackAck(ok=False, message="the verdict could not be kept now: try again")
    verdict = "right" if made.right else "wrong"
    return SlackAck(ok=True, message=f"{made.cause} on {made.component} marked {verdict}")


async def _decide(ctx: ApiContext, press: slack.ButtonPress, role: Role) -> None:
    try:
        await decide(ctx, proposal_id=press.proposal_id, decision=press.decision, actor=press.actor, via="slack",
                     reason=press.reason, scope=None, role=role.value)
    except ApiError as exc:  # already decided, unknown, Kafka away: Slack was answered; say it in the log
        log.warning("Slack %s of proposal %s by %s not applied: %s", press.decision.value, press.proposal_id,
                    press.actor, exc)
