"""Earned autonomy, pure: the record per action and target class folded from audit records, granted after N
verified runs in a row, reset (and audited) at a rollback or a failed verification; the remediation policy runs an
earned action alone and shows the record on the proposals that still wait for a person."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone

from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import AuditEntry, RemediationProposal, ResultStatus, Risk
from kubestack.pipeline import earned
from kubestack.pipeline.audit import AuditChain
from kubestack.pipeline.earned import POLICY_EARNED, EarnedRecord, fold, line_in, record_key, target_class
from kubestack.pipeline.notify.notice import Context, notice_for
from kubestack.pipeline.remediation import State, admit, result
from kubestack.settings import RemediationSettings

SRC = Source(agent="worker", host="w1")
NOW = datetime(2026, 12, 7, 5, 0, tzinfo=timezone.utc)
CACHE = ResourceRef(kind="redis", name="cache-a", host=socket.gethostname(), labels={"service": "cache", "env": "p"})
OTHER_CACHE = ResourceRef(kind="redis", name="cache-b", host="h2", labels={"service": "cache"})
QUEUE = ResourceRef(kind="redis", name="queue-a", host="h2", labels={"service": "queue"})
ACTION = "redis.set_maxmemory"


def test_the_target_class_is_the_kind_with_the_service_and_role_labels() -> None:
    assert target_class(CACHE) == "redis service=cache"
    assert target_class(OTHER_CACHE) == target_class(CACHE), "two caches are one class"
    assert target_class(QUEUE) == "redis service=queue"
    assert target_class(ResourceRef(kind="postgresql", name="db", labels={"role": "primary", "service": "orders"})) \
        == "postgresql service=orders role=primary"
    assert target_class(ResourceRef(kind="redis", name="x")) == "redis"
    assert record_key("default", ACTION, CACHE) == record_key("default", ACTION, OTHER_CACHE)
    assert record_key("t2", ACTION, CACHE) != record_key("default", ACTION, CACHE), "per tenant"


class Outcomes:
    """Audit records as the chain makes them from the remediation stage's entries, folded as the worker does."""

    def __init__(self, needed: int) -> None:
        self.needed = needed
        self.chain = AuditChain()
        self.table: dict[str, dict] = {}
        self.entries: list[AuditEntry] = []

    def run(self, pid: str, *statuses: str, resource: ResourceRef = CACHE, action: str = ACTION) -> None:
        for status in statuses:
            entry = AuditEntry(source=SRC, resource=resource, ts=NOW, actor="stage:remediation",
                               action=f"proposal.{status}", subject_id=pid, event_id=f"{pid}-{status}",
                               details={"incident_id": "inc", "action": action, "params": {}})
            self.apply(self.chain.link(entry))

    def apply(self, record) -> None:
        key = record_key(record.tenant, record.details["action"], record.resource)
        step = fold(self.table.get(key), record, self.needed, NOW)
        if step is not None:
            self.table[key] = step[0].model_dump(mode="json")
            self.entries += step[1]

    def record(self, resource: ResourceRef = CACHE, action: str = ACTION) -> EarnedRecord | None:
        kept = self.table.get(record_key("default", action, resource))
        return EarnedRecord.model_validate(kept) if kept else None


def test_n_verified_runs_in_a_row_earn_autonomy_and_the_grant_is_audited() -> None:
    seen = Outcomes(needed=3)
    for n in range(1, 3):
        seen.run(f"p{n}", "approved", "executed", "verified")
    assert not seen.record().earned(3) and seen.record().streak == 2
    seen.run("p3", "approved", "executed", "verified", resource=OTHER_CACHE)
    record = seen.record()
    assert record.earned(3), "another cache of the same class counts"
    assert record.describe(3).startswith(f"{ACTION}: verified 3 of 3 on redis service=cache; earned")
    assert [e.action for e in seen.entries] == ["earned.granted"]
    assert seen.entries[0].details["streak"] == 3 and seen.entries[0].actor == earned.STAGE
    assert seen.record(QUEUE) is None, "nothing earned on the queues"
    assert not record.earned(0), "0 turns the policy off"


