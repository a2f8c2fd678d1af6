"""The LLM narrative: a real llama.cpp server with Gemma 3 270M held to the schema of cited claims on incidents
recorded from the fault tests (tests/data/narrative), and a scripted local HTTP server for what a real one cannot
produce on demand (a hosted server's json_schema, forged citations, 429 with Retry-After, a slow answer,
malformed JSON, chosen answers)."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import Incident, IncidentSignal, RcaReport, Severity, SignalKind
from kubestack.knowledge.runbook import load_runbooks
from kubestack.pipeline.rootcause import rank_incident_causes
from kubestack.llm import MAX_CLAIMS, RULES, build_llm, citation_problem, claims_grammar
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
CITED = "Redis cache-1 ran out of memory because maxmemory was lowered to 1 MB [E1]. Writes then failed with OOM " \
        "errors [E2, E3]."
AS_REPORTED = CITED.replace("[E1]", f"[{CHANGE_ID}]").replace("[E2, E3]", f"[{FULL_ID}, {APP_ID}]")
RECORDED = Path(__file__).parent / "data" / "narrative"


def _recorded(fault: str) -> tuple[Incident, RcaReport]:
    data = json.loads((RECORDED / f"{fault}.json").read_text())
    return Incident.model_validate(data["incident"]), RcaReport.model_validate(data["report"])


def _claims(*claims: tuple[list[str], str]) -> str:
    return json.dumps({"claims": [{"ids": ids, "text": text} for ids, text in claims]})


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
    messages, numbers = build_prompt(REPORT, INCIDENT, TITLES, ips=True)
    text = "\n".join(m.content for m in messages)
    _assert_no_secret(text)
    assert numbers == {"E1": CHANGE_ID, "E2": FULL_ID, "E3": APP_ID}
    assert text.startswith("The root cause is redis maxmemory lowered on -/db-1/redis/cache-1, evidence E1 E2")
    assert "E1: anomaly config-risk:redis.maxmemory_lowered, critical, +0s: " in text
    assert "old=67108864 new=1048576" in text and "used_memory=1040000" in text, "details as key=value pairs"
    assert CHANGE_ID not in text, "evidence is numbered in the prompt, not named by its event id"
    assert TITLES[REPORT.hypotheses[0].runbooks[0]] in text
    assert text.index("Cause 2 is log/checkout") > text.index("The root cause is")


def test_settings_need_a_model_and_none_needs_nothing() -> None:
    assert build_llm(LlmSettings()) is None
    with pytest.raises(ValueError, match="llm.model is required"):
        LlmSettings(provider="ollama")


async def test_without_a_model_the_rules_narrate() -> None:
    assert await narrate(REPORT, INCIDENT, TITLES, None) == (REPORT.narrative, RULES)


# --- a real model -----------------------------------------------------------------------------------------


async def test_a_real_small_model_writes_a_cited_claim_under_the_grammar_and_sees_no_secret(
        llama_server: LlamaServer, scripted: Scripted) -> None:
    """The llama-cpp-python server refuses OpenAI's json_schema form, takes the GBNF grammar, and Gemma 3 270M
    then writes one claim that cites only the evidence given."""
    scripted.upstream = llama_server.base_url
    settings = LlmSettings(provider="openai", base_url=f"{scripted.url}/v1", model=llama_server.model,
                           timeout_s=LOCAL_TIMEOUT_S, max_tokens=200, redact_ips=True)
    llm = build_llm(settings)
    narrative, narrator = await narrate(REPORT, INCIDENT, TITLES, llm)
    refused, sent = scripted.received
    assert json.loads(refused.body)["response_format"]["type"] == "json_schema" and refused.status >= 400
    assert llm.dialects == ("grammar",), "the client keeps the form the server took"
    request = json.loads(sent.body)
    assert request["grammar"] == claims_grammar(["E1", "E2", "E3"]) and sent.status == 200, sent.answer[:500]
    assert "response_format" not in request
    _assert_no_secret(sent.body)
    assert narrator == llama_server.model, json.loads(sent.answer)["choices"][0]["message"]["content"]
    assert citation_problem(narrative, {CHANGE_ID, FULL_ID, APP_ID}) is None
    assert narrative.count("].") == 1, f"one claim: {narrative}"


LOCAL_TIMEOUT_S = 120.0
"""Generous: the CI machine is shared; bench/narrative measures the time."""
LOCAL_CASES = ("redis-maxmemory-lowered", "mariadb-connections", "postgres-connections")


async def test_a_real_small_model_narrates_recorded_fault_incidents(
        llama_server: LlamaServer, caplog: pytest.LogCaptureFixture) -> None:
    """Sampled words: most, not all, pass (bench/narrative measures the rate); each one kept cites only the
    incident's own evidence, by event id."""
    caplog.set_level(logging.INFO, LOGGER)
    llm = build_llm(LlmSettings(provider="openai", base_url=llama_server.base_url, model=llama_server.model,
                                timeout_s=LOCAL_TIMEOUT_S, max_tokens=200, structured="grammar"))
    accepted = []
    for fault in LOCAL_CASES:
        incident, report = _recorded(fault)
        narrative, narrator = await narrate(report, incident, TITLES, llm)
        if narrator == llama_server.model:
            assert citation_problem(narrative, {s.event_id for s in incident.signals}) is None, narrative
            accepted.append(fault)
    assert len(accepted) >= 2, f"accepted only {accepted}:\n{caplog.text}"


