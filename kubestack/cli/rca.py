"""``kubestack rca``: root-cause analysis, replayed offline on a folder of metrics (how it is scored)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Root-cause analysis, replayed offline.", no_args_is_help=True)


@app.command()
def replay(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="metrics.csv [graph.csv] [logs.jsonl] [incident.json]")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout")] = False,
    top: Annotated[int, typer.Option("--top", min=1, help="Components shown in the table (JSON has all)")] = 5,
) -> None:
    """Rank the components of DIR by how likely each is the root cause, best first, with the evidence."""
    from kubestack.models.rootcause_case import rank_case, read_case  # numpy: only when a case is replayed

    case = read_case(folder)
    ranking = rank_case(case)
    if as_json:
        typer.echo(json.dumps({"onset": _iso(ranking.onset), "onset_given": ranking.onset_given,
                               "ranking": [c.as_dict() for c in ranking.causes]}, ensure_ascii=False))
        return
    given = "given" if ranking.onset_given else "detected"
    symptom = f"; symptom {case.symptom.component} {case.symptom.metric}" if case.symptom else ""
    typer.echo(f"onset {_iso(ranking.onset)} ({given}){symptom}; {len(ranking.causes)} components, "
               f"{len(case.metrics.columns)} metrics")
    for position, cause in enumerate(ranking.causes[:top], start=1):
        typer.echo(f"{position}. {cause.component}  score {cause.score:.3f}")
        for evidence in cause.evidence[:3]:
            typer.echo(f"     {evidence.metric} {evidence.direction} z={evidence.z:.1f}")
        for note in [p.note for p in cause.priors] + cause.notes:
            typer.echo(f"     {note}")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()
