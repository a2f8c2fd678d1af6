"""Approve or reject a proposal: one path for the REST API and Slack buttons.

The proposal is claimed in the read model first (so a second approval, from anywhere, gets 409 at once), then
the ``RemediationDecision``, signed with the decision key ring (``kubestack.approval``: the remediation stage takes no
decision without it), and its ``AuditEntry`` are published; a claim whose decision cannot be published is
released again.
"""

from __future__ import annotations

import logging

from kubestack.api.context import ApiContext
from kubestack.api.errors import ConflictError, NotFoundError, UnavailableError
from kubestack.api.publisher import api_source
from kubestack.api.queries import get_proposal
from kubestack.api.views import DecisionResponse
from kubestack.approval import proposal_digest
from kubestack.contract.events import Decision, RemediationDecision, ResultStatus, Risk
from kubestack.contract.topics import REMEDIATION_DECISIONS
from kubestack.errors import KafkaUnavailableError

log = logging.getLogger(__name__)

AUDIT_ACTIONS = {Decision.APPROVE: "proposal.approved", Decision.REJECT: "proposal.rejected"}


async def decide(ctx: ApiContext, *, proposal_id: str, decision: Decision, actor: str, via: str, reason: str,
                 scope: str | None, role: str | None = None) -> DecisionResponse:
    """``scope``: the tenant the caller sees (None: all); another tenant's proposal is not found."""
    view = get_proposal(ctx.store.conn, proposal_id, scope)
    if view is None:
        raise NotFoundError(f"no proposal {proposal_id!r}")
    proposal = view.proposal
    if proposal.risk == Risk.FORBIDDEN:
        raise ConflictError(f"proposal {proposal_id} is forbidden ({proposal.action}): it is never executed, "
                            "so it cannot be decided")
    if view.state != ResultStatus.PENDING:
        raise ConflictError(f"proposal {proposal_id} is {view.state.value}, not pending: it was already decided")
    event = ctx.decision_keys.sign(RemediationDecision(
        source=api_source(), resource=proposal.resource, tenant=proposal.tenant, proposal_id=proposal_id,
        incident_id=proposal.incident_id, decision=decision, actor=actor, reason=reason, via=via, role=role,
        proposal_digest=proposal_digest(proposal)))
    if not ctx.store.claim_decision(event):
        raise ConflictError(f"proposal {proposal_id} was decided a moment ago, not pending any more")
    try:
        await ctx.publisher.send(REMEDIATION_DECISIONS, event)
    except KafkaUnavailableError as exc:
        ctx.store.release_decision(event)
        raise UnavailableError(f"the decision could not be published, nothing was decided: {exc}") from exc
    ctx.metrics.decisions.labels(decision.value, via).inc()
    log.info("proposal %s of incident %s: %s by %s via %s", proposal_id, proposal.incident_id, decision.value,
             actor, via)
    try:
        await ctx.publisher.audit(actor=actor, action=AUDIT_ACTIONS[decision], subject_id=proposal_id,
                                  tenant=proposal.tenant, resource=proposal.resource,
                                  details={"reason": reason, "role": role, "via": via, "incident_id":
                                           proposal.incident_id, "action": proposal.action,
                                           "decision_event_id": event.event_id})
    except KafkaUnavailableError as exc:
        log.error("decision %s on %s published but its audit entry not: %s", decision.value, proposal_id, exc)
    state = ResultStatus.APPROVED if decision == Decision.APPROVE else ResultStatus.REJECTED
    return DecisionResponse(decision=event, state=state)
