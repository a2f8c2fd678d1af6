"""What the remediation stage does with a proposal or a person's decision, pure: the policy (forbidden never runs,
low risk runs alone only when ``remediation.auto_approve_low`` is on, everything else waits for a person), the
state kept per proposal, and the results and audit entries that say so. Executing is ``executor``'s part.

Idempotent by construction: a proposal already known is ignored (a replayed proposal never acts twice), and a
decision only moves a proposal that is still pending. A decision that arrives before its proposal (two topics,
no order between them) is kept and applied when the proposal comes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from kubestack.contract.base import Source
from kubestack.contract.events import (
    AuditEntry,
    Decision,
    RemediationDecision,
    RemediationProposal,
    RemediationResult,
    ResultStatus,
    Risk,
)
from kubestack.settings import RemediationSettings

POLICY_AUTO = "policy:auto"
POLICY = "policy"
STAGE = "stage:remediation"


class State(StrEnum):
    """Where a proposal is; the table keeps it with the proposal."""

    AWAITING = "awaiting"
    """A decision came before its proposal."""
    PENDING = "pending"
    REJECTED = "rejected"
    EXECUTING = "executing"
    """Approved, and the stage has started acting: after a restart it is not acted on again."""
    DONE = "done"


@dataclass(frozen=True)
class Transition:
    state: dict[str, Any]
    """What the table keeps for the proposal: ``{"state", "proposal", "decision"}``."""
    results: list[RemediationResult] = field(default_factory=list)
    execute: bool = False
    """Approved now: the executor acts on ``proposal``."""
    entries: list[AuditEntry] = field(default_factory=list)


def admit(kept: dict | None, proposal: RemediationProposal, settings: RemediationSettings, source: Source,
          now: datetime) -> Transition | None:
    """A new proposal through the policy; None when it is already known."""
    if kept and kept.get("state") != State.AWAITING:
        return None
    received = audit(proposal, "stage:rca", "proposal.created", source, now,
                     {"action": proposal.action, "params": proposal.params, "risk": proposal.risk.value})
    early = RemediationDecision.model_validate(kept["decision"]) if kept else None
    if proposal.risk == Risk.FORBIDDEN:
        out = _closed(proposal, State.REJECTED, ResultStatus.REJECTED, POLICY,
                      "forbidden actions are never executed", source, now)
    elif early is not None:
        out = _decided(proposal, early, settings, source, now)
    elif proposal.risk == Risk.LOW and settings.auto_approve_low and settings.enabled:
        out = _approved(proposal, POLICY_AUTO, "low risk, auto-approval on", None, source, now)
    else:
        why = "waiting for an operator's approval" + ("" if settings.enabled else " (remediation.enabled is off: "
                                                       "it will be recorded, not executed)")
        result = _result(proposal, ResultStatus.PENDING, POLICY, f"{proposal.risk.value} risk: {why}", source, now)
        out = Transition(_kept(State.PENDING, proposal), [result])
    return Transition(out.state, out.results, out.execute, [received, *out.entries])


def decide(kept: dict | None, decision: RemediationDecision, settings: RemediationSettings, source: Source,
           now: datetime) -> Transition | None:
    """A person's decision; None (and nothing changes) when the proposal is no longer pending."""
    if not kept:
        return Transition({"state": State.AWAITING, "proposal": None, "decision": decision.model_dump(mode="json")})
    if kept["state"] != State.PENDING:
        return None
    proposal = RemediationProposal.model_validate(kept["proposal"])
    return _decided(proposal, decision, settings, source, now)


def finished(kept: dict, status: ResultStatus) -> dict:
    """The kept state once the executor reported ``status``: anything but 'executed' ends the proposal."""
    return kept | {"state": State.EXECUTING if status == ResultStatus.EXECUTED else State.DONE, "status": status}


def result(proposal: RemediationProposal, status: ResultStatus, output: str, source: Source,
           now: datetime, actor: str = STAGE) -> RemediationResult:
    return _result(proposal, status, actor, output, source, now)


def audit(proposal: RemediationProposal, actor: str, action: str, source: Source, now: datetime,
          details: dict[str, Any] | None = None) -> AuditEntry:
    return AuditEntry(source=source, resource=proposal.resource, tenant=proposal.tenant, ts=now, actor=actor,
                      action=action, subject_id=proposal.proposal_id,
                      details={"incident_id": proposal.incident_id} | (details or {}))


def audit_result(proposal: RemediationProposal, outcome: RemediationResult) -> AuditEntry:
    return audit(proposal, outcome.actor, f"proposal.{outcome.status.value}", outcome.source, outcome.ts,
                 {"action": proposal.action, "params": proposal.params, "output": outcome.output[:2000]})


def _decided(proposal: RemediationProposal, decision: RemediationDecision, settings: RemediationSettings,
             source: Source, now: datetime) -> Transition:
    reason = f" ({decision.reason})" if decision.reason else ""
    if decision.decision == Decision.REJECT:
        return _closed(proposal, State.REJECTED, ResultStatus.REJECTED, decision.actor,
                       f"rejected via {decision.via}{reason}", source, now, decision)
    if not settings.enabled:
        return _closed(proposal, State.DONE, ResultStatus.FAILED, STAGE,
                       f"approved by {decision.actor}, but remediation.enabled is off: nothing was executed",
                       source, now, decision)
    return _approved(proposal, decision.actor, f"approved via {decision.via}{reason}", decision, source, now)


def _approved(proposal: RemediationProposal, actor: str, why: str, decision: RemediationDecision | None,
              source: Source, now: datetime) -> Transition:
    approved = _result(proposal, ResultStatus.APPROVED, actor, why, source, now)
    return Transition(_kept(State.EXECUTING, proposal, decision), [approved], execute=True,
                      entries=[audit_result(proposal, approved)])


def _closed(proposal: RemediationProposal, state: State, status: ResultStatus, actor: str, why: str,
            source: Source, now: datetime, decision: RemediationDecision | None = None) -> Transition:
    outcome = _result(proposal, status, actor, why, source, now)
    return Transition(_kept(state, proposal, decision), [outcome], entries=[audit_result(proposal, outcome)])


def _kept(state: State, proposal: RemediationProposal, decision: RemediationDecision | None = None) -> dict:
    return {"state": state, "proposal": proposal.model_dump(mode="json"),
            "decision": decision.model_dump(mode="json") if decision else None}


def _result(proposal: RemediationProposal, status: ResultStatus, actor: str, output: str, source: Source,
            now: datetime) -> RemediationResult:
    return RemediationResult(source=source, resource=proposal.resource, tenant=proposal.tenant, ts=now,
                             event_id=f"{proposal.proposal_id}-{status.value}", proposal_id=proposal.proposal_id,
                             incident_id=proposal.incident_id, status=status, actor=actor, output=output)
