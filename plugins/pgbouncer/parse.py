"""Pure readers of the admin console's rows (``SHOW POOLS``, ``SHOW DATABASES``, ``SHOW STATS``, ``SHOW LISTS``,
``SHOW CONFIG``, ``SHOW CLIENTS``), each row given as a column → value mapping as the console returned it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Row = Mapping[str, Any]
ADMIN_DB = "pgbouncer"
"""The virtual database of the admin console: not a pool of a real server."""


def number(value: Any) -> float | None:
    """A numeric cell (int, Decimal or digits), or None for NULL and text."""
    if value is None or isinstance(value, bool):
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if result == result else None


def _int(row: Row, key: str) -> int:
    return int(number(row.get(key)) or 0)


@dataclass(frozen=True)
class Pool:
    db: str
    user: str
    cl_active: int
    cl_waiting: int
    sv_active: int
    sv_idle: int
    sv_used: int
    sv_tested: int
    sv_login: int
    maxwait_s: float
    mode: str

    @property
    def servers(self) -> int:
        """Server connections the pool holds, in any state."""
        return self.sv_active + self.sv_idle + self.sv_used + self.sv_tested + self.sv_login


def parse_pools(rows: Sequence[Row]) -> list[Pool]:
    """``SHOW POOLS``; ``maxwait`` (seconds) and ``maxwait_us`` (the microseconds past it) make one wait."""
    return [Pool(db=str(r["database"]), user=str(r["user"]), cl_active=_int(r, "cl_active"),
                 cl_waiting=_int(r, "cl_waiting"), sv_active=_int(r, "sv_active"), sv_idle=_int(r, "sv_idle"),
                 sv_used=_int(r, "sv_used"), sv_tested=_int(r, "sv_tested"), sv_login=_int(r, "sv_login"),
                 maxwait_s=_int(r, "maxwait") + _int(r, "maxwait_us") / 1e6, mode=str(r.get("pool_mode") or ""))
            for r in rows if r.get("database") != ADMIN_DB]


@dataclass(frozen=True)
class Database:
    name: str
    host: str | None
    port: int
    dbname: str
    pool_size: int
    max_connections: int
    current_connections: int
    paused: bool
    disabled: bool

    @property
    def backend(self) -> str | None:
        """``host:port`` of the PostgreSQL server behind it; a Unix socket directory means PgBouncer's host."""
        if not self.host:
            return None
        host = "localhost" if self.host.startswith("/") else self.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"


def parse_databases(rows: Sequence[Row]) -> list[Database]:
    """``SHOW DATABASES`` (the admin console's own entry left out)."""
    return [Database(name=str(r["name"]), host=r.get("host") or None, port=_int(r, "port"),
                     dbname=str(r.get("database") or r["name"]), pool_size=_int(r, "pool_size"),
                     max_connections=_int(r, "max_connections"), current_connections=_int(r, "current_connections"),
                     paused=bool(_int(r, "paused")), disabled=bool(_int(r, "disabled")))
            for r in rows if r.get("name") != ADMIN_DB]


def parse_stats(rows: Sequence[Row]) -> dict[str, dict[str, float]]:
    """``SHOW STATS``: database → column → number (the admin console's own row left out)."""
    out = {}
    for r in rows:
        if r.get("database") in (None, ADMIN_DB):
            continue
        out[str(r["database"])] = {k: v for k, v in ((k, number(v)) for k, v in r.items()) if v is not None}
    return out


def parse_lists(rows: Sequence[Row]) -> dict[str, int]:
    """``SHOW LISTS``: ``databases``, ``pools``, ``free_clients``, ``used_clients``, ``used_servers``, ..."""
    return {str(r["list"]): _int(r, "items") for r in rows}


def parse_config(rows: Sequence[Row]) -> dict[str, str]:
    """``SHOW CONFIG``: setting → value as text (NULL as empty)."""
    return {str(r["key"]): "" if r.get("value") is None else str(r["value"]) for r in rows}


def app_clients(rows: Sequence[Row]) -> list[Row]:
    """``SHOW CLIENTS`` without the admin console's own sessions (the collector among them)."""
    return [r for r in rows if r.get("database") != ADMIN_DB]