def test_a_rollback_resets_the_record_and_is_audited() -> None:
    seen = Outcomes(needed=2)
    for n in range(1, 4):
        seen.run(f"p{n}", "executed", "verified")
    seen.run("p4", "executed", "rolled_back")
    record = seen.record()
    assert record.streak == 0 and not record.earned(2) and record.resets == 1
    assert (record.verified, record.outcomes) == (3, 4)
    revoked = seen.entries[-1]
    assert revoked.action == "earned.revoked"
    assert {k: revoked.details[k] for k in ("proposal_id", "outcome", "streak_lost", "had_earned")} == \
        {"proposal_id": "p4", "outcome": "rolled_back", "streak_lost": 3, "had_earned": True}
    assert "verified 3 of 4 on redis service=cache, 0 in a row since the rolled back of p4" in record.describe(2)
    seen.run("p5", "executed", "verified")
    assert seen.record().streak == 1 and "1 more verified in a row" in seen.record().describe(2)


def test_a_failed_verification_resets_it_a_failure_before_acting_does_not() -> None:
    seen = Outcomes(needed=2)
    seen.run("p1", "executed", "verified")
    seen.run("p2", "approved", "failed")  # a precondition that does not hold now: nothing was tried
    assert seen.record().streak == 1 and seen.record().outcomes == 1
    seen.run("p3", "executed", "failed")  # watched findings did not clear and the action cannot be undone
    assert seen.record().streak == 0 and seen.record().resets == 1
    assert seen.entries[-1].details["outcome"] == "failed"


def test_an_outcome_replayed_after_a_restart_is_counted_once() -> None:
    seen = Outcomes(needed=5)
    seen.run("p1", "executed", "verified")
    seen.chain = AuditChain()  # the same entries come again, as new records (a new chain would chain them anew)
    seen.run("p1", "executed", "verified")
    assert (seen.record().streak, seen.record().verified) == (1, 1)


def test_other_actions_and_audit_records_do_not_count() -> None:
    seen = Outcomes(needed=1)
    seen.run("p1", "executed", "verified", action="redis.set_maxmemory_policy")
    assert seen.record() is None and seen.record(action="redis.set_maxmemory_policy").streak == 1
    entry = AuditEntry(source=SRC, resource=CACHE, ts=NOW, actor="otto", action="api.token_used", subject_id="x",
                       details={"action": ACTION})
    assert fold(None, AuditChain().link(entry), 1, NOW) is None
    entry = AuditEntry(source=SRC, resource=CACHE, ts=NOW, actor="s", action="proposal.verified", subject_id="x")
    assert fold(None, AuditChain().link(entry), 1, NOW) is None, "no action named: nothing to count"


# --- the policy ---------------------------------------------------------------------------------------------------


def proposal(pid: str = "prop-9", resource: ResourceRef = CACHE) -> RemediationProposal:
    return RemediationProposal(source=SRC, resource=resource, proposal_id=pid, incident_id="inc-9", action=ACTION,
                               params={"bytes": str(64 * 1024 * 1024)}, risk=Risk.MEDIUM,
                               expected_effect="maxmemory back to 64 MiB", verify_rules=["redis.memory_near_limit"])


def earned_record(streak: int) -> EarnedRecord:
    return EarnedRecord(tenant="default", action=ACTION, target_class="redis service=cache", streak=streak,
                        verified=streak, outcomes=streak)


def test_an_earned_action_runs_alone_and_is_audited_as_earned() -> None:
    settings = RemediationSettings(auto_approve_earned=3)
    step = admit(None, proposal(), settings, SRC, NOW, earned_record(3))
    assert step.execute and step.state["state"] == State.EXECUTING
    assert [(r.status, r.actor) for r in step.results] == [(ResultStatus.APPROVED, POLICY_EARNED)]
    assert "verified 3 of 3 on redis service=cache" in step.results[0].output
    actions = [(e.action, e.actor) for e in step.entries]
    assert ("proposal.approved", POLICY_EARNED) in actions and ("earned.used", POLICY_EARNED) in actions
    used = next(e for e in step.entries if e.action == "earned.used")
    assert used.details["streak"] == 3 and used.details["needed"] == 3


