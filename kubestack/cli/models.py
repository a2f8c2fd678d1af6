"""``kubestack models``: replay metric series through the online models, offline (anomaly scores, forecasts)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kubestack.models.registry import DETECTORS
from kubestack.models.series import format_scored, read_series, score_points

app = typer.Typer(help="The online anomaly detectors and forecasters, replayed on CSV series.",
                  no_args_is_help=True)
err = Console(stderr=True)


def _score_file(src: Path, detector: str, threshold: float) -> str:
    points = read_series(src)
    return format_scored(points, score_points(points, detector, threshold))


@app.command()
def score(
    ctx: typer.Context,
    input_csv: Annotated[Path | None, typer.Argument(metavar="INPUT.csv", help="timestamp,value with a header")]
    = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Output CSV (default: stdout)")] = None,
    input_dir: Annotated[Path | None, typer.Option("--input-dir", help="Score every *.csv below this folder")]
    = None,
    output_dir: Annotated[Path | None, typer.Option("--output-dir", help="Mirror of --input-dir with scores")]
    = None,
    detector: Annotated[str | None, typer.Option(
        "--detector", "-d", help=f"One of: {', '.join(DETECTORS)} (default: worker.anomaly_detector)")] = None,
) -> None:
    """Add an ``anomaly_score`` column in [0, 1]; each score uses only the rows up to its own.

    The detector and its threshold are the worker's (``worker.anomaly_detector``, ``worker.anomaly_threshold``):
    these are the scores the stream computes.
    """
    worker = ctx.obj.worker
    name = detector or worker.anomaly_detector
    if name not in DETECTORS:
        raise typer.BadParameter(f"unknown detector {name!r}: choose one of {', '.join(DETECTORS)}")
    threshold = worker.anomaly_threshold
    _replay(lambda src: _score_file(src, name, threshold), input_csv, output, input_dir, output_dir, "scored")


def _replay(convert: Callable[[Path], str], input_csv: Path | None, output: Path | None, input_dir: Path | None,
            output_dir: Path | None, done: str) -> None:
    """One CSV to a file or stdout, or every ``*.csv`` below ``input_dir`` into the same paths below
    ``output_dir``."""
    if (input_csv is None) == (input_dir is None):
        raise typer.BadParameter("give either INPUT.csv or --input-dir (not both)")
    if input_csv is not None:
        text = convert(input_csv)
        if output is None:
            sys.stdout.write(text)
        else:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text)
        return
    if output_dir is None:
        raise typer.BadParameter("--input-dir needs --output-dir")
    if not input_dir.is_dir():
        raise typer.BadParameter(f"{input_dir} is not a folder")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    files = sorted(p for p in input_dir.rglob("*.csv") if p.is_file())
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task(done, total=len(files))
        for src in files:
            dst = output_dir / src.relative_to(input_dir)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(convert(src))
            progress.advance(task)
    err.print(f"{len(files)} series {done} into {output_dir}")


def _forecast_file(src: Path, capacity: float, horizon_s: float) -> str:
    from kubestack.models.forecast_series import forecast_points, format_forecast

    points = read_series(src)
    return format_forecast(points, forecast_points(points, capacity, horizon_s))


@app.command()
def forecast(
    input_csv: Annotated[Path | None, typer.Argument(metavar="INPUT.csv", help="timestamp,value with a header")]
    = None,
    capacity: Annotated[float | None, typer.Option("--capacity", help="The value at which the series is full")]
    = None,
    horizon: Annotated[str, typer.Option("--horizon", help="Show forecasts due within this (24h, 90m, 2d)")]
    = "24h",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Output CSV (default: stdout)")] = None,
    input_dir: Annotated[Path | None, typer.Option("--input-dir", help="Forecast every *.csv below this folder")]
    = None,
    output_dir: Annotated[Path | None, typer.Option("--output-dir", help="Mirror of --input-dir with forecasts")]
    = None,
) -> None:
    """Add ``exhaustion_at`` and ``exhaustion_lower_bound`` (ISO 8601 UTC), empty unless due within the horizon.

    The early bound decides what is due; each row uses only the rows up to its own.
    """
    if capacity is None:
        raise typer.BadParameter("give the capacity the series fills up to, e.g. --capacity 1073741824",
                                 param_hint="--capacity")
    if not (capacity > 0 and capacity != float("inf")):
        raise typer.BadParameter(f"{capacity} is not a positive capacity", param_hint="--capacity")
    from kubestack.models.forecast_series import parse_duration  # numpy: only for a forecast

    try:
        horizon_s = parse_duration(horizon)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--horizon") from None
    _replay(lambda src: _forecast_file(src, capacity, horizon_s), input_csv, output, input_dir, output_dir,
            "forecast")
