"""Pure parsers of the plugin's query results. Both clients hand them rows of text cells (None for NULL):
the direct connection (``wire.py``) as it reads them, ``psql -A -t`` through ``parse_psql_rows``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

Row = Sequence[str | None]

NULL_MARK = r"\N"
"""What ``psql -P null=\\N`` prints for NULL (an empty cell would be ambiguous)."""

XID_WRAPAROUND = 2**31
"""Transaction ids a database can age before PostgreSQL stops accepting writes to protect itself."""


def parse_psql_rows(text: str) -> list[tuple[str | None, ...]]:
    """Output of ``psql -X -A -t -F '\\t' -P null=\\N -c ...`` → rows of text cells."""
    return [tuple(None if cell == NULL_MARK else cell for cell in line.split("\t"))
            for line in text.splitlines() if line]


def _float(cell: str | None) -> float | None:
    if cell is None or cell == "":
        return None
    try:
        return float(cell)
    except ValueError:
        return None


def _int(cell: str | None) -> int:
    value = _float(cell)
    return int(value) if value is not None else 0


@dataclass(frozen=True)
class ServerInfo:
    version_num: int
    max_connections: int
    reserved_connections: int
    autovacuum_freeze_max_age: int
    in_recovery: bool
    uptime_s: float
    wal_bytes: float | None
    """WAL position as bytes since 0/0: written (primary) or replayed (replica); grows with WAL generation."""
    replay_lag_s: float | None
    """On a replica, seconds since the last replayed transaction committed on the primary."""


def parse_server(rows: Sequence[Row]) -> ServerInfo:
    version, max_conn, reserved, freeze_age, recovery, uptime, wal, lag = rows[0]
    return ServerInfo(version_num=_int(version), max_connections=_int(max_conn), reserved_connections=_int(reserved),
                      autovacuum_freeze_max_age=_int(freeze_age), in_recovery=recovery == "true",
                      uptime_s=_float(uptime) or 0.0, wal_bytes=_float(wal), replay_lag_s=_float(lag))


@dataclass(frozen=True)
class DatabaseStats:
    name: str
    backends: int
    commits: int
    rollbacks: int
    blocks_read: int
    blocks_hit: int
    tuples_returned: int
    tuples_fetched: int
    tuples_inserted: int
    tuples_updated: int
    tuples_deleted: int
    conflicts: int
    temp_files: int
    temp_bytes: int
    deadlocks: int
    size_bytes: int | None
    xid_age: int

    @property
    def cache_hit_ratio(self) -> float | None:
        total = self.blocks_hit + self.blocks_read
        return self.blocks_hit / total if total else None


def parse_databases(rows: Sequence[Row]) -> list[DatabaseStats]:
    stats = []
    for name, *numbers, size, xid_age in rows:
        stats.append(DatabaseStats(str(name), *(_int(n) for n in numbers),
                                   size_bytes=_int(size) if size is not None else None, xid_age=_int(xid_age)))
    return stats


@dataclass(frozen=True)
class Session:
    """One row of pg_stat_activity."""

    pid: int
    db: str
    user: str
    application: str
    state: str
    backend_type: str
    wait_event_type: str
    wait_event: str
    xact_age_s: float | None
    state_age_s: float | None
    query: str
    own: bool
    """The plugin's own session (it takes a connection slot like any client)."""

    @property
    def is_client(self) -> bool:
        return self.backend_type == "client backend"


def parse_activity(rows: Sequence[Row]) -> list[Session]:
    return [Session(pid=_int(pid), db=db or "", user=user or "", application=app or "", state=state or "",
                    backend_type=btype or "", wait_event_type=wtype or "", wait_event=wevent or "",
                    xact_age_s=_float(xact), state_age_s=_float(state_age), query=query or "", own=own == "true")
            for pid, db, user, app, state, btype, wtype, wevent, xact, state_age, query, own in rows]


@dataclass(frozen=True)
class LockWait:
    blocked_pid: int
    blocking_pid: int
    user: str
    db: str
    wait_s: float
    blocked_query: str
    blocking_state: str
    blocking_query: str
    blocking_xact_age_s: float | None
    lock_type: str
    lock_mode: str


def parse_blocking(rows: Sequence[Row]) -> list[LockWait]:
    return [LockWait(blocked_pid=_int(blocked), blocking_pid=_int(blocking), user=user or "", db=db or "",
                     wait_s=_float(wait) or 0.0, blocked_query=bq or "", blocking_state=state or "",
                     blocking_query=kq or "", blocking_xact_age_s=_float(kage), lock_type=ltype or "",
                     lock_mode=mode or "")
            for blocked, blocking, user, db, wait, bq, state, kq, kage, ltype, mode in rows]


@dataclass(frozen=True)
class Replica:
    """A standby streaming from this server (pg_stat_replication)."""

    name: str
    client_addr: str
    state: str
    sync_state: str
    lag_bytes: float | None
    replay_lag_s: float | None


def parse_replication(rows: Sequence[Row]) -> list[Replica]:
    return [Replica(name=name or "", client_addr=addr or "", state=state or "", sync_state=sync or "",
                    lag_bytes=_float(lag), replay_lag_s=_float(replay))
            for name, addr, state, sync, lag, replay in rows]


@dataclass(frozen=True)
class Slot:
    name: str
    slot_type: str
    active: bool
    retained_bytes: float | None
    wal_status: str
    keep_limit_bytes: float | None = None
    """``max_slot_wal_keep_size`` in bytes: a slot retaining more is invalidated (wal_status lost) at the next
    checkpoint; -1 no limit; None unknown (before PostgreSQL 13, or a recording without it)."""


def parse_slots(rows: Sequence[Row]) -> list[Slot]:
    return [Slot(name=name or "", slot_type=stype or "", active=active == "true", retained_bytes=_float(retained),
                 wal_status=status or "", keep_limit_bytes=_float(rest[0]) if rest and rest[0] else None)
            for name, stype, active, retained, status, *rest in rows]


def parse_key_values(rows: Sequence[Row]) -> dict[str, str]:
    return {str(key): value or "" for key, value in rows}


def parse_numbers(values: dict[str, str]) -> dict[str, float]:
    """The numeric entries of a key/value result (timestamps such as ``stats_reset`` are left out)."""
    return {key: number for key, value in values.items() if (number := _float(value)) is not None}


_CONNINFO_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")
SENSITIVE_SETTINGS = frozenset({"ssl_passphrase_command"})


def redact_settings(settings: dict[str, str]) -> dict[str, str]:
    """pg_settings without secrets: conninfo passwords masked (``primary_conninfo``), passphrase commands out."""
    return {name: _CONNINFO_PASSWORD.sub(r"\1********", value) for name, value in settings.items()
            if name not in SENSITIVE_SETTINGS}


def client_sessions(sessions: Sequence[Session]) -> list[Session]:
    return [s for s in sessions if s.is_client]


def connections_used_ratio(server: ServerInfo, sessions: Sequence[Session]) -> float | None:
    """Client connections against the slots open to ordinary roles (max_connections minus the reserved ones)."""
    usable = server.max_connections - server.reserved_connections
    return len(client_sessions(sessions)) / usable if usable > 0 else None


@dataclass(frozen=True)
class Observation:
    """One round of parsed results: what the metrics and the health rules look at."""

    server: ServerInfo
    databases: list[DatabaseStats]
    sessions: list[Session]
    lock_waits: list[LockWait]
    replicas: list[Replica]
    slots: list[Slot]
    blocking_query: str
    """The statement that produced ``lock_waits`` (it depends on the server version)."""
