"""The optional LLM narrative of a root-cause report: words that explain the ranking, never change it.

The prompt holds only redacted evidence (``redaction.redact``): the ranked hypotheses with their evidence ids,
each evidence item's summary and small details, the runbooks' ids and titles. The answer is kept only when it
passes ``citation_problem``:

- it is not empty;
- every bracket group ``[...]`` in it is a citation, and each of its ids (split on commas, semicolons and
  spaces) is one of the evidence ids given in the prompt: an unknown id rejects the whole answer;
- it is cut into sentences at ``.``, ``!``, ``?``, ``。``, ``！``, ``？`` followed by space or the end, and at
  line breaks; citations opening a piece belong to the sentence before it (``... slow. [e1] Then ...``);
- a sentence *makes a claim* unless it ends with ``:`` (a heading) or has fewer than three words (runs of
  letters; each CJK character counts as one word); every claim must cite at least one id;
- at least one sentence makes a claim.

Anything else (rejection, timeout, an HTTP error, a 429, malformed JSON, an empty answer) keeps the templated
narrative with narrator ``"rules"``, logged at INFO with the reason. A 429 whose Retry-After is short and fits
the time left is retried once. Nothing takes longer than ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import json
import logging
import re
import time
from dataclasses import dataclass, field

import httpx
import ollama
import openai
from llama_index.core.llms import LLM, ChatMessage, MessageRole

from kubestack.contract.events import Incident, IncidentSignal, RcaReport
from kubestack.pipeline.redaction import redact, redact_value
from kubestack.settings import LlmSettings

log = logging.getLogger(__name__)

RULES = "rules"
MAX_RETRY_AFTER_S = 5.0
MAX_EVIDENCE = 12
MAX_DETAILS_CHARS = 300
_DEFAULT_URLS = {"openai": "https://api.openai.com/v1", "ollama": "http://127.0.0.1:11434"}
_LLM_ERRORS = (httpx.HTTPError, openai.APIError, ollama.ResponseError, ValueError, KeyError, TypeError,
               IndexError, AttributeError)
"""What a misbehaving server makes the clients raise: HTTP and API errors, and malformed or unexpected JSON
(``json.JSONDecodeError`` and pydantic's ``ValidationError`` are ``ValueError``\\ s)."""

_deadline: contextvars.ContextVar[float] = contextvars.ContextVar("narrative_deadline", default=float("inf"))


@dataclass(frozen=True)
class NarrationModel:
    """A llama-index LLM with what ``narrate`` needs to use it safely."""

    llm: LLM = field(repr=False)
    name: str
    timeout_s: float
    redact_ips: bool = False


class _RetryAfterTransport(httpx.AsyncBaseTransport):
    """Retries a 429 once when its Retry-After is short and fits before the narrative's deadline."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if response.status_code != 429:
            return response
        delay = _retry_after_s(response.headers.get("retry-after"))
        left = _deadline.get() - time.monotonic()
        if delay is None or delay > MAX_RETRY_AFTER_S or delay >= left - 0.1:
            log.info("LLM server rate-limited us (Retry-After %s, %.1fs left): giving up",
                     response.headers.get("retry-after"), left)
            return response
        await response.aclose()
        log.info("LLM server rate-limited us: retrying once in %.1fs", delay)
        await asyncio.sleep(delay)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _retry_after_s(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def build_narrator(settings: LlmSettings) -> NarrationModel | None:
    """The configured model, or None when narratives stay templated. Makes no request."""
    if settings.provider == "none":
        return None
    url = (settings.base_url or _DEFAULT_URLS[settings.provider]).rstrip("/")
    http = httpx.AsyncClient(transport=_RetryAfterTransport(), timeout=settings.timeout_s)
    if settings.provider == "openai":
        from llama_index.llms.openai_like import OpenAILike

        key = settings.api_key.get_secret_value() if settings.api_key else "not-needed"
        llm: LLM = OpenAILike(model=settings.model, api_base=url, api_key=key, is_chat_model=True,
                              context_window=8192, max_tokens=settings.max_tokens, temperature=0.2,
                              timeout=settings.timeout_s, max_retries=0, async_http_client=http)
    else:
        from llama_index.llms.ollama import Ollama

        headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"} if settings.api_key else {}
        client = ollama.AsyncClient(host=url, timeout=settings.timeout_s, headers=headers,
                                    transport=_RetryAfterTransport())
        llm = Ollama(model=settings.model, base_url=url, request_timeout=settings.timeout_s, context_window=8192,
                     temperature=0.2, additional_kwargs={"num_predict": settings.max_tokens}, async_client=client)
    return NarrationModel(llm=llm, name=settings.model or settings.provider, timeout_s=settings.timeout_s,
                          redact_ips=settings.redact_ips)


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


_CITATION = re.compile(r"\[([^\[\]]*)\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])(?:\s+|$)|(?<=[。！？])|\n+")
_LEADING_CITATIONS = re.compile(r"(?:\s*\[[^\[\]]*\])+")
_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|[^\W\d_\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]+")


def citation_problem(text: str, known_ids: set[str]) -> str | None:
    """Why ``text`` may not stand as a narrative, or None when every claim cites known evidence (module doc)."""
    if not text.strip():
        return "empty answer"
    groups = [[i for i in re.split(r"[\s,;]+", group) if i] for group in _CITATION.findall(text)]
    unknown = sorted({i for ids in groups for i in ids if i not in known_ids})
    if unknown or not all(groups):
        return f"cites unknown evidence ids: {', '.join(unknown[:5]) or '(an empty bracket)'}"
    sentences: list[str] = []
    for piece in (p.strip(" \t-*•") for p in _SENTENCE_END.split(text)):
        leading = _LEADING_CITATIONS.match(piece)
        if leading and sentences:
            sentences[-1] += " " + leading.group(0).strip()
            piece = piece[leading.end():].strip()
        if piece:
            sentences.append(piece)
    claims = [s for s in sentences if _is_claim(s)]
    if not claims:
        return "no claim in the answer"
    uncited = next((s for s in claims if not _CITATION.search(s)), None)
    if uncited is not None:
        return f"uncited claim: {uncited[:80]!r}"
    return None


def _is_claim(sentence: str) -> bool:
    bare = _CITATION.sub("", sentence).strip()
    return not bare.endswith((":", "：")) and len(_WORD.findall(bare)) >= 3


async def narrate(report: RcaReport, incident: Incident, runbook_titles: dict[str, str],
                  llm: NarrationModel | None) -> tuple[str, str]:
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


async def cited_answer(messages: list[ChatMessage], known: set[str], llm: NarrationModel) -> tuple[str | None, str]:
    """(the model's answer, "") when it comes within the timeout and passes ``citation_problem``; else (None, why).
    ``messages`` must already be redacted."""
    started = time.monotonic()
    token = _deadline.set(started + llm.timeout_s)
    try:
        async with asyncio.timeout(llm.timeout_s):
            response = await llm.llm.achat(messages)
        text = (response.message.content or "").strip()
    except TimeoutError:
        return None, f"no answer from {llm.name} within {llm.timeout_s:.0f}s"
    except _LLM_ERRORS as exc:
        return None, f"{llm.name} failed: {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        _deadline.reset(token)
    problem = citation_problem(text, known)
    if problem is not None:
        return None, f"answer of {llm.name} rejected: {problem}"
    log.debug("%s answered in %.1fs", llm.name, time.monotonic() - started)
    return text, ""