# --- scripted answers ----------------------------------------------------------------------------------------


def _ollama(content: str) -> str:
    return json.dumps({"model": "scripted", "created_at": "2026-11-23T10:01:00Z",
                       "message": {"role": "assistant", "content": content}, "done": True, "done_reason": "stop"})


def _narrator(server: Scripted, provider: str = "openai", timeout_s: float = 5.0, structured: str = "off"):
    base = f"{server.url}/v1" if provider == "openai" else server.url
    return build_llm(LlmSettings(provider=provider, base_url=base, model="scripted-7b", timeout_s=timeout_s,
                                 api_key="sk-test-key-not-secret-enough", structured=structured))


async def test_a_hosted_server_gets_the_schema_as_json_schema_and_its_claims_become_the_narrative(
        scripted: Scripted) -> None:
    scripted.replies = [(200, {}, _openai(_claims((["E1"], "Redis ran out of memory after maxmemory was lowered"),
                                                  (["E2", "E3", "E2"], "Writes then failed with OOM errors"))), 0.0)]
    llm = _narrator(scripted, structured="auto")
    assert await narrate(REPORT, INCIDENT, TITLES, llm) == (
        f"Redis ran out of memory after maxmemory was lowered [{CHANGE_ID}]. Writes then failed with OOM errors "
        f"[{FULL_ID}, {APP_ID}].", "scripted-7b")
    [sent] = scripted.received
    form = json.loads(sent.body)["response_format"]
    assert form["type"] == "json_schema" and form["json_schema"]["strict"] is True
    assert form["json_schema"]["schema"]["properties"]["claims"]["items"]["properties"]["ids"]["items"]["enum"] == [
        "E1", "E2", "E3"]
    assert llm.dialects == ("json_schema",)
    _assert_no_secret(sent.body)


async def test_ollama_gets_the_schema_as_its_format(scripted: Scripted) -> None:
    scripted.replies = [(200, {}, _ollama(_claims((["E1"], "The maxmemory limit was lowered to one megabyte"))), 0.0)]
    narrative, narrator = await narrate(REPORT, INCIDENT, TITLES, _narrator(scripted, "ollama", structured="auto"))
    assert (narrative, narrator) == (f"The maxmemory limit was lowered to one megabyte [{CHANGE_ID}].", "scripted-7b")
    [sent] = scripted.received
    assert json.loads(sent.body)["format"]["properties"]["claims"]["maxItems"] == MAX_CLAIMS


@pytest.mark.parametrize(("answer", "why"), [
    (_claims((["E1", "E9"], "Memory ran out after maxmemory was lowered")), "cites unknown evidence ids: E9"),
    (_claims((["ev-deploy-42"], "A deploy broke the cache writes")), "cites unknown evidence ids: ev-deploy-42"),
    (_claims(([CHANGE_ID], "Memory ran out after maxmemory was lowered")), f"cites unknown evidence ids: {CHANGE_ID}"),
    (_claims(([], "Memory ran out after maxmemory was lowered")), "cites unknown evidence ids: (an empty bracket)"),
    (_claims((["E1"], "Memory ran out [E7] after the change")), "cites unknown evidence ids: E7"),
    (_claims((["E1"], "Memory ran out. The network is bad too")), "uncited claim: 'Memory ran out.'"),
    (_claims((["E1"], "E1 E2")), "no claim in the answer"),
    ('{"claims": [{"text": "Memory ran out after maxmemory was lowered"}]}', "not the cited claims asked for"),
    ('{"narrative": "Memory ran out [E1]."}', "not the cited claims asked for"),
    ("Memory ran out after maxmemory was lowered [E1].", "not the cited claims asked for"),
    ("", "empty answer"),
])
async def test_forged_or_uncited_claims_are_rejected(scripted: Scripted, caplog: pytest.LogCaptureFixture,
                                                     answer: str, why: str) -> None:
    """What a server that ignored the schema, or a forger, could send: the rendered claims meet the same check."""
    caplog.set_level(logging.INFO, LOGGER)
    scripted.replies = [(200, {}, _openai(answer), 0.0)]
    assert await narrate(REPORT, INCIDENT, TITLES, _narrator(scripted, structured="json_schema")) == (
        REPORT.narrative, RULES)
    assert f"rejected: {why}" in caplog.text


