"""``kubestack ask`` with an LLM configured: the model may only summarise the numbered evidence of the offline
answer (live checks against a real Redis, runbooks), citing its ids; what it cannot back is dropped and the
offline answer stands. A scripted local endpoint for chosen answers, and the real llama.cpp Gemma server."""

from __future__ import annotations

import asyncio
import json

import yaml

from kubestack.llm import citation_problem, render_claims
from tests.cli import cli_env, run
from tests.services.llm import LlamaServer
from tests.services.scripted_llm import Scripted, openai_reply

SECRET = "Pl4nted-Ask-Pw"
QUESTION = f"why is redis slow? we connect with redis://:{SECRET}@cache-1:6379"


def _agent_yaml(tmp_path, redis_server) -> str:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({"agent": {"name": "ask-llm"}, "targets": [
        {"type": "redis", "name": "cache-ask", "config": {"host": redis_server.host, "port": redis_server.port,
                                                          "password": {"value": redis_server.password}}}]}))
    return str(path)


def _claims(*claims: tuple[list[str], str]) -> str:
    return json.dumps({"claims": [{"ids": ids, "text": text} for ids, text in claims]})


async def _ask(tmp_path, redis_server, base_url: str, model: str, timeout_s: float = 10.0,
               structured: str = "auto") -> dict:
    env = cli_env(KUBESTACK_HOME=str(tmp_path / "home"), KUBESTACK_LLM__PROVIDER="openai",
                  KUBESTACK_LLM__BASE_URL=base_url, KUBESTACK_LLM__MODEL=model,
                  KUBESTACK_LLM__TIMEOUT_S=str(timeout_s), KUBESTACK_LLM__MAX_TOKENS="200",
                  KUBESTACK_LLM__STRUCTURED=structured)
    result = await asyncio.to_thread(run, "ask", QUESTION, "--agent-config", _agent_yaml(tmp_path, redis_server),
                                     "--no-incidents", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stderr
    return json.loads(result.stdout)


async def test_a_cited_summary_is_kept_and_the_model_never_sees_the_secret(
        scripted: Scripted, redis_server, tmp_path) -> None:
    claims = _claims((["R1"], "Slow Redis commands block every other client"),
                     (["R1"], "Check the slow log first, as the runbook says"))
    scripted.replies = [(200, {}, openai_reply(claims), 0.0)]
    answer = await _ask(tmp_path, redis_server, f"{scripted.url}/v1", "scripted-7b")
    cited = "Slow Redis commands block every other client [R1]. Check the slow log first, as the runbook says [R1]."
    assert (answer["summary"], answer["summary_by"]) == (cited, "scripted-7b")
    assert answer["runbooks"][0]["evidence_id"] == "R1"
    [sent] = scripted.received
    assert "[R1] runbook redis/" in sent.body and "cache-ask" in sent.body
    ids = json.loads(sent.body)["response_format"]["json_schema"]["schema"]["properties"]["claims"]["items"]
    assert "R1" in ids["properties"]["ids"]["items"]["enum"]
    assert SECRET not in sent.body and "<redacted>" in sent.body


async def test_an_uncited_or_invented_summary_is_dropped_and_the_offline_answer_stands(
        scripted: Scripted, redis_server, tmp_path) -> None:
    for text, structured, why in [
            ("Redis is slow because the disk is full.", "off", "uncited claim"),
            ("Redis is slow because of a bad deploy [D7].", "off", "cites unknown evidence ids: D7"),
            (_claims((["D7"], "Redis is slow because of a bad deploy")), "auto", "cites unknown evidence ids: D7")]:
        scripted.received.clear()
        scripted.replies = [(200, {}, openai_reply(text), 0.0)]
        answer = await _ask(tmp_path, redis_server, f"{scripted.url}/v1", "scripted-7b", structured=structured)
        assert answer["summary"] is None and answer["summary_by"] == "rules"
        assert any(note.startswith("no LLM summary: answer of scripted-7b rejected: " + why)
                   for note in answer["notes"]), answer["notes"]
        assert answer["checks"][0]["error"] is None and answer["runbooks"], "the offline answer is whole"


async def test_an_unreachable_model_leaves_the_offline_answer(redis_server, tmp_path) -> None:
    answer = await _ask(tmp_path, redis_server, "http://127.0.0.1:1/v1", "nowhere", timeout_s=3)
    assert answer["summary"] is None and answer["runbooks"]
    assert any("no LLM summary: nowhere failed" in note for note in answer["notes"]), answer["notes"]


async def test_the_real_small_model_is_kept_only_when_it_cites_the_evidence(
        llama_server: LlamaServer, scripted: Scripted, redis_server, tmp_path) -> None:
    scripted.upstream = llama_server.base_url
    answer = await _ask(tmp_path, redis_server, f"{scripted.url}/v1", llama_server.model, timeout_s=120,
                        structured="json_object")
    [sent] = scripted.received
    assert sent.status == 200 and SECRET not in sent.body
    said = render_claims(json.loads(sent.answer)["choices"][0]["message"]["content"])
    known = {r["evidence_id"] for r in answer["runbooks"]} | {c["evidence_id"] for c in answer["checks"] if c["error"]}
    known |= {f["evidence_id"] for c in answer["checks"] for f in c["findings"] if f["evidence_id"]}
    problem = citation_problem(said, known)
    if problem is None:
        assert (answer["summary"], answer["summary_by"]) == (said, llama_server.model)
    else:
        assert answer["summary"] is None
        assert f"no LLM summary: answer of {llama_server.model} rejected: {problem}" in answer["notes"]
