"""Approve or reject from Microsoft Teams (and the other chats' decision links), through the API with the same
checks as everywhere else.

A card posted by a Teams workflow webhook has no bot behind it: ``Action.Submit`` would reach nobody and
``Action.Http`` is not supported there. So its Approve / Reject buttons are ``Action.OpenUrl`` to
``GET /api/v1/teams/decide?proposal_id=..&decision=approve|reject``: a small page (its script served by
``/api/v1/teams/decide.js``, nothing inline, a strict Content-Security-Policy) where the person enters their API
token and a reason. The page calls ``POST /api/v1/teams/decisions`` with ``Authorization: Bearer <token>``:
operator role or 403 (audited), a proposal of a tenant the token does not see is 404 and audited as ``tenant``,
then the one decision path (``decisions.decide``): claimed, signed with the decision key ring, published,
audited, ``via="teams"``. The link itself grants nothing; the token decides who acts.
"""

from __future__ import annotations

import html
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from kubestack.api.auth import Principal
from kubestack.api.context import ApiContext, context, principal
from kubestack.api.decisions import decide
from kubestack.api.errors import ForbiddenError, NotFoundError
from kubestack.api.queries import get_proposal
from kubestack.api.views import DecisionResponse, ErrorBody
from kubestack.apisettings import Role
from kubestack.contract.events import Decision

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/teams", tags=["teams"])

Ctx = Annotated[ApiContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
VIA = "teams"
PROPOSAL_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,252}$"
PAGE_POLICY = ("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; form-action 'none'; "
               "frame-ancestors 'none'; base-uri 'none'")


class TeamsDecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    proposal_id: str = Field(pattern=PROPOSAL_ID)
    decision: Decision
    reason: str = Field(default="", max_length=2000, description="Why; defaults to '<decision> from Microsoft Teams'")

    @field_validator("reason")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


ERRORS = {
    401: {"model": ErrorBody, "description": "No token, or an unknown one"},
    403: {"model": ErrorBody, "description": "The token's role is below operator (audited)"},
    404: {"model": ErrorBody, "description": "No such proposal, or another tenant's (audited)"},
    409: {"model": ErrorBody, "description": "The proposal is not pending, or is forbidden"},
    422: {"model": ErrorBody, "description": "The body is invalid"},
    503: {"model": ErrorBody, "description": "Kafka did not take the decision; nothing was decided"},
}


@router.post("/decisions", status_code=202, response_model=DecisionResponse, responses=ERRORS)
async def decisions(ctx: Ctx, who: Caller, body: TeamsDecisionBody) -> DecisionResponse:
    """A decision from the Teams decision page: operator token, tenant checked, signed, audited, via teams."""
    if not who.can(Role.OPERATOR):
        await ctx.deny(actor=who.name, reason="role", subject_id=body.proposal_id, tenant=ctx.audit_tenant(who),
                       details={"via": VIA, "role": who.role.value, "needed": Role.OPERATOR.value})
        raise ForbiddenError(f"token {who.name!r} is {who.role.value}: deciding needs the operator role", "role")
    view = get_proposal(ctx.store.conn, body.proposal_id, None)
    if view is not None and not who.sees(view.proposal.tenant):
        await ctx.deny(actor=who.name, reason="tenant", subject_id=body.proposal_id, tenant=view.proposal.tenant,
                       details={"via": VIA, "role": who.role.value, "token_tenant": who.tenant})
        raise NotFoundError(f"no proposal {body.proposal_id!r}")
    reason = body.reason or f"{body.decision.value} from Microsoft Teams"
    return await decide(ctx, proposal_id=body.proposal_id, decision=body.decision, actor=who.name, via=VIA,
                        reason=reason, scope=who.tenant, role=who.role.value)


def _page(proposal_id: str, decision: Decision) -> str:
    e = html.escape
    verb = "Approve" if decision is Decision.APPROVE else "Reject"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{verb} proposal {e(proposal_id)} · KubeStack-AI</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<script src="/api/v1/teams/decide.js" defer></script></head>
<body>
<h1>{verb} proposal <code>{e(proposal_id)}</code></h1>
<p>Sign in with your KubeStack API token (operator or admin). The decision is checked, signed and audited like
any other: your token's name is the actor, and a proposal of another tenant is not yours to decide.</p>
<form id="decide" data-proposal="{e(proposal_id, quote=True)}" data-decision="{decision.value}">
<p><label>API token <input type="password" id="token" autocomplete="off" required></label></p>
<p><label>Reason <input type="text" id="reason" maxlength="2000" value="{verb.lower()} from Microsoft Teams">
</label></p>
<p><button type="submit" id="submit">{verb}</button></p>
</form>
<p id="outcome" role="status"></p>
<p><a href="/">The KubeStack console</a></p>
</body></html>
"""


SCRIPT = """"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("decide");
  const outcome = document.getElementById("outcome");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = document.getElementById("token").value.trim();
    const body = {proposal_id: form.dataset.proposal, decision: form.dataset.decision,
                  reason: document.getElementById("reason").value};
    outcome.textContent = "Sending...";
    try {
      const response = await fetch("/api/v1/teams/decisions", {method: "POST",
        headers: {"Authorization": "Bearer " + token, "Content-Type": "application/json"},
        body: JSON.stringify(body)});
      const answer = await response.json().catch(() => ({}));
      if (response.ok) {
        outcome.textContent = "Done: proposal " + body.proposal_id + " is " + answer.state + ".";
        document.getElementById("submit").disabled = true;
      } else {
        const detail = typeof answer.detail === "string" ? answer.detail : JSON.stringify(answer.detail || answer);
        outcome.textContent = "Refused (" + response.status + "): " + detail;
      }
    } catch (error) {
      outcome.textContent = "The API did not answer: " + error;
    }
  });
});
"""


@router.get("/decide", response_class=HTMLResponse,
            responses={200: {"content": {"text/html": {}}, "description": "The decision page"},
                       422: {"model": ErrorBody, "description": "No valid proposal_id or decision"}})
def decide_page(proposal_id: Annotated[str, Query(pattern=PROPOSAL_ID)], decision: Decision) -> Response:
    """The page a Teams card's Approve / Reject button opens (no token needed to see it; deciding needs one)."""
    return HTMLResponse(_page(proposal_id, decision), headers={"Content-Security-Policy": PAGE_POLICY})


@router.get("/decide.js", response_class=Response,
            responses={200: {"content": {"text/javascript": {}}, "description": "The decision page's script"}})
def decide_script() -> Response:
    return Response(SCRIPT, media_type="text/javascript", headers={"Content-Security-Policy": PAGE_POLICY})