@pytest.mark.parametrize(("answer", "why"), [
    ("Memory ran out after maxmemory was lowered [E1, E9].", "cites unknown evidence ids: E9"),
    ("Memory ran out after maxmemory was lowered.", "uncited claim: 'Memory ran out after maxmemory was lowered.'"),
    (_claims((["E1"], "Memory ran out after maxmemory was lowered")), "cites unknown evidence ids"),
])
async def test_a_server_that_ignored_the_grammar_meets_the_same_check(
        scripted: Scripted, caplog: pytest.LogCaptureFixture, answer: str, why: str) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    scripted.replies = [(200, {}, _openai(answer), 0.0)]
    assert await narrate(REPORT, INCIDENT, TITLES, _narrator(scripted, structured="grammar")) == (
        REPORT.narrative, RULES)
    assert f"rejected: {why}" in caplog.text
    assert json.loads(scripted.received[0].body)["grammar"] == claims_grammar(["E1", "E2", "E3"])


async def test_a_server_refusing_every_schema_form_gets_free_text(scripted: Scripted) -> None:
    refusal = (400, {}, '{"error": {"message": "response_format is not supported"}}', 0.0)
    scripted.replies = [refusal, (400, {}, '{"error": {"message": "Unrecognized request argument: grammar"}}', 0.0),
                        refusal, (200, {}, _openai(CITED), 0.0)]
    llm = _narrator(scripted, structured="auto")
    assert await narrate(REPORT, INCIDENT, TITLES, llm) == (AS_REPORTED, "scripted-7b")
    forms = [json.loads(r.body).get("response_format", {}).get("type") for r in scripted.received]
    assert forms == ["json_schema", None, "json_object", None] and llm.dialects == ("off",)
    assert "grammar" in json.loads(scripted.received[1].body)


@pytest.mark.parametrize(("provider", "path", "reply"), [
    ("openai", "/v1/chat/completions", _openai), ("ollama", "/api/chat", _ollama)])
async def test_a_well_cited_answer_is_kept(scripted: Scripted, provider: str, path: str, reply) -> None:
    scripted.replies = [(200, {}, reply(CITED), 0.0)]
    assert await narrate(REPORT, INCIDENT, TITLES, _narrator(scripted, provider)) == (AS_REPORTED, "scripted-7b")
    [sent] = scripted.received
    assert sent.path == path
    _assert_no_secret(sent.body)


@pytest.mark.parametrize(("provider", "reply"), [("openai", _openai), ("ollama", _ollama)])
async def test_a_short_retry_after_is_respected_once(scripted: Scripted, provider: str, reply) -> None:
    scripted.replies = [(429, {"Retry-After": "1"}, '{"error": "slow down"}', 0.0), (200, {}, reply(CITED), 0.0)]
    assert await narrate(REPORT, INCIDENT, TITLES, _narrator(scripted, provider)) == (AS_REPORTED, "scripted-7b")
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
    ("openai", 200, _openai("Memory ran out [E1] after a deploy [deploy-42]."),
     "rejected: cites unknown evidence ids: deploy-42"),
])
async def test_bad_answers_fall_back_to_the_rules(scripted: Scripted, caplog: pytest.LogCaptureFixture,
                                                  provider: str, status: int, body: str, why: str) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    scripted.replies = [(status, {}, body, 0.0)]
    assert await narrate(REPORT, INCIDENT, TITLES, _narrator(scripted, provider)) == (REPORT.narrative, RULES)
    assert why in caplog.text and f"incident {REPORT.incident_id} from rules" in caplog.text
    assert "sk-test-key-not-secret-enough" not in caplog.text
