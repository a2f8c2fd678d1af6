"""``kubestack kafka``: the local single-node broker."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console

from kubestack.deploy.kafka.launcher import LocalKafka
from kubestack.settings import Settings

app = typer.Typer(help="A local Apache Kafka broker (KRaft, single node) for development and tests.",
                  no_args_is_help=True)
out = Console()


def _broker(ctx: typer.Context) -> LocalKafka:
    settings: Settings = ctx.obj
    return LocalKafka(settings.local_kafka, settings.home)


@app.command()
def up(ctx: typer.Context) -> None:
    """Resolve the jars (first time), format storage, start the broker and create every topic."""
    settings: Settings = ctx.obj
    broker = _broker(ctx)
    with out.status(f"starting Kafka on {settings.local_kafka.bootstrap} (first start resolves jars)..."):
        status = broker.up(settings.kafka.model_copy(update={"bootstrap": settings.local_kafka.bootstrap}))
    topics = len(status.cluster.topics) if status.cluster else 0
    out.print(f"[green]Kafka up[/] on {status.bootstrap} (pid {status.pid}, {topics} topics, home {status.home})")


@app.command()
def down(ctx: typer.Context) -> None:
    """Stop the local broker (controlled shutdown)."""
    if _broker(ctx).stop():
        out.print("[green]Kafka stopped[/]")
    else:
        out.print("Kafka was not running")


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Is the local broker running and answering? Exit code 1 when it is not."""
    state = _broker(ctx).status()
    if as_json:
        typer.echo(json.dumps(asdict(state), default=str, indent=2))
    elif not state.running:
        out.print(f"Kafka is [red]not running[/] (home {state.home}; jars resolved: {state.jars_resolved})")
    elif state.problem:
        out.print(f"Kafka process {state.pid} runs but [red]does not answer[/]: {state.problem}")
    else:
        cluster = state.cluster
        out.print(f"Kafka [green]up[/] on {state.bootstrap}: pid {state.pid}, cluster {cluster.cluster_id}, "
                  f"{len(cluster.topics)} topics")
    if not state.running or state.problem:
        raise typer.Exit(1)
