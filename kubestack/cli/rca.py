"""``kubestack rca``: root-cause analysis, replayed offline on a folder of metrics (how it is scored)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer

from kubestack.models.rootcause import rank
from kubestack.models.rootcause_case import read_case

app = typer.Typer(help="Root-cause analysis, replayed offline.", no_args_is_help=True)


@app.command()
def replay(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="metrics.csv [graph.csv] [logs.jsonl] [incident.json]")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout")] = False,
    top: Annotated[int, typer.Option("--top", min=1, help="Components shown in the table (JSON has all)")] = 5,
) -> None:
    """Rank the components of DIR by how likely each is the root cause, best first, with the evidence."""
    case = read_case(folder)
    onset, ranked = rank(case)
    if as_json:
        typer.echo(json.dumps({"onset": _iso(onset), "onset_given": case.start is not None,
                               "ranking": [c.as_dict() for c in ranked]}, ensure_ascii=False))
        return
    given = "given" if case.start is not None else "detected"
    typer.echo(f"onset {_iso(onset)} ({given}); {len(ranked)} components, {len(case.columns)} metrics")
    for position, candidate in enumerate(ranked[:top], start=1):
        typer.echo(f"{position}. {candidate.component}  score {candidate.score:.3f}")
        for evidence in candidate.evidence[:3]:
            typer.echo(f"     {evidence.metric} {evidence.direction} z={evidence.z:.1f}")
        for note in candidate.notes:
            typer.echo(f"     {note}")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()
