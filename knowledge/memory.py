"""Incident memory: a resolved incident, with its root-cause report, becomes a small markdown document in the
knowledge base, so the next similar incident finds what happened last time and what fixed it.

The RCA stage calls ``remember(folder, incident, rca, signals=..., resolution=...)`` when an incident resolves:
the document is written to ``<folder>/incidents/<incident_id>.md`` (kept across re-ingests) and indexed at once
when an index exists. Remembering the same incident again replaces its document.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from kubestack.contract.events import Incident, RcaReport
from kubestack.knowledge.index import INCIDENTS_DIR, read_manifest
from kubestack.knowledge.runbook import Runbook, RunbookMeta, Signals

log = logging.getLogger(__name__)

INCIDENT_PREFIX = "incident/"


def _middleware(incident: Incident, rca: RcaReport | None) -> str:
    """The kind of the top hypothesis' component (``cluster/scope/kind/name``), else of the first resource."""
    if rca is not None and rca.hypotheses:
        top = min(rca.hypotheses, key=lambda h: h.rank)
        parts = top.component.split("/")
        if len(parts) == 4:
            return parts[2]
    return incident.resources[0].kind if incident.resources else incident.resource.kind


def _split_signals(signals: Sequence[str]) -> Signals:
    """Rule ids have a dot (``redis.no_maxmemory``); metric names are snake case; anything else is a log pattern."""
    rules = [s for s in signals if "." in s and " " not in s]
    metrics = [s for s in signals if "." not in s and " " not in s]
    logs = [s for s in signals if " " in s]
    return Signals(rules=rules, metrics=metrics, logs=logs)


def _body(incident: Incident, rca: RcaReport | None, resolution: str) -> str:
    lines = ["## What happened", "",
             f"Incident {incident.incident_id} ({incident.severity.value}), opened {incident.opened_at.isoformat()}, "
             f"status {incident.status.value}.", ""]
    if incident.summary:
        lines += [incident.summary, ""]
    if incident.resources:
        lines += ["Resources: " + ", ".join(f"{r.kind} {r.name}" for r in incident.resources) + ".", ""]
    if rca is not None and rca.hypotheses:
        lines += ["## Root cause", ""]
        for h in sorted(rca.hypotheses, key=lambda h: h.rank):
            books = f" (runbooks: {', '.join(h.runbooks)})" if h.runbooks else ""
            lines.append(f"{h.rank}. {h.cause} on {h.component}, confidence {h.confidence:.0%}{books}")
        lines.append("")
        if rca.narrative:
            lines += [rca.narrative.strip(), ""]
    if resolution:
        lines += ["## Resolution", "", resolution.strip(), ""]
    return "\n".join(lines).strip()


def incident_document(incident: Incident, rca: RcaReport | None = None, *, signals: Sequence[str] = (),
                      resolution: str = "") -> Runbook:
    """The memory of one incident as a knowledge document (id ``incident/<incident_id>``).

    ``signals`` are the rule ids, metric names and log templates of its evidence (the RCA stage knows them);
    ``resolution`` says what fixed it, in people's words.
    """
    related = sorted({b for h in (rca.hypotheses if rca else []) for b in h.runbooks})
    symptoms = [incident.title] + ([incident.summary] if incident.summary else [])
    meta = RunbookMeta(id=f"{INCIDENT_PREFIX}{incident.incident_id}", middleware=_middleware(incident, rca),
                       kind="incident", title=f"Past incident: {incident.title}", symptoms=symptoms,
                       signals=_split_signals(list(signals)), related=related)
    return Runbook(meta=meta, body=_body(incident, rca, resolution))


def remember(folder: Path, incident: Incident, rca: RcaReport | None = None, *, signals: Sequence[str] = (),
             resolution: str = "") -> Runbook:
    """Write the incident's document under ``folder/incidents`` and index it now if an index exists."""
    from kubestack.knowledge.retrieve import KnowledgeBase   # the index is only needed when one exists

    book = incident_document(incident, rca, signals=signals, resolution=resolution)
    path = folder / INCIDENTS_DIR / f"{incident.incident_id}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(book.to_markdown(), encoding="utf-8")
    if read_manifest(folder / "index") is not None:
        KnowledgeBase.open(folder).add([book])
    log.info("incident %s remembered in %s", incident.incident_id, path)
    return book
