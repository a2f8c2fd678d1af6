"""The read model's upserts and queries, directly on SQLite: latest revisions, the proposal state machine,
tenant scopes, the feed position kept with the data."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from kubestack.api import queries
from kubestack.api.readmodel import ReadModel, apply, upsert_decision, upsert_incident
from kubestack.contract.base import utcnow
from kubestack.contract.events import (
    Decision,
    HealthReport,
    Prediction,
    PredictionStatus,
    RemediationDecision,
    RemediationResult,
    ResultStatus,
)
from kubestack.contract.topics import METRICS, PREDICTIONS
from tests.factories import example
from tests.services.kubestack_api import SOURCE, incident, proposal, rca


@pytest.fixture()
def store(tmp_path: Path) -> ReadModel:
    model = ReadModel(tmp_path / "api" / "readmodel.sqlite3")
    yield model
    model.close()


def decision(prop, verdict: Decision = Decision.APPROVE, actor: str = "otto") -> RemediationDecision:
    return RemediationDecision(source=SOURCE, resource=prop.resource, tenant=prop.tenant, proposal_id=prop.proposal_id,
                               incident_id=prop.incident_id, decision=verdict, actor=actor, reason="r")


def result(prop, status: ResultStatus) -> RemediationResult:
    return RemediationResult(source=SOURCE, resource=prop.resource, tenant=prop.tenant, proposal_id=prop.proposal_id,
                             incident_id=prop.incident_id, status=status, actor="stage:remediation")


def test_incident_keeps_its_latest_revision(store: ReadModel) -> None:
    first = incident(revision=1)
    third = incident(revision=3, incident_id=first.incident_id, title="third")
    second = incident(revision=2, incident_id=first.incident_id, title="second")
    assert upsert_incident(store.conn, first) and upsert_incident(store.conn, third)
    assert upsert_incident(store.conn, second) is False
    view = queries.get_incident(store.conn, first.incident_id, None)
    assert (view.revision, view.title) == (3, "third")
    assert [s.event_id for s in view.signals] == ["e1", "e2"]  # timeline order, not arrival order


def test_proposal_moves_forward_only(store: ReadModel) -> None:
    inc = incident()
    prop = proposal(inc)
    apply(store.conn, prop)
    assert queries.get_proposal(store.conn, prop.proposal_id, None).state == ResultStatus.PENDING
    assert upsert_decision(store.conn, decision(prop)) is True
    assert upsert_decision(store.conn, decision(prop, Decision.REJECT, "late")) is False
    for status in (ResultStatus.EXECUTED, ResultStatus.VERIFIED, ResultStatus.APPROVED):
        apply(store.conn, result(prop, status))
    view = queries.get_proposal(store.conn, prop.proposal_id, None)
    assert view.state == ResultStatus.VERIFIED  # the replayed 'approved' did not take it back
    assert view.decision.actor == "otto" and len(view.results) == 3
    apply(store.conn, prop)  # a replayed proposal keeps its state
    assert queries.get_proposal(store.conn, prop.proposal_id, None).state == ResultStatus.VERIFIED


def test_decision_before_its_proposal_is_kept_and_the_proposal_shows_decided(store: ReadModel) -> None:
    prop = proposal(incident())
    apply(store.conn, decision(prop, Decision.REJECT))
    assert queries.get_proposal(store.conn, prop.proposal_id, None) is None  # nothing to show without the proposal
    apply(store.conn, prop)
    view = queries.get_proposal(store.conn, prop.proposal_id, None)
    assert view.state == ResultStatus.REJECTED and view.decision.decision == Decision.REJECT


def test_claim_is_exclusive_and_release_restores_pending(store: ReadModel) -> None:
    prop = proposal(incident())
    apply(store.conn, prop)
    mine = decision(prop)
    assert store.claim_decision(mine) is True
    assert store.claim_decision(decision(prop, actor="someone-else")) is False
    store.release_decision(mine)
    view = queries.get_proposal(store.conn, prop.proposal_id, None)
    assert view.state == ResultStatus.PENDING and view.decision is None


def test_queries_are_scoped_to_the_tenant(store: ReadModel) -> None:
    acme, other = incident("acme"), incident("globex")
    for event in (acme, other, rca(acme), proposal(acme), proposal(other)):
        apply(store.conn, event)
    assert [i.incident_id for i in queries.list_incidents(store.conn, "acme")] == [acme.incident_id]
    assert queries.get_incident(store.conn, other.incident_id, "acme") is None
    assert queries.get_incident(store.conn, acme.incident_id, "acme").rca.incident_id == acme.incident_id
    assert {p.proposal.tenant for p in queries.list_proposals(store.conn, "acme")} == {"acme"}
    assert len(queries.list_incidents(store.conn, None)) == 2


def test_incident_filters(store: ReadModel) -> None:
    opened, resolved = incident(), incident(status="resolved")
    apply(store.conn, opened)
    apply(store.conn, resolved)
    assert [i.incident_id for i in queries.list_incidents(store.conn, None, status="open")] == [opened.incident_id]
    assert [i.incident_id for i in queries.list_incidents(store.conn, None, status="resolved")] == [
        resolved.incident_id]
    assert len(queries.list_incidents(store.conn, None, resource="cache-1")) == 2
    assert len(queries.list_incidents(store.conn, None, resource=opened.resource.key)) == 2
    assert queries.list_incidents(store.conn, None, resource="cache") == []  # exact names, not substrings
    assert queries.list_incidents(store.conn, None, severity="info") == []
    assert len(queries.list_incidents(store.conn, None, limit=1)) == 1


def test_latest_prediction_per_resource_and_signal_and_latest_health(store: ReadModel) -> None:
    first = example(PREDICTIONS)
    withdrawn = Prediction.model_validate(first.model_dump() | {
        "event_id": "later", "ts": first.ts + timedelta(minutes=5), "status": PredictionStatus.WITHDRAWN,
        "exhaustion_at": None, "exhaustion_lower_bound": None})
    apply(store.conn, withdrawn)
    apply(store.conn, first)  # older: ignored
    assert [p.status for p in queries.list_predictions(store.conn, None)] == [PredictionStatus.WITHDRAWN]
    assert queries.list_predictions(store.conn, None, status="active") == []
    report = HealthReport(source=SOURCE, resource=first.resource, ts=utcnow(), reachable=False)
    apply(store.conn, report)
    assert queries.list_health(store.conn, None)[0].reachable is False


def test_offsets_are_kept_with_what_was_applied(store: ReadModel) -> None:
    assert store.next_offset("t", 0) is None
    store.apply(incident(), "t", 0, 41)
    store.apply(None, "t", 0, 42)  # dead-lettered: skipped, but moved past
    assert store.next_offset("t", 0) == 43
    assert store.counts()["incidents"] == 1
    again = ReadModel(store.path)  # what a restarted API finds
    try:
        assert again.next_offset("t", 0) == 43
    finally:
        again.close()


def test_apply_refuses_events_it_does_not_keep(store: ReadModel) -> None:
    with pytest.raises(TypeError, match="keeps no MetricBatch"):
        apply(store.conn, example(METRICS))


def test_the_read_model_is_private_to_the_user_whatever_the_umask(tmp_path: Path) -> None:
    import os

    folder = tmp_path / "api"
    folder.mkdir(mode=0o755)
    path = folder / "readmodel.sqlite3"
    path.touch(mode=0o644)
    old = os.umask(0o022)
    try:
        store = ReadModel(path)
        store.conn.execute("INSERT INTO feed_offsets VALUES ('t', 0, 1)")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}
    store.close()
    assert folder.stat().st_mode & 0o777 == 0o700
    assert modes == {name: 0o600 for name in modes} and "readmodel.sqlite3-wal" in modes
