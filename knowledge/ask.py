"""``kubestack ask``: a question in plain language answered with live evidence, in the language it was asked in.
Understand what it is about (``question.py``), run the health checks of the matching targets now, read the recent
incidents about them, and rank the runbooks: the knowledge base's search for the question, with the runbooks that
the live findings point at first, each with its title and fix steps in the asker's language (``language.py``).
Works offline; each part that cannot run says why in the answer instead of failing it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from kubestack.agents.config import TargetConfig
from kubestack.agents.targets import TargetCheck, check_target
from kubestack.bus import client_options
from kubestack.contract.events import Finding, Incident, IncidentStatus, Severity
from kubestack.contract.topics import INCIDENTS
from kubestack.errors import KafkaError, KafkaUnavailableError, KubestackError
from kubestack.knowledge.language import label, steps_in, symptom_name, title_in, why
from kubestack.knowledge.question import Question
from kubestack.knowledge.runbook import Runbook
from kubestack.settings import KafkaSettings

log = logging.getLogger(__name__)

CONFIRMED_BOOST = 3
INCIDENTS_TAIL = 500
"""Records read from the end of each incidents partition."""

IncidentSource = Callable[[Question], Awaitable[list[Incident]]]
"""The recent incidents about a question: from Kafka (the CLI) or the API's read model, within a tenant."""


@dataclass
class Answer:
    question: Question
    checks: list[TargetCheck]
    runbooks: list[tuple[str, str, str]]  # id, title (in the question's language), why
    incidents: list[Incident]
    notes: list[str]
    summary: str | None = None
    """An LLM's summary citing the evidence ids below, when one is configured and its answer passed the check."""
    summary_by: str = "rules"
    steps: dict[str, tuple[list[str], str]] = field(default_factory=dict)
    """Runbook id -> (its fix steps, the language they are in: the question's when the runbook is translated)."""

    @property
    def language(self) -> str:
        return self.question.language

    def findings(self) -> list[tuple[str, TargetCheck, Finding | None]]:
        """(evidence id, check, finding or None for a check that failed): the ids the text and the LLM share."""
        loud = [(c, f) for c in self.checks for f in c.findings if f.severity != Severity.INFO]
        failed = [(c, None) for c in self.checks if c.error]
        return [(f"F{n}", c, f) for n, (c, f) in enumerate(loud + failed, start=1)]

    def as_dict(self) -> dict:
        ids = {(c.target, f.rule_id if f else None): eid for eid, c, f in self.findings()}
        return {
            "question": self.question.text, "language": self.language, "middleware": self.question.middleware,
            "instances": list(self.question.instances), "symptoms": list(self.question.symptoms),
            "summary": self.summary, "summary_by": self.summary_by,
            "checks": [{"target": c.target, "kind": c.kind, "error": c.error, "evidence_id": ids.get((c.target, None)),
                        "findings": [f.model_dump(mode="json") | {"evidence_id": ids.get((c.target, f.rule_id))}
                                     for f in c.findings]} for c in self.checks],
            "runbooks": [{"evidence_id": f"R{n}", "id": i, "title": t, "why": w,
                          "steps": self.steps.get(i, ([], "en"))[0], "steps_language": self.steps.get(i, ([], "en"))[1]}
                         for n, (i, t, w) in enumerate(self.runbooks, start=1)],
            "incidents": [{"evidence_id": f"I{n}", "incident_id": i.incident_id, "title": i.title,
                           "status": i.status.value, "severity": i.severity.value, "ts": i.ts.isoformat(),
                           "summary": i.summary} for n, i in enumerate(self.incidents, start=1)],
            "notes": self.notes,
        }

    def as_text(self, steps_per_runbook: int = 3) -> str:
        """The answer for people, in the question's language; the first runbooks carry their first fix steps."""
        q, lang = self.question, self.language
        about = q.middleware or label(lang, "no_middleware")
        if q.instances:
            about += f" ({', '.join(q.instances)})"
        symptoms = ", ".join(symptom_name(lang, s) for s in q.symptoms)
        c, semi = label(lang, "colon"), label(lang, "semicolon")
        lines = [f"{label(lang, 'about')}{c}{about}" + (f"{semi}{label(lang, 'symptoms')}{c}{symptoms}" if symptoms
                                                         else "")]
        if self.summary:
            lines.append(f"{label(lang, 'summary', by=self.summary_by)}{c}{self.summary}")
        lines += self._checks_text()
        if self.incidents:
            lines.append(label(lang, "incidents"))
            lines += [f"  [I{n}] {i.ts:%Y-%m-%d %H:%M} {i.status.value:<8} {i.title} ({i.incident_id})"
                      for n, i in enumerate(self.incidents, start=1)]
        lines.append(label(lang, "runbooks") if self.runbooks else label(lang, "no_runbooks"))
        for n, (rid, title, reason) in enumerate(self.runbooks, start=1):
            lines.append(f"  [R{n}] {rid}: {title}{label(lang, 'open')}{why(lang, reason)}{label(lang, 'close')}")
            steps, _ = self.steps.get(rid, ([], lang))
            if n <= 2 and steps:
                lines.append(f"      {label(lang, 'steps')}{c.rstrip()}")
                lines += [f"        {k}. {step}" for k, step in enumerate(steps[:steps_per_runbook], start=1)]
        lines += [f"{label(lang, 'note')}{c}{note}" for note in self.notes]
        return "\n".join(lines)

    def _checks_text(self) -> list[str]:
        lang, colon = self.language, label(self.language, "colon")
        ids = {(c.target, f.rule_id if f else None): eid for eid, c, f in self.findings()}
        lines = [label(lang, "checks") if self.checks else label(lang, "no_checks")]
        for check in self.checks:
            if check.error:
                lines.append(f"  [{ids[(check.target, None)]}] {check.kind}/{check.target}: "
                             f"{label(lang, 'unreachable')}{colon}{check.error}")
                continue
            loud = [f for f in check.findings if f.severity != Severity.INFO]
            state = label(lang, "findings", n=len(loud)) if loud else label(lang, "healthy")
            lines.append(f"  {check.kind}/{check.target}: {state}")
            for finding in loud:
                lines.append(f"    [{ids[(check.target, finding.rule_id)]}] {finding.severity.value.upper()} "
                             f"{finding.rule_id}: {finding.message}")
                if finding.query:
                    lines.append(f"      {label(lang, 'evidence_from')}{colon}{finding.query.splitlines()[0][:120]}")
        return lines