def test_a_proposal_with_nothing_to_verify_it_by_waits_for_a_person_even_when_earned() -> None:
    blind = proposal().model_copy(update={"verify_rules": []})
    step = admit(None, blind, RemediationSettings(auto_approve_earned=3), SRC, NOW, earned_record(3))
    assert not step.execute and step.results[0].status == ResultStatus.PENDING
    assert line_in(step.results[0].output).endswith("(not this proposal: it names no health rule to verify it by)")


def test_a_reset_the_table_has_not_counted_yet_takes_the_autonomy_back_at_once() -> None:
    """The remediation stage admits the next proposal as soon as one is rolled back, before the earn stage folds the
    rollback from the audit topic: it reads the record as of its own reset."""
    seen = Outcomes(needed=3)
    for pid in ("p1", "p2", "p3"):
        seen.run(pid, "executed", "verified")
    key = record_key("default", ACTION, CACHE)
    kept = seen.table[key]
    reset = {"proposal_id": "p-rolled", "outcome": "rolled_back"}
    record = earned.as_of(kept, reset)
    assert (record.streak, record.resets, record.verified, record.outcomes) == (0, 1, 3, 4)
    step = admit(None, proposal(), RemediationSettings(auto_approve_earned=3), SRC, NOW, record)
    assert not step.execute and step.results[0].status == ResultStatus.PENDING
    assert "verified 3 of 4 on redis service=cache, 0 in a row since the rolled back of p-rolled" in \
        line_in(step.results[0].output)
    seen.run("p-rolled", "executed", "rolled_back")
    folded = seen.table[key]
    assert earned.as_of(folded, reset) == EarnedRecord.model_validate(folded), "once counted, the table's holds"
    for pid in [f"p{n}" for n in range(4, 60)]:  # the reset's proposal leaves the remembered ones
        seen.run(pid, "executed", "verified")
    assert earned.as_of(seen.table[key], reset).streak == 56, "a reset counted long ago is not taken again"
    assert earned.as_of(kept, None).streak == 3 and earned.as_of(None, reset) is None
    assert [earned.resets(s, ran) for s, ran in (("rolled_back", False), ("failed", True), ("failed", False),
                                                  ("verified", True))] == [True, True, False, False]


def test_short_of_n_or_with_the_policy_off_a_person_decides_and_sees_the_record() -> None:
    short = admit(None, proposal(), RemediationSettings(auto_approve_earned=3), SRC, NOW, earned_record(2))
    assert not short.execute and short.results[0].status == ResultStatus.PENDING
    line = line_in(short.results[0].output)
    assert line == (f"Earned record: {ACTION}: verified 2 of 2 on redis service=cache; runs without a person "
                    "after 1 more verified in a row")
    off = admit(None, proposal(), RemediationSettings(), SRC, NOW, earned_record(9))
    assert not off.execute and "auto_approve_earned is off" in line_in(off.results[0].output)
    first = admit(None, proposal(), RemediationSettings(auto_approve_earned=2), SRC, NOW, None)
    assert "verified 0 of 0 on redis service=cache" in line_in(first.results[0].output)
    assert line_in(admit(None, proposal(), RemediationSettings(), SRC, NOW).results[0].output) is None, \
        "nothing said when the policy is off and there is no record"
    disabled = admit(None, proposal(), RemediationSettings(auto_approve_earned=1, enabled=False), SRC, NOW,
                     earned_record(5))
    assert not disabled.execute, "remediation.enabled off wins"


def test_the_approval_notice_shows_the_record() -> None:
    made = proposal()
    step = admit(None, made, RemediationSettings(auto_approve_earned=3), SRC, NOW, earned_record(2))
    notice = notice_for(step.results[0], Context(proposal=made))
    assert notice.kind == "approval"
    assert "maxmemory back to 64 MiB (risk medium)" in notice.text
    assert "Earned record: redis.set_maxmemory: verified 2 of 2 on redis service=cache" in notice.text
    later = result(made, ResultStatus.VERIFIED, "cleared", SRC, NOW + timedelta(seconds=5))
    assert "Earned record" not in notice_for(later, Context(proposal=made)).text
