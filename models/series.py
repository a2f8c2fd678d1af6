"""Metric series as CSV files (``timestamp,value``, a header line) and their offline replay through a detector.

Timestamps are ISO 8601 (``2014-04-01 00:00:00``, with ``T`` or a zone or neither; no zone means UTC) or
epoch seconds. The text of each timestamp is kept as it was so that the output lines up with the input.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from kubestack.errors import SeriesFormatError
from kubestack.models.registry import create


@dataclass(frozen=True)
class Point:
    text: str        # the timestamp as written
    ts: float        # epoch seconds
    value: float
    value_text: str  # the value as written


def parse_timestamp(text: str) -> float:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp()


def read_series(path: Path) -> list[Point]:
    """Every row of ``path``; ``SeriesFormatError`` names the file and line of the first bad one."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise SeriesFormatError(f"{path}: cannot read: {exc.strerror}") from exc
    with handle:
        rows = csv.reader(handle)
        header = [h.strip().lower() for h in next(rows, [])]
        for column in ("timestamp", "value"):
            if column not in header:
                raise SeriesFormatError(f"{path}: line 1: no '{column}' column (header: {','.join(header)})")
        t_col, v_col = header.index("timestamp"), header.index("value")
        return list(_points(path, rows, t_col, v_col))


def _points(path: Path, rows: Iterator[list[str]], t_col: int, v_col: int) -> Iterator[Point]:
    for line, row in enumerate(rows, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(t_col, v_col):
            raise SeriesFormatError(f"{path}: line {line}: expected timestamp and value, got {','.join(row)!r}")
        try:
            ts = parse_timestamp(row[t_col])
        except ValueError:
            raise SeriesFormatError(f"{path}: line {line}: unparsable timestamp {row[t_col]!r}") from None
        try:
            value = float(row[v_col])
        except ValueError:
            raise SeriesFormatError(f"{path}: line {line}: unparsable value {row[v_col]!r}") from None
        if not math.isfinite(value) or not math.isfinite(ts):
            raise SeriesFormatError(f"{path}: line {line}: value or timestamp is not finite")
        yield Point(row[t_col], ts, value, row[v_col].strip())


def score_points(points: list[Point], detector: str, threshold: float) -> list[float]:
    """Scores in input order, each from the rows up to its own: a fresh detector replays the series, alerting
    (and quieting) at ``threshold`` as the worker's would."""
    update: Callable[[float, float], float] = create(detector, threshold).update
    return [update(p.ts, p.value) for p in points]


def format_scored(points: list[Point], scores: list[float]) -> str:
    lines = ["timestamp,value,anomaly_score"]
    lines += [f"{p.text},{p.value_text},{s:.6f}" for p, s in zip(points, scores)]
    return "\n".join(lines) + "\n"
