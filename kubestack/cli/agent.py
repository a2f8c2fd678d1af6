"""``kubestack agent``: the collector agent."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console

from kubestack.agents.config import AgentConfig, load_agent_config
from kubestack.settings import Settings

app = typer.Typer(help="The collector agent: metrics, logs and configs of middleware into Kafka.",
                  no_args_is_help=True)
err = Console(stderr=True)


def _config(path: Path | None, discover: bool) -> AgentConfig:
    from kubestack.agents.discovery import discover_local

    config = load_agent_config(path) if path else AgentConfig()
    if discover:
        known = {(t.type, t.name) for t in config.targets}
        config.targets.extend(t for t in discover_local() if (t.type, t.name) not in known)
    return config


@app.command()
def run(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option("--config", help="agent.yaml with the targets")] = None,
    discover: Annotated[bool, typer.Option(help="Also watch this host and middleware on default local ports")] = False,
) -> None:
    """Run the agent in the foreground until Ctrl-C / SIGTERM (unsent events stay in the disk spool)."""
    from kubestack.agents.runtime import Agent

    settings: Settings = ctx.obj
    agent_config = _config(config, discover or config is None)
    agent = Agent(agent_config, settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await agent.run(stop)

    asyncio.run(main())


@app.command()
def discover() -> None:
    """Print an agent.yaml for this machine: the host and middleware answering on default local ports."""
    config = _config(None, True)
    typer.echo(yaml.safe_dump(config.model_dump(mode="json", exclude_defaults=True) |
                              {"targets": [t.model_dump(mode="json", exclude_defaults=True) for t in config.targets]},
                              sort_keys=False))
