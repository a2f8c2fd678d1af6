"""Incident memory, pure (``pipeline.memory``): what is kept of an incident and of its remediation results, how alike
two incidents are, which past ones a new one recalls and how notices, Slack buttons and the MCP tool word them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from kubestack.api import slack
from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import (
    AuditRecord,
    Hypothesis,
    Incident,
    IncidentSignal,
    RcaReport,
    ResultStatus,
    Severity,
    SignalKind,
)
from kubestack.mcp.server import incident_detail
from kubestack.notifysettings import NotifySettings
from kubestack.pipeline import memory
from kubestack.pipeline.notify.digest import digest
from kubestack.pipeline.notify.messages import render
from kubestack.pipeline.notify.notice import Context, notice_for
from tests.services.receivers import pagerduty_problems, slack_problem
from tests.test_api_slack import form, recorded_press

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)
SOURCE = Source(agent="worker", host="w1")
CACHE = ResourceRef(kind="redis", name="cache-1", host="db-1")
OTHER_CACHE = ResourceRef(kind="redis", name="sessions", host="db-2")
SETTINGS = NotifySettings.model_validate({
    "console_url": "https://console.example.com/",
    "slack": {"webhook_url": "https://hooks.slack.com/services/T0/B0/x"},
    "pagerduty": {"routing_key": "k" * 32},
    "webhooks": [{"name": "ops", "url": "https://hooks.example.com/k", "secret": "s3cret"}],
})


def incident(incident_id: str, at: datetime, *, res: ResourceRef = CACHE, rule: str = "redis.maxmemory_lowered",
             title: str = "Redis memory pressure on cache-1", tenant: str = "default") -> Incident:
    signals = [IncidentSignal(event_id=f"{incident_id}-e1", kind=SignalKind.FINDING, name=rule, resource=res.key,
                              first_seen=at, last_seen=at, severity=Severity.CRITICAL, summary="maxmemory lowered"),
               IncidentSignal(event_id=f"{incident_id}-e2", kind=SignalKind.ANOMALY,
                              name="robust:redis_used_memory_bytes", resource=res.key, first_seen=at, last_seen=at,
                              severity=Severity.WARNING, score=0.9)]
    return Incident(source=SOURCE, resource=res, tenant=tenant, incident_id=incident_id, title=title,
                    severity=Severity.CRITICAL, opened_at=at, resources=[res],
                    member_event_ids=[s.event_id for s in signals], signals=signals)


def report(inc: Incident, cause: str = "redis.maxmemory_lowered", at: datetime | None = None) -> RcaReport:
    return RcaReport(source=SOURCE, resource=inc.resource, tenant=inc.tenant, incident_id=inc.incident_id,
                     ts=at or inc.opened_at, narrative=f"{cause} on {inc.resource.key}.",
                     hypotheses=[Hypothesis(rank=1, component=inc.resource.key, cause=cause, confidence=0.8,
                                            evidence_ids=[f"{inc.incident_id}-e1"])])


def audited(seq: int, action: str, actor: str, proposal_id: str, incident_id: str, tenant: str = "default",
            **details) -> AuditRecord:
    return AuditRecord(source=SOURCE, resource=CACHE, tenant=tenant, ts=T0 + timedelta(minutes=seq), actor=actor,
                       action=action, subject_id=proposal_id, seq=seq, entry_id=f"entry-{seq}",
                       details={"incident_id": incident_id, "action": "redis.config_set"} | details,
                       prev_hash="0" * 64, hash="1" * 64)


def kept_actions(*records: AuditRecord) -> list[memory.KeptAction]:
    kept: dict[str, memory.KeptAction] = {}
    for record in records:
        step = memory.fold_action(kept.get(record.subject_id), record)
        if step is not None:
            kept[record.subject_id] = step
    return list(kept.values())


def test_an_incident_is_kept_by_its_signature_resources_words_and_top_cause() -> None:
    inc = incident("a", T0)
    kept = memory.remember(inc, report(inc))
    assert kept.signature == ["redis:redis.maxmemory_lowered", "redis:robust:redis_used_memory_bytes"]
    assert kept.resources == [CACHE.key] and (kept.cause, kept.component, kept.kind) == (
        "redis.maxmemory_lowered", CACHE.key, "redis")
    assert {"redis", "memory", "pressure", "cache-1"} <= set(kept.words)
    assert memory.remember(inc, None).cause is None


def test_the_audit_trail_says_what_was_done_and_who_approved_it() -> None:
    done = kept_actions(audited(1, "proposal.pending", "policy", "p1", "a"),
                        audited(2, "proposal.approved", "otto", "p1", "a"),
                        audited(3, "proposal.executed", "stage:remediation", "p1", "a"),
                        audited(4, "proposal.verified", "stage:remediation", "p1", "a"),
                        audited(5, "proposal.executed", "policy:auto", "p2", "a"),
                        audited(6, "proposal.rolled_back", "stage:remediation", "p2", "a"),
                        audited(7, "rca.feedback", "otto", "a", "a"),
                        audited(8, "proposal.snoozed", "otto", "p3", "a"))
    assert [(d.proposal_id, d.status, d.approved_by) for d in done] == [
        ("p1", ResultStatus.VERIFIED, "otto"), ("p2", ResultStatus.ROLLED_BACK, "policy:auto")]
    assert memory.outcome(done) == ("fixed by redis.config_set (verified), approved by otto; "
                                    "redis.config_set was rolled back, approved by policy:auto")
    assert memory.outcome([]) == "no action recorded"
    pending = kept_actions(audited(1, "proposal.pending", "policy", "p9", "b"))
    assert memory.outcome(pending) == "redis.config_set waited for approval"


def test_the_same_fault_again_recalls_the_first_with_what_fixed_it() -> None:
    first, again = incident("a", T0), incident("b", T0 + timedelta(days=3))
    other_fault = incident("c", T0 + timedelta(days=1), rule="redis.slowlog_growing", title="Redis slow commands")
    elsewhere = incident("d", T0 + timedelta(days=2), res=OTHER_CACHE, title="Redis memory pressure on sessions")
    other_tenant = incident("e", T0 + timedelta(days=2), tenant="acme")
    later = incident("f", T0 + timedelta(days=4))
    past = [memory.remember(i, report(i, "redis.slowlog_growing" if i is other_fault else "redis.maxmemory_lowered"))
            for i in (first, other_fault, elsewhere, other_tenant, later)]
    done = kept_actions(audited(1, "proposal.approved", "otto", "p1", "a"),
                        audited(2, "proposal.verified", "stage:remediation", "p1", "a"),
                        audited(3, "proposal.approved", "ada", "p7", "e", tenant="acme"))
    mine = memory.remember(again, report(again))
    found = memory.similar(mine, past, done)
    assert [s.incident_id for s in found] == ["a", "d"], "the slow-command fault is not alike; acme's is not ours"
    assert found[0].similarity == 1.0 and 0.6 < found[1].similarity < 0.9
    assert [(a.proposal_id, a.action, a.status, a.approved_by) for a in found[0].actions] == [
        ("p1", "redis.config_set", ResultStatus.VERIFIED, "otto")]
    assert found[0].outcome == "fixed by redis.config_set (verified), approved by otto"
    assert found[1].outcome == "no action recorded"
    assert memory.score(mine, past[1]) < memory.MIN_SIMILARITY
    assert memory.similar(mine, past, done, limit=1) == found[:1]
    assert memory.seen_before(found[:1]) == [
        'Seen before: a "Redis memory pressure on cache-1" on 2026-11-01 09:00 UTC (100% alike), '
        "fixed by redis.config_set (verified), approved by otto"]


def test_the_memory_is_bounded_oldest_first() -> None:
    opened = {f"t|{n}": T0 + timedelta(hours=n) for n in range(5)}
    assert memory.evictions(opened, 3) == ["t|0", "t|1"]
    assert memory.evictions(opened, 5) == []


def recalled() -> tuple[Incident, RcaReport]:
    first, again = incident("inc-first", T0), incident("inc-again", T0 + timedelta(days=3))
    done = kept_actions(audited(1, "proposal.approved", "otto", "p1", "inc-first"),
                        audited(2, "proposal.verified", "stage:remediation", "p1", "inc-first"))
    found = memory.similar(memory.remember(again, report(again)), [memory.remember(first, report(first))], done)
    return again, report(again, at=again.opened_at + timedelta(minutes=1)).model_copy(update={"similar": found})


def test_notices_say_what_was_done_last_time_and_slack_offers_cause_buttons() -> None:
    inc, rca = recalled()
    line = ('Seen before: inc-first "Redis memory pressure on cache-1" on 2026-11-01 09:00 UTC (100% alike), '
            'fixed by redis.config_set (verified), approved by otto')
    notice = notice_for(rca, Context(incident=inc))
    assert notice.text.endswith(line)

    payload = render(notice, "slack", SETTINGS).payload
    assert slack_problem(payload) is None
    assert f":repeat: {line}" in [b["text"]["text"] for b in payload["blocks"] if "text" in b]
    (buttons,) = [b for b in payload["blocks"] if b["type"] == "actions"]
    right, wrong = buttons["elements"]
    assert (right["action_id"], wrong["action_id"]) == ("cause_right", "cause_wrong")
    assert json.loads(right["value"]) == {"incident_id": "inc-again", "component": CACHE.key,
                                          "cause": "redis.maxmemory_lowered"}

    paged = render(notice, "pagerduty", SETTINGS).payload
    assert pagerduty_problems(paged) == []
    assert paged["payload"]["custom_details"]["rca"]["seen_before"] == [line]
    hooked = render(notice, "webhook:ops", SETTINGS).payload
    assert hooked["seen_before"] == [line] and hooked["event"]["similar"][0]["incident_id"] == "inc-first"

    assert digest(notice, SETTINGS.console_url).text.endswith(line), "Teams, e-mail, Opsgenie, Feishu... too"
    later = notice_for(rca.model_copy(update={"ts": rca.ts + timedelta(minutes=7)}), Context(incident=inc))
    assert later.fingerprint == notice.fingerprint, "a later revision saying the same is a repeat"
    told = render(notice_for(inc, Context(rca=rca)), "slack", SETTINGS).payload
    assert "Seen before: inc-first" in json.dumps(told)


def test_a_cause_button_press_is_read_as_a_verdict() -> None:
    payload = recorded_press("cause_wrong", "unused", "inc-again")
    payload["actions"][0]["value"] = json.dumps({"incident_id": "inc-again", "component": CACHE.key,
                                                 "cause": "redis.maxmemory_lowered"})
    press = slack.press(form(payload))
    assert isinstance(press, slack.CausePress) and not press.right
    assert (press.incident_id, press.component, press.cause, press.actor) == (
        "inc-again", CACHE.key, "redis.maxmemory_lowered", "slack:U0CA5")
    assert press.comment == "marked wrong in Slack by ana"
    assert isinstance(slack.press(form(recorded_press("approve", "p-1", "i-1"))), slack.ButtonPress)


def test_the_mcp_show_incident_tool_carries_the_similar_past_incidents() -> None:
    inc, rca = recalled()
    view = inc.model_dump(mode="json") | {"revision": 1, "rca": rca.model_dump(mode="json"), "proposals": []}
    [shown] = incident_detail(view)["similar_past_incidents"]
    assert shown["incident_id"] == "inc-first" and shown["similarity"] == 1.0
    assert shown["outcome"] == "fixed by redis.config_set (verified), approved by otto"
    assert shown["actions"][0]["status"] == "verified"
