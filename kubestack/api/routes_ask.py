"""Questions and runbooks: ``POST /ask`` answers a question in plain language in the language it was asked in, with
live checks of the API's targets, the tenant's recent incidents and the runbooks (``kubestack.knowledge.ask``, as
``kubestack ask`` does); ``GET /runbooks`` searches the runbooks, ``GET /runbooks/{middleware}/{slug}`` shows
one. Any role's token; a question is audited (``question.asked``), and what a viewer gets is redacted."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from kubestack.api.auth import Principal
from kubestack.api.context import ApiContext, context, principal
from kubestack.api.errors import NotFoundError
from kubestack.api.knowledge import Knowledge
from kubestack.api.queries import list_incidents
from kubestack.api.views import ErrorBody, shown_to
from kubestack.contract.events import Incident
from kubestack.errors import KafkaUnavailableError
from kubestack.knowledge.ask import Answer, about, answer, most_recent
from kubestack.knowledge.language import ENGLISH, detect_language, steps_in, title_in
from kubestack.knowledge.question import Question, understand
from kubestack.redaction import redact

log = logging.getLogger(__name__)

INCIDENTS_SCANNED = 200
"""Latest incidents of the tenant looked through for the ones a question is about."""

ERRORS = {401: {"model": ErrorBody, "description": "No token, or an unknown one"},
          422: {"model": ErrorBody, "description": "The body or a parameter is invalid (the detail says which)"}}

router = APIRouter(prefix="/api/v1", tags=["knowledge"], responses=ERRORS)

Ctx = Annotated[ApiContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
Language = Literal["en", "zh"]


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=1000, description="e.g. 'Redis 为什么变慢了?' or 'why are MySQL "
                                                                      "queries slow?'")
    live: bool = Field(default=True, description="Run the health checks of the targets the question is about")
    incidents: bool = Field(default=True, description="Include the tenant's recent incidents about it")
    timeout_s: float = Field(default=10.0, ge=1, le=30, description="Seconds per live check")

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("question must not be blank")
        return value.strip()


class AskCheck(BaseModel):
    target: str
    kind: str
    error: str | None = Field(description="Why the target could not be checked")
    evidence_id: str | None
    findings: list[dict[str, Any]]


class AskRunbook(BaseModel):
    evidence_id: str
    id: str
    title: str = Field(description="In the question's language when the runbook has it")
    why: str
    steps: list[str] = Field(description="The runbook's fix steps")
    steps_language: str = Field(description="The language of the steps: the question's when the runbook is "
                                            "translated, else en")


class AskIncident(BaseModel):
    evidence_id: str
    incident_id: str
    title: str
    status: str
    severity: str
    ts: str
    summary: str


class AskResponse(BaseModel):
    question: str
    language: str = Field(description="The language of the question, and of the answer: en or zh")
    middleware: str | None
    instances: list[str]
    symptoms: list[str]
    summary: str | None = Field(description="An LLM's cited summary, when one is configured and passed the check")
    summary_by: str
    checks: list[AskCheck]
    runbooks: list[AskRunbook]
    incidents: list[AskIncident]
    notes: list[str]
    text: str = Field(description="The whole answer as text, in the question's language")


class RunbookHit(BaseModel):
    id: str
    middleware: str
    title: str
    score: float | None = Field(default=None, description="Search score (with a query)")
    snippet: str | None = None


class RunbookList(BaseModel):
    language: str
    items: list[RunbookHit]


class RunbookView(BaseModel):
    id: str
    middleware: str
    title: str
    language: str
    steps: list[str]
    steps_language: str
    symptoms: list[str]
    actions: list[str]
    related: list[str]
    markdown: str


def knowledge(request: Request) -> Knowledge:
    """The application's runbooks and index (opened on first use)."""
    state = request.app.state
    if getattr(state, "knowledge", None) is None:
        state.knowledge = Knowledge.of(context(request).settings)
    return state.knowledge


Books = Annotated[Knowledge, Depends(knowledge)]


