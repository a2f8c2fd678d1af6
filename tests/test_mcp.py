"""``kubestack mcp`` driven by the MCP SDK's own client, over stdio (the real command in a subprocess) and
streamable HTTP, against the real stack: the API over the session's Kafka broker with incidents in it, and a real
Redis the questions check live. Every tool call is an API request with the caller's token: an operator's approval
is accepted and audited with ``via: mcp``, a viewer's is refused (and audited as a refusal), another tenant sees
nothing, and a bad argument is a tool error that says what is wrong."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import httpx
import httpx2
import pytest
import pytest_asyncio
import uvicorn
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from kubestack.contract.events import AuditEntry, RemediationDecision
from kubestack.contract.topics import AUDIT_ENTRIES, REMEDIATION_DECISIONS
from kubestack.mcp.http import http_app
from kubestack.mcp.server import build_server
from tests.cli import KUBESTACK, cli_env
from tests.kafka_io import consume_all
from tests.services.ask_stack import APP_HOST, CACHE, AskStack, ask_stack
from tests.services.process import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio(loop_scope="session")]

TOOLS = {"list_incidents", "show_incident", "topology_neighbours", "ask", "search_runbooks", "list_proposals",
         "approve_proposal", "reject_proposal"}
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(kafka, tmp_path_factory) -> AskStack:
    async with ask_stack(kafka, tmp_path_factory.mktemp("mcp-stack")) as served:
        yield served


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def mcp_url(stack: AskStack) -> str:
    """The MCP server on streamable HTTP, in this process, in front of the stack's API."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(http_app(build_server(stack.api.url), "127.0.0.1"), host="127.0.0.1",
                                           port=port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}/mcp"
    server.should_exit = True
    await task