def targets_for(question: Question, targets: list[TargetConfig]) -> list[TargetConfig]:
    if question.instances:
        return [t for t in targets if t.name in question.instances]
    if question.middleware:
        return [t for t in targets if t.type == question.middleware]
    return []


def kafka_incidents(kafka: KafkaSettings, limit: int = 5, timeout_s: float = 10.0) -> IncidentSource:
    """The recent incidents read from the incidents topic (the CLI, which has no read model)."""

    async def read(question: Question) -> list[Incident]:
        try:
            return await recent_incidents(kafka, question, limit, timeout_s)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise KafkaUnavailableError(f"Kafka at {kafka.bootstrap} is not reachable ({exc or 'timeout'})") from exc
        except Exception as exc:  # aiokafka's own errors: the answer still stands without incidents
            raise KafkaUnavailableError(f"{type(exc).__name__}: {exc}") from exc

    return read


async def recent_incidents(kafka: KafkaSettings, question: Question, limit: int = 5,
                           timeout_s: float = 10.0) -> list[Incident]:
    """The latest revision of the most recent incidents about the question's middleware or instances."""
    consumer = AIOKafkaConsumer(**client_options(kafka), enable_auto_commit=False)
    try:
        await asyncio.wait_for(consumer.start(), timeout_s)
        topic = INCIDENTS.qualified(kafka.topic_prefix)
        if topic not in await consumer.topics():
            return []
        partitions = [TopicPartition(topic, p) for p in range(kafka.partitions_of(INCIDENTS))]  # as made
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp, end in ends.items():
            consumer.seek(tp, max(0, end - INCIDENTS_TAIL))
        latest: dict[str, Incident] = {}
        deadline = asyncio.get_running_loop().time() + timeout_s
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            if asyncio.get_running_loop().time() > deadline:
                break
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    incident = INCIDENTS.decode(record.value)
                    if about(incident, question):
                        latest[incident.incident_id] = incident
    finally:
        await consumer.stop()
    return most_recent(latest.values(), limit)


