"""``kubestack ask`` with an LLM configured: the model may only summarise the numbered evidence of the offline
answer (live checks against a real Redis, runbooks), citing its ids; what it cannot back is dropped and the
offline answer stands. A scripted local endpoint for chosen answers, and the real llama.cpp Gemma server.

Every run of the module shares one home whose knowledge index is built once, before the first run (``ask`` builds
a missing one itself: tests/test_ask.py), so the answers of a test can be asked side by side."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import pytest
import yaml

from kubestack.knowledge.index import build, default_folder
from kubestack.llm import citation_problem, render_claims
from tests.cli import cli_env, run
from tests.services.llm import LlamaServer
from tests.services.scripted_llm import Scripted, openai_reply, scripted_server

SECRET = "Pl4nted-Ask-Pw"
QUESTION = f"why is redis slow? we connect with redis://:{SECRET}@cache-1:6379"


@pytest.fixture(scope="module")
def home(redis_server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's home: the agent config on the session's Redis and the knowledge index, built once."""
    home = tmp_path_factory.mktemp("ask-llm")
    (home / "agent.yaml").write_text(yaml.safe_dump({"agent": {"name": "ask-llm"}, "targets": [
        {"type": "redis", "name": "cache-ask", "config": {"host": redis_server.host, "port": redis_server.port,
                                                          "password": {"value": redis_server.password}}}]}))
    build(default_folder(home / "home"))
    return home


def _claims(*claims: tuple[list[str], str]) -> str:
    return json.dumps({"claims": [{"ids": ids, "text": text} for ids, text in claims]})


async def _ask(home: Path, base_url: str, model: str, timeout_s: float = 10.0, structured: str = "auto") -> dict:
    env = cli_env(KUBESTACK_HOME=str(home / "home"), KUBESTACK_LLM__PROVIDER="openai",
                  KUBESTACK_LLM__BASE_URL=base_url, KUBESTACK_LLM__MODEL=model,
                  KUBESTACK_LLM__TIMEOUT_S=str(timeout_s), KUBESTACK_LLM__MAX_TOKENS="200",
                  KUBESTACK_LLM__STRUCTURED=structured)
    result = await asyncio.to_thread(run, "ask", QUESTION, "--agent-config", str(home / "agent.yaml"),
                                     "--no-incidents", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stderr
    return json.loads(result.stdout)


async def test_a_cited_summary_is_kept_and_the_model_never_sees_the_secret(scripted: Scripted, home: Path) -> None:
    claims = _claims((["R1"], "Slow Redis commands block every other client"),
                     (["R1"], "Check the slow log first, as the runbook says"))
    scripted.replies = [(200, {}, openai_reply(claims), 0.0)]
    answer = await _ask(home, f"{scripted.url}/v1", "scripted-7b")
    cited = "Slow Redis commands block every other client [R1]. Check the slow log first, as the runbook says [R1]."
    assert (answer["summary"], answer["summary_by"]) == (cited, "scripted-7b")
    assert answer["runbooks"][0]["evidence_id"] == "R1"
    [sent] = scripted.received
    assert "[R1] runbook redis/" in sent.body and "cache-ask" in sent.body
    ids = json.loads(sent.body)["response_format"]["json_schema"]["schema"]["properties"]["claims"]["items"]
    assert "R1" in ids["properties"]["ids"]["items"]["enum"]
    assert SECRET not in sent.body and "<redacted>" in sent.body


async def test_an_uncited_or_invented_summary_is_dropped_and_the_offline_answer_stands(home: Path) -> None:
    cases = [("Redis is slow because the disk is full.", "off", "uncited claim"),
             ("Redis is slow because of a bad deploy [D7].", "off", "cites unknown evidence ids: D7"),
             (_claims((["D7"], "Redis is slow because of a bad deploy")), "auto", "cites unknown evidence ids: D7")]
    # one endpoint per answer, the three asked side by side: each answers at once, the deadline only bounds a
    # process that waits for the CPU behind the other two
    async with contextlib.AsyncExitStack() as stack:
        servers = [await stack.enter_async_context(scripted_server()) for _ in cases]
        for server, (text, _, _) in zip(servers, cases):
            server.replies = [(200, {}, openai_reply(text), 0.0)]
        answers = await asyncio.gather(*(_ask(home, f"{server.url}/v1", "scripted-7b", timeout_s=60,
                                              structured=structured)
                                         for server, (_, structured, _) in zip(servers, cases)))
    for server, answer, (_, _, why) in zip(servers, answers, cases):
        assert len(server.received) == 1
        assert answer["summary"] is None and answer["summary_by"] == "rules"
        assert any(note.startswith("no LLM summary: answer of scripted-7b rejected: " + why)
                   for note in answer["notes"]), answer["notes"]
        assert answer["checks"][0]["error"] is None and answer["runbooks"], "the offline answer is whole"


async def test_an_unreachable_model_leaves_the_offline_answer(home: Path) -> None:
    # a closed port refuses at once: the deadline is only there so that a loaded machine cannot turn the refusal
    # into a timeout (3 s did, at load 30)
    answer = await _ask(home, "http://127.0.0.1:1/v1", "nowhere", timeout_s=30)
    assert answer["summary"] is None and answer["runbooks"]
    assert any("no LLM summary: nowhere failed" in note for note in answer["notes"]), answer["notes"]


async def test_the_real_small_model_is_kept_only_when_it_cites_the_evidence(
        llama_server: LlamaServer, scripted: Scripted, home: Path) -> None:
    scripted.upstream = llama_server.base_url
    answer = await _ask(home, f"{scripted.url}/v1", llama_server.model, timeout_s=120,
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