def over_http(url: str, token: str) -> Client:
    return Client(streamable_http_client(url, http_client=httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"}, timeout=120)))


def over_stdio(stack: AskStack, token_name: str, tmp_path) -> Client:
    env = cli_env(KUBESTACK_API_URL=stack.api.url, KUBESTACK_API_TOKEN=stack.api.tokens[token_name],
                  KUBESTACK_HOME=str(tmp_path / "home"))
    return Client(StdioServerParameters(command=KUBESTACK, args=["mcp"], env=env))


def payload(result) -> dict:
    assert not result.is_error, result.content[0].text
    return json.loads(result.content[0].text)


def error_text(result) -> str:
    assert result.is_error, f"expected a tool error, got {result.content[0].text[:300]}"
    return result.content[0].text


async def audit_entries(stack: AskStack, **match) -> list[AuditEntry]:
    records = await consume_all(stack.api.kafka, stack.api.topic(AUDIT_ENTRIES), f"test-mcp-{uuid.uuid4().hex[:8]}")
    found = [AuditEntry.model_validate_json(r.value) for r in records]
    return [e for e in found if all(getattr(e, k) == v for k, v in match.items())]


async def test_over_stdio_a_question_is_answered_with_live_evidence_and_incidents_show_their_causes(
        stack: AskStack, tmp_path) -> None:
    async with over_stdio(stack, "vic", tmp_path) as client:
        assert {t.name for t in (await client.list_tools()).tools} == TOOLS
        listed = payload(await client.call_tool("list_incidents", {"status": "open"}))["incidents"]
        [brief] = [i for i in listed if i["incident_id"] == stack.incident.incident_id]
        assert brief["top_cause"]["cause"] == "maxmemory lowered below used memory"
        assert brief["pending_proposals"] == 2 and brief["resources"] == [f"redis/{CACHE}"]

        shown = payload(await client.call_tool("show_incident", {"incident_id": stack.incident.incident_id}))
        assert [c["rank"] for c in shown["causes"]] == [1, 2]
        assert shown["causes"][0]["evidence_ids"] == ["e1"] and shown["causes"][0]["confidence"] == 0.87
        assert [s["event_id"] for s in shown["signals"]] == ["e1", "e2"]  # the timeline, with what each says
        assert shown["signals"][0]["summary"] == "maxmemory lowered from 2gb to 100mb"
        assert {p["state"] for p in shown["proposals"]} == {"pending"}

        answer = payload(await client.call_tool("ask", {"question": f"why is {CACHE} so slow?"}))
        [check] = answer["checks"]
        assert check["target"] == CACHE and check["error"] is None, "the real Redis was checked now"
        live = {f["rule_id"]: f for f in check["findings"]}
        assert live["redis.no_maxmemory"]["evidence_id"] == "F1"
        assert live["redis.no_maxmemory"]["evidence"]["used_memory"] > 0, "a value read from the server"
        assert [i["incident_id"] for i in answer["incidents"]] == [stack.incident.incident_id]
        assert answer["language"] == "en" and "[F1] WARNING redis.no_maxmemory" in answer["text"]

        resources = {r.uri: r for r in (await client.list_resources()).resources}
        assert "runbook://redis/slow-commands" in resources
        read = await client.read_resource("runbook://redis/slow-commands")
        assert read.contents[0].text.startswith("---\nid: redis/slow-commands")


async def test_over_stdio_without_a_token_the_command_says_what_is_missing(tmp_path) -> None:
    from tests.cli import run

    result = await asyncio.to_thread(run, "mcp", env=cli_env(KUBESTACK_HOME=str(tmp_path)))
    assert result.returncode == 1
    assert "no API token" in result.stderr and result.stdout == ""


async def test_a_chinese_question_over_http_is_answered_in_chinese(stack: AskStack, mcp_url: str) -> None:
    async with over_http(mcp_url, stack.api.tokens["vic"]) as client:
        answer = payload(await client.call_tool("ask", {"question": f"{CACHE} 为什么变慢了?"}))
    assert answer["language"] == "zh"
    assert answer["checks"][0]["error"] is None and answer["checks"][0]["findings"]
    assert "实时检查" in answer["text"] and "处理手册" in answer["text"]
    assert all(HAN.search(r["title"]) for r in answer["runbooks"]), [r["title"] for r in answer["runbooks"]]


async def test_an_operator_approves_over_http_and_the_api_audits_it(stack: AskStack, mcp_url: str) -> None:
    target = stack.proposals[0].proposal_id
    async with over_http(mcp_url, stack.api.tokens["opal"]) as client:
        decided = payload(await client.call_tool("approve_proposal", {"proposal_id": target,
                                                                      "reason": "memory back to 2gb, as planned"}))
        again = error_text(await client.call_tool("approve_proposal", {"proposal_id": target, "reason": "twice"}))
    assert decided["state"] == "approved" and decided["decision"]["actor"] == "opal"
    assert "409" in again and "not pending" in again
    [entry] = await audit_entries(stack, action="proposal.approved", subject_id=target)
    assert entry.actor == "opal" and entry.details["via"] == "mcp" and entry.details["role"] == "operator"
    decisions = await consume_all(stack.api.kafka, stack.api.topic(REMEDIATION_DECISIONS),
                                  f"test-mcp-{uuid.uuid4().hex[:8]}")
    [event] = [d for d in (RemediationDecision.model_validate_json(r.value) for r in decisions)
               if d.proposal_id == target]
    assert event.via == "mcp" and event.signature, "signed like every decision the API makes"


async def test_a_viewer_cannot_approve_or_reject_and_the_refusal_is_audited(stack: AskStack, mcp_url: str) -> None:
    target = stack.proposals[1].proposal_id
    async with over_http(mcp_url, stack.api.tokens["vic"]) as client:
        refused = error_text(await client.call_tool("approve_proposal", {"proposal_id": target, "reason": "go"}))
        rejected = error_text(await client.call_tool("reject_proposal", {"proposal_id": target, "reason": "no"}))
        still = payload(await client.call_tool("list_proposals", {"incident_id": stack.incident.incident_id}))
    assert "403" in refused and "needs the operator role" in refused and "'vic' is viewer" in refused
    assert "403" in rejected
    assert {p["proposal_id"]: p["state"] for p in still["proposals"]}[target] == "pending"
    denials = await audit_entries(stack, action="api.denied", actor="vic")
    assert {e.subject_id for e in denials} == {target}
    assert {e.details["needed"] for e in denials} == {"operator"}


async def test_another_tenant_sees_none_of_it(stack: AskStack, mcp_url: str) -> None:
    async with over_http(mcp_url, stack.api.tokens["acme-vic"]) as client:
        listed = payload(await client.call_tool("list_incidents", {}))
        hidden = error_text(await client.call_tool("show_incident", {"incident_id": stack.incident.incident_id}))
        answer = payload(await client.call_tool("ask", {"question": f"why is {CACHE} slow?"}))
    assert listed == {"incidents": []}
    assert "404" in hidden and stack.incident.incident_id in hidden
    assert answer["checks"] == [] and answer["incidents"] == [], "the targets and incidents are another tenant's"


async def test_bad_arguments_are_tool_errors_that_say_what_is_wrong(stack: AskStack, mcp_url: str) -> None:
    async with over_http(mcp_url, stack.api.tokens["opal"]) as client:
        unknown = error_text(await client.call_tool("show_incident", {"incident_id": "no-such-incident"}))
        limit = error_text(await client.call_tool("list_incidents", {"limit": 0}))
        state = error_text(await client.call_tool("list_proposals", {"state": "maybe"}))
        blank = error_text(await client.call_tool("reject_proposal", {"proposal_id": stack.proposals[1].proposal_id,
                                                                      "reason": "   "}))
        slash = error_text(await client.call_tool("show_incident", {"incident_id": "../proposals"}))
    assert "404" in unknown and "no incident 'no-such-incident'" in unknown
    assert "limit" in limit and "greater than or equal to 1" in limit
    assert "state" in state and "pending" in state
    assert "422" in blank and "reason must not be blank" in blank
    assert "must not contain '/'" in slash


async def test_topology_neighbours_and_runbook_search(stack: AskStack, mcp_url: str) -> None:
    async with over_http(mcp_url, stack.api.tokens["vic"]) as client:
        around = payload(await client.call_tool("topology_neighbours", {"resource": stack.cache.key}))
        found = payload(await client.call_tool("search_runbooks", {"query": "redis 内存满了", "limit": 3}))
    assert around["known"] is True
    assert [(n["resource"], n["relation"], n["direction"]) for n in around["neighbours"]] == [
        (stack.app.key, "client", "called_by")], f"{APP_HOST} calls the cache"
    assert found["language"] == "zh" and found["items"][0]["id"] == "redis/memory-full"
    assert found["items"][0]["uri"] == "runbook://redis/memory-full" and HAN.search(found["items"][0]["title"])


async def test_http_without_a_bearer_token_is_401(mcp_url: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["detail"]
