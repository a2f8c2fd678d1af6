"""The LLM client every stage that lets a model write uses (the root-cause narrative, ``kubestack ask``): a
llama-index model behind a deadline and a polite retry, and the check its answers must pass to be shown.

An answer is kept only when it passes ``citation_problem``:

- it is not empty;
- every bracket group ``[...]`` in it is a citation, and each of its ids (split on commas, semicolons and
  spaces) is one of the evidence ids given in the prompt: an unknown id rejects the whole answer;
- it is cut into sentences at ``.``, ``!``, ``?``, ``。``, ``！``, ``？`` followed by space or the end, and at
  line breaks; citations opening a piece belong to the sentence before it (``... slow. [e1] Then ...``);
- a sentence *makes a claim* unless it ends with ``:`` (a heading) or has fewer than three words (runs of
  letters; each CJK character counts as one word); every claim must cite at least one id;
- at least one sentence makes a claim.

Unless ``llm.structured`` is off, the model is held to cited claims built per request, in which a citation can
only be one of the evidence ids given, so even a small local model writes cited claims:

- as JSON in a schema (``claims_schema``): one or two claims, each a short text (no brackets, no sentence breaks)
  and one to three citations from an enum; ``render_claims`` makes the narrative text of them (``text [id, id].``);
- or, for llama.cpp's servers, as that text itself under a GBNF grammar (``claims_grammar``): one claim, the same
  bounds; no JSON around it, so a model held token by token writes about 25 tokens instead of 50 to 120.

Either way the text goes through the same check, so an answer outside the form (a server that ignored it, an
invented id) is still rejected. With ``auto`` the first request finds what the server accepts (OpenAI's
``json_schema``, then a ``grammar``, then llama-cpp-python's ``json_object`` with a schema, then free text; a 400, a
422 or an error naming the form moves on) and the client keeps it. A claim opens with three lowercase Latin words
(``CLAIM_PATTERN``), so structured answers are in a Latin script.

Anything else (rejection, timeout, an HTTP error, a 429, malformed JSON, an empty answer) is no answer, with the
reason; the caller keeps its own templated words (``RULES`` names them). A 429 whose Retry-After is short and fits
the time left is retried once. Nothing takes longer than ``timeout_s``. Prompts are redacted by their builders
(``kubestack.redaction``) before they reach ``cited_answer``.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import ollama
import openai
from llama_index.core.llms import LLM, ChatMessage
from pydantic import BaseModel, ValidationError

from kubestack.retryafter import retry_after_s
from kubestack.settings import LlmSettings

log = logging.getLogger(__name__)

RULES = "rules"
"""The narrator of words written from templates, not by a model."""
MAX_RETRY_AFTER_S = 5.0
_DEFAULT_URLS = {"openai": "https://api.openai.com/v1", "ollama": "http://127.0.0.1:11434"}
_LLM_ERRORS = (httpx.HTTPError, openai.APIError, ollama.ResponseError, ValueError, KeyError, TypeError,
               IndexError, AttributeError)
"""What a misbehaving server makes the clients raise: HTTP and API errors, and malformed or unexpected JSON
(``json.JSONDecodeError`` and pydantic's ``ValidationError`` are ``ValueError``\\ s)."""

_deadline: contextvars.ContextVar[float] = contextvars.ContextVar("llm_deadline", default=float("inf"))


FREE_TEXT = "off"
GRAMMAR = "grammar"
_DIALECTS = {"openai": ("json_schema", GRAMMAR, "json_object"), "ollama": ("format",)}
_JSON_DIALECTS = ("json_schema", "json_object", "format")
MAX_CLAIMS = 2
MAX_CITATIONS = 3
_CLAIM_TAIL = 50
CLAIM_PATTERN = rf'^[A-Z]?[a-z]{{1,20}} [a-z]{{1,20}} [a-z]{{1,20}}[^\[\]\n"\\.!?。！？]{{0,{_CLAIM_TAIL}}}$'
"""A claim's text: one short sentence without its full stop, brackets or quotes (its citations come apart) that
opens with three words, so that a small model writes a sentence rather than an id or a path; every part is
bounded, so that a claim cannot outrun ``llm.max_tokens``."""
_CLAIM_GBNF = rf'[A-Z]? [a-z]{{1,20}} " " [a-z]{{1,20}} " " [a-z]{{1,20}} [^\[\]\n"\\.!?。！？]{{0,{_CLAIM_TAIL}}}'
"""``CLAIM_PATTERN`` in GBNF."""


@dataclass
class LlmClient:
    """A llama-index LLM with what ``cited_answer`` needs to use it safely, and how the server takes a schema."""

    llm: LLM = field(repr=False)
    name: str
    timeout_s: float
    redact_ips: bool = False
    dialects: tuple[str, ...] = (FREE_TEXT,)
    """How to ask for cited claims, in the order to try them; the first the server accepts stays alone."""


class _RetryAfterTransport(httpx.AsyncBaseTransport):
    """Retries a 429 once when its Retry-After is short and fits before the answer's deadline."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if response.status_code != 429:
            return response
        delay = retry_after_s(response.headers.get("retry-after"))
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


def build_llm(settings: LlmSettings) -> LlmClient | None:
    """The configured model, or None when no model is configured (words stay templated). Makes no request."""
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
    if settings.structured == FREE_TEXT:
        dialects: tuple[str, ...] = (FREE_TEXT,)
    elif settings.provider == "ollama":
        dialects = _DIALECTS["ollama"]
    elif settings.structured == "auto":
        dialects = (*_DIALECTS["openai"], FREE_TEXT)
    else:
        dialects = (settings.structured,)
    return LlmClient(llm=llm, name=settings.model or settings.provider, timeout_s=settings.timeout_s,
                     redact_ips=settings.redact_ips, dialects=dialects)


def claims_schema(ids: list[str]) -> dict[str, Any]:
    """The JSON schema of an answer whose citations can only be ``ids`` (strict-mode compatible)."""
    claim = {"type": "object", "additionalProperties": False, "required": ["ids", "text"], "properties": {
        "ids": {"type": "array", "minItems": 1, "maxItems": MAX_CITATIONS, "items": {"type": "string", "enum": ids}},
        "text": {"type": "string", "pattern": CLAIM_PATTERN}}}
    return {"type": "object", "additionalProperties": False, "required": ["claims"], "properties": {
        "claims": {"type": "array", "minItems": 1, "maxItems": MAX_CLAIMS, "items": claim}}}


def claims_grammar(ids: list[str]) -> str:
    """The GBNF grammar (llama.cpp) of a narrative of one claim whose citations can only be ``ids``: the text
    ``citation_problem`` reads, ``claim text [id, id].``, with nothing around it to generate."""
    choices = " | ".join(json.dumps(i) for i in ids)
    return (f'root ::= {_CLAIM_GBNF} " [" id (", " id){{0,{MAX_CITATIONS - 1}}} "]."\n'
            f"id ::= {choices}\n")


class _Claim(BaseModel):
    ids: list[str]
    text: str


class _Claims(BaseModel):
    claims: list[_Claim]


def render_claims(content: str) -> str:
    """The narrative text of a structured answer: each claim once, as ``text [id, id].``; raises ``ValueError``
    when ``content`` is not an answer of that shape. Ids are not checked here: ``citation_problem`` does."""
    sentences: list[str] = []
    for claim in _Claims.model_validate_json(content).claims:
        sentence = f"{' '.join(claim.text.split()).rstrip(' .;,:')} [{', '.join(dict.fromkeys(claim.ids))}]."
        if sentence not in sentences:
            sentences.append(sentence)
    return " ".join(sentences)


def _request(dialect: str, known: set[str]) -> dict[str, Any]:
    """The request arguments that hold the model to ``claims_schema`` in ``dialect``."""
    schema = claims_schema(sorted(known))
    if dialect == "json_schema":
        return {"response_format": {"type": "json_schema",
                                    "json_schema": {"name": "cited_claims", "strict": True, "schema": schema}}}
    if dialect == "json_object":
        return {"response_format": {"type": "json_object", "schema": schema}}
    if dialect == "format":
        return {"format": schema}
    if dialect == GRAMMAR:
        return {"extra_body": {"grammar": claims_grammar(sorted(known))}}
    return {}


def _refused(exc: Exception) -> bool:
    """The server refused the request's form, not the request: a 400 or 422, or an error naming the form (the
    llama-cpp-python server answers an unknown response_format type with a 500 that does)."""
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (400, 422) or "response_format" in str(exc)
    return isinstance(exc, ollama.ResponseError) and (exc.status_code in (400, 422) or "format" in str(exc))


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


async def cited_answer(messages: list[ChatMessage], known: set[str], llm: LlmClient) -> tuple[str | None, str]:
    """(the model's answer, "") when it comes within the timeout and passes ``citation_problem``; else (None, why).
    ``messages`` must already be redacted."""
    started = time.monotonic()
    token = _deadline.set(started + llm.timeout_s)
    try:
        async with asyncio.timeout(llm.timeout_s):
            dialect, content = await _ask(messages, known, llm)
    except TimeoutError:
        return None, f"no answer from {llm.name} within {llm.timeout_s:.0f}s"
    except _LLM_ERRORS as exc:
        return None, f"{llm.name} failed: {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        _deadline.reset(token)
    text = content
    if dialect in _JSON_DIALECTS and content:
        try:
            text = render_claims(content)
        except ValidationError as exc:
            return None, f"answer of {llm.name} rejected: not the cited claims asked for: {str(exc)[:160]}"
    problem = citation_problem(text, known)
    if problem is not None:
        return None, f"answer of {llm.name} rejected: {problem}"
    log.debug("%s answered in %.1fs", llm.name, time.monotonic() - started)
    return text, ""


async def _ask(messages: list[ChatMessage], known: set[str], llm: LlmClient,
               dialects: tuple[str, ...] = ()) -> tuple[str, str]:
    """(the dialect answered in, the answer's content): the next dialect while the server refuses one's form."""
    dialect, *rest = dialects or llm.dialects
    try:
        response = await llm.llm.achat(messages, **_request(dialect, known))
    except _LLM_ERRORS as exc:
        if not rest or not _refused(exc):
            raise
        log.info("%s refuses %s answers (%s): trying %s", llm.name, dialect, type(exc).__name__, rest[0])
        return await _ask(messages, known, llm, tuple(rest))
    if len(llm.dialects) > 1:
        log.info("%s takes %s answers", llm.name, dialect)
        llm.dialects = (dialect,)
    return dialect, (response.message.content or "").strip()
