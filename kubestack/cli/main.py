"""``kubestack``: the command line. Sub-commands live in their own modules; settings are built here once."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kubestack.cli import (
    agent, ask, audit, bench, diagnose, incidents, kafka, knowledge, logs, models, plugins, rca, stack, topics,
)
from kubestack.errors import ConfigError, KubestackError
from kubestack.logs import configure_logging
from kubestack.settings import load_settings

err = Console(stderr=True)

app = typer.Typer(
    name="kubestack",
    help="KubeStack-AI: event-driven AIOps for middleware.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(topics.app, name="topics")
app.add_typer(kafka.app, name="kafka")
app.add_typer(__import__("kubestack.cli.kube", fromlist=["app"]).app, name="kube")
app.add_typer(plugins.app, name="plugins")
app.add_typer(agent.app, name="agent")
app.add_typer(models.app, name="models")
app.add_typer(logs.app, name="logs")
app.add_typer(bench.app, name="bench")
app.add_typer(rca.app, name="rca")
app.add_typer(knowledge.app, name="knowledge")
app.add_typer(__import__("kubestack.cli.api", fromlist=["app"]).app, name="api")
app.add_typer(audit.app, name="audit")
app.add_typer(incidents.incidents_app, name="incidents")
app.add_typer(incidents.proposals_app, name="proposals")
app.command("up")(stack.up)
app.command("down")(stack.down)
app.command("worker")(stack.worker)
app.command("ask")(ask.ask)
app.command("diagnose")(diagnose.diagnose)


@app.callback()
def _settings(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML settings file (or KUBESTACK_CONFIG)")
    ] = None,
) -> None:
    ctx.obj = load_settings(config)
    configure_logging(ctx.obj.log_level)


def main() -> None:
    """Entry point: known errors become one red line and exit code 1 (2 for settings), not a traceback.

    Typer's standalone mode already turns usage errors, Ctrl-C and ``typer.Exit`` into exit codes.
    """
    try:
        app()
    except KubestackError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)
