"""``kubestack api``: serve the REST API and web console; make API tokens and the decision key ring."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from kubestack.apisettings import ApiSettings, Role

if TYPE_CHECKING:
    from kubestack.settings import Settings

app = typer.Typer(help="The REST API and web console.", no_args_is_help=True)
err = Console(stderr=True)


def api_settings(settings: Settings) -> ApiSettings:
    """The API section of the settings."""
    return settings.api


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Listen address (default: api.host)")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Listen port (default: api.port)")] = None,
) -> None:
    """Run the API and console in the foreground. Without configured tokens, an admin token is made for this run
    and printed once."""
    import uvicorn

    from kubestack.api.app import create_app
    from kubestack.api.auth import TokenBook, new_token, token_spec

    settings: Settings = ctx.obj
    api = api_settings(settings).model_copy(update={k: v for k, v in (("host", host), ("port", port)) if v})
    tokens = TokenBook(api.tokens)
    address = f"http://{api.host}:{api.port}/"
    if len(tokens):
        typer.echo(f"KubeStack API and console on {address}", err=False)
    else:
        token = new_token()
        tokens.add(token_spec(token, "admin", Role.ADMIN))
        typer.echo(f"KubeStack API and console on {address}\nadmin token for this run (api.tokens is empty): {token}")
    application = create_app(settings, api, tokens)
    uvicorn.run(application, host=api.host, port=api.port, log_config=None, server_header=False)


@app.command()
def token(
    role: Annotated[Role, typer.Option(help="viewer, operator or admin")],
    name: Annotated[str, typer.Option(help="Who holds it: the actor of their decisions")],
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's data (default: every tenant)")] = None,
) -> None:
    """Make a token: the token on the first line (shown only now), then the settings that enable it."""
    from kubestack.api.auth import new_token, settings_line, token_spec

    secret = new_token()
    spec = token_spec(secret, name, role, tenant)
    typer.echo(secret)
    typer.echo(f"api:\n  tokens:\n    {settings_line(spec)}")
    err.print("Add the entry under api.tokens in the settings YAML (--config / KUBESTACK_CONFIG); only its hash is "
              "stored, so keep the token now.", highlight=False)


@app.command("decision-key")
def decision_key(
    ctx: typer.Context,
    rotate: Annotated[bool, typer.Option("--rotate", help="Add a key and make it current (old ones stay)")] = False,
    keys: Annotated[Path | None, typer.Option(help="The ring (default: remediation.decision_keys)")] = None,
) -> None:
    """The decision key ring the API signs decisions with and the worker checks them against: made (0600) when
    there is none, with --rotate a new current key. Give the file to the API and the worker, never to an agent."""
    from kubestack.approval import DecisionKeys, default_path

    settings: Settings = ctx.obj
    path = keys or settings.remediation.decision_keys or default_path(settings.home)
    ring = DecisionKeys.load_or_create(path)
    if rotate:
        ring.rotate()
        ring.save(path)
    typer.echo(f"decision key ring {path}: current key {ring.current} (keys {', '.join(sorted(ring.keys))})")
