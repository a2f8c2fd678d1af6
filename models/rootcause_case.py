"""A root-cause replay case on disk, as ``kubestack rca replay DIR`` reads it:

- ``metrics.csv``: first column ``timestamp`` (ISO 8601 or epoch seconds), every other column
  ``<component>|<metric>``, numeric (empty cells are missing values);
- ``graph.csv`` (optional): ``source,target``, the source calls or depends on the target;
- ``logs.jsonl`` (optional): one JSON object per line with ``timestamp``, ``component`` and ``message``
  (``level`` optional);
- ``incident.json`` (optional): ``{"start": <timestamp>}``, the detected onset.

Errors name the file and line (``CaseFormatError``).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kubestack.errors import CaseFormatError
from kubestack.models.series import parse_timestamp


@dataclass(frozen=True)
class LogEntry:
    ts: float
    component: str
    message: str
    level: str = ""


@dataclass
class Case:
    """Aligned metrics (``values[:, j]`` is column ``columns[j]`` = (component, metric)), rows in time order."""

    timestamps: np.ndarray
    columns: list[tuple[str, str]]
    values: np.ndarray
    edges: list[tuple[str, str]] = field(default_factory=list)
    logs: list[LogEntry] = field(default_factory=list)
    start: float | None = None

    @property
    def components(self) -> list[str]:
        return sorted({c for c, _ in self.columns})


def read_case(folder: Path) -> Case:
    if not folder.is_dir():
        raise CaseFormatError(f"{folder}: not a folder")
    metrics = folder / "metrics.csv"
    if not metrics.is_file():
        raise CaseFormatError(f"{folder}: no metrics.csv")
    timestamps, columns, values = _read_metrics(metrics)
    case = Case(timestamps, columns, values)
    if (folder / "graph.csv").is_file():
        case.edges = _read_graph(folder / "graph.csv")
    if (folder / "logs.jsonl").is_file():
        case.logs = _read_logs(folder / "logs.jsonl")
    if (folder / "incident.json").is_file():
        case.start = _read_start(folder / "incident.json")
    return case


def _read_metrics(path: Path) -> tuple[np.ndarray, list[tuple[str, str]], np.ndarray]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = csv.reader(handle)
        header = [h.strip() for h in next(rows, [])]
        if not header or header[0].lower() != "timestamp":
            raise CaseFormatError(f"{path}: line 1: the first column must be 'timestamp'")
        columns = []
        for name in header[1:]:
            component, sep, metric = name.partition("|")
            if not sep or not component or not metric:
                raise CaseFormatError(f"{path}: line 1: column {name!r} is not <component>|<metric>")
            columns.append((component, metric))
        if not columns:
            raise CaseFormatError(f"{path}: line 1: no metric columns")
        stamps, table = [], []
        for line, row in enumerate(rows, start=2):
            if not row or not any(cell.strip() for cell in row):
                continue
            try:
                stamps.append(parse_timestamp(row[0]))
            except ValueError:
                raise CaseFormatError(f"{path}: line {line}: unparsable timestamp {row[0]!r}") from None
            table.append([_number(path, line, cell) for cell in (row[1:] + [""] * len(columns))[:len(columns)]])
    if len(stamps) < 3:
        raise CaseFormatError(f"{path}: needs at least 3 rows, has {len(stamps)}")
    order = np.argsort(np.asarray(stamps), kind="stable")
    return np.asarray(stamps)[order], columns, np.asarray(table, dtype=float)[order]


def _number(path: Path, line: int, cell: str) -> float:
    cell = cell.strip()
    if not cell or cell.lower() in ("nan", "null", "none"):
        return math.nan
    try:
        value = float(cell)
    except ValueError:
        raise CaseFormatError(f"{path}: line {line}: {cell!r} is not a number") from None
    return value if math.isfinite(value) else math.nan


def _read_graph(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    header = [h.strip().lower() for h in rows[0]] if rows else []
    if header[:2] != ["source", "target"]:
        raise CaseFormatError(f"{path}: line 1: expected the header source,target")
    edges = []
    for line, row in enumerate(rows[1:], start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise CaseFormatError(f"{path}: line {line}: expected source,target")
        edges.append((row[0].strip(), row[1].strip()))
    return edges


def _read_logs(path: Path) -> list[LogEntry]:
    entries = []
    with path.open(encoding="utf-8") as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
                entries.append(LogEntry(parse_timestamp(str(record["timestamp"])), str(record["component"]),
                                        str(record.get("message", "")), str(record.get("level", ""))))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise CaseFormatError(f"{path}: line {line}: needs a JSON object with timestamp and component "
                                      f"({type(exc).__name__}: {exc})") from None
    return entries


def _read_start(path: Path) -> float | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        start = record.get("start")
        return None if start is None else parse_timestamp(str(start))
    except (json.JSONDecodeError, AttributeError, ValueError) as exc:
        raise CaseFormatError(f"{path}: expected {{\"start\": <timestamp>}} ({type(exc).__name__}: {exc})") from None
