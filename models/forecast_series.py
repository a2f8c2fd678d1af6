"""Offline replay of a capacity series through the exhaustion forecaster (``kubestack models forecast``).

Input: the ``timestamp,value`` CSV of :mod:`kubestack.models.series` and a capacity. Output: the same rows
with ``exhaustion_at`` (likely time) and ``exhaustion_lower_bound`` (early bound), ISO 8601 UTC, both empty
unless the early bound lies within ``horizon_s`` of the row (the rule of a warning notice); each row is
forecast from the rows up to its own by one forecaster fed in order.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timezone

from kubestack.errors import SeriesFormatError
from kubestack.models.forecast import ExhaustionForecaster, ForecastParams
from kubestack.models.series import Point

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``24h``, ``2d``, ``1w`` -> seconds; ``ValueError`` otherwise."""
    match = _DURATION.match(text.lower())
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration such as 24h, 90m, 2d or a number of seconds")
    return float(match.group(1)) * UNITS[match.group(2) or "s"]


def forecast_points(points: list[Point], capacity: float, horizon_s: float,
                    params: ForecastParams | None = None) -> list[tuple[float | None, float | None]]:
    """(likely, early bound) per row, both None unless the early bound is within ``horizon_s`` of the row."""
    params = params or ForecastParams()
    forecaster = ExhaustionForecaster(replace(params, reach_s=max(params.reach_s, horizon_s)))
    out: list[tuple[float | None, float | None]] = []
    previous = None
    for index, point in enumerate(points):
        if previous is not None and point.ts < previous.ts:
            raise SeriesFormatError(f"row {index + 1} ({point.text}) is earlier than the row before "
                                    f"({previous.text}): sort the series by time")
        previous = point
        fc = forecaster.update(point.ts, point.value, capacity)
        if fc.lower_bound is not None and fc.lower_bound - point.ts <= horizon_s:
            out.append((fc.exhaustion_at, fc.lower_bound))
        else:
            out.append((None, None))
    return out


def iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(round(ts), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_forecast(points: list[Point], rows: list[tuple[float | None, float | None]]) -> str:
    lines = ["timestamp,value,exhaustion_at,exhaustion_lower_bound"]
    lines += [f"{p.text},{p.value_text},{iso(likely)},{iso(lower)}" for p, (likely, lower) in zip(points, rows)]
    return "\n".join(lines) + "\n"
