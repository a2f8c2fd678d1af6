"""The optional LLM narrative of a root-cause report: words that explain the ranking, never change it.

The prompt holds only redacted evidence (``kubestack.redaction``): the task first (the same words open every
prompt, so a llama.cpp server reuses what it read of them for the previous narrative), then the first ranked
hypotheses with their evidence, each evidence item's summary and its details as short ``key=value`` pairs, the top
runbook's title. A small local model reads every prompt token at about 5 ms of CPU, so the prompt is kept short:
about 200 tokens for a single-resource incident. Evidence is numbered ``E1``, ``E2``, ... in the prompt (an event
id is a 32-digit hex string, about 33 tokens a citation for a small model) and the answer's citations are turned
back into event ids. The model's answer is kept only when it passes ``kubestack.llm.citation_problem`` (written in
a form whose citations can only be those numbers, unless ``llm.structured`` is off); anything else keeps the
templated narrative with narrator ``"rules"``, logged at INFO with the reason.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from llama_index.core.llms import ChatMessage, MessageRole

from kubestack.contract.events import Incident, IncidentSignal, RcaReport
from kubestack.llm import RULES, LlmClient, cited_answer
from kubestack.redaction import redact, redact_value

log = logging.getLogger(__name__)

MAX_EVIDENCE = 6
MAX_HYPOTHESES = 2
MAX_SUMMARY_CHARS = 120
MAX_DETAILS_CHARS = 120
NOT_EVIDENCE = frozenset({"query"})
"""Details keys that say how a collector asked, not what it saw."""

TASK = ("Explain to an on-call engineer, in one short sentence, the most likely root cause of the incident below "
        "and what followed from it, using only its evidence. End the sentence with the ids of the evidence it "
        "rests on in square brackets, e.g. [E1]. Cite nothing else in brackets.")
# One user message: some chat templates (Gemma's) drop a system message.

_CITATION = re.compile(r"\[([^\[\]]*)\]")


def build_prompt(report: RcaReport, incident: Incident, runbook_titles: dict[str, str], *,
                 ips: bool = False) -> tuple[list[ChatMessage], dict[str, str]]:
    """The chat messages for ``report`` and the evidence they number (``E1`` -> event id); all of it redacted."""
    by_id = {s.event_id: s for s in incident.signals}
    shown: dict[str, IncidentSignal] = {}
    lines: list[str] = []
    for h in report.hypotheses[:MAX_HYPOTHESES]:
        for event_id in h.evidence_ids:
            if event_id in by_id and event_id not in shown and len(shown) < MAX_EVIDENCE:
                shown[event_id] = by_id[event_id]
        cited = " ".join(_number(shown, i) for i in h.evidence_ids if i in shown)
        lead = "The root cause is" if h.rank == 1 else f"Cause {h.rank} is"
        lines.append(f"{lead} {_words(h.cause)} on {h.component}, evidence {cited or '-'} ({h.confidence:.0%}).")
    top = report.hypotheses[0]
    lines.append(f"Incident: {incident.title}")
    if top.runbooks:
        lines.append(f"Runbook: {runbook_titles.get(top.runbooks[0], top.runbooks[0])}")
    lines.append("Evidence:")
    start = min((s.first_seen for s in shown.values()), default=None)
    for signal in shown.values():
        details = _clip(_pairs(redact_value(signal.details, ips=ips)), MAX_DETAILS_CHARS)
        where = f" on {signal.resource}" if signal.resource != top.component else ""
        lines.append(f"{_number(shown, signal.event_id)}: {signal.kind.value} {signal.name}{where}, "
                     f"{signal.severity.value}, {_offset(signal.first_seen, start)}: "
                     f"{_clip(redact(signal.summary, ips=ips), MAX_SUMMARY_CHARS) or '-'} {details}".rstrip())
    lines += ["", TASK]
    numbers = {_number(shown, event_id): event_id for event_id in shown}
    return [ChatMessage(role=MessageRole.USER, content=redact("\n".join(lines), ips=ips))], numbers


def _number(shown: dict[str, IncidentSignal], event_id: str) -> str:
    return f"E{list(shown).index(event_id) + 1}"


def _words(name: str) -> str:
    """A rule or signal name as words (``redis.maxmemory_lowered``: ``redis maxmemory lowered``), which is how a
    small model held to ``CLAIM_PATTERN`` can repeat it."""
    return re.sub(r"(?<=\w)[._](?=\w)", " ", name)


def _offset(at: datetime, start: datetime | None) -> str:
    return f"+{(at - start).total_seconds():.0f}s" if start is not None else "-"


def _pairs(details: Any) -> str:
    """``details`` as ``key=value`` pairs, nesting flattened to the innermost keys, each pair once, without what is
    empty or ``NOT_EVIDENCE``: a third of the tokens of its JSON for a small model to read."""
    pairs: list[str] = []

    def walk(key: str, value: Any) -> None:
        if key in NOT_EVIDENCE or value in (None, "", [], {}):
            return
        if isinstance(value, dict):
            for inner, item in value.items():
                walk(str(inner), item)
        elif isinstance(value, list):
            for item in value:
                walk(key, item)
        else:
            text = str(round(value, 4)).removesuffix(".0") if isinstance(value, float) else str(value)
            pair = f"{key}={text}" if key else text
            if pair not in pairs:
                pairs.append(pair)

    walk("", details)
    return " ".join(pairs)


def _clip(text: str, limit: int) -> str:
    """Cut *after* redaction: a secret cut in half might no longer look like one."""
    return text if len(text) <= limit else text[:limit] + "…"


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
