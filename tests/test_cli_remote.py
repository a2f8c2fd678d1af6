"""``kubestack incidents`` and ``kubestack proposals`` as a user runs them: the real command in a subprocess,
against the real API (uvicorn) over the session's broker, with the API's roles, tenants and audit."""

from __future__ import annotations

import asyncio
import json

import pytest

from kubestack.contract.events import RemediationDecision
from kubestack.contract.topics import REMEDIATION_DECISIONS
from tests.cli import KUBESTACK, cli_env
from tests.services.kubestack_api import ApiServer
from tests.test_api_http import entries, seed

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio(loop_scope="session")]


async def kubestack(server: ApiServer, *args: str, token: str | None = "otto") -> tuple[int, str, str]:
    """Run the CLI without blocking the loop that serves the API."""
    env = cli_env(KUBESTACK_API_URL=server.url, **({"KUBESTACK_API_TOKEN": server.tokens[token]} if token else {}))
    proc = await asyncio.create_subprocess_exec(KUBESTACK, *args, env=env, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, stdout.decode(), stderr.decode()


async def test_incidents_list_and_show_print_the_cause_and_proposals(api_server: ApiServer) -> None:
    inc, prop = await seed(api_server)
    code, text, err = await kubestack(api_server, "incidents", "list", "--json", token="vera")
    assert code == 0, err
    listed = {i["incident_id"]: i for i in json.loads(text)["items"]}
    assert listed[inc.incident_id]["rca"]["hypotheses"][0]["cause"] == "maxmemory lowered below used memory"

    code, text, err = await kubestack(api_server, "incidents", "show", inc.incident_id, token="vera")
    assert code == 0, err
    for needle in ("Redis memory pressure", "maxmemory lowered below used memory", "redis.maxmemory_lowered",
                   prop.proposal_id, "redis.config_set", "pending"):
        assert needle in text, (needle, text)


async def test_proposals_approve_through_the_cli_is_a_decision_made_via_cli(api_server: ApiServer) -> None:
    _, prop = await seed(api_server)
    code, text, err = await kubestack(api_server, "proposals", "list", "--state", "pending", "--json")
    assert code == 0, err
    assert prop.proposal_id in {p["proposal"]["proposal_id"] for p in json.loads(text)["items"]}

    code, text, err = await kubestack(api_server, "proposals", "approve", prop.proposal_id, "--reason", "memory back")
    assert code == 0, err
    assert f"approved {prop.proposal_id} as otto (signed by the API, key k1)" in text
    decisions = await entries(api_server, REMEDIATION_DECISIONS, RemediationDecision, proposal_id=prop.proposal_id)
    assert [(d.decision.value, d.actor, d.via, d.reason, d.role) for d in decisions] == [
        ("approve", "otto", "cli", "memory back", "operator")]
    keys = api_server.app.state.context.decision_keys
    assert keys.problem(decisions[0], decisions[0].ts, 60) is None, "the stage would take it"


async def test_a_viewer_cannot_reject_and_is_told_why(api_server: ApiServer) -> None:
    _, prop = await seed(api_server)
    code, _, err = await kubestack(api_server, "proposals", "reject", prop.proposal_id, "--reason", "no", token="vera")
    assert code == 1
    assert "403" in err and "operator" in err
    assert not await entries(api_server, REMEDIATION_DECISIONS, RemediationDecision, proposal_id=prop.proposal_id)


async def test_no_token_unknown_incident_and_no_server_are_one_clear_line(api_server: ApiServer) -> None:
    code, _, err = await kubestack(api_server, "incidents", "list", token=None)
    assert code == 1 and "KUBESTACK_API_TOKEN" in err
    code, _, err = await kubestack(api_server, "incidents", "show", "no-such-incident")
    assert code == 1 and "404" in err and "no-such-incident" in err
    code, _, err = await kubestack(api_server, "incidents", "list", "--api-url", "http://127.0.0.1:9")
    assert code == 1 and "cannot reach the API" in err and "Traceback" not in err
