"""The read model: the latest state of what the bus says, in SQLite under ``<home>/api/readmodel.sqlite3``.

One upsert function per event kind, each a pure function of (connection, event): the latest revision of each
incident, the latest root-cause report per incident, proposals with their decision, results and state, the
latest prediction per resource and signal, the latest health report per resource, audit records. Every row
carries its tenant. The feed's next offset per partition is kept in the same transaction as what it applied,
so a read model and its position never disagree (a fresh read model replays from the beginning).

One connection writes (the feed, decisions; on the event loop); every other thread reads through a connection of
its own (``reader``), so a read sees only committed rows, never the feed's transaction half done. The file and its
folder are private to the user (0600, 0700), whatever the umask: the rows hold incidents' evidence.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from pathlib import Path

from kubestack.contract.base import Event
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

SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (incident_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, status TEXT NOT NULL,
  severity TEXT NOT NULL, revision INTEGER NOT NULL, ts TEXT NOT NULL, resources TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rca_reports (incident_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, ts TEXT NOT NULL,
  body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS proposals (proposal_id TEXT PRIMARY KEY, incident_id TEXT NOT NULL, tenant TEXT NOT NULL,
  state TEXT NOT NULL, ts TEXT NOT NULL, body TEXT, decision TEXT);
CREATE TABLE IF NOT EXISTS results (event_id TEXT PRIMARY KEY, proposal_id TEXT NOT NULL, tenant TEXT NOT NULL,
  ts TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS predictions (resource TEXT NOT NULL, signal TEXT NOT NULL, tenant TEXT NOT NULL,
  status TEXT NOT NULL, ts TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (resource, signal));
CREATE TABLE IF NOT EXISTS health (resource TEXT PRIMARY KEY, tenant TEXT NOT NULL, ts TEXT NOT NULL,
  body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (entry_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, tenant TEXT NOT NULL,
  ts TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feed_offsets (topic TEXT NOT NULL, part INTEGER NOT NULL, next_offset INTEGER NOT NULL,
  PRIMARY KEY (topic, part));
CREATE INDEX IF NOT EXISTS proposals_incident ON proposals (incident_id);
CREATE INDEX IF NOT EXISTS results_proposal ON results (proposal_id);
"""

KINDS = ("incidents", "rca_reports", "proposals", "results", "predictions", "health", "audit")

STATE_RANK = {
    ResultStatus.PENDING: 0, ResultStatus.APPROVED: 1, ResultStatus.REJECTED: 1, ResultStatus.EXECUTED: 2,
    ResultStatus.VERIFIED: 3, ResultStatus.FAILED: 3, ResultStatus.ROLLED_BACK: 4,
}
"""A proposal's state only moves forward: a late or replayed event never takes it back."""

_REVISION = re.compile(r"-r(\d+)$")


def connect(path: Path) -> sqlite3.Connection:
    """The writing connection; creates the file (0600, in a 0700 folder) and the schema."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))  # SQLite gives its -wal and -shm files this mode
    path.chmod(0o600)
    conn = _open(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA)
    return conn


def _open(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


def revision(incident: Incident) -> int:
    """The revision in an incident's event_id (``<incident_id>-r<revision>``), 0 when it carries none."""
    found = _REVISION.search(incident.event_id)
    return int(found.group(1)) if found else 0


def resource_terms(incident: Incident) -> str:
    """Resource keys and names, ``|``-delimited, so a filter can match either exactly."""
    return "|" + "|".join(term for r in incident.resources for term in (r.key, r.name)) + "|"


def upsert_incident(conn: sqlite3.Connection, incident: Incident) -> bool:
    """Keep the latest revision (then the latest ts); True when this one is now the row."""
    row = conn.execute("SELECT revision, ts FROM incidents WHERE incident_id = ?", (incident.incident_id,)).fetchone()
    new = (revision(incident), incident.ts.isoformat())
    if row is not None and (row["revision"], row["ts"]) > new:
        return False
    conn.execute("INSERT OR REPLACE INTO incidents VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (incident.incident_id, incident.tenant, incident.status.value, incident.severity.value, new[0],
                  new[1], resource_terms(incident), incident.model_dump_json()))
    return True


def upsert_rca(conn: sqlite3.Connection, report: RcaReport) -> bool:
    return _latest(conn, "rca_reports", "incident_id", report.incident_id, report,
                   "INSERT OR REPLACE INTO rca_reports VALUES (?, ?, ?, ?)",
                   (report.incident_id, report.tenant, report.ts.isoformat(), report.model_dump_json()))


def upsert_prediction(conn: sqlite3.Connection, prediction: Prediction) -> bool:
    key = prediction.resource.key
    row = conn.execute("SELECT ts FROM predictions WHERE resource = ? AND signal = ?",
                       (key, prediction.signal)).fetchone()
    if row is not None and row["ts"] > prediction.ts.isoformat():
        return False
    conn.execute("INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?, ?)",
                 (key, prediction.signal, prediction.tenant, prediction.status.value, prediction.ts.isoformat(),
                  prediction.model_dump_json()))
    return True


def upsert_health(conn: sqlite3.Connection, report: HealthReport) -> bool:
    key = report.resource.key
    return _latest(conn, "health", "resource", key, report, "INSERT OR REPLACE INTO health VALUES (?, ?, ?, ?)",
                   (key, report.tenant, report.ts.isoformat(), report.model_dump_json()))


def upsert_audit(conn: sqlite3.Connection, record: AuditRecord) -> bool:
    cursor = conn.execute("INSERT OR IGNORE INTO audit VALUES (?, ?, ?, ?, ?)",
                          (record.entry_id, record.seq, record.tenant, record.ts.isoformat(),
                           record.model_dump_json()))
    return cursor.rowcount == 1


