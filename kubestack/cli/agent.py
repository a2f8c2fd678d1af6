"""``kubestack agent``: the collector agent."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console

app = typer.Typer(help="The collector agent: metrics, logs and configs of middleware into Kafka.",
                  no_args_is_help=True)
err = Console(stderr=True)


@app.command()
def run(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option("--config", help="agent.yaml with the targets")] = None,
    discover: Annotated[bool, typer.Option(help="Also watch this host and middleware on default local ports")] = False,
) -> None:
    """Run the agent in the foreground until Ctrl-C / SIGTERM (unsent events stay in the disk spool)."""
    from kubestack.agents.__main__ import run as run_agent

    run_agent(config, discover, ctx.obj)


@app.command()
def discover() -> None:
    """Print an agent.yaml for this machine: the host and middleware answering on default local ports."""
    from kubestack.agents.__main__ import agent_config

    config = agent_config(None, True)
    typer.echo(yaml.safe_dump(config.model_dump(mode="json", exclude_defaults=True) |
                              {"targets": [t.model_dump(mode="json", exclude_defaults=True) for t in config.targets]},
                              sort_keys=False))
