"""The answer to a plain-language question in a model's words, when an LLM is configured: the live findings,
recent incidents and runbooks of the offline answer become numbered evidence (``F1``, ``I1``, ``R1``), the model
may only cite those, and an answer that cites anything else, or claims without citing, is dropped for the
offline one (``kubestack.llm.citation_problem``). Everything sent is redacted first."""

from __future__ import annotations

import json
import logging

from llama_index.core.llms import ChatMessage, MessageRole

from kubestack.knowledge.ask import Answer
from kubestack.llm import RULES, LlmClient, cited_answer
from kubestack.redaction import redact, redact_value

log = logging.getLogger(__name__)

MAX_ITEMS = 6
MAX_CHARS = 300

SYSTEM = ("You answer on-call engineers' questions about their middleware. Use only the numbered evidence given. "
          "Answer in the language of the question, in two to four short sentences: what is wrong, why, and what "
          "to do first. End every sentence with the ids of the evidence it rests on in square brackets, exactly as "
          "given, e.g. [{example}]. Cite nothing else in brackets.")


def build_messages(answer: Answer, *, ips: bool = False) -> tuple[list[ChatMessage], set[str]]:
    """The chat messages for ``answer`` and the evidence ids they give; everything in them redacted."""
    evidence: list[tuple[str, str]] = []
    for eid, check, finding in answer.findings()[:MAX_ITEMS]:
        if finding is None:
            evidence.append((eid, f"live check of {check.kind}/{check.target} failed: {check.error}"))
            continue
        details = json.dumps(redact_value(finding.evidence, ips=ips), default=str, ensure_ascii=False)
        evidence.append((eid, f"live check of {check.kind}/{check.target}: {finding.severity.value} "
                              f"{finding.rule_id}: {finding.message} Details: {_clip(details)}"))
    for n, incident in enumerate(answer.incidents[:MAX_ITEMS], start=1):
        evidence.append((f"I{n}", f"incident {incident.incident_id} ({incident.status.value}, "
                                  f"{incident.severity.value}, {incident.ts:%Y-%m-%d %H:%M}Z): {incident.title}. "
                                  f"{_clip(incident.summary)}"))
    for n, (rid, title, why) in enumerate(answer.runbooks[:MAX_ITEMS], start=1):
        evidence.append((f"R{n}", f"runbook {rid}: {title} ({why})"))
    checked = ", ".join(f"{c.kind}/{c.target}" for c in answer.checks) or "none"
    lines = [f"Question: {answer.question.text}", f"Targets checked live: {checked}", "", "Evidence:"]
    lines += [f"[{eid}] {_clip(text)}" for eid, text in evidence]
    example = evidence[0][0] if evidence else "F1"
    messages = [ChatMessage(role=MessageRole.SYSTEM, content=redact(SYSTEM.format(example=example), ips=ips)),
                ChatMessage(role=MessageRole.USER, content=redact("\n".join(lines), ips=ips))]
    return messages, {eid for eid, _ in evidence}


async def explain(answer: Answer, llm: LlmClient | None) -> tuple[str | None, str]:
    """(the model's cited summary or None, who wrote it or why there is none)."""
    if llm is None:
        return None, RULES
    messages, known = build_messages(answer, ips=llm.redact_ips)
    if not known:
        return None, "no evidence to explain"
    text, why = await cited_answer(messages, known, llm)
    if text is None:
        log.info("answer from the evidence only: %s", why)
        return None, why
    return text, llm.name


def _clip(text: str) -> str:
    """Cut *after* redaction: a secret cut in half might no longer look like one."""
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + "…"