def most_recent(incidents, limit: int = 5) -> list[Incident]:
    """Open ones first, then the newest."""
    ordered = sorted(incidents, key=lambda i: (i.status == IncidentStatus.RESOLVED, -i.ts.timestamp()))
    return ordered[:limit]


def about(incident: Incident, question: Question) -> bool:
    """Whether the incident concerns the question's instances (or, when it names none, its middleware)."""
    if question.instances:
        return any(r.name in question.instances for r in incident.resources)
    return question.middleware is not None and any(r.kind == question.middleware for r in incident.resources)


def rank_runbooks(hits: list[tuple[str, str]], checks: list[TargetCheck], books: list[Runbook],
                  limit: int = 5) -> list[tuple[str, str, str]]:
    """``hits``: (id, title) from the search, best first. A match that a live finding points at moves up
    ``CONFIRMED_BOOST`` places; the runbooks of the other live findings follow the matches (always shown: the
    target has that problem now, whatever was asked)."""
    fired = [f.rule_id for c in checks for f in c.findings if f.severity != Severity.INFO]
    by_rule: dict[str, list[Runbook]] = {}
    for rule in fired:
        by_rule[rule] = [b for b in books if rule in b.meta.signals.rules]
    pointed = {b.id: rule for rule, found in by_rule.items() for b in found}
    ranked = sorted(enumerate(hits), key=lambda item: item[0] - (CONFIRMED_BOOST if item[1][0] in pointed else 0))
    matching = [(rid, title, "matches the question" + (f"; live check: {pointed[rid]} fired" if rid in pointed else ""))
                for _, (rid, title) in ranked][:limit]
    shown = {rid for rid, _, _ in matching}
    others = []
    for rule, found in by_rule.items():
        for book in found[:1]:
            if book.id not in shown:
                shown.add(book.id)
                others.append((book.id, book.meta.title, f"live check: {rule} fired"))
    return matching + others


def localize(runbooks: list[tuple[str, str, str]], books: list[Runbook],
             language: str) -> tuple[list[tuple[str, str, str]], dict[str, tuple[list[str], str]]]:
    """The ranked runbooks with their titles in ``language``, and each one's fix steps (in it when translated)."""
    by_id = {b.id: b for b in books}
    shown, steps = [], {}
    for rid, title, reason in runbooks:
        book = by_id.get(rid)
        shown.append((rid, title_in(book, language) if book else title, reason))
        if book is not None:
            steps[rid] = steps_in(book, language)
    return shown, steps


async def answer(question: Question, targets: list[TargetConfig], search, books: list[Runbook],
                 incidents: IncidentSource | None, timeout_s: float = 10.0) -> Answer:
    """``search(text, middleware)`` -> [(id, title)] from the knowledge base; ``incidents`` None skips them."""
    notes = []
    chosen = targets_for(question, targets)
    if question.middleware is None:
        notes.append(label(question.language, "no_middleware_note"))
    checks = list(await asyncio.gather(*(check_target(t, timeout_s) for t in chosen)))
    found: list[Incident] = []
    if incidents is not None and (question.middleware or question.instances):
        try:
            found = await incidents(question)
        except KubestackError as exc:
            notes.append(f"{label(question.language, 'incidents_not_read')}{label(question.language, 'colon')}{exc}")
    ranked = rank_runbooks(search(question.text, question.middleware), checks, books)
    runbooks, steps = localize(ranked, books, question.language)
    return Answer(question, checks, runbooks, found, notes, steps=steps)
