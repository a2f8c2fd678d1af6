"""The optional LLM narrative of a root-cause report: words that explain the ranking, never change it.

The prompt holds only redacted evidence (``kubestack.redaction``): the first ranked hypotheses with their evidence,
each evidence item's summary and small details, the runbooks' titles. Evidence is numbered ``E1``, ``E2``, ... in
the prompt (an event id is a 32-digit hex string, about 33 tokens a citation for a small model) and the answer's
citations are turned back into event ids. The model's answer is kept only when it passes
``kubestack.llm.citation_problem`` (as cited claims in a schema whose citations can only be those numbers, unless
``llm.structured`` is off); anything else keeps the templated narrative with narrator ``"rules"``, logged at INFO
with the reason.
"""

from __future__ import annotations

import json
import logging
import re

from llama_index.core.llms import ChatMessage, MessageRole

from kubestack.contract.events import Incident, IncidentSignal, RcaReport
from kubestack.llm import RULES, LlmClient, cited_answer
from kubestack.redaction import redact, redact_value

log = logging.getLogger(__name__)

MAX_EVIDENCE = 12
MAX_HYPOTHESES = 3
MAX_DETAILS_CHARS = 240

TASK = ("Explain to an on-call engineer, in one or two short sentences, the most likely root cause of this "
        "incident and what followed from it, using only the evidence above. End every sentence with the ids of the "
        "evidence it rests on in square brackets, e.g. [E1]. Cite nothing else in brackets.")
# One user message: some chat templates (Gemma's) drop a system message.

_CITATION = re.compile(r"\[([^\[\]]*)\]")


def build_prompt(report: RcaReport, incident: Incident, runbook_titles: dict[str, str], *,
                 ips: bool = False) -> tuple[list[ChatMessage], dict[str, str]]:
    """The chat messages for ``report`` and the evidence they number (``E1`` -> event id); all of it redacted."""
    by_id = {s.event_id: s for s in incident.signals}
    shown: dict[str, IncidentSignal] = {}
    lines = [f"Incident: {incident.title}", "", "Causes ranked by the engine, most likely first:"]
    for h in report.hypotheses[:MAX_HYPOTHESES]:
        for event_id in h.evidence_ids:
            if event_id in by_id and event_id not in shown and len(shown) < MAX_EVIDENCE:
                shown[event_id] = by_id[event_id]
        cited = " ".join(_number(shown, i) for i in h.evidence_ids if i in shown)
        runbooks = "; ".join(runbook_titles.get(r, r) for r in h.runbooks)
        lines.append(f"{h.rank}. {h.cause} on {h.component} ({h.confidence:.0%}), evidence {cited or '-'}"
                     + (f", runbooks: {runbooks}" if runbooks else ""))
    lines += ["", "Evidence:"]
    for signal in shown.values():
        details = _clip(json.dumps(redact_value(signal.details, ips=ips), default=str, ensure_ascii=False))
        lines.append(f"{_number(shown, signal.event_id)}: {signal.kind.value} {signal.name} on {signal.resource}, "
                     f"{signal.severity.value}, at {signal.first_seen:%H:%M:%S}: "
                     f"{_clip(redact(signal.summary, ips=ips)) or '-'} {details if signal.details else ''}".rstrip())
    lines += ["", TASK]
    numbers = {_number(shown, event_id): event_id for event_id in shown}
    return [ChatMessage(role=MessageRole.USER, content=redact("\n".join(lines), ips=ips))], numbers


def _number(shown: dict[str, IncidentSignal], event_id: str) -> str:
    return f"E{list(shown).index(event_id) + 1}"


def _clip(text: str) -> str:
    """Cut *after* redaction: a secret cut in half might no longer look like one."""
    return text if len(text) <= MAX_DETAILS_CHARS else text[:MAX_DETAILS_CHARS] + "…"


def cite_event_ids(text: str, numbers: dict[str, str]) -> str:
    """``text`` with each citation's evidence numbers turned into the event ids they stand for."""
    return _CITATION.sub(lambda m: "[" + ", ".join(numbers.get(i, i) for i in re.split(r"[\s,;]+", m.group(1)) if i)
                         + "]", text)


async def narrate(report: RcaReport, incident: Incident, runbook_titles: dict[str, str],
                  llm: LlmClient | None) -> tuple[str, str]:
    """(narrative, narrator): the model's words when they pass ``citation_problem``, else the templated ones."""
    if llm is None or not report.hypotheses:
        return report.narrative, RULES
    messages, numbers = build_prompt(report, incident, runbook_titles, ips=llm.redact_ips)
    text, why = await cited_answer(messages, set(numbers), llm)
    if text is None:
        log.info("narrative for incident %s from rules: %s", report.incident_id, why)
        return report.narrative, RULES
    log.info("narrative for incident %s by %s", report.incident_id, llm.name)
    return cite_event_ids(text, numbers), llm.name
