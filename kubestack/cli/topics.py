"""``kubestack topics``: the event contract's registry."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from kubestack.contract.schemas import SCHEMA_DIR, stale_schemas, write_schemas
from kubestack.contract.topics import TOPICS

if TYPE_CHECKING:
    from kubestack.settings import Settings

app = typer.Typer(help="The topics of the event contract.", no_args_is_help=True)
out = Console()


def _human(seconds: float) -> str:
    days, hours = divmod(int(seconds) // 3600, 24)
    return f"{days}d" if hours == 0 else f"{days}d{hours}h" if days else f"{hours}h"


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Every topic: name, model, partition key, partitions, retention."""
    settings: Settings = ctx.obj
    rows = [
        {
            "name": spec.qualified(settings.kafka.topic_prefix),
            "model": spec.model.__name__,
            "key": spec.key_doc,
            "partitions": settings.kafka.partitions_of(spec),  # as the product creates it
            "retention_ms": int(spec.retention.total_seconds() * 1000),
            "cleanup_policy": spec.topic_configs["cleanup.policy"],
            "description": spec.description,
        }
        for spec in TOPICS
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="KubeStack-AI topics")
    for column in ("name", "model", "key", "partitions", "retention"):
        table.add_column(column, no_wrap=True)
    table.add_column("description", overflow="fold")
    for row in rows:
        table.add_row(row["name"], row["model"], row["key"], str(row["partitions"]),
                      _human(row["retention_ms"] / 1000), row["description"])
    out.print(table)


@app.command("schemas")
def schemas(
    check: Annotated[bool, typer.Option("--check", help="Exit 1 if the committed schemas are stale")] = False,
) -> None:
    """Write the JSON schema of every topic's model (or check them)."""
    if check:
        stale = stale_schemas()
        if stale:
            out.print(f"stale schemas in {SCHEMA_DIR}: {', '.join(stale)} (run `kubestack topics schemas`)")
            raise typer.Exit(1)
        out.print(f"{len(TOPICS)} schemas up to date")
        return
    for path in write_schemas():
        out.print(f"wrote {path}")
