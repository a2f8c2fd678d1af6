"""The optional LLM narrative of a root-cause report: words that explain the ranking, never change it.

The prompt holds only redacted evidence (``kubestack.redaction``): the ranked hypotheses with their evidence ids,
each evidence item's summary and small details, the runbooks' ids and titles. The model's answer is kept only when
it passes ``kubestack.llm.citation_problem``; anything else keeps the templated narrative with narrator
``"rules"``, logged at INFO with the reason.
"""

from __future__ import annotations

import json
import logging

from llama_index.core.llms import ChatMessage, MessageRole

from kubestack.contract.events import Incident, IncidentSignal, RcaReport
from kubestack.llm import RULES, LlmClient, cited_answer
from kubestack.redaction import redact, redact_value

log = logging.getLogger(__name__)

MAX_EVIDENCE = 12
MAX_DETAILS_CHARS = 300


SYSTEM = ("You explain root-cause reports of middleware incidents to on-call engineers. Use only the evidence "
          "given. Write two to four short sentences. End every sentence with the ids of the evidence it rests "
          "on, in square brackets, exactly as given, e.g. [{example}]. Cite nothing else in brackets.")


def build_prompt(report: RcaReport, incident: Incident, runbook_titles: dict[str, str], *,
                 ips: bool = False) -> tuple[list[ChatMessage], set[str]]:
    """The chat messages for ``report`` and the evidence ids they give; everything in them redacted."""
    by_id = {s.event_id: s for s in incident.signals}
    shown: list[IncidentSignal] = []
    lines = [f"Incident: {incident.title}", "", "Ranked hypotheses (best first):"]
    for h in report.hypotheses:
        ids = [i for i in h.evidence_ids if i in by_id]
        shown += [by_id[i] for i in ids if by_id[i] not in shown][:MAX_EVIDENCE - len(shown)]
        cited = " ".join(f"[{i}]" for i in ids if by_id[i] in shown)
        runbooks = "; ".join(f"{r} ({runbook_titles[r]})" if r in runbook_titles else r for r in h.runbooks)
        lines.append(f"{h.rank}. {h.cause} on {h.component}, confidence {h.confidence:.0%}. Evidence: {cited or '-'}."
                     f" Runbooks: {runbooks or '-'}.")
    lines += ["", "Evidence:"]
    for signal in shown:
        details = _clip(json.dumps(redact_value(signal.details, ips=ips), default=str, ensure_ascii=False))
        lines.append(f"[{signal.event_id}] {signal.kind.value} {signal.name} on {signal.resource}, "
                     f"{signal.severity.value}, first seen {signal.first_seen:%Y-%m-%d %H:%M:%S}Z: "
                     f"{_clip(redact(signal.summary, ips=ips)) or '-'} Details: {details}")
    lines += ["", "Explain the most likely root cause and why, citing evidence ids."]
    example = shown[0].event_id if shown else "id"
    messages = [ChatMessage(role=MessageRole.SYSTEM, content=redact(SYSTEM.format(example=example), ips=ips)),
                ChatMessage(role=MessageRole.USER, content=redact("\n".join(lines), ips=ips))]
    return messages, {s.event_id for s in shown}


def _clip(text: str) -> str:
    """Cut *after* redaction: a secret cut in half might no longer look like one."""
    return text if len(text) <= MAX_DETAILS_CHARS else text[:MAX_DETAILS_CHARS] + "…"


async def narrate(report: RcaReport, incident: Incident, runbook_titles: dict[str, str],
                  llm: LlmClient | None) -> tuple[str, str]:
    """(narrative, narrator): the model's words when they pass ``citation_problem``, else the templated ones."""
    if llm is None or not report.hypotheses:
        return report.narrative, RULES
    messages, known = build_prompt(report, incident, runbook_titles, ips=llm.redact_ips)
    text, why = await cited_answer(messages, known, llm)
    if text is None:
        log.info("narrative for incident %s from rules: %s", report.incident_id, why)
        return report.narrative, RULES
    log.info("narrative for incident %s by %s", report.incident_id, llm.name)
    return text, llm.name
