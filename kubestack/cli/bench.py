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
    brokers: Annotated[int, typer.Option(min=1, max=9, help="Brokers of the local cluster it starts "
                                                             "(replication 3 and min ISR 2 from three on)")] = 1,
    workers: Annotated[str, typer.Option(help="Group sizes to measure one after the other, e.g. 1,2,3")] = "1",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout")] = False,
) -> None:
    """Worker throughput (ratio to a bare consumer), signal-to-incident latency, detector cost; per group of
    workers sharing the partitions: total and per-worker samples/s, CPU seconds per million samples."""
    from kubestack.pipeline.bench import run

    try:
        sizes = tuple(int(part) for part in workers.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise typer.BadParameter(f"{workers!r}: group sizes are whole numbers from 1, comma-separated (e.g. 1,2,3)",
                                 param_hint="--workers")
    if use_configured_kafka and brokers != 1:
        raise typer.BadParameter("--brokers starts a local cluster; with --use-configured-kafka the settings' "
                                 "cluster is used", param_hint="--brokers")
    settings: Settings = ctx.obj
    with err.status("running the pipeline benchmark (starts brokers and workers)..."):
        figures = asyncio.run(run(settings.kafka if use_configured_kafka else None, seconds, resources, samples,
                                  brokers=brokers, workers=sizes))
    if as_json:
        typer.echo(json.dumps(figures))
        return
    for key, value in figures.items():
        if key != "groups":
            typer.echo(f"{key:28} {value}")
    for group in figures["groups"]:
        shown = ", ".join(f"{key} {value}" for key, value in group.items() if key != "workers")
        typer.echo(f"{group['workers']} worker(s): {shown}")
