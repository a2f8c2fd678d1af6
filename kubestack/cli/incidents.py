"""``kubestack incidents list | show`` and ``kubestack proposals list | approve | reject``: the API's incidents,
root causes and proposals from a terminal (``remote.ApiClient``; the token's role and tenant apply)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from kubestack.cli.remote import ApiClient, TokenOption, UrlOption
from kubestack.contract.base import ResourceRef
from kubestack.contract.events import ResultStatus, Severity

incidents_app = typer.Typer(help="Incidents with their root cause and proposals (through the API).",
                            no_args_is_help=True)
proposals_app = typer.Typer(help="Remediation proposals: list, approve, reject (through the API).",
                            no_args_is_help=True)
out = Console(width=None if sys.stdout.isatty() else 200)  # piped or captured: no squeezed table cells

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output")]
LimitOption = Annotated[int, typer.Option(min=1, max=500, help="At most this many, newest first")]
ReasonOption = Annotated[str, typer.Option("--reason", "-r", help="Why: kept with the decision and in the audit")]


def _client(ctx: typer.Context, url: str | None, token: str | None) -> ApiClient:
    return ApiClient.from_options(ctx.obj, url, token)


def _print_json(body: dict) -> None:
    typer.echo(json.dumps(body, ensure_ascii=False, indent=2))


@incidents_app.command("list")
def list_incidents(
    ctx: typer.Context, api_url: UrlOption = None, token: TokenOption = None,
    status: Annotated[str | None, typer.Option(help="open (includes updated) or resolved")] = None,
    severity: Annotated[Severity | None, typer.Option(help="Only this severity")] = None,
    resource: Annotated[str | None, typer.Option(help="Resource key or name")] = None,
    limit: LimitOption = 50, as_json: JsonOption = False,
) -> None:
    """Incidents, newest first, with their most likely cause."""
    body = _client(ctx, api_url, token).get("/incidents", status=status, severity=severity and severity.value,
                                             resource=resource, limit=limit)
    if as_json:
        return _print_json(body)
    table = Table("incident", "status", "severity", "opened", "title", "likely cause", "proposals")
    for item in body["items"]:
        top = (item.get("rca") or {}).get("hypotheses") or [{}]
        cause = f"{top[0].get('cause', '-')} ({top[0].get('confidence', 0):.0%})" if top[0] else "-"
        pending = sum(1 for p in item["proposals"] if p["state"] == ResultStatus.PENDING)
        table.add_row(item["incident_id"], item["status"], item["severity"], item["opened_at"][:19],
                      item["title"], cause, f"{len(item['proposals'])} ({pending} pending)")
    out.print(table if body["items"] else "no incidents")


@incidents_app.command("show")
def show_incident(ctx: typer.Context, incident_id: str, api_url: UrlOption = None, token: TokenOption = None,
                  as_json: JsonOption = False) -> None:
    """One incident: its signals as a timeline, the ranked root causes with evidence, its proposals."""
    item = _client(ctx, api_url, token).get(f"/incidents/{incident_id}")
    if as_json:
        return _print_json(item)
    out.print(f"[bold]{item['title']}[/]  {item['incident_id']}  {item['status']} / {item['severity']} / "
              f"opened {item['opened_at'][:19]} / revision {item['revision']}", highlight=False)
    out.print("resources: " + ", ".join(ResourceRef.model_validate(r).key for r in item["resources"]),
              highlight=False)
    for link in item.get("links", []):
        out.print(f"  {link['source']} → {link['target']} ({link.get('reason', '')})", highlight=False)
    timeline = Table("first seen", "kind", "signal", "what", "resource", "severity", "evidence id", title="signals")
    for signal in sorted(item["signals"], key=lambda s: s["first_seen"]):
        timeline.add_row(signal["first_seen"][:19], signal["kind"], signal["name"], signal["summary"],
                         signal["resource"], signal["severity"], signal["event_id"])
    out.print(timeline)
    rca = item.get("rca")
    if rca:
        causes = Table("rank", "component", "cause", "confidence", "evidence", "runbooks", title="root cause")
        for h in rca["hypotheses"]:
            causes.add_row(str(h["rank"]), h["component"], h["cause"], f"{h['confidence']:.0%}",
                           ", ".join(h["evidence_ids"]), ", ".join(h["runbooks"]) or "-")
        out.print(causes)
        out.print(f"[dim]{rca['narrator']}:[/] {rca['narrative']}", highlight=False)
    else:
        out.print("no root-cause report yet")
    if item["proposals"]:
        _proposal_table(item["proposals"])


@proposals_app.command("list")
def list_proposals(
    ctx: typer.Context, api_url: UrlOption = None, token: TokenOption = None,
    state: Annotated[ResultStatus | None, typer.Option(help="Only proposals in this state, e.g. pending")] = None,
    incident: Annotated[str | None, typer.Option(help="Only this incident's")] = None,
    limit: LimitOption = 50, as_json: JsonOption = False,
) -> None:
    """Remediation proposals with their state, newest first."""
    body = _client(ctx, api_url, token).get("/proposals", state=state and state.value, incident_id=incident,
                                             limit=limit)
    if as_json:
        return _print_json(body)
    _proposal_table(body["items"]) if body["items"] else out.print("no proposals")


@proposals_app.command("approve")
def approve(ctx: typer.Context, proposal_id: str, reason: ReasonOption, api_url: UrlOption = None,
            token: TokenOption = None) -> None:
    """Approve a pending proposal (operator or admin): the remediation stage re-checks and acts."""
    _decide(ctx, proposal_id, "approve", reason, api_url, token)


@proposals_app.command("reject")
def reject(ctx: typer.Context, proposal_id: str, reason: ReasonOption, api_url: UrlOption = None,
           token: TokenOption = None) -> None:
    """Reject a pending proposal (operator or admin), saying why."""
    _decide(ctx, proposal_id, "reject", reason, api_url, token)


def _decide(ctx: typer.Context, proposal_id: str, verb: str, reason: str, url: str | None, token: str | None) -> None:
    body = _client(ctx, url, token).post(f"/proposals/{proposal_id}/{verb}", {"reason": reason, "via": "cli"})
    actor, key = body["decision"]["actor"], body["decision"].get("key_id")
    done = {"approve": "approved", "reject": "rejected"}[verb]
    signed = f" (signed by the API, key {key})" if key else ""
    out.print(f"{done} {proposal_id} as {actor}{signed}: now {body['state']}", highlight=False)


def _proposal_table(items: list[dict]) -> None:
    table = Table("proposal", "incident", "action", "params", "risk", "state", "expected effect", title="proposals")
    for view in items:
        p = view["proposal"]
        params = " ".join(f"{k}={v}" for k, v in p["params"].items())
        table.add_row(p["proposal_id"], p["incident_id"], p["action"], params, p["risk"], view["state"],
                      p["expected_effect"])
    out.print(table)



@incidents_app.command("ack")
def ack_incident(ctx: typer.Context, incident_id: str, api_url: UrlOption = None, token: TokenOption = None,
                 reason: Annotated[str, typer.Option("--reason", "-r", help="Kept in the audit")] = "") -> None:
    """Acknowledge an incident (someone is on it); PagerDuty's alert is acknowledged too."""
    state = _client(ctx, api_url, token).post(f"/incidents/{incident_id}/ack", {"reason": reason, "via": "cli"})
    typer.echo(f"incident {incident_id} acknowledged by {state['actor']} (PagerDuty: {state['pagerduty']})")


