"""``kubestack up | down | worker``: the local stack in the foreground, and the stream processor alone."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kubestack.bus import ensure_topics
from kubestack.deploy.kafka.launcher import LocalKafka
from kubestack.settings import Settings

out = Console(stderr=True)
log = logging.getLogger(__name__)


def _run_worker(settings: Settings, logfile: Path | None = None) -> None:
    """Run the Faust worker in the foreground until Ctrl-C / SIGTERM (Faust handles both signals); its logs to
    ``logfile`` when given, and standard output and error stay the terminal's."""
    import faust

    from kubestack.pipeline.app import create_app
    from kubestack.pipeline.stages import create_internal_topics, register

    (settings.home / "worker").mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    register(app, settings)
    asyncio.run(create_internal_topics(app, settings))
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True, override_logging=True,
                          logfile=str(logfile) if logfile else None, redirect_stdouts=False)
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


def _start(settings: Settings, kafka_bootstrap: str, *argv: str, output: Path | None = None, echo: bool = False,
           **extra_env: str) -> subprocess.Popen:
    """A companion process in its own session: Ctrl-C reaches it through us, in order. With ``output`` its
    logs go to that file; with ``echo`` too, its standard output is a pipe for the terminal to show."""
    env = {**os.environ, "KUBESTACK_KAFKA__BOOTSTRAP": kafka_bootstrap, "KUBESTACK_HOME": str(settings.home),
           **extra_env}
    if output is None:
        return subprocess.Popen([sys.executable, "-m", *argv], env=env, start_new_session=True,
                                stdin=subprocess.DEVNULL)
    with output.open("ab") as log_file:
        return subprocess.Popen([sys.executable, "-m", *argv], env=env, start_new_session=True,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE if echo else log_file,
                                stderr=log_file, text=echo or None)


def _stop(*processes: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGTERM to every one at once, so that they shut down side by side; those still running after ``timeout_s``
    are killed."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
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


def _watched(targets: Path) -> list[tuple[str, str]]:
    import yaml

    return [(t["type"], t["name"]) for t in yaml.safe_load(targets.read_text())["targets"]]


DEMO_HINT = ("try it: [bold]kubestack demo up[/] in another terminal starts a small shop under load, then "
             "[bold]kubestack demo fault redis-stall[/] breaks it (kubestack demo list shows every fault)")


def up(
    ctx: typer.Context,
    agent_config: Annotated[
        Path | None, typer.Option("--agent-config", help="agent.yaml; this host's middleware is discovered anyway")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Every process's log here too, instead of only in <home>/logs")
    ] = False,
    kafka_bootstrap: Annotated[
        str | None, typer.Option("--kafka-bootstrap", help="Use this running Kafka instead of the local broker")
    ] = None,
) -> None:
    """Start the local stack in the foreground: the broker, an agent watching this machine and the middleware
    it finds on default ports, every pipeline stage, and the incident memory (``kubestack knowledge follow``);
    Ctrl-C stops all of it cleanly. The terminal shows the console's address and token, what is watched and each
    incident as it opens and resolves; the logs are in <home>/logs (or here too with --verbose)."""
    from kubestack.cli.upview import IncidentLines, echo_lines, log_dir, log_to_file, watched_line

    settings: Settings = ctx.obj
    terminal = Console(stderr=True, file=sys.stderr)  # Faust may replace sys.stderr later
    logs = log_dir(settings.home)
    if not verbose:
        log_to_file(logs / "stack.log", settings.log_level)
    output = None if verbose else logs
    broker, started_here = None, False
    if kafka_bootstrap:
        kafka = settings.kafka.model_copy(update={"bootstrap": kafka_bootstrap})
        asyncio.run(ensure_topics(kafka))
    else:
        broker = LocalKafka(settings.local_kafka, settings.home)
        started_here = broker.pid() is None
        kafka = settings.kafka.model_copy(update={"bootstrap": settings.local_kafka.bootstrap})
        with terminal.status(f"starting Kafka on {kafka.bootstrap} (the first start fetches its jars)..."):
            broker.up(kafka)
    terminal.print(f"[green]Kafka up[/] on {kafka.bootstrap}; starting the agent, the incident memory, the API and "
                   f"the worker (Ctrl-C stops all); logs in {logs}" + ("" if verbose else " (--verbose: here too)"),
                   highlight=False, soft_wrap=True)
    agent = _start(settings, kafka.bootstrap, "kubestack.agents", "--discover",
                   *(["--config", str(agent_config)] if agent_config is not None else []),
                   output=output and output / "agent.log")
    targets = _targets_file(settings, agent_config)
    terminal.print(watched_line(_watched(targets)), highlight=False, soft_wrap=True)
    memory = _start(settings, kafka.bootstrap, "kubestack", "knowledge", "follow",
                    output=output and output / "memory.log")
    api = _start(settings, kafka.bootstrap, "kubestack", "api", "serve",  # prints its address and an admin token
                 output=output and output / "api.log", echo=True,
                 KUBESTACK_API__AGENT_CONFIG=str(settings.api.agent_config or targets))
    if api.stdout is not None:
        echo_lines(api.stdout, terminal)
    companions = {"the agent": (agent, logs / "agent.log"), "the incident memory": (memory, logs / "memory.log"),
                  "the API": (api, logs / "api.log")}
    incidents = IncidentLines(kafka, terminal, companions, on_ready=lambda: terminal.print(
        f"incidents will show here as they open and resolve\n{DEMO_HINT}", highlight=False, soft_wrap=True))
    incidents.start()
    remediation = settings.remediation.model_copy(update={"targets": settings.remediation.targets or targets})
    try:
        _run_worker(settings.model_copy(update={"kafka": kafka, "remediation": remediation}),
                    logfile=None if verbose else logs / "worker.log")
    except KeyboardInterrupt:  # Ctrl-C before the worker took the signal over: the same clean stop
        pass
    finally:
        terminal.print("stopping the agent, the incident memory and the API...")
        incidents.stop()
        _stop(agent, memory, api)
        if started_here:
            terminal.print("stopping Kafka...")
            broker.stop()
        terminal.print("[green]stopped[/]")


def down(ctx: typer.Context) -> None:
    """Stop the local stack's broker."""
    settings: Settings = ctx.obj
    stopped = LocalKafka(settings.local_kafka, settings.home).stop()
    out.print("[green]Kafka stopped[/]" if stopped else "Kafka was not running")
