"""What the remediation stage does with a proposal or a person's decision, pure: the policy (forbidden never runs,
low risk runs alone only when ``remediation.auto_approve_low`` is on, everything else waits for a person), the
state kept per proposal, and the results and audit entries that say so. Executing is ``executor``'s part.

Nobody acts without the right, whatever they can write to Kafka: a decision counts only when the API signed it
(``kubestack.approval``: an approving role, fresh, for the proposal's tenant); anything else is refused and audited
(``decision.refused``) and changes nothing. What a proposal may do is read from its plugin's declaration, never from
the message: the risk (so a high-risk action that claims to be low is not auto-approved), the parameters (checked
against the action's typed model, allow-lists included), the preconditions and the rollback; an action no plugin of
the resource's kind declares is refused.

Idempotent by construction: a proposal already known is ignored (a replayed proposal never acts twice), and a
decision only moves a proposal that is still pending. A decision that arrives before its proposal (two topics,
no order between them) is kept and applied when the proposal comes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from kubestack.approval import DecisionKeys, proposal_digest
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
from kubestack.errors import ActionParamsError
from kubestack.pipeline.earned import POLICY_EARNED, EarnedRecord, summary
from kubestack.plugins.base import ActionSpec
from kubestack.plugins.registry import actions_for_kind
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
    state: dict[str, Any] | None
    """What the table keeps for the proposal: ``{"state", "proposal", "decision"}``; None: leave it as it is."""
    results: list[RemediationResult] = field(default_factory=list)
    execute: bool = False
    """Approved now: the executor acts on ``proposal``."""
    entries: list[AuditEntry] = field(default_factory=list)


def declared(proposal: RemediationProposal) -> RemediationProposal | str:
    """``proposal`` as its plugin declares the action (risk, checked parameters, preconditions, rollback), or why
    no plugin of the resource's kind declares it so."""
    spec: ActionSpec | None = next((a for a in actions_for_kind(proposal.resource.kind) if a.id == proposal.action),
                                   None)
    if spec is None:
        return f"no plugin of {proposal.resource.kind} resources declares the action {proposal.action}"
    try:
        params = spec.check(proposal.params)
    except ActionParamsError as exc:
        return str(exc)
    return proposal.model_copy(update={"risk": spec.risk, "params": params, "preconditions": list(spec.preconditions),
                                       "rollback": spec.rollback})


def admit(kept: dict | None, proposal: RemediationProposal, settings: RemediationSettings, source: Source,
          now: datetime, earned: EarnedRecord | None = None, silenced_by: list[str] = ()) -> Transition | None:
    """A new proposal through the policy, as its plugin declares it; None when it is already known. The table keeps
    the digest of the proposal as received, which a decision must name. ``earned``: the record of the action on the
    target's class (``earned.py``): once it has earned autonomy a proposal that names health rules to verify it by
    runs without a person.
    ``silenced_by``: the silences in force over its resource; while any is, nothing runs without a person."""
    if kept and kept.get("state") != State.AWAITING:
        return None
    transition = _admitted(kept, proposal, settings, source, now, earned, list(silenced_by))
    transition.state["digest"] = proposal_digest(proposal)
    return transition


