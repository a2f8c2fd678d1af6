"""``kubestack``: the command line. Sub-commands live in their own modules; settings are built here once."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer.core import TyperGroup

from kubestack.errors import ConfigError, KubestackError

if TYPE_CHECKING:  # typer carries its own click: importing this one cost 40-70 ms of every command's start
    import click

# name -> (module, attribute: a Typer app or a command function). A sub-command's module is imported only when
# that sub-command runs (or the help lists them all): importing every one cost 1.5 s before any command started.
COMMANDS = {
    "topics": ("kubestack.cli.topics", "app"),
    "kafka": ("kubestack.cli.kafka", "app"),
    "kube": ("kubestack.cli.kube", "app"),
    "plugins": ("kubestack.cli.plugins", "app"),
    "agent": ("kubestack.cli.agent", "app"),
    "models": ("kubestack.cli.models", "app"),
    "logs": ("kubestack.cli.logs", "app"),
    "bench": ("kubestack.cli.bench", "app"),
    "rca": ("kubestack.cli.rca", "app"),
    "knowledge": ("kubestack.cli.knowledge", "app"),
    "api": ("kubestack.cli.api", "app"),
    "audit": ("kubestack.cli.audit", "app"),
    "incidents": ("kubestack.cli.incidents", "incidents_app"),
    "proposals": ("kubestack.cli.incidents", "proposals_app"),
    "silence": ("kubestack.cli.silence", "app"),
    "up": ("kubestack.cli.stack", "up"),
    "down": ("kubestack.cli.stack", "down"),
    "worker": ("kubestack.cli.stack", "worker"),
    "ask": ("kubestack.cli.ask", "ask"),
    "diagnose": ("kubestack.cli.diagnose", "diagnose"),
    "redact": ("kubestack.cli.redact", "redact"),
    "mcp": ("kubestack.cli.mcp", "mcp"),
    "demo": ("kubestack.cli.demo", "app"),
}

WITHOUT_SETTINGS = {"rca", "redact"}  # offline: read only what they are given (importing the settings takes 0.4 s)


class LazyCommands(TyperGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name]
        target = getattr(importlib.import_module(module), attribute)
        if isinstance(target, typer.Typer):
            command = typer.main.get_group(target)
        else:
            single = typer.Typer()
            single.command(cmd_name)(target)
            command = typer.main.get_command(single)
        command.name = cmd_name
        return command


app = typer.Typer(
    name="kubestack",
    help="KubeStack-AI: event-driven AIOps for middleware.",
    cls=LazyCommands,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _settings(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML settings file (or KUBESTACK_CONFIG)")
    ] = None,
) -> None:
    if ctx.invoked_subcommand in WITHOUT_SETTINGS:
        return
    from kubestack.logs import configure_logging
    from kubestack.settings import load_settings

    ctx.obj = load_settings(config)
    configure_logging(ctx.obj.log_level)


def main() -> None:
    """Entry point: known errors become one red line and exit code 1 (2 for settings), not a traceback.

    Typer's standalone mode already turns usage errors, Ctrl-C and ``typer.Exit`` into exit codes.
    """
    try:
        app()
    except KubestackError as exc:
        from rich.console import Console

        err = Console(stderr=True)
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)
