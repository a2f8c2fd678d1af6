"""Reading the read model as views, always within a tenant scope (``tenant`` None: every tenant)."""

from __future__ import annotations

import sqlite3

from kubestack.api.views import IncidentView, ProposalView
from kubestack.contract.events import (
    AuditRecord,
    HealthReport,
    Incident,
    Prediction,
    RcaReport,
    RemediationDecision,
    RemediationProposal,
    RemediationResult,
    ResultStatus,
)

OPEN_STATUSES = ("open", "updated")


class _Where:
    def __init__(self, tenant: str | None) -> None:
        self.clauses: list[str] = []
        self.values: list[object] = []
        if tenant is not None:
            self.add("tenant = ?", tenant)

    def add(self, clause: str, *values: object) -> _Where:
        self.clauses.append(clause)
        self.values.extend(values)
        return self

    def __str__(self) -> str:
        return (" WHERE " + " AND ".join(self.clauses)) if self.clauses else ""


def list_incidents(conn: sqlite3.Connection, tenant: str | None, *, status: str | None = None,
                   severity: str | None = None, resource: str | None = None, limit: int = 100) -> list[IncidentView]:
    where = _Where(tenant)
    if status == "open":
        where.add(f"status IN ({', '.join('?' * len(OPEN_STATUSES))})", *OPEN_STATUSES)
    elif status is not None:
        where.add("status = ?", status)
    if severity is not None:
        where.add("severity = ?", severity)
    if resource is not None:
        where.add("instr(resources, ?) > 0", f"|{resource}|")
    rows = conn.execute(f"SELECT incident_id, revision, body FROM incidents{where} ORDER BY ts DESC LIMIT ?",
                        (*where.values, limit)).fetchall()
    return [_incident_view(conn, row, tenant) for row in rows]


def get_incident(conn: sqlite3.Connection, incident_id: str, tenant: str | None) -> IncidentView | None:
    where = _Where(tenant).add("incident_id = ?", incident_id)
    row = conn.execute(f"SELECT incident_id, revision, body FROM incidents{where}", where.values).fetchone()
    return _incident_view(conn, row, tenant) if row else None


def _incident_view(conn: sqlite3.Connection, row: sqlite3.Row, tenant: str | None) -> IncidentView:
    incident = Incident.model_validate_json(row["body"])
    rca_row = conn.execute("SELECT body FROM rca_reports WHERE incident_id = ?", (row["incident_id"],)).fetchone()
    data = incident.model_dump() | {
        "signals": sorted(incident.signals, key=lambda s: s.first_seen),
        "revision": row["revision"],
        "rca": RcaReport.model_validate_json(rca_row["body"]) if rca_row else None,
        "proposals": list_proposals(conn, tenant, incident_id=row["incident_id"]),
    }
    return IncidentView.model_validate(data)


def list_proposals(conn: sqlite3.Connection, tenant: str | None, *, state: str | None = None,
                   incident_id: str | None = None, limit: int = 100) -> list[ProposalView]:
    where = _Where(tenant).add("body IS NOT NULL")
    if state is not None:
        where.add("state = ?", state)
    if incident_id is not None:
        where.add("incident_id = ?", incident_id)
    rows = conn.execute(f"SELECT * FROM proposals{where} ORDER BY ts DESC LIMIT ?", (*where.values, limit))
    return [_proposal_view(conn, row) for row in rows.fetchall()]


def get_proposal(conn: sqlite3.Connection, proposal_id: str, tenant: str | None) -> ProposalView | None:
    where = _Where(tenant).add("body IS NOT NULL").add("proposal_id = ?", proposal_id)
    row = conn.execute(f"SELECT * FROM proposals{where}", where.values).fetchone()
    return _proposal_view(conn, row) if row else None


def _proposal_view(conn: sqlite3.Connection, row: sqlite3.Row) -> ProposalView:
    results = conn.execute("SELECT body FROM results WHERE proposal_id = ? ORDER BY ts", (row["proposal_id"],))
    return ProposalView(
        proposal=RemediationProposal.model_validate_json(row["body"]),
        state=ResultStatus(row["state"]),
        results=[RemediationResult.model_validate_json(r["body"]) for r in results.fetchall()],
        decision=RemediationDecision.model_validate_json(row["decision"]) if row["decision"] else None,
    )


def list_predictions(conn: sqlite3.Connection, tenant: str | None, *, status: str | None = None,
                     limit: int = 100) -> list[Prediction]:
    where = _Where(tenant)
    if status is not None:
        where.add("status = ?", status)
    rows = conn.execute(f"SELECT body FROM predictions{where} ORDER BY ts DESC LIMIT ?", (*where.values, limit))
    return [Prediction.model_validate_json(r["body"]) for r in rows.fetchall()]


def list_health(conn: sqlite3.Connection, tenant: str | None) -> list[HealthReport]:
    where = _Where(tenant)
    rows = conn.execute(f"SELECT body FROM health{where} ORDER BY resource", where.values)
    return [HealthReport.model_validate_json(r["body"]) for r in rows.fetchall()]


def list_audit(conn: sqlite3.Connection, tenant: str | None, *, limit: int = 100) -> list[AuditRecord]:
    where = _Where(tenant)
    rows = conn.execute(f"SELECT body FROM audit{where} ORDER BY seq DESC LIMIT ?", (*where.values, limit))
    return [AuditRecord.model_validate_json(r["body"]) for r in rows.fetchall()]
