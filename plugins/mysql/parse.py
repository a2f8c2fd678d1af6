"""Pure parsers for MySQL/MariaDB output: ``mysql -B`` batch text, SHOW STATUS/VARIABLES rows, replica status
(MariaDB and MySQL column names), and SHOW ENGINE INNODB STATUS text."""

from __future__ import annotations

import re
from dataclasses import dataclass

Row = dict[str, str | None]

_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "0": "\0", "r": "\r"}
_ESCAPE = re.compile(r"\\(.)")


def _unescape(field: str) -> str | None:
    if field == "NULL":
        return None
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), field)


def parse_batch(text: str) -> list[Row]:
    """``mysql -B`` output with its header line: tab-separated, ``\\t \\n \\\\`` escaped, ``NULL`` for NULL.
    A statement with no rows prints nothing at all."""
    lines = text.split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return []
    header = lines[0].split("\t")
    rows = []
    for line in lines[1:]:
        fields = line.split("\t")
        if len(fields) != len(header):
            raise ValueError(f"batch row has {len(fields)} fields, header has {len(header)}: {line[:200]!r}")
        rows.append({name: _unescape(value) for name, value in zip(header, fields)})
    return rows


def name_value(rows: list[Row]) -> dict[str, str]:
    """SHOW GLOBAL STATUS / VARIABLES rows (``Variable_name``, ``Value``) → a dict (NULL becomes "")."""
    result = {}
    for row in rows:
        name, value = list(row.values())[:2]
        result[str(name)] = value if value is not None else ""
    return result


def number(values: dict[str, str], key: str) -> float | None:
    """A numeric status or variable, case-insensitively (MySQL and MariaDB disagree on case), else None."""
    raw = values.get(key)
    if raw is None:
        lowered = key.lower()
        raw = next((v for k, v in values.items() if k.lower() == lowered), None)
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def buffer_pool_hit_ratio(status: dict[str, str]) -> float | None:
    """Share of buffer pool page requests served from memory since start: 1 - disk reads / requests."""
    requests = number(status, "Innodb_buffer_pool_read_requests")
    reads = number(status, "Innodb_buffer_pool_reads")
    if not requests or reads is None:
        return None
    return max(0.0, 1.0 - reads / requests)


def connections_used_ratio(status: dict[str, str], variables: dict[str, str]) -> float | None:
    connected, limit = number(status, "Threads_connected"), number(variables, "max_connections")
    if connected is None or not limit:
        return None
    return connected / limit


@dataclass(frozen=True)
class ReplicaStatus:
    """One replication channel, whatever the server calls its columns."""

    channel: str
    source: str
    io_running: str
    sql_running: str
    seconds_behind: int | None
    last_io_error: str
    last_sql_error: str
    master_log_file: str = ""
    """The primary's binary log the IO thread reads (the oldest one this replica still needs from it)."""
    read_master_log_pos: int | None = None
    last_io_errno: int = 0


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") and str(value).isdigit() else None


def _first(row: Row, *names: str) -> str | None:
    for name in names:
        if row.get(name) is not None:
            return row[name]
    return None


def parse_replica_status(rows: list[Row]) -> list[ReplicaStatus]:
    """SHOW SLAVE/REPLICA STATUS rows (MariaDB ``Slave_*``/``Master_*``, MySQL 8 ``Replica_*``/``Source_*``)."""
    replicas = []
    for row in rows:
        behind = _first(row, "Seconds_Behind_Master", "Seconds_Behind_Source")
        host, port = _first(row, "Master_Host", "Source_Host") or "", _first(row, "Master_Port", "Source_Port") or ""
        replicas.append(ReplicaStatus(
            channel=_first(row, "Connection_name", "Channel_Name") or "",
            source=f"{host}:{port}",
            io_running=_first(row, "Slave_IO_Running", "Replica_IO_Running") or "",
            sql_running=_first(row, "Slave_SQL_Running", "Replica_SQL_Running") or "",
            seconds_behind=int(behind) if behind not in (None, "") else None,
            last_io_error=_first(row, "Last_IO_Error") or "",
            last_sql_error=_first(row, "Last_SQL_Error") or "",
            master_log_file=_first(row, "Master_Log_File", "Source_Log_File") or "",
            read_master_log_pos=_int(_first(row, "Read_Master_Log_Pos", "Read_Source_Log_Pos")),
            last_io_errno=_int(_first(row, "Last_IO_Errno")) or 0))
    return replicas


@dataclass(frozen=True)
class InnodbStatus:
    history_list_length: int | None
    latest_deadlock_at: str | None
    """Server-local time of the latest detected deadlock, as printed."""


_HISTORY = re.compile(r"^History list length (\d+)", re.M)
_DEADLOCK = re.compile(r"^-+\nLATEST DETECTED DEADLOCK\n-+\n(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", re.M)


def parse_innodb_status(text: str) -> InnodbStatus:
    history = _HISTORY.search(text)
    deadlock = _DEADLOCK.search(text)
    return InnodbStatus(history_list_length=int(history.group(1)) if history else None,
                        latest_deadlock_at=deadlock.group(1) if deadlock else None)


@dataclass(frozen=True)
class ServerVersion:
    flavor: str
    """``mariadb`` or ``mysql``."""
    version: tuple[int, int, int]


def parse_version(text: str) -> ServerVersion:
    """``SELECT VERSION()``: ``10.11.6-MariaDB-0+deb12u1``, ``8.0.36``, ``5.5.5-10.11.6-MariaDB`` (old protocol)."""
    flavor = "mariadb" if "mariadb" in text.lower() else "mysql"
    numbers = re.findall(r"(\d+)\.(\d+)\.(\d+)", text)
    if not numbers:
        raise ValueError(f"not a server version: {text!r}")
    major, minor, patch = numbers[1] if text.startswith("5.5.5-") and len(numbers) > 1 else numbers[0]
    return ServerVersion(flavor=flavor, version=(int(major), int(minor), int(patch)))
