"""``kubestack up | down | worker``: the local stack in the foreground, and the stream processor alone."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
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
    from kubestack.pipeline.stages import create_internal_topics, register

    (settings.home / "worker").mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    register(app, settings)
    asyncio.run(create_internal_topics(app, settings))
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


def _start(settings: Settings, kafka_bootstrap: str, *argv: str, **extra_env: str) -> subprocess.Popen:
    """A companion process in its own session: Ctrl-C reaches it through us, in order."""
    env = {**os.environ, "KUBESTACK_KAFKA__BOOTSTRAP": kafka_bootstrap, "KUBESTACK_HOME": str(settings.home),
           **extra_env}
    return subprocess.Popen([sys.executable, "-m", *argv], env=env, start_new_session=True, stdin=subprocess.DEVNULL)


def _stop(process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _targets_file(settings: Settings, agent_config: Path | None) -> Path:
    """The agent's targets (its config plus what it discovers here) for the remediation stage to act on and the
    API to diagnose: the same names the agent reports. Private to the user: it may hold inline credentials."""
    import yaml

    from kubestack.agents.__main__ import agent_config as effective_config

    config = effective_config(agent_config, discover=True)
    path = settings.home / "stack" / "targets.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)  # touch's mode is for a new file only: an existing one keeps whatever it had
    path.write_text(yaml.safe_dump({"agent": config.agent.model_dump(mode="json"),
                                    "targets": [t.model_dump(mode="json") for t in config.targets]}, sort_keys=False))
    return path


def up(
    ctx: typer.Context,
    agent_config: Annotated[
        Path | None, typer.Option("--agent-config", help="agent.yaml; this host's middleware is discovered anyway")
    ] = None,
) -> None:
    """Start the local stack in the foreground: the broker, an agent watching this machine and the middleware
    it finds on default ports, every pipeline stage, and the incident memory (``kubestack knowledge follow``);
    Ctrl-C stops all of it cleanly."""
    settings: Settings = ctx.obj
    broker = LocalKafka(settings.local_kafka, settings.home)
    started_here = broker.pid() is None
    kafka = settings.kafka.model_copy(update={"bootstrap": settings.local_kafka.bootstrap})
    with out.status(f"starting Kafka on {kafka.bootstrap}..."):
        broker.up(kafka)
    out.print(f"[green]Kafka up[/] on {kafka.bootstrap}; starting the agent, the incident memory, the API and the worker "
              "(Ctrl-C stops all)")
    agent = _start(settings, kafka.bootstrap, "kubestack.agents", "--discover",
                   *(["--config", str(agent_config)] if agent_config is not None else []))
    targets = _targets_file(settings, agent_config)
    memory = _start(settings, kafka.bootstrap, "kubestack", "knowledge", "follow")
    api = _start(settings, kafka.bootstrap, "kubestack", "api", "serve",  # prints its address and an admin token
                 KUBESTACK_API__AGENT_CONFIG=str(settings.api.agent_config or targets))
    remediation = settings.remediation.model_copy(update={"targets": settings.remediation.targets or targets})
    try:
        _run_worker(settings.model_copy(update={"kafka": kafka, "remediation": remediation}))
    finally:
        out.print("stopping the agent and the incident memory...")
        _stop(agent)
        _stop(memory)
        _stop(api)
        if started_here:
            out.print("stopping Kafka...")
            broker.stop()
        out.print("[green]stopped[/]")


def down(ctx: typer.Context) -> None:
    """Stop the local stack's broker."""
    settings: Settings = ctx.obj
    stopped = LocalKafka(settings.local_kafka, settings.home).stop()
    out.print("[green]Kafka stopped[/]" if stopped else "Kafka was not running")
