"""The recorded group: real series from Redis, MariaDB and PostgreSQL (``record.py``), as ``Series``.

Each recording session is a folder (``SESSIONS``: ``recorded/``, 8 minutes at rest, and ``recorded/long/``,
45 minutes at rest) with ``clean/*.csv``, series at rest under light steady load (no anomaly), and
``faults/*.csv``, the same servers with real faults injected after the clean part, labelled by
``faults/labels.json`` (fault onsets). Within each session and kind the files are split by name between dev
and holdout (sorted, alternately), so the group is tuned on half of the series and reported on the other
half. ``false_alarms`` counts alerts on the clean series per series-hour, the figure people on call feel.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from generate import Series

ROOT = Path(__file__).resolve().parent / "recorded"
SESSIONS = (ROOT, ROOT / "long")
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
        session = "" if root == ROOT else f"{root.name}/"
        out.append(Series(name=f"recorded/{session}{kind}/{path.stem}", ts=ts, values=values, anomalies=onsets,
                          kinds=["fault"] * len(onsets), group=GROUP))
    return out


def recorded_split(split: str, roots: tuple[Path, ...] = SESSIONS) -> list[Series]:
    """Every other series of each session and kind: even positions in dev, odd ones in holdout."""
    first = 0 if split == "dev" else 1
    return [s for root in roots if root.is_dir() for kind in ("clean", "faults") for s in load(kind, root)[first::2]]


def false_alarms(scores: list[np.ndarray], data: list[Series], threshold: float) -> tuple[int, float]:
    """Alerts (points at or above ``threshold``) on clean recorded series, and the series-hours they cover."""
    alerts, seconds = 0, 0.0
    for sc, s in zip(scores, data):
        if s.group == GROUP and not s.anomalies and "/clean/" in s.name:
            alerts += int(np.count_nonzero(sc >= threshold))
            seconds += float(s.ts[-1] - s.ts[0]) if len(s.ts) > 1 else 0.0
    return alerts, seconds / 3600.0
