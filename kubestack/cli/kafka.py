"""``kubestack kafka``: the local broker, or a local cluster of brokers (optionally with TLS and SASL/SCRAM)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console

from kubestack.deploy.kafka.launcher import LocalKafka
from kubestack.settings import LocalKafkaSettings, Settings

app = typer.Typer(help="A local Apache Kafka broker or cluster (KRaft) for development and tests.",
                  no_args_is_help=True)
out = Console()

Brokers = Annotated[int | None, typer.Option("--brokers", min=1, max=9, help=(
    "Nodes (default: local_kafka.brokers, 1); node i listens on the i-th of local_kafka.ports, "
    "else on port + 100*(i-1)"))]
Secure = Annotated[bool | None, typer.Option("--secure/--plain", help=(
    "TLS and SASL/SCRAM-SHA-512 (a CA and users made here); default: local_kafka.secure"))]


def _local(settings: Settings, brokers: int | None, secure: bool | None) -> LocalKafkaSettings:
    update = {key: value for key, value in (("brokers", brokers), ("secure", secure)) if value is not None}
    return LocalKafkaSettings.model_validate(settings.local_kafka.model_dump() | update)


def _cluster(ctx: typer.Context, brokers: int | None = None, secure: bool | None = None) -> LocalKafka:
    settings: Settings = ctx.obj
    return LocalKafka(_local(settings, brokers, secure), settings.home)


@app.command()
def up(ctx: typer.Context, brokers: Brokers = None, secure: Secure = None) -> None:
    """Resolve the jars (first time), format storage, start the node(s) and create every topic."""
    settings: Settings = ctx.obj
    cluster = _cluster(ctx, brokers, secure)
    with out.status(f"starting Kafka on {cluster.settings.bootstrap} (first start resolves jars)..."):
        status = cluster.up(settings.kafka)
    topics = len(status.cluster.topics) if status.cluster else 0
    nodes = f"{len(cluster.nodes)} nodes, " if len(cluster.nodes) > 1 else ""
    out.print(f"[green]Kafka up[/] on {status.bootstrap} (pid {status.pid}, {nodes}{topics} topics, "
              f"replication {cluster.settings.replication_factor}, home {status.home})")
    if status.client_settings:
        out.print(f"SASL_SSL with SCRAM-SHA-512; the settings that reach it (users, passwords, CA) are in "
                  f"{status.client_settings}: use it as --config or copy its kafka: section into yours",
                  highlight=False, soft_wrap=True)


@app.command()
def down(ctx: typer.Context, brokers: Brokers = None, secure: Secure = None) -> None:
    """Stop the local node(s) (controlled shutdown)."""
    if _cluster(ctx, brokers, secure).stop():
        out.print("[green]Kafka stopped[/]")
    else:
        out.print("Kafka was not running")


@app.command()
def status(
    ctx: typer.Context,
    brokers: Brokers = None,
    secure: Secure = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Is the local broker (or cluster) running and answering? Exit code 1 when it is not."""
    state = _cluster(ctx, brokers, secure).status()
    if as_json:
        typer.echo(json.dumps(asdict(state), default=str, indent=2))
    elif not state.running:
        out.print(f"Kafka is [red]not running[/] (home {state.home}; jars resolved: {state.jars_resolved})")
    elif state.problem:
        out.print(f"Kafka process {state.pid} runs but [red]does not answer[/]: {state.problem}")
    else:
        cluster = state.cluster
        down_nodes = [str(node) for node, pid in (state.nodes or {}).items() if pid is None]
        missing = f" ([red]node {', '.join(down_nodes)} down[/])" if down_nodes else ""
        out.print(f"Kafka [green]up[/] on {state.bootstrap}: pid {state.pid}, cluster {cluster.cluster_id}, "
                  f"{len(cluster.brokers)} brokers{missing}, {len(cluster.topics)} topics")
    if not state.running or state.problem:
        raise typer.Exit(1)
