"""``kubestack up | down | worker``: the local stack in the foreground, and the stream processor alone."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer
from rich.console import Console

from kubestack.bus import ensure_topics
from kubestack.deploy.kafka.launcher import LocalKafka
from kubestack.settings import Settings

out = Console(stderr=True)
log = logging.getLogger(__name__)


def _run_worker(settings: Settings) -> None:
    """Run the Faust worker in the foreground until Ctrl-C / SIGTERM (Faust handles both signals)."""
    import faust

    from kubestack.pipeline.app import create_app
    from kubestack.pipeline.stages import register

    (settings.home / "worker").mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    register(app, settings)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True, override_logging=True)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise


def worker(
    ctx: typer.Context,
    create_topics: Annotated[
        bool, typer.Option("--create-topics/--no-create-topics", help="Create missing registry topics first")
    ] = True,
) -> None:
    """Run the stream processor (Faust worker) against the configured Kafka."""
    settings: Settings = ctx.obj
    if create_topics:
        asyncio.run(ensure_topics(settings.kafka))
    _run_worker(settings)


def up(ctx: typer.Context) -> None:
    """Start the local stack in the foreground: the broker and every pipeline stage; Ctrl-C stops all."""
    settings: Settings = ctx.obj
    broker = LocalKafka(settings.local_kafka, settings.home)
    started_here = broker.pid() is None
    kafka = settings.kafka.model_copy(update={"bootstrap": settings.local_kafka.bootstrap})
    with out.status(f"starting Kafka on {kafka.bootstrap}..."):
        broker.up(kafka)
    out.print(f"[green]Kafka up[/] on {kafka.bootstrap}; starting the worker (Ctrl-C stops everything)")
    try:
        _run_worker(settings.model_copy(update={"kafka": kafka}))
    finally:
        if started_here:
            out.print("stopping Kafka...")
            broker.stop()
            out.print("[green]stopped[/]")


def down(ctx: typer.Context) -> None:
    """Stop the local stack's broker."""
    settings: Settings = ctx.obj
    stopped = LocalKafka(settings.local_kafka, settings.home).stop()
    out.print("[green]Kafka stopped[/]" if stopped else "Kafka was not running")
