"""``kubestack silence add | list | end``: silences and maintenance windows through the API (the token's role and
tenant apply; every change is audited there)."""

from __future__ import annotations

import json
import re
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from kubestack.cli.remote import ApiClient, TokenOption, UrlOption

app = typer.Typer(help="Silences and maintenance windows (through the API).", no_args_is_help=True)
out = Console(width=None if sys.stdout.isatty() else 200)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output")]
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def seconds(text: str) -> int:
    """``90m``, ``2h``, ``1d12h``, ``45s`` or plain seconds, as seconds."""
    if text.isdigit():
        return int(text)
    found = _DURATION.match(text.strip())
    if not text.strip() or found is None or not any(found.groups()):
        raise typer.BadParameter(f"{text!r} is not a duration such as 90m, 2h, 1d12h or 3600")
    days, hours, minutes, secs = (int(g or 0) for g in found.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + secs


def _labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--label {pair!r} is not key=value")
        labels[key] = value
    return labels


@app.command("add")
def add(
    ctx: typer.Context,
    comment: Annotated[str, typer.Option("--comment", "-c", help="Why: the change or work it covers")],
    resource: Annotated[list[str], typer.Option(help="Resource key or name (repeatable)")] = [],  # noqa: B006
    service: Annotated[list[str], typer.Option(help="Value of the 'service' label (repeatable)")] = [],  # noqa: B006
    label: Annotated[list[str], typer.Option(help="key=value a resource must carry (repeatable)")] = [],  # noqa: B006
    for_: Annotated[str | None, typer.Option("--for", help="A one-off window from now (or --starts): 2h, 90m")] = None,
    starts: Annotated[str | None, typer.Option(help="Start, ISO 8601 with a zone (default: now)")] = None,
    ends: Annotated[str | None, typer.Option(help="End, ISO 8601 with a zone")] = None,
    schedule: Annotated[str | None, typer.Option(help="Recurring: 'Sun 02:00-04:00' or a cron spec")] = None,
    duration: Annotated[str | None, typer.Option(help="Length of each window of a cron schedule: 2h")] = None,
    timezone: Annotated[str, typer.Option("--tz", help="IANA zone of the schedule")] = "UTC",
    tenant: Annotated[str | None, typer.Option(help="Only with a token of every tenant")] = None,
    api_url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Silence what matches (nothing named: the whole tenant), once or on a schedule."""
    body = {"resources": resource, "services": service, "labels": _labels(label), "comment": comment,
            "timezone": timezone, "starts_at": starts, "ends_at": ends, "schedule": schedule, "tenant": tenant,
            "for_s": seconds(for_) if for_ else None, "duration_s": seconds(duration) if duration else None}
    view = ApiClient.from_options(ctx.obj, api_url, token).post("/silences", {k: v for k, v in body.items()
                                                                             if v is not None})
    if as_json:
        typer.echo(json.dumps(view, indent=2))
        return
    silence = view["silence"]
    state = "in force now" if view["in_force"] else "not in force now"
    typer.echo(f"silence {silence['silence_id']} created ({state}): {_what(silence)}; {_when(silence)}")


@app.command("list")
def list_silences(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help="active (not over), in_force (now) or over")] = "active",
    api_url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Silences of the token's tenant."""
    body = ApiClient.from_options(ctx.obj, api_url, token).get("/silences", state=state)
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    table = Table("silence", "tenant", "matches", "when", "now", "by", "comment")
    for view in body["items"]:
        silence = view["silence"]
        now = "in force" if view["in_force"] else ("over" if view["over"] else "waiting")
        table.add_row(silence["silence_id"], silence["tenant"], _what(silence), _when(silence), now,
                      silence["created_by"], silence["comment"])
    out.print(table if body["items"] else "no silences")


@app.command("end")
def end(
    ctx: typer.Context, silence_id: str,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why it ends now")] = "",
    api_url: UrlOption = None, token: TokenOption = None,
) -> None:
    """End a silence now: what it held back and is still open is notified."""
    view = ApiClient.from_options(ctx.obj, api_url, token).post(f"/silences/{silence_id}/end", {"reason": reason})
    typer.echo(f"silence {silence_id} ended at {view['silence']['ended_at']} by {view['silence']['ended_by']}")


def _what(silence: dict) -> str:
    parts = [*silence["matchers_resources"], *(f"service={s}" for s in silence["matchers_services"]),
             *(f"{k}={v}" for k, v in silence["matchers_labels"].items())]
    return ", ".join(parts) or f"all of tenant {silence['tenant']}"


def _when(silence: dict) -> str:
    if silence["schedule"]:
        length = f" for {silence['duration_s']}s" if silence["duration_s"] else ""
        return f"{silence['schedule']}{length} ({silence['timezone']})"
    return f"{silence['starts_at'][:19]} to {(silence['ends_at'] or '')[:19]} UTC"
