"""The MCP tools and resources: incidents (with signals, ranked causes and evidence), a resource's topology
neighbours, runbook search, questions, proposals and decisions, and the runbooks as ``runbook://`` resources.

Each one is one KubeStack API request made with the caller's token (``Credentials``), so the API decides what the
caller may see and do: a viewer's approval is refused (403) and audited as ``api.denied``, an operator's is
recorded with their token's name and ``via: mcp``, another tenant's incident is not found. Whatever the API
refuses comes back as a tool error that says why."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resources import TextResource
from pydantic import Field

from kubestack.errors import RemoteApiError, RunbookFormatError
from kubestack.knowledge.language import CHINESE, title_in
from kubestack.knowledge.runbook import Runbook, load_runbooks
from kubestack.mcp.client import ApiCaller

log = logging.getLogger(__name__)

NAME = "kubestack"
INSTRUCTIONS = (
    "KubeStack-AI watches middleware (Redis, MySQL, PostgreSQL, Kafka, hosts, Kubernetes...). Use list_incidents "
    "and show_incident for what is wrong now and its ranked causes with evidence, topology_neighbours for what a "
    "resource talks to, ask for a question in plain language (answered in its language, with live checks), "
    "search_runbooks and the runbook:// resources for how to fix it, list_proposals for remediation waiting for a "
    "person, and approve_proposal / reject_proposal to decide one (operator tokens only; every decision is "
    "audited).")

Limit = Annotated[int, Field(ge=1, le=100, description="At most this many, newest first")]
Id = Annotated[str, Field(min_length=1, max_length=200)]
Reason = Annotated[str, Field(min_length=1, max_length=2000, description="Why: kept with the decision and in the "
                                                                          "audit")]
TOOL_VIA = "mcp"
RUNBOOK_SCHEME = "runbook://"


class Credentials:
    """The token a call is made with: the one given at start (stdio), or the caller's ``Authorization`` header
    (streamable HTTP: passed through to the API, never kept)."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    def authorization(self, ctx: Context) -> str:
        if self.token:
            return f"Bearer {self.token}"
        header = (ctx.headers or {}).get("authorization")
        if not header:
            raise ToolError("no KubeStack API token: send 'Authorization: Bearer <token>' with the MCP requests "
                            "(`kubestack api token` makes one)")
        return header


def build_server(api_url: str, token: str | None = None, books: list[Runbook] | None = None) -> MCPServer:
    """The MCP server for the API at ``api_url``; ``token`` for stdio, None to pass each caller's through;
    ``books``: the runbooks to serve as resources (default: the installed plugins')."""
    credentials = Credentials(token)
    server = MCPServer(NAME, title="KubeStack-AI", instructions=INSTRUCTIONS, version="1")

    async def call(ctx: Context, method: str, path: str, body: dict | None = None, **params: Any) -> Any:
        api = ApiCaller(api_url, credentials.authorization(ctx))
        try:
            return await (api.post(path, body or {}) if method == "POST" else api.get(path, **params))
        except RemoteApiError as exc:
            raise ToolError(str(exc)) from exc

    _incident_tools(server, call)
    _knowledge_tools(server, call)
    _proposal_tools(server, call)
    _runbook_resources(server, _installed_runbooks() if books is None else books)
    return server


def _installed_runbooks() -> list[Runbook]:
    """The installed plugins' runbooks; a broken one costs the resources, not the tools."""
    try:
        return load_runbooks()
    except RunbookFormatError as exc:
        log.error("runbooks not served as resources: %s", exc)
        return []


def _incident_tools(server: MCPServer, call) -> None:
    @server.tool()
    async def list_incidents(ctx: Context, status: Literal["open", "resolved"] | None = None,
                             severity: Literal["info", "warning", "critical"] | None = None,
                             resource: Annotated[str | None, Field(max_length=500)] = None,
                             limit: Limit = 20) -> dict:
        """Incidents your token's tenant may see, newest first: title, status, severity, resources and the top
        ranked cause of each. ``status`` open includes updated ones; ``resource`` is a resource key or name."""
        found = await call(ctx, "GET", "/incidents", status=status, severity=severity, resource=resource,
                           limit=limit)
        return {"incidents": [incident_brief(i) for i in found["items"]]}

    @server.tool()
    async def show_incident(ctx: Context, incident_id: Id) -> dict:
        """One incident in full: its signals as a timeline with their evidence, the ranked causes (component,
        cause, confidence, the evidence ids they rest on, runbooks), the narrative, its remediation
        proposals with their state, and similar past incidents with what was done and whether it worked."""
        return incident_detail(await call(ctx, "GET", f"/incidents/{_segment(incident_id)}"))

    @server.tool()
    async def topology_neighbours(ctx: Context, resource: Annotated[str, Field(min_length=1, max_length=500)]
                                  ) -> dict:
        """The resources directly linked to ``resource`` (its key cluster/scope/kind/name, or a unique name):
        observed connections with their direction (calls / called_by) and configured ones (same host, service,
        depends_on)."""
        return await call(ctx, "GET", "/topology/neighbours", resource=resource)


