"""``kubestack plugins``: what middleware this installation understands."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Middleware plugins: list them, check one.", no_args_is_help=True)
out = Console()


def _describe(name: str) -> dict:
    from kubestack.plugins.registry import client_installed, get_plugin  # each plugin's module: not at start-up

    plugin = get_plugin(name)
    instance = plugin.create(plugin.config_model.model_validate(plugin.example_config()))
    return {
        "name": name,
        "client_module": plugin.client_module,
        "client_installed": client_installed(plugin),
        "actions": [a.model_dump(mode="json") for a in instance.actions()],
        "log_sources": [s.model_dump(mode="json", exclude_none=True) for s in instance.log_sources()],
        "example_config": plugin.example_config(),
        "doc": (plugin.__doc__ or "").strip().splitlines()[0] if plugin.__doc__ else "",
    }


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False) -> None:
    """Installed plugins, their client library and actions (and any that fail to load)."""
    from kubestack.plugins.registry import broken_plugins, plugins

    rows = [_describe(name) for name in plugins()]
    broken = broken_plugins()
    if as_json:
        typer.echo(json.dumps({"plugins": rows, "broken": broken}, indent=2))
        return
    table = Table(title="KubeStack-AI plugins")
    for column in ("name", "client", "actions", "description"):
        table.add_column(column)
    for row in rows:
        client = f"{row['client_module']} " + ("[green]ok[/]" if row["client_installed"] else "[red]missing[/]")
        table.add_row(row["name"], client, ", ".join(a["id"].split(".", 1)[1] for a in row["actions"]), row["doc"])
    for name, error in broken.items():
        table.add_row(name, "[red]broken[/]", "", error)
    out.print(table)


@app.command()
def check(name: str) -> None:
    """Whether a plugin's client library is installed, and an example target config for it."""
    import yaml

    row = _describe(name)
    state = "[green]installed[/]" if row["client_installed"] else "[red]not installed[/] (pip install it)"
    out.print(f"plugin [bold]{name}[/]: client library {row['client_module']} {state}")
    out.print("example target (agent.yaml):")
    target = {"type": name, "name": f"{name}-1", "interval": "10s", "config": row["example_config"]}
    out.print(yaml.safe_dump({"targets": [target]}, sort_keys=False), highlight=False)
    if not row["client_installed"]:
        raise typer.Exit(1)
