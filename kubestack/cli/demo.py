"""``kubestack demo up | fault NAME | list``: a small real application to watch and break next to ``kubestack up``
(``make run``): ``up`` starts the demo's own servers, the shop, its order-writer, steady load and an agent watching
them, publishing to the stack's Kafka; ``fault`` injects one fault into a dependency and undoes it later, so the
console shows an incident, its ranked causes and a proposal."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from kubestack.settings import Settings

app = typer.Typer(help="A demo application to watch and break (see kubestack demo up)", no_args_is_help=True)
out = Console(stderr=True)
log = logging.getLogger(__name__)


def _home(settings: Settings) -> Path:
    return settings.home / "demo"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text)


@app.command("list")
def list_faults() -> None:
    """The faults ``kubestack demo fault`` can inject, with the component at fault and what the shop feels."""
    from kubestack.demo.config import DemoConfig
    from kubestack.demo.faults import FAULTS  # with the clients of the servers it breaks: not at start-up

    table = Table("fault", "cause", "what happens")
    for name, cls in FAULTS.items():
        one = cls(DemoConfig.model_construct())
        table.add_row(name, one.cause, one.summary)
    Console().print(table)


@app.command()
def up(
    ctx: typer.Context,
    rate: Annotated[float, typer.Option(min=0.5, max=500, help="Load: requests per second")] = 20.0,
) -> None:
    """Start the demo in the foreground against the local stack (``kubestack up`` in another terminal): its own
    Redis, PostgreSQL, MariaDB and Kafka broker, the shop, its order-writer, steady load and an agent watching them;
    Ctrl-C stops all of it."""
    import yaml

    from kubestack.demo.servers import Process, running_servers, spawn

    settings: Settings = ctx.obj
    home = _home(settings)
    bootstrap = os.environ.get("KUBESTACK_KAFKA__BOOTSTRAP") or settings.local_kafka.bootstrap
    out.print(f"starting the demo's servers under {home} (about a minute)...")
    with running_servers(home / "servers", rate=rate) as servers:
        config_path = home / "demo.json"
        servers.config.save(config_path)
        _write_private(home / "state.json", json.dumps({"broker_pid": servers.broker_pid}))
        agent_path = home / "agent.yaml"
        _write_private(agent_path, yaml.safe_dump({"agent": {"name": "demo-agent", "metrics_listen": None},
                                                   "targets": servers.targets()}, sort_keys=False))
        parts: list[Process] = []
        try:
            for part in ("app", "consumer", "load"):
                parts.append(spawn(f"demo-{part}", [sys.executable, "-m", "kubestack.demo", part, "--config",
                                                    str(config_path)], home / f"{part}.log"))
                time.sleep(1.0)
            env = {**os.environ, "KUBESTACK_KAFKA__BOOTSTRAP": bootstrap, "KUBESTACK_HOME": str(settings.home)}
            with (home / "agent.log").open("ab") as agent_log:
                agent = subprocess.Popen([sys.executable, "-m", "kubestack.agents", "--config", str(agent_path)],
                                         env=env, stdout=agent_log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
            parts.append(Process("demo-agent", agent, home / "agent.log"))
            out.print(f"[green]demo up[/]: shop at {servers.config.app_url} under {rate:g} requests/s, watched by "
                      f"an agent publishing to {bootstrap}; logs in {home}")
            out.print("inject a fault from another terminal: [bold]kubestack demo fault redis-stall[/] "
                      "(kubestack demo list shows them all); Ctrl-C stops the demo")
            while all(p.proc.poll() is None for p in parts):
                time.sleep(1)
            dead = next(p for p in parts if p.proc.poll() is not None)
            out.print(f"[red]{dead.name} exited with {dead.proc.returncode}[/]:\n{dead.tail()}")
            raise typer.Exit(1)
        except KeyboardInterrupt:
            out.print("stopping the demo...")
        finally:
            for part in reversed(parts):
                part.stop()
            (home / "state.json").unlink(missing_ok=True)
    out.print("[green]demo stopped[/]")


@app.command()
def fault(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="One of kubestack demo list")],
    seconds: Annotated[float, typer.Option("--for", min=5, max=3600, help="How long the fault stays")] = 90.0,
) -> None:
    """Inject one fault into the running demo, hold it, then undo it (Ctrl-C undoes it at once)."""
    from kubestack.demo.config import DemoConfig
    from kubestack.demo.faults import FAULTS, FaultError, KafkaPaused, hold
    from kubestack.demo.faults import fault as make_fault

    settings: Settings = ctx.obj
    home = _home(settings)
    if name not in FAULTS:
        raise FaultError(f"no fault {name!r}; known: {', '.join(FAULTS)}")
    state_path = home / "state.json"
    if not state_path.exists():
        raise FaultError(f"no demo is running under {home}: start one with kubestack demo up")
    config = DemoConfig.load(home / "demo.json")
    broker_pid = json.loads(state_path.read_text()).get("broker_pid")
    options = {"broker_pid": lambda: broker_pid} if FAULTS[name] is KafkaPaused else {}
    one = make_fault(name, config, **options)
    log.info("demo fault %s injected for %.0fs (cause: %s)", name, seconds, one.cause)
    out.print(f"injecting [bold]{name}[/] ({one.summary}) for {seconds:g}s; watch the console for the incident")
    try:
        hold(one, seconds)
    except KeyboardInterrupt:
        out.print("interrupted: the fault was undone")
    log.info("demo fault %s undone", name)
    out.print(f"[green]{name} undone[/]")
