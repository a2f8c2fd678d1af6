"""Autonomy earned from outcomes, pure: a record per action and target class of how its runs ended, folded from
the audit chain, and whether it has earned the right to run without a person (``remediation.auto_approve_earned``).

The *target class* of a resource is its plugin kind plus its ``service`` and ``role`` labels when it carries them:
``redis service=cache role=primary``; a resource without those labels is of the class of its kind alone
(``redis``). Records are kept per tenant, action and class (``record_key``), so an action earned on one tenant's
caches runs alone on neither another tenant's nor on the primary databases of the same kind.

What counts, read from the audit records the remediation stage writes (``proposal.<status>``):
- ``proposal.verified``: a verified success (``streak`` + 1);
- ``proposal.rolled_back``, or ``proposal.failed`` after ``proposal.executed`` (the verification failed, or the
  rollback did): the record is reset (``streak`` 0), whatever it had earned; a ``failed`` before anything ran (a
  precondition that does not hold now, no target) changes nothing, since nothing was tried on the target.

The action has earned autonomy on a class when ``streak >= N`` (``N`` > 0; 0 turns the policy off). Each outcome is
counted once per proposal (a record replayed after a restart is not counted again). The worker keeps the records
in a changelog-backed Faust table fed from the audit topic (``loopstages``), so they survive a restart.

That table lags the remediation stage by three hops (audit entries, the chain, the audit topic), while the stage
admits the next proposal of an incident as soon as the last one ended: a proposal admitted right after a rollback
would read the streak from before it and run alone. So the stage notes each reset it produces (``resets``) and reads
a record through ``as_of`` until the table has counted it. Only a proposal that names health rules to verify may
run alone: a run nobody verifies can neither build nor lose the record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from kubestack.contract.base import ResourceRef
from kubestack.contract.events import AuditEntry, AuditRecord

CLASS_LABELS = ("service", "role")
"""The resource labels that, with its kind, make its target class."""
REMEMBERED = 50
"""Proposals per record whose outcome (or execution) is remembered, to count each once."""
POLICY_EARNED = "policy:earned"
LINE = "Earned record:"
"""How the record starts in a pending result's output (and so in the approval notice and the API's view)."""
STAGE = "stage:earned"


def target_class(resource: ResourceRef) -> str:
    """``kind`` and the ``service``/``role`` labels it carries: ``redis service=cache``."""
    labels = [f"{name}={resource.labels[name]}" for name in CLASS_LABELS if resource.labels.get(name)]
    return " ".join([resource.kind, *labels])


def record_key(tenant: str, action: str, resource: ResourceRef) -> str:
    return f"{tenant}|{action}|{target_class(resource)}"


class EarnedRecord(BaseModel):
    """How the runs of one action on one target class ended."""

    tenant: str
    action: str
    target_class: str
    streak: int = Field(default=0, ge=0, description="Verified successes since the last reset")
    verified: int = Field(default=0, ge=0, description="Verified successes, all time")
    outcomes: int = Field(default=0, ge=0, description="Runs that ended (verified, rolled back, failed), all time")
    resets: int = Field(default=0, ge=0)
    last_reset: dict[str, Any] | None = Field(default=None, description="proposal_id, outcome and ts of the last reset")
    counted: list[str] = Field(default_factory=list, description="Proposals whose outcome is counted (recent)")
    executed: list[str] = Field(default_factory=list, description="Proposals executed, not yet ended (recent)")

    def earned(self, needed: int) -> bool:
        """Runs without a person: the policy is on (``needed`` > 0) and the streak reached it."""
        return needed > 0 and self.streak >= needed

    def describe(self, needed: int = 0) -> str:
        """'verified 14 of 14 on redis service=cache' and where it stands against ``needed``."""
        text = f"{self.action}: verified {self.verified} of {self.outcomes} on {self.target_class}"
        if self.resets and self.last_reset:
            text += (f", {self.streak} in a row since the {self.last_reset['outcome'].replace('_', ' ')} of "
                     f"{self.last_reset['proposal_id']}")
        if needed <= 0:
            return text + " (remediation.auto_approve_earned is off)"
        if self.earned(needed):
            return text + f"; earned: runs without a person (after {needed} verified in a row)"
        return text + f"; runs without a person after {needed - self.streak} more verified in a row"


def summary(record: EarnedRecord | None, tenant: str, action: str, resource: ResourceRef, needed: int) -> str:
    """The line a pending result carries: the record, or that there is none yet."""
    if record is None:
        record = EarnedRecord(tenant=tenant, action=action, target_class=target_class(resource))
    return f"{LINE} {record.describe(needed)}"


def resets(status: str, executed: bool) -> bool:
    """Whether an outcome (a ``ResultStatus`` value) resets its record, as ``fold`` counts it: a rollback, or a
    failure once the action ran (``executed``)."""
    return status == "rolled_back" or (status == "failed" and executed)


def as_of(kept: dict | None, reset: dict | None) -> EarnedRecord | None:
    """The record the remediation stage must decide on: the table's (``kept``), reset when the stage has since ended
    a proposal with a reset (``reset``: its ``proposal_id`` and ``outcome``) that the table has not counted yet."""
    record = EarnedRecord.model_validate(kept) if kept else None
    if record is None or reset is None or reset["proposal_id"] in record.counted \
            or (record.last_reset or {}).get("proposal_id") == reset["proposal_id"]:
        return record
    return record.model_copy(update={"streak": 0, "resets": record.resets + 1, "outcomes": record.outcomes + 1,
                                     "last_reset": reset})


def line_in(text: str) -> str | None:
    """The earned-record line of a pending result's output, if it has one."""
    return next((line for line in text.splitlines() if line.startswith(LINE)), None)


