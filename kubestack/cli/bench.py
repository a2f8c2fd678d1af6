"""``kubestack bench``: measure this installation (figures, not pass/fail)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console

from kubestack.settings import Settings

app = typer.Typer(help="Benchmarks of the pipeline, measured side by side with a bare baseline.",
                  no_args_is_help=True)
err = Console(stderr=True)


@app.command()
def pipeline(
    ctx: typer.Context,
    seconds: Annotated[float, typer.Option(help="Length of the latency phase; also sets the batch volume")] = 30.0,
    resources: Annotated[int, typer.Option(help="Resources in the throughput phase")] = 100,
    samples: Annotated[int, typer.Option(help="Samples per batch")] = 20,
    use_configured_kafka: Annotated[bool, typer.Option("--use-configured-kafka",
                                                       help="Use settings' Kafka instead of a fresh local broker")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout")] = False,
) -> None:
    """Worker throughput (ratio to a bare consumer), signal-to-incident latency, detector cost."""
    from kubestack.pipeline.bench import run

    settings: Settings = ctx.obj
    with err.status("running the pipeline benchmark (starts a broker and a worker)..."):
        figures = asyncio.run(run(settings.kafka if use_configured_kafka else None, seconds, resources, samples))
    if as_json:
        typer.echo(json.dumps(figures))
        return
    for key, value in figures.items():
        typer.echo(f"{key:28} {value}")
