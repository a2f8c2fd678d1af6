"""``POST /api/v1/ask`` and the runbook and topology reads, over real HTTP against the API on the session's broker
with a real Redis as its target: a question in English or Chinese is answered in its language with live evidence
and the tenant's incidents, any role may ask, another tenant gets neither the targets nor the incidents, every
question is audited, and a bad body is a 4xx that says what is wrong."""

from __future__ import annotations

import re
import uuid

import pytest
import pytest_asyncio

from kubestack.contract.events import AuditEntry
from kubestack.contract.topics import AUDIT_ENTRIES
from tests.kafka_io import consume_all
from tests.services.ask_stack import CACHE, AskStack, ask_stack

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio(loop_scope="session")]

HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(kafka, tmp_path_factory) -> AskStack:
    async with ask_stack(kafka, tmp_path_factory.mktemp("ask-api")) as served:
        yield served


async def ask(stack: AskStack, token: str, body) -> tuple[int, dict]:
    async with stack.api.client(token) as client:
        response = await client.post("/api/v1/ask", json=body, timeout=120)
    return response.status_code, response.json()


async def test_a_chinese_question_is_answered_in_chinese_with_live_evidence_and_incidents(stack: AskStack) -> None:
    status, body = await ask(stack, "vic", {"question": f"{CACHE} 为什么变慢了?"})
    assert status == 200, body
    assert (body["language"], body["middleware"], body["instances"]) == ("zh", "redis", [CACHE])
    [check] = body["checks"]
    assert check["error"] is None, "the real Redis answered"
    live = {f["rule_id"]: f for f in check["findings"]}
    assert live["redis.no_maxmemory"]["evidence_id"] == "F1" and live["redis.no_maxmemory"]["evidence"]["used_memory"]
    assert [i["incident_id"] for i in body["incidents"]] == [stack.incident.incident_id]
    first = body["runbooks"][0]
    assert first["id"] == "redis/slow-commands" and first["title"].startswith("Redis 慢命令")
    assert first["steps_language"] == "zh" and all(HAN.search(s) for s in first["steps"])
    text = body["text"]
    assert text.startswith(f"问题涉及：redis ({CACHE})；症状：变慢")
    assert "[F1] WARNING redis.no_maxmemory" in text and "[I1]" in text and "处理步骤：" in text


async def test_an_english_question_is_answered_in_english(stack: AskStack) -> None:
    status, body = await ask(stack, "opal", {"question": f"why are {CACHE} commands slow?", "incidents": False})
    assert status == 200, body
    assert body["language"] == "en" and body["incidents"] == []
    titles = {r["id"]: r["title"] for r in body["runbooks"]}
    assert titles["redis/slow-commands"] == "Redis slow commands and latency spikes (SLOWLOG, KEYS, big keys)"
    assert {r["steps_language"] for r in body["runbooks"]} == {"en"}
    assert body["text"].startswith(f"About: redis ({CACHE}); symptoms: slow") and not HAN.search(body["text"])


async def test_without_live_checks_only_the_runbooks_and_incidents_answer(stack: AskStack) -> None:
    status, body = await ask(stack, "vic", {"question": "redis 内存满了", "live": False})
    assert status == 200 and body["checks"] == []
    assert body["runbooks"][0]["id"] == "redis/memory-full" and "实时检查：没有配置匹配的目标" in body["text"]


async def test_another_tenant_gets_neither_the_targets_nor_the_incidents(stack: AskStack) -> None:
    status, body = await ask(stack, "acme-vic", {"question": f"{CACHE} 为什么变慢了?"})
    assert status == 200, body
    assert body["checks"] == [] and body["incidents"] == [] and body["instances"] == []
    assert body["language"] == "zh" and body["runbooks"], "the runbooks are for everyone"