def upsert_proposal(conn: sqlite3.Connection, proposal: RemediationProposal) -> bool:
    """A new proposal is pending; a decision or result that arrived first keeps the state it set."""
    conn.execute("INSERT OR IGNORE INTO proposals (proposal_id, incident_id, tenant, state, ts) VALUES (?, ?, ?, ?, ?)",
                 (proposal.proposal_id, proposal.incident_id, proposal.tenant, ResultStatus.PENDING.value,
                  proposal.ts.isoformat()))
    conn.execute("UPDATE proposals SET body = ?, incident_id = ?, tenant = ?, ts = ? WHERE proposal_id = ?",
                 (proposal.model_dump_json(), proposal.incident_id, proposal.tenant, proposal.ts.isoformat(),
                  proposal.proposal_id))
    return True


def upsert_decision(conn: sqlite3.Connection, decision: RemediationDecision) -> bool:
    """The first decision on a pending proposal wins; later ones (a second button press) are ignored."""
    _ensure_proposal(conn, decision.proposal_id, decision.incident_id, decision.tenant, decision.ts.isoformat())
    state = ResultStatus.APPROVED if decision.decision == "approve" else ResultStatus.REJECTED
    cursor = conn.execute("UPDATE proposals SET state = ?, decision = ? WHERE proposal_id = ? AND decision IS NULL "
                          "AND state = ?", (state.value, decision.model_dump_json(), decision.proposal_id,
                                            ResultStatus.PENDING.value))
    return cursor.rowcount == 1


def upsert_result(conn: sqlite3.Connection, result: RemediationResult) -> bool:
    _ensure_proposal(conn, result.proposal_id, result.incident_id, result.tenant, result.ts.isoformat())
    cursor = conn.execute("INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?)",
                          (result.event_id, result.proposal_id, result.tenant, result.ts.isoformat(),
                           result.model_dump_json()))
    if cursor.rowcount == 0:
        return False
    current = conn.execute("SELECT state FROM proposals WHERE proposal_id = ?", (result.proposal_id,)).fetchone()
    if STATE_RANK[result.status] >= STATE_RANK[ResultStatus(current["state"])]:
        conn.execute("UPDATE proposals SET state = ? WHERE proposal_id = ?", (result.status.value, result.proposal_id))
    return True


def _ensure_proposal(conn: sqlite3.Connection, proposal_id: str, incident_id: str, tenant: str, ts: str) -> None:
    conn.execute("INSERT OR IGNORE INTO proposals (proposal_id, incident_id, tenant, state, ts) VALUES (?, ?, ?, ?, ?)",
                 (proposal_id, incident_id, tenant, ResultStatus.PENDING.value, ts))


def _latest(conn: sqlite3.Connection, table: str, key_column: str, key: str, event: Event, sql: str,
            values: tuple) -> bool:
    row = conn.execute(f"SELECT ts FROM {table} WHERE {key_column} = ?", (key,)).fetchone()  # noqa: S608 (own names)
    if row is not None and row["ts"] > event.ts.isoformat():
        return False
    conn.execute(sql, values)
    return True


UPSERTS = (
    (AuditRecord, "audit", upsert_audit),
    (Incident, "incidents", upsert_incident),
    (RcaReport, "rca_reports", upsert_rca),
    (RemediationProposal, "proposals", upsert_proposal),
    (RemediationDecision, "decisions", upsert_decision),
    (RemediationResult, "results", upsert_result),
    (Prediction, "predictions", upsert_prediction),
    (HealthReport, "health", upsert_health),
)


def apply(conn: sqlite3.Connection, event: Event) -> tuple[str, bool]:
    """Upsert ``event`` by its kind: (kind, whether the read model changed). ``TypeError`` for other events."""
    for model, kind, upsert in UPSERTS:
        if isinstance(event, model):
            return kind, upsert(conn, event)
    raise TypeError(f"the read model keeps no {type(event).__name__}")


class ReadModel:
    """The read model's connection, and the feed's position kept with it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def reader(self) -> sqlite3.Connection:
        """This thread's reading connection (made on first use): it sees committed rows only."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _open(self.path)
            with self._lock:
                self._readers.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self.conn.close()

    def apply(self, event: Event | None, topic: str, partition: int, offset: int) -> tuple[str, bool] | None:
        """Apply one record (``event`` None: skipped, e.g. dead-lettered) and move past it, atomically."""
        with self.conn:
            self.conn.execute("BEGIN")
            outcome = apply(self.conn, event) if event is not None else None
            self.conn.execute("INSERT OR REPLACE INTO feed_offsets VALUES (?, ?, ?)", (topic, partition, offset + 1))
        return outcome

    def next_offset(self, topic: str, partition: int) -> int | None:
        row = self.conn.execute("SELECT next_offset FROM feed_offsets WHERE topic = ? AND part = ?",
                                (topic, partition)).fetchone()
        return row["next_offset"] if row else None

    def counts(self) -> dict[str, int]:
        conn = self.reader()
        return {kind: conn.execute(f"SELECT count(*) FROM {kind}").fetchone()[0] for kind in KINDS}  # noqa: S608

    def claim_decision(self, decision: RemediationDecision) -> bool:
        """Mark a pending proposal decided now (before the decision comes back from the bus); False if it is not
        pending any more. Atomic: of two concurrent approvals exactly one claims it."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            return upsert_decision(self.conn, decision)

    def release_decision(self, decision: RemediationDecision) -> None:
        """Undo ``claim_decision`` when the decision could not be published."""
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.execute("UPDATE proposals SET state = ?, decision = NULL WHERE proposal_id = ? AND decision = ?",
                              (ResultStatus.PENDING.value, decision.proposal_id, decision.model_dump_json()))