@router.post("/ask", response_model=AskResponse)
async def ask(ctx: Ctx, who: Caller, books: Books, body: AskRequest) -> AskResponse:
    """Answer a question about the middleware in the language it is asked in (English or Chinese): live checks of
    the API's targets it names (of the caller's tenant), the tenant's recent incidents about them, and the runbooks
    with their fix steps. Audited as ``question.asked``; redacted below the operator role."""
    targets = ctx.targets
    visible = targets.config.targets if who.sees(targets.tenant) else []
    question = understand(body.question, {t.name: t.type for t in visible})
    hits = [(h.id, h.title) for h in await books.search(question.text, question.middleware)]
    source = _read_model_incidents(ctx, who) if body.incidents else None
    result = await answer(question, visible if body.live else [], lambda _text, _kind: hits,
                          list(books.books.values()), source, body.timeout_s)
    await _summarise(ctx, result)
    await _audit(ctx, who, result)
    return shown_to(who.role, AskResponse.model_validate(result.as_dict() | {"text": result.as_text()}))


def _read_model_incidents(ctx: ApiContext, who: Principal):
    async def read(question: Question) -> list[Incident]:
        rows = list_incidents(ctx.store.reader(), who.tenant, limit=INCIDENTS_SCANNED)
        return most_recent((i for i in rows if about(i, question)))

    return read


async def _summarise(ctx: ApiContext, result: Answer) -> None:
    if ctx.settings.llm.provider == "none":
        return
    from kubestack.knowledge.explain import explain  # the LLM clients load only when one is configured
    from kubestack.llm import build_llm

    summary, by = await explain(result, build_llm(ctx.settings.llm))
    if summary is not None:
        result.summary, result.summary_by = summary, by
    else:
        result.notes.append(f"no LLM summary: {by}")


async def _audit(ctx: ApiContext, who: Principal, result: Answer) -> None:
    """Who asked what (redacted), and which targets were checked on their behalf."""
    details = {"role": who.role.value, "question": redact(result.question.text), "language": result.language,
               "middleware": result.question.middleware, "checked": [c.target for c in result.checks]}
    try:
        await ctx.publisher.audit(actor=who.name, action="question.asked", subject_id=result.question.middleware
                                  or "question", details=details, tenant=ctx.audit_tenant(who))
    except KafkaUnavailableError as exc:  # the answer is read-only: it still goes out, the gap is logged
        log.error("question of %s not audited: %s", who.name, exc)


@router.get("/runbooks", response_model=RunbookList)
async def runbooks(who: Caller, books: Books,
                   q: Annotated[str | None, Query(max_length=1000, description="Search text (any language)")] = None,
                   middleware: Annotated[str | None, Query(max_length=100)] = None,
                   language: Annotated[Language | None, Query(description="Titles in (default: q's)")] = None,
                   limit: Annotated[int, Query(ge=1, le=100)] = 10) -> RunbookList:
    """Search the runbooks (hybrid BM25 and vector search, English and Chinese), or list them without ``q``."""
    lang = language or (detect_language(q) if q else ENGLISH)
    known = books.books
    if q and q.strip():
        items = [RunbookHit(id=h.id, middleware=h.middleware, title=title_in(known[h.id], lang) if h.id in known
                            else h.title, score=h.score, snippet=h.snippet)
                 for h in await books.search(q, middleware, k=limit)]
    else:
        items = [RunbookHit(id=b.id, middleware=b.meta.middleware, title=title_in(b, lang)) for b in known.values()
                 if middleware is None or b.meta.middleware == middleware][:limit]
    return RunbookList(language=lang, items=items)


@router.get("/runbooks/{middleware}/{slug}", response_model=RunbookView,
            responses={404: {"model": ErrorBody, "description": "No such runbook"}})
def runbook(who: Caller, books: Books, middleware: str, slug: str,
            language: Annotated[Language, Query(description="Title and steps in")] = ENGLISH) -> RunbookView:
    """One runbook (its id is ``<middleware>/<slug>``): its title and fix steps in ``language`` (when it has
    them), and its whole markdown."""
    runbook_id = f"{middleware}/{slug}"
    book = books.books.get(runbook_id)
    if book is None:
        raise NotFoundError(f"no runbook {runbook_id!r}: GET /api/v1/runbooks lists them")
    steps, steps_language = steps_in(book, language)
    return RunbookView(id=book.id, middleware=book.meta.middleware, title=title_in(book, language), language=language,
                       steps=steps, steps_language=steps_language, symptoms=list(book.meta.symptoms),
                       actions=list(book.meta.actions), related=list(book.meta.related), markdown=book.to_markdown())
