"""``kubestack logs``: offline replays of the log stages.

``kubestack logs templates FILE`` mines the templates of one log file exactly as the stream stage does for one
source, and writes ``line,template_id,template`` for every line, in order. The file is streamed; only one
template number per line is kept (in a compact array) so every row can carry its template's final form. When
the miner refined a template after some of its lines were mined (a fixed word moved to a template of its own),
a second pass over the file follows each of those lines from the id the stream gave it to the template that
holds it at the end (:meth:`TemplateMiner.refined`).
"""

from __future__ import annotations

import csv
import os
import sys
from array import array
from pathlib import Path
from typing import Annotated, TextIO

import typer

from kubestack.errors import ConfigError
from kubestack.models.logformat import LogFormat
from kubestack.models.logtemplates import TemplateMiner

app = typer.Typer(help="Log template mining, replayed over files.", no_args_is_help=True)


@app.command()
def templates(
    logfile: Annotated[Path, typer.Argument(help="The log file to mine (one message per line)")],
    log_format: Annotated[str | None, typer.Option(
        "--log-format", help="Line format, e.g. '<Date> <Time> <Level> <Component>: <Content>'; "
                             "templates are mined from <Content>")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="CSV file to write (default: stdout)")] = None,
) -> None:
    """Mine log templates: one CSV row per input line, ``line,template_id,template``."""
    try:
        miner = TemplateMiner(log_format=None if log_format is None else LogFormat.parse(log_format))
        numbers = _mine(logfile, miner)
        if miner.refinements:
            _follow_refinements(logfile, miner, numbers)
        _output(output, numbers, miner)
    except ConfigError as exc:
        # one line whatever the terminal width (the shared handler's console wraps at 80 columns)
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if miner.unmatched:
        typer.echo(f"warning: {miner.unmatched} of {miner.lines} lines do not match the log format; "
                   "they were mined whole", err=True)


def _mine(logfile: Path, miner: TemplateMiner) -> array:
    numbers = array("I")
    try:
        with open(logfile, "rb") as lines:  # lines end at "\n" only, as `wc -l` counts them
            for raw in lines:
                numbers.append(miner.add_number(raw.rstrip(b"\r\n").decode("utf-8", "replace")))
    except FileNotFoundError:
        raise ConfigError(f"log file not found: {logfile}") from None
    except IsADirectoryError:
        raise ConfigError(f"{logfile} is a directory: give a log file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {logfile}: {exc.strerror or exc}") from None
    return numbers


def _follow_refinements(logfile: Path, miner: TemplateMiner, numbers: array) -> None:
    try:
        with open(logfile, "rb") as lines:
            for k, raw in zip(range(len(numbers)), lines):  # lines appended since the first pass are not ours
                numbers[k] = miner.refined(raw.rstrip(b"\r\n").decode("utf-8", "replace"), numbers[k])
    except OSError as exc:
        raise ConfigError(f"cannot read {logfile} again: {exc.strerror or exc}") from None


def _output(output: Path | None, numbers: array, miner: TemplateMiner) -> None:
    if output is None:
        try:
            _write(sys.stdout, numbers, miner)
            sys.stdout.flush()
        except BrokenPipeError:  # `| head`: the reader has what it wanted; keep the exit flush quiet too
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    try:
        with open(output, "w", newline="", encoding="utf-8") as out:
            _write(out, numbers, miner)
    except OSError as exc:
        raise ConfigError(f"cannot write {output}: {exc.strerror or exc}") from None


def _write(out: TextIO, numbers: array, miner: TemplateMiner) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("line", "template_id", "template"))
    for line, number in enumerate(numbers, 1):
        writer.writerow((line, f"E{number}", miner.template(number)))
