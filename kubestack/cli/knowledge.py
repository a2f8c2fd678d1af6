"""``kubestack knowledge``: build and search the runbook knowledge base (``<home>/knowledge``).

llama-index and faiss are imported inside the commands: they take seconds to load, and every other
``kubestack`` command imports this module."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from kubestack.settings import Settings

app = typer.Typer(help="The runbook knowledge base: ingest, search.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def knowledge_dir(settings: Settings, override: Path | None = None) -> Path:
    from kubestack.knowledge.index import default_folder

    return override or default_folder(settings.home)


DirOption = Annotated[Path | None, typer.Option("--dir", help="Knowledge folder (default: <home>/knowledge)")]


@app.command()
def ingest(
    ctx: typer.Context,
    embedder: Annotated[str, typer.Option("--embedder", "-e", help="hashed (default, offline) or minilm")]
    = "hashed",
    folder: DirOption = None,
) -> None:
    """(Re)build the index from the packaged runbooks and the remembered incidents."""
    from kubestack.knowledge.embedders import EMBEDDERS
    from kubestack.knowledge.index import build

    if embedder == "default":
        embedder = "hashed"
    if embedder not in EMBEDDERS:
        raise typer.BadParameter(f"unknown embedder {embedder!r}: choose one of default, {', '.join(EMBEDDERS)}")
    target = knowledge_dir(ctx.obj, folder)
    manifest = build(target, embedder)
    err.print(f"indexed {manifest.documents} documents ({manifest.chunks} chunks) with the {manifest.embedder} "
              f"embedder in {target}", highlight=False)


@app.command()
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="A question, e.g. 'redis 内存满了怎么办'")],
    middleware: Annotated[str | None, typer.Option("--middleware", "-m", help="Only this middleware")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="How many documents")] = 5,
    mode: Annotated[str, typer.Option("--mode", help="hybrid, bm25 or dense")] = "hybrid",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    folder: DirOption = None,
) -> None:
    """The best runbooks and past incidents for a question."""
    from kubestack.knowledge.retrieve import KnowledgeBase

    if mode not in ("hybrid", "bm25", "dense"):
        raise typer.BadParameter(f"unknown mode {mode!r}: choose hybrid, bm25 or dense")
    hits = KnowledgeBase.open(knowledge_dir(ctx.obj, folder)).search(query, middleware=middleware, k=k,
                                                                      mode=mode)  # type: ignore[arg-type]
    if as_json:
        typer.echo(json.dumps([h.model_dump() for h in hits], indent=2, ensure_ascii=False))
        return
    if not hits:
        err.print("no matching document")
        raise typer.Exit(1)
    table = Table(title=f"knowledge: {query}")
    for column in ("#", "id", "title", "score"):
        table.add_column(column, overflow="fold")
    for rank, hit in enumerate(hits, 1):
        table.add_row(str(rank), hit.id, hit.title, f"{hit.score:.4f}")
    out.print(table)


@app.command()
def follow(
    ctx: typer.Context,
    idle_exit: Annotated[float | None, typer.Option("--idle-exit", min=1,
                                                    help="Stop after this many seconds without a record")] = None,
    folder: DirOption = None,
) -> None:
    """Remember every incident as it resolves (with its root-cause report) in the knowledge base."""
    import asyncio

    from kubestack.knowledge.follow import follow as follow_incidents

    settings: Settings = ctx.obj
    count = asyncio.run(follow_incidents(settings.kafka, knowledge_dir(settings, folder), idle_exit))
    err.print(f"{count} resolved incident(s) remembered", highlight=False)
