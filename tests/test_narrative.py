"""The LLM narrative: a real llama.cpp server with Gemma 3 270M, and a scripted local HTTP server for what a real
one cannot produce on demand (429 with Retry-After, a slow answer, malformed JSON, chosen answers)."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone

import pytest

from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import Incident, IncidentSignal, RcaReport, Severity, SignalKind
from kubestack.knowledge.runbook import load_runbooks
from kubestack.pipeline.rootcause import rank_incident_causes
from kubestack.llm import RULES, build_llm, citation_problem
from kubestack.pipeline.narrative import build_prompt, narrate
from kubestack.pipeline.runbookmatch import RunbookMatcher
from kubestack.plugins.registry import action_specs
from kubestack.settings import LlmSettings
from tests.services.llm import LlamaServer
from tests.services.scripted_llm import Scripted, openai_reply as _openai

LOGGER = "kubestack.pipeline.narrative"
LLM_LOGGER = "kubestack.llm"
SRC = Source(agent="worker", host="w1")
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
CACHE = ResourceRef(kind="redis", name="cache-1", host="db-1")
APP = ResourceRef(kind="service", name="checkout", host="app-1")
SECRETS = ("Pl4nted-Redis-Pw", "Pl4nted-DSN-Pw", "oncall.lead@example.com", "AKIAPLANTEDKEY123456")
BOOKS = load_runbooks()
TITLES = {book.id: book.meta.title for book in BOOKS}
CHANGE_ID, FULL_ID, APP_ID = "ev-cfg-7f3a", "ev-mem-91c2", "ev-log-0b4d"


def _incident() -> Incident:
    signals = [
        IncidentSignal(event_id=CHANGE_ID, kind=SignalKind.ANOMALY, name="config-risk:redis.maxmemory_lowered",
                       resource=CACHE.key, first_seen=T0, last_seen=T0 + timedelta(seconds=5),
                       severity=Severity.CRITICAL, score=1.0,
                       summary=f"maxmemory lowered from 64mb to 1mb by CONFIG SET (requirepass {SECRETS[0]})",
                       details={"changes": [{"key": "maxmemory", "old": "67108864", "new": "1048576"},
                                            {"key": "requirepass", "old": SECRETS[0], "new": SECRETS[0]}]}),
        IncidentSignal(event_id=FULL_ID, kind=SignalKind.FINDING, name="redis.memory_near_limit",
                       resource=CACHE.key, first_seen=T0 + timedelta(seconds=20), last_seen=T0 + timedelta(seconds=60),
                       severity=Severity.CRITICAL, summary="used_memory is 99% of maxmemory; writes fail with OOM",
                       details={"evidence": {"used_memory": 1040000, "maxmemory": 1048576, "password": SECRETS[0],
                                             "aws_access_key_id": SECRETS[3]}}),
        IncidentSignal(event_id=APP_ID, kind=SignalKind.ANOMALY, name="log/checkout:new_template",
                       resource=APP.key, first_seen=T0 + timedelta(seconds=30), last_seen=T0 + timedelta(seconds=60),
                       severity=Severity.WARNING, score=0.8,
                       summary=f"new log template: cache write failed, paging {SECRETS[2]}",
                       details={"template": "OOM command not allowed when used memory > 'maxmemory'",
                                "line": f"redis://:{SECRETS[1]}@cache-1:6379 OOM command not allowed"}),
    ]
    return Incident(source=SRC, resource=CACHE, incident_id="inc-narrative", title="Redis cache-1 rejects writes",
                    severity=Severity.CRITICAL, opened_at=T0, resources=[CACHE, APP],
                    member_event_ids=[s.event_id for s in signals], signals=signals)


INCIDENT = _incident()
REPORT: RcaReport = rank_incident_causes(INCIDENT, SRC, RunbookMatcher(BOOKS), action_specs,
                                         T0 + timedelta(minutes=1)).report
CITED = (f"Redis cache-1 ran out of memory because maxmemory was lowered to 1 MB [{CHANGE_ID}]. Writes then "
         f"failed with OOM errors [{FULL_ID}, {APP_ID}].")


def _assert_no_secret(sent: str) -> None:
    assert sent and "<redacted>" in sent
    for secret in SECRETS:
        assert secret not in sent, f"{secret} was sent to the model"


# --- the validator -----------------------------------------------------------------------------------------


KNOWN = {"e1", "e2"}


@pytest.mark.parametrize("text", [
    "Redis ran out of memory [e1]. Writes failed afterwards [e1, e2].",
    "Summary:\n- maxmemory was lowered first [e1]\n- then writes failed with OOM [e2]",
    "The change came first. [e1] Then memory filled up! [e2]",
    "内存上限被调低 [e1]。随后写入失败 [e2]。",
    "Root cause: maxmemory lowered [e1;e2].",
])
def test_cited_answers_pass(text: str) -> None:
    assert citation_problem(text, KNOWN) is None


@pytest.mark.parametrize(("text", "why"), [
    ("", "empty answer"),
    ("   \n", "empty answer"),
    ("Redis ran out of memory [e1]. It is probably the network.", "uncited claim: 'It is probably the network.'"),
    ("Redis ran out of memory [e3].", "cites unknown evidence ids: e3"),
    ("Redis ran out of memory [e1, e9].", "cites unknown evidence ids: e9"),
    ("Redis ran out of memory [].", "cites unknown evidence ids: (an empty bracket)"),
    ("Redis ran out of memory [e1] [ ].", "cites unknown evidence ids: (an empty bracket)"),
    ("[e1] [e2]", "no claim in the answer"),
    ("内存不足 [e1]。主库先变化。", "uncited claim: '主库先变化。'"),
])
def test_uncited_or_unknown_answers_are_rejected(text: str, why: str) -> None:
    assert citation_problem(text, KNOWN) == why


def test_prompt_holds_ranked_redacted_evidence_only() -> None:
    messages, known = build_prompt(REPORT, INCIDENT, TITLES, ips=True)
    text = "\n".join(m.content for m in messages)
    _assert_no_secret(text)
    assert known == {CHANGE_ID, FULL_ID, APP_ID}
    assert f"[{CHANGE_ID}]" in text and "redis.maxmemory_lowered" in text and "67108864" in text
    assert REPORT.hypotheses[0].runbooks[0] in text and TITLES[REPORT.hypotheses[0].runbooks[0]] in text
    assert text.index(REPORT.hypotheses[0].cause) < text.index(REPORT.hypotheses[1].cause)


def test_settings_need_a_model_and_none_needs_nothing() -> None:
    assert build_llm(LlmSettings()) is None
    with pytest.raises(ValueError, match="llm.model is required"):
        LlmSettings(provider="ollama")


async def test_without_a_model_the_rules_narrate() -> None:
    assert await narrate(REPORT, INCIDENT, TITLES, None) == (REPORT.narrative, RULES)


# --- a real model -----------------------------------------------------------------------------------------


async def test_a_real_small_model_answers_or_is_rejected_and_sees_no_secret(
        llama_server: LlamaServer, scripted: Scripted, caplog: pytest.LogCaptureFixture) -> None:
    scripted.upstream = llama_server.base_url
    timeout_s = 120.0
    settings = LlmSettings(provider="openai", base_url=f"{scripted.url}/v1", model=llama_server.model,
                           timeout_s=timeout_s, max_tokens=96, redact_ips=True)
    caplog.set_level(logging.INFO, LOGGER)
    started = time.monotonic()
    narrative, narrator = await narrate(REPORT, INCIDENT, TITLES, build_llm(settings))
    assert time.monotonic() - started < timeout_s + 1
    [sent] = scripted.received
    assert sent.path == "/v1/chat/completions" and sent.status == 200, sent.answer[:500]
    _assert_no_secret(sent.body)
    answer = json.loads(sent.answer)["choices"][0]["message"]["content"].strip()
    problem = citation_problem(answer, {CHANGE_ID, FULL_ID, APP_ID})
    if problem is None:
        assert (narrative, narrator) == (answer, llama_server.model)
    else:
        assert (narrative, narrator) == (REPORT.narrative, RULES)
        assert f"rejected: {problem}" in caplog.text


# --- scripted answers ----------------------------------------------------------------------------------------


def _ollama(content: str) -> str:
    return json.dumps({"model": "scripted", "created_at": "2026-11-23T10:01:00Z",
                       "message": {"role": "assistant", "content": content}, "done": True, "done_reason": "stop"})


def _narrator(server: Scripted, provider: str = "openai", timeout_s: float = 5.0):
    base = f"{server.url}/v1" if provider == "openai" else server.url
    return build_llm(LlmSettings(provider=provider, base_url=base, model="scripted-7b", timeout_s=timeout_s,
                                      api_key="sk-test-key-not-secret-enough"))


@pytest.mark.parametrize(("provider", "path", "reply"), [
    ("openai", "/v1/chat/completions", _openai), ("ollama", "/api/chat", _ollama)])
async def test_a_well_cited_answer_is_kept(scripted: Scripted, provider: str, path: str, reply) -> None:
    scripted.replies = [(200, {}, reply(CITED), 0.0)]
    assert await narrate(REPORT, INCIDENT, TITLES, _narrator(scripted, provider)) == (CITED, "scripted-7b")
    [sent] = scripted.received
    assert sent.path == path
    _assert_no_secret(sent.body)


@pytest.mark.parametrize(("provider", "reply"), [("openai", _openai), ("ollama", _ollama)])
async def test_a_short_retry_after_is_respected_once(scripted: Scripted, provider: str, reply) -> None:
    scripted.replies = [(429, {"Retry-After": "1"}, '{"error": "slow down"}', 0.0), (200, {}, reply(CITED), 0.0)]
    assert await narrate(REPORT, INCIDENT, TITLES, _narrator(scripted, provider)) == (CITED, "scripted-7b")
    assert [r.status for r in scripted.received] == [429, 200]


@pytest.mark.parametrize(("retry_after", "why"), [("120", "Retry-After 120"), (None, "Retry-After None")])
async def test_a_long_or_missing_retry_after_gives_up(scripted: Scripted, caplog: pytest.LogCaptureFixture,
                                                       retry_after: str | None, why: str) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    caplog.set_level(logging.INFO, LLM_LOGGER)  # the client says why it gave up on the 429
    headers = {"Retry-After": retry_after} if retry_after else {}
    scripted.replies = [(429, headers, '{"error": {"message": "rate limited"}}', 0.0), (200, {}, _openai(CITED), 0.0)]
    assert await narrate(REPORT, INCIDENT, TITLES, _narrator(scripted)) == (REPORT.narrative, RULES)
    assert len(scripted.received) == 1
    assert why in caplog.text and "RateLimitError" in caplog.text


@pytest.mark.parametrize("provider", ["openai", "ollama"])
async def test_a_slow_server_does_not_block_past_the_timeout(scripted: Scripted, caplog: pytest.LogCaptureFixture,
                                                              provider: str) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    scripted.replies = [(200, {}, _openai(CITED) if provider == "openai" else _ollama(CITED), 4.0)]
    started = time.monotonic()
    assert await narrate(REPORT, INCIDENT, TITLES, _narrator(scripted, provider, timeout_s=1.0)) == (
        REPORT.narrative, RULES)
    assert time.monotonic() - started < 2.0
    assert "from rules" in caplog.text and ("within 1s" in caplog.text or "Timeout" in caplog.text)


@pytest.mark.parametrize(("provider", "status", "body", "why"), [
    ("openai", 200, '{"id": "c1", "choices": [{"message": {"content": "Redis', "failed: JSONDecodeError"),
    ("ollama", 200, '{"message": {"content": ', "failed: JSONDecodeError"),
    ("openai", 200, '{"unexpected": true}', "failed: TypeError"),
    ("openai", 500, '{"error": "model crashed"}', "InternalServerError"),
    ("ollama", 503, '{"error": "server busy"}', "ResponseError"),
    ("openai", 200, _openai(""), "rejected: empty answer"),
    ("ollama", 200, _ollama("Redis is slow because the network is bad."), "rejected: uncited claim"),
    ("openai", 200, _openai(f"Memory ran out [{CHANGE_ID}] after a deploy [deploy-42]."),
     "rejected: cites unknown evidence ids: deploy-42"),
])
async def test_bad_answers_fall_back_to_the_rules(scripted: Scripted, caplog: pytest.LogCaptureFixture,
                                                  provider: str, status: int, body: str, why: str) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    scripted.replies = [(status, {}, body, 0.0)]
    assert await narrate(REPORT, INCIDENT, TITLES, _narrator(scripted, provider)) == (REPORT.narrative, RULES)
    assert why in caplog.text and f"incident {REPORT.incident_id} from rules" in caplog.text
    assert "sk-test-key-not-secret-enough" not in caplog.text