@incidents_app.command("unack")
def unack_incident(ctx: typer.Context, incident_id: str, api_url: UrlOption = None, token: TokenOption = None,
                   reason: Annotated[str, typer.Option("--reason", "-r", help="Kept in the audit")] = "") -> None:
    """Take an acknowledgement back."""
    _client(ctx, api_url, token).post(f"/incidents/{incident_id}/unack", {"reason": reason, "via": "cli"})
    typer.echo(f"incident {incident_id} is no longer acknowledged")


@incidents_app.command("feedback")
def feedback(ctx: typer.Context, incident_id: str,
             component: Annotated[str, typer.Argument(help="Resource key of the ranked cause, as the report names it")],
             verdict: Annotated[str, typer.Argument(help="right or wrong")],
             cause: Annotated[str | None, typer.Option(help="The cause (default: its lead signal's)")] = None,
             comment: Annotated[str, typer.Option("--comment", "-c", help="Kept with the verdict")] = "",
             api_url: UrlOption = None, token: TokenOption = None) -> None:
    """Mark a ranked cause right or wrong (operator or admin): audited, and learned for similar incidents."""
    if verdict not in ("right", "wrong"):
        raise typer.BadParameter(f"verdict must be 'right' or 'wrong', not {verdict!r}", param_hint="VERDICT")
    body = _client(ctx, api_url, token).post(f"/incidents/{incident_id}/feedback",
                                             {"component": component, "verdict": verdict, "cause": cause,
                                              "comment": comment})
    out.print(f"marked {body['cause']} on {body['component']} {verdict} as {body['actor']} (incident {incident_id})",
              highlight=False)
