"""Durations as people write them in config files: ``10``, ``10s``, ``500ms``, ``5m``, ``1h``."""

from __future__ import annotations

import re
from typing import Any

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from ``10``, ``10s``, ``500ms``, ``5m``, ``1h``."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 10s, 500ms, 5m, 1h)")
    return float(match.group(1)) * _UNITS[match.group(2)]
