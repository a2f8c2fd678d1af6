"""A root-cause replay case on disk, as ``kubestack rca replay DIR`` reads it:

- ``metrics.csv``: first column ``timestamp`` (ISO 8601 or epoch seconds), every other column
  ``<component>|<metric>``, numeric (empty cells are missing values);
- ``graph.csv`` (optional): ``source,target``, the source calls or depends on the target;
- ``logs.jsonl`` (optional): one JSON object per line with ``timestamp``, ``component`` and ``message``
  (``level`` optional);
- ``incident.json`` (optional): ``{"start": <timestamp>, "symptom": {"component": C, "metric": M}}``, the
  detected onset and the alert that opened the incident (M a metric of C in ``metrics.csv``), each optional.

Errors name the file and line (``CaseFormatError``). Error and warning log lines become priors of the ranking
(``log_priors``): a component whose rate of them rose after the onset.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kubestack.errors import CaseFormatError
from kubestack.models.rootcause import Prior, Ranking, Symptom, rank_causes
from kubestack.models.rootcause_metrics import MetricTable, find_onset
from kubestack.models.series import parse_timestamp

ERROR_WORDS = ("error", "exception", "fail", "fatal", "panic", "timeout", "refused", "denied")


@dataclass(frozen=True)
class LogEntry:
    ts: float
    component: str
    message: str
    level: str = ""


@dataclass
class Case:
    metrics: MetricTable
    edges: list[tuple[str, str]] = field(default_factory=list)   # (caller, callee)
    logs: list[LogEntry] = field(default_factory=list)
    start: float | None = None
    symptom: Symptom | None = None


def read_case(folder: Path) -> Case:
    if not folder.is_dir():
        raise CaseFormatError(f"{folder}: not a folder")
    metrics = folder / "metrics.csv"
    if not metrics.is_file():
        raise CaseFormatError(f"{folder}: no metrics.csv")
    case = Case(MetricTable(*_read_metrics(metrics)))
    if (folder / "graph.csv").is_file():
        case.edges = _read_graph(folder / "graph.csv")
    if (folder / "logs.jsonl").is_file():
        case.logs = _read_logs(folder / "logs.jsonl")
    if (folder / "incident.json").is_file():
        case.start, case.symptom = _read_incident(folder / "incident.json")
    return case


def rank_case(case: Case) -> Ranking:
    """The engine's ranking of a replayed case: its metrics, onset, symptom and graph, its logs as priors."""
    priors = []
    if case.logs:
        stamps = case.metrics.timestamps
        onset = case.start if case.start is not None else find_onset(case.metrics)
        priors = log_priors(case.logs, onset, float(stamps[0]), float(stamps[-1]))
    return rank_causes(case.metrics, onset=case.start, symptom=case.symptom, edges=case.edges, priors=priors)


def log_priors(logs: list[LogEntry], onset: float, first: float, last: float) -> list[Prior]:
    """A prior for each component whose rate of error and warning lines after the onset is more than twice its
    rate before (rows from ``first`` to ``last``), weighing half the log of that ratio."""
    span_before, span_after = max(onset - first, 1.0), max(last - onset, 1.0)
    counts: dict[str, list[int]] = {}
    for entry in logs:
        text = f"{entry.level} {entry.message}".lower()
        if not any(word in text for word in ERROR_WORDS) and entry.level.lower() not in ("warn", "warning"):
            continue
        counts.setdefault(entry.component, [0, 0])[entry.ts >= onset] += 1
    priors = []
    for component, (pre, post) in sorted(counts.items()):
        ratio = (post / span_after) / ((pre + 1) / span_before)
        if ratio > 2:
            priors.append(Prior(component, "logs", 0.5 * math.log(ratio),
                                f"{post} error/warning log lines after the onset, {pre} before"))
    return priors


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
        nan = math.nan
        for line, row in enumerate(rows, start=2):
            if not row or not any(cell.strip() for cell in row):
                continue
            try:
                stamps.append(parse_timestamp(row[0]))
            except ValueError:
                raise CaseFormatError(f"{path}: line {line}: unparsable timestamp {row[0]!r}") from None
            cells = (row[1:] + [""] * len(columns))[:len(columns)]
            try:  # the common case at C speed; the slow path below names the cell that is not a number
                table.append([float(cell) if cell else nan for cell in cells])
            except ValueError:
                table.append([_number(path, line, cell) for cell in cells])
    if len(stamps) < 3:
        raise CaseFormatError(f"{path}: needs at least 3 rows, has {len(stamps)}")
    order = np.argsort(np.asarray(stamps), kind="stable")
    values = np.asarray(table, dtype=float)[order]
    values[~np.isfinite(values)] = nan  # "inf" parses; an infinite reading is no reading
    return np.asarray(stamps)[order], columns, values


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


def _read_incident(path: Path) -> tuple[float | None, Symptom | None]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        start = record.get("start")
        symptom = record.get("symptom")
        return (None if start is None else parse_timestamp(str(start)),
                None if symptom is None else Symptom(str(symptom["component"]), str(symptom["metric"])))
    except (json.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as exc:
        raise CaseFormatError(f"{path}: expected {{\"start\": <timestamp>, \"symptom\": {{\"component\": C, "
                              f"\"metric\": M}}}}, each optional ({type(exc).__name__}: {exc})") from None
