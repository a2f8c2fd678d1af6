"""The recorded group: real series from Redis, MariaDB and PostgreSQL (``record.py``), as ``Series``.

``recorded/clean/*.csv`` hold series at rest under light steady load (no anomaly); ``recorded/faults/*.csv``
the same servers with real faults injected, labelled by ``recorded/faults/labels.json`` (fault onsets). The
files are split by name between dev and holdout (sorted, alternately), so the group is tuned on half of the
series and reported on the other half. ``false_alarms`` counts alerts on the clean series per series-hour,
the figure people on call feel.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from generate import Series

ROOT = Path(__file__).resolve().parent / "recorded"
GROUP = "recorded"


def _epoch(stamp: str) -> float:
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in stamp else "%Y-%m-%d %H:%M:%S"
    return datetime.strptime(stamp, fmt).replace(tzinfo=timezone.utc).timestamp()


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = [line.split(",") for line in path.read_text().splitlines()[1:] if line]
    return np.array([_epoch(t) for t, _ in rows]), np.array([float(v) for _, v in rows])


def load(kind: str, root: Path = ROOT) -> list[Series]:
    """All series of ``clean`` or ``faults``, labels as onset indices."""
    folder = root / kind
    labels = json.loads((folder / "labels.json").read_text()) if (folder / "labels.json").exists() else {}
    out = []
    for path in sorted(folder.glob("*.csv")):
        ts, values = read_csv(path)
        onsets = [int(np.searchsorted(ts, _epoch(t))) for t in labels.get(path.name, [])]
        out.append(Series(name=f"recorded/{kind}/{path.stem}", ts=ts, values=values, anomalies=onsets,
                          kinds=["fault"] * len(onsets), group=GROUP))
    return out


def recorded_split(split: str, root: Path = ROOT) -> list[Series]:
    """Every other series of each kind: even positions in dev, odd ones in holdout."""
    first = 0 if split == "dev" else 1
    return [s for kind in ("clean", "faults") for s in load(kind, root)[first::2]]


def false_alarms(scores: list[np.ndarray], data: list[Series], threshold: float) -> tuple[int, float]:
    """Alerts (points at or above ``threshold``) on clean recorded series, and the series-hours they cover."""
    alerts, seconds = 0, 0.0
    for sc, s in zip(scores, data):
        if s.group == GROUP and not s.anomalies and s.name.startswith("recorded/clean/"):
            alerts += int(np.count_nonzero(sc >= threshold))
            seconds += float(s.ts[-1] - s.ts[0]) if len(s.ts) > 1 else 0.0
    return alerts, seconds / 3600.0