def _admitted(kept: dict | None, proposal: RemediationProposal, settings: RemediationSettings, source: Source,
              now: datetime, earned: EarnedRecord | None = None, silenced_by: list[str] = ()) -> Transition:
    claimed = proposal
    checked = declared(proposal)
    proposal = checked if isinstance(checked, RemediationProposal) else proposal
    details = {"action": proposal.action, "params": proposal.params, "risk": proposal.risk.value}
    if isinstance(checked, RemediationProposal) and claimed.risk != proposal.risk:
        details["claimed_risk"] = claimed.risk.value
    if silenced_by:
        details["silenced_by"] = silenced_by
    received = audit(proposal, "stage:rca", "proposal.created", source, now, details)
    early = RemediationDecision.model_validate(kept["decision"]) if kept else None
    if isinstance(checked, str):
        out = _closed(proposal, State.REJECTED, ResultStatus.REJECTED, POLICY,
                      f"refused, not as its plugin declares it: {checked}", source, now)
    elif proposal.risk == Risk.FORBIDDEN:
        out = _closed(proposal, State.REJECTED, ResultStatus.REJECTED, POLICY,
                      "forbidden actions are never executed", source, now)
    elif early is not None:
        out = _decided(proposal, early, settings, source, now, proposal_digest(claimed))
    elif proposal.risk == Risk.LOW and settings.auto_approve_low and settings.enabled and not silenced_by:
        out = _approved(proposal, POLICY_AUTO, "low risk, auto-approval on", None, source, now)
    elif earned is not None and earned.earned(settings.auto_approve_earned) and settings.enabled and not silenced_by \
            and proposal.verify_rules:
        record = earned.describe(settings.auto_approve_earned)
        out = _approved(proposal, POLICY_EARNED, f"earned autonomy: {record}", None, source, now)
        out.entries.append(audit(proposal, POLICY_EARNED, "earned.used", source, now,
                                 {"action": proposal.action, "record": record, "streak": earned.streak,
                                  "needed": settings.auto_approve_earned}))
    else:
        why = "waiting for an operator's approval" + ("" if settings.enabled else " (remediation.enabled is off: "
                                                       "it will be recorded, not executed)")
        if silenced_by:
            why += f" (silenced by {', '.join(silenced_by)}: nothing runs without a person during the window)"
        if earned is not None or settings.auto_approve_earned:
            why += "\n" + summary(earned, proposal.tenant, proposal.action, proposal.resource,
                                  settings.auto_approve_earned)
            if not proposal.verify_rules and earned is not None and earned.earned(settings.auto_approve_earned):
                why += " (not this proposal: it names no health rule to verify it by)"
        result = _result(proposal, ResultStatus.PENDING, POLICY, f"{proposal.risk.value} risk: {why}", source, now)
        out = Transition(_kept(State.PENDING, proposal), [result])
    return Transition(out.state, out.results, out.execute, [received, *out.entries])


def decide(kept: dict | None, decision: RemediationDecision, settings: RemediationSettings, source: Source,
           now: datetime, keys: DecisionKeys | None) -> Transition | None:
    """A person's decision, once its signature holds (``keys``: the decision key ring; None: there is none, so every
    decision is refused); None (and nothing changes) when the proposal is no longer pending. A refused decision
    changes nothing and is audited."""
    why = keys.problem(decision, now, settings.decision_ttl_s) if keys is not None else \
        "this worker has no decision key ring (remediation.decision_keys), so it takes no decision"
    if why is not None:
        return refused(decision, why, source, now)
    if not kept:
        return Transition({"state": State.AWAITING, "proposal": None, "decision": decision.model_dump(mode="json")})
    if kept["state"] != State.PENDING:
        return None
    proposal = RemediationProposal.model_validate(kept["proposal"])
    out = _decided(proposal, decision, settings, source, now, kept.get("digest"))
    if out.state is not None and kept.get("digest"):
        out.state["digest"] = kept["digest"]
    return out


def refused(decision: RemediationDecision, why: str, source: Source, now: datetime) -> Transition:
    """A decision the stage does not take: nothing changes, an audit entry names who it claims to be from."""
    entry = AuditEntry(source=source, resource=decision.resource, tenant=decision.tenant, ts=now, actor=STAGE,
                       action="decision.refused", subject_id=decision.proposal_id,
                       details={"incident_id": decision.incident_id, "claimed_actor": decision.actor,
                                "role": decision.role, "decision": decision.decision.value, "via": decision.via,
                                "decision_event_id": decision.event_id, "reason": why})
    return Transition(None, entries=[entry])


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
             source: Source, now: datetime, digest: str | None) -> Transition:
    """``digest``: of the proposal as received (None for one kept by a worker older than digests)."""
    reason = f" ({decision.reason})" if decision.reason else ""
    mismatch = None
    if decision.tenant != proposal.tenant:
        mismatch = f"signed for tenant {decision.tenant}, the proposal is tenant {proposal.tenant}'s"
    elif digest is not None and decision.proposal_digest != digest:
        mismatch = ("signed for other proposal content than the stage holds under this id (another proposal was "
                    "published with the same id)")
    if mismatch is not None:
        out = refused(decision, mismatch, source, now)
        waiting = _result(proposal, ResultStatus.PENDING, POLICY, f"still waiting for an approval; a decision was "
                          f"refused: {mismatch}", source, now)
        return Transition(_kept(State.PENDING, proposal), [waiting], entries=out.entries)
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