async def test_every_question_is_audited_with_who_asked(stack: AskStack) -> None:
    marker = uuid.uuid4().hex[:8]
    status, _ = await ask(stack, "vic", {"question": f"why is redis slow {marker}?", "live": False})
    assert status == 200
    records = await consume_all(stack.api.kafka, stack.api.topic(AUDIT_ENTRIES), f"test-ask-{uuid.uuid4().hex[:8]}")
    entries = [e for e in (AuditEntry.model_validate_json(r.value) for r in records)
               if e.action == "question.asked" and marker in e.details["question"]]
    [entry] = entries
    assert entry.actor == "vic" and entry.details["role"] == "viewer" and entry.details["language"] == "en"
    assert entry.tenant == "default"


@pytest.mark.parametrize(("body", "status", "error", "says"), [
    ({}, 422, "invalid_request", "body.question"),
    ({"question": "   "}, 422, "invalid_request", "question must not be blank"),
    ({"question": "x" * 1001}, 422, "invalid_request", "at most 1000 characters"),
    ({"question": "why?", "timeout_s": 0}, 422, "invalid_request", "body.timeout_s"),
    ({"question": "why?", "verbose": True}, 422, "invalid_request", "body.verbose"),
    ("not an object", 422, "invalid_request", "body"),
])
async def test_a_bad_body_is_a_clear_4xx(stack: AskStack, body, status, error, says) -> None:
    code, answer = await ask(stack, "vic", body)
    assert (code, answer["error"]) == (status, error), answer
    assert says in str(answer["detail"])


async def test_malformed_json_and_no_token_are_refused(stack: AskStack) -> None:
    async with stack.api.client("vic") as client:
        broken = await client.post("/api/v1/ask", content=b"{not json", headers={"content-type": "application/json"})
    async with stack.api.client() as client:
        anonymous = await client.post("/api/v1/ask", json={"question": "why?"})
    assert broken.status_code == 400 and broken.json()["error"] == "malformed_json"
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "unauthorized"


async def test_runbooks_are_searched_and_shown_in_the_asked_language(stack: AskStack) -> None:
    async with stack.api.client("vic") as client:
        found = (await client.get("/api/v1/runbooks", params={"q": "redis 内存满了", "limit": 3})).json()
        listed = (await client.get("/api/v1/runbooks", params={"middleware": "kafka", "limit": 100})).json()
        shown = (await client.get("/api/v1/runbooks/redis/memory-full", params={"language": "zh"})).json()
        missing = await client.get("/api/v1/runbooks/redis/no-such-thing")
        bad_language = await client.get("/api/v1/runbooks/redis/memory-full", params={"language": "fr"})
    assert found["language"] == "zh" and found["items"][0]["id"] == "redis/memory-full"
    assert found["items"][0]["title"].startswith("Redis 内存满了")
    assert listed["language"] == "en" and {i["middleware"] for i in listed["items"]} == {"kafka"}
    assert shown["steps_language"] == "zh" and shown["markdown"].startswith("---\nid: redis/memory-full")
    assert missing.status_code == 404 and "no runbook 'redis/no-such-thing'" in missing.json()["detail"]
    assert bad_language.status_code == 422


async def test_topology_neighbours_within_the_tenant(stack: AskStack) -> None:
    async with stack.api.client("vic") as client:
        by_key = (await client.get("/api/v1/topology/neighbours", params={"resource": stack.cache.key})).json()
        by_name = (await client.get("/api/v1/topology/neighbours", params={"resource": stack.app.name})).json()
    async with stack.api.client("acme-vic") as client:
        hidden = (await client.get("/api/v1/topology/neighbours", params={"resource": stack.cache.key})).json()
    assert [(n["resource"], n["relation"], n["direction"]) for n in by_key["neighbours"]] == [
        (stack.app.key, "client", "called_by")]
    assert by_name["resource"] == stack.app.key
    assert [(n["resource"], n["direction"]) for n in by_name["neighbours"]] == [(stack.cache.key, "calls")]
    assert hidden == {"resource": stack.cache.key, "known": False, "neighbours": []}