def fold(kept: dict | None, record: AuditRecord, needed: int, now: datetime) -> tuple[EarnedRecord, list[AuditEntry]] | None:
    """``kept`` (the table's dict for the record's key, or None) after one audit record, and the audit entries the
    change calls for (``earned.granted`` when the streak reaches ``needed``, ``earned.revoked`` at a reset of a
    streak); None when the record changes nothing (not an outcome, or counted already)."""
    outcome = record.action.removeprefix("proposal.")
    if not record.action.startswith("proposal.") or outcome not in ("executed", "verified", "rolled_back", "failed"):
        return None
    action = record.details.get("action")
    if not isinstance(action, str):
        return None
    current = EarnedRecord.model_validate(kept) if kept else EarnedRecord(
        tenant=record.tenant, action=action, target_class=target_class(record.resource))
    pid = record.subject_id
    if pid in current.counted:
        return None
    if outcome == "executed":
        if pid in current.executed:
            return None
        return current.model_copy(update={"executed": _recent(current.executed, pid)}), []
    ran = pid in current.executed
    if outcome == "failed" and not ran:
        return None  # nothing was tried on the target
    was_earned = current.earned(needed)
    update: dict[str, Any] = {"counted": _recent(current.counted, pid), "outcomes": current.outcomes + 1,
                              "executed": [p for p in current.executed if p != pid]}
    if outcome == "verified":
        update |= {"streak": current.streak + 1, "verified": current.verified + 1}
        after = current.model_copy(update=update)
        granted = needed > 0 and after.streak == needed
        return after, [_entry(record, after, "earned.granted", now, {"proposal_id": pid}, needed)] if granted else []
    update |= {"streak": 0, "resets": current.resets + 1,
               "last_reset": {"proposal_id": pid, "outcome": outcome, "ts": record.ts.isoformat()}}
    after = current.model_copy(update=update)
    details = {"proposal_id": pid, "outcome": outcome, "streak_lost": current.streak, "had_earned": was_earned}
    return after, [_entry(record, after, "earned.revoked", now, details, needed)]


def _recent(ids: list[str], pid: str) -> list[str]:
    return [*ids, pid][-REMEMBERED:]


def _entry(record: AuditRecord, after: EarnedRecord, action: str, now: datetime, details: dict,
           needed: int) -> AuditEntry:
    return AuditEntry(source=record.source, resource=record.resource, tenant=record.tenant, ts=now, actor=STAGE,
                      action=action, subject_id=record_key(record.tenant, after.action, record.resource),
                      event_id=f"{record.entry_id}-{action}",
                      details=details | {"action": after.action, "target_class": after.target_class,
                                         "record": after.describe(needed), "streak": after.streak})