def _knowledge_tools(server: MCPServer, call) -> None:
    @server.tool()
    async def ask(ctx: Context, question: Annotated[str, Field(min_length=1, max_length=1000)],
                  live: bool = True) -> dict:
        """Ask about your middleware in plain language, English or Chinese ("Redis 为什么变慢了?"): the answer comes
        in the question's language, with live checks of the targets it names (``live``), recent incidents and the
        runbooks' fix steps, each piece of evidence numbered (F1, I1, R1). ``text`` is the whole answer."""
        return await call(ctx, "POST", "/ask", {"question": question, "live": live})

    @server.tool()
    async def search_runbooks(ctx: Context, query: Annotated[str, Field(min_length=1, max_length=1000)],
                              middleware: Annotated[str | None, Field(max_length=100)] = None,
                              limit: Annotated[int, Field(ge=1, le=20)] = 5) -> dict:
        """Search the runbooks (English or Chinese); read one in full as the resource runbook://<id>."""
        found = await call(ctx, "GET", "/runbooks", q=query, middleware=middleware, limit=limit)
        for item in found["items"]:
            item["uri"] = f"{RUNBOOK_SCHEME}{item['id']}"
        return found


def _proposal_tools(server: MCPServer, call) -> None:
    @server.tool()
    async def list_proposals(ctx: Context,
                             state: Literal["pending", "approved", "rejected", "executed", "verified", "failed",
                                            "rolled_back"] | None = None,
                             incident_id: Annotated[str | None, Field(max_length=200)] = None,
                             limit: Limit = 20) -> dict:
        """Remediation proposals with their action, parameters, risk, state and results; ``pending`` ones wait for
        a person's decision."""
        found = await call(ctx, "GET", "/proposals", state=state, incident_id=incident_id, limit=limit)
        return {"proposals": [proposal_brief(p) for p in found["items"]]}

    @server.tool()
    async def approve_proposal(ctx: Context, proposal_id: Id, reason: Reason) -> dict:
        """Approve a pending proposal so the executor runs it. Needs an operator (or admin) token; the decision is
        signed, recorded with the token's name and audited."""
        return await call(ctx, "POST", f"/proposals/{_segment(proposal_id)}/approve",
                          {"reason": reason, "via": TOOL_VIA})

    @server.tool()
    async def reject_proposal(ctx: Context, proposal_id: Id, reason: Reason) -> dict:
        """Reject a pending proposal, saying why. Needs an operator (or admin) token; audited."""
        return await call(ctx, "POST", f"/proposals/{_segment(proposal_id)}/reject",
                          {"reason": reason, "via": TOOL_VIA})


def _runbook_resources(server: MCPServer, books: list[Runbook]) -> None:
    """Each runbook as ``runbook://<id>``: the packaged documents themselves (the same the API serves; nothing
    about a tenant), so they list and read with no token."""
    for book in books:
        chinese = title_in(book, CHINESE)
        server.add_resource(TextResource(
            uri=f"{RUNBOOK_SCHEME}{book.id}", name=book.id, title=book.meta.title, mime_type="text/markdown",
            description=f"{book.meta.title} / {chinese}: symptoms, likely causes, how to confirm, how to fix",
            text=book.to_markdown()))


def _segment(value: str) -> str:
    """An id as one path segment: a slash or dot-dot would reach another route."""
    if "/" in value or value in (".", "..") or "?" in value or "#" in value:
        raise ToolError(f"{value!r} is not an id: it must not contain '/', '?' or '#'")
    return value


# --- what the tools return: the API's views, cut to what an assistant reads ---------------------------------------


def incident_brief(view: dict) -> dict:
    top = ((view.get("rca") or {}).get("hypotheses") or [None])[0]
    return {"incident_id": view["incident_id"], "title": view["title"], "status": view["status"],
            "severity": view["severity"], "opened_at": view["opened_at"], "revision": view.get("revision"),
            "resources": [r["kind"] + "/" + r["name"] for r in view.get("resources", [])],
            "signals": len(view.get("signals", [])),
            "top_cause": {k: top[k] for k in ("component", "cause", "confidence")} if top else None,
            "pending_proposals": sum(1 for p in view.get("proposals", []) if p["state"] == "pending")}


def incident_detail(view: dict) -> dict:
    rca = view.get("rca") or {}
    return {
        **{k: view.get(k) for k in ("incident_id", "title", "status", "severity", "opened_at", "summary",
                                    "revision", "tenant")},
        "resources": [r["kind"] + "/" + r["name"] + f" ({_key(r)})" for r in view.get("resources", [])],
        "signals": [{k: s.get(k) for k in ("event_id", "kind", "name", "resource", "severity", "summary", "score",
                                           "first_seen", "last_seen", "details") if s.get(k) is not None}
                    for s in view.get("signals", [])],
        "causes": [{k: h.get(k) for k in ("rank", "component", "cause", "confidence", "evidence_ids", "runbooks")}
                   for h in rca.get("hypotheses", [])],
        "narrative": rca.get("narrative") or None,
        "narrator": rca.get("narrator"),
        "proposals": [proposal_brief(p) for p in view.get("proposals", [])],
        "similar_past_incidents": [  # what was done last time and whether it worked (pipeline.memory)
            {k: s.get(k) for k in ("incident_id", "title", "opened_at", "similarity", "cause", "component", "actions",
                                   "outcome")} for s in rca.get("similar", [])],
    }


def proposal_brief(view: dict) -> dict:
    proposal = view["proposal"]
    decision = view.get("decision") or {}
    return {"proposal_id": proposal["proposal_id"], "incident_id": proposal["incident_id"],
            "action": proposal["action"], "params": proposal.get("params", {}), "risk": proposal["risk"],
            "state": view["state"], "expected_effect": proposal.get("expected_effect"),
            "rollback": proposal.get("rollback"),
            "decided_by": decision.get("actor"), "decision_reason": decision.get("reason"),
            "results": [{k: r.get(k) for k in ("status", "actor", "output", "ts")} for r in view.get("results", [])]}


def _key(resource: dict) -> str:
    scope = resource.get("namespace") or resource.get("host") or "-"
    return f"{resource.get('cluster') or '-'}/{scope}/{resource['kind']}/{resource['name']}"
