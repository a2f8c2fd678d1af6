"""How far a replica is from losing its binary log stream: pure functions over the primary's ``SHOW BINARY LOGS``,
its expiry and the replica's read position.

A primary purges every binary log whose last write is older than ``binlog_expire_logs_seconds`` (MariaDB before
10.6 and MySQL 5.7: ``expire_logs_days``) when it rotates to a new file, at start and on ``FLUSH BINARY LOGS``.
A replica's IO thread reads from ``Master_Log_File`` (``Source_Log_File``) on: once the primary purged that file,
the replica has lost its stream. Its IO thread stops with error 1236 and what the primary wrote there never reaches
it: it must be rebuilt from a backup. So per replication channel a capacity-like series runs towards a limit:

- ``mysql_replica_needed_binlog_age_seconds``: how long ago the primary last wrote to the oldest binary log the
  replica still needs (0 while it reads the file being written), towards ``mysql_source_binlog_expire_seconds``.

Reaching the limit is the earliest the file can be purged (the next rotation does it): a forecast of it comes
before the loss. A closed binary log was last written when the primary rotated away from it: its file's mtime when
the agent sees the primary's binary log directory (the same host, or a mounted volume), else the moment the agent
first saw the next file appear (``BinlogClock``).

On the primary itself its binary logs are also sized against the disk that holds them (when that disk is seen).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from kubestack.contract.events import Sample
from kubestack.plugins.mysql.parse import ReplicaStatus, Row, number

LOST_STREAM_ERRNO = 1236
"""ER_MASTER_FATAL_ERROR_READING_BINLOG: the IO thread asked for a position the primary cannot serve."""
EXPIRY_VARIABLES = ("binlog_expire_logs_seconds", "expire_logs_days", "log_bin", "log_bin_basename")


@dataclass(frozen=True)
class BinaryLog:
    name: str
    size: int


def parse_binary_logs(rows: list[Row]) -> list[BinaryLog]:
    """``SHOW BINARY LOGS`` rows (``Log_name``, ``File_size``; MySQL 8 adds ``Encrypted``), oldest first."""
    return [BinaryLog(str(row["Log_name"]), int(row.get("File_size") or 0)) for row in rows if row.get("Log_name")]


def expire_seconds(variables: Mapping[str, str]) -> float:
    """How old a binary log may get before it is purged; 0: never purged automatically. MariaDB 10.6+ keeps
    ``expire_logs_days`` and ``binlog_expire_logs_seconds`` in step; MySQL 8 reads the seconds, 5.7 the days."""
    seconds = number(dict(variables), "binlog_expire_logs_seconds")
    if seconds:
        return seconds
    days = number(dict(variables), "expire_logs_days")
    return days * 86_400 if days else 0.0


def sequence(name: str) -> tuple[str, int] | None:
    """``mariadb-bin.000042`` → (``mariadb-bin``, 42); None for a name without the numeric extension."""
    base, _, suffix = name.rpartition(".")
    return (base, int(suffix)) if base and suffix.isdigit() else None


def is_purged(needed: str, logs: list[BinaryLog]) -> bool:
    """Whether ``needed`` was a binary log of this series older than every one the primary still keeps."""
    if not needed or not logs or any(log.name == needed for log in logs):
        return False
    wanted, oldest = sequence(needed), sequence(logs[0].name)
    return wanted is not None and oldest is not None and wanted[0] == oldest[0] and wanted[1] < oldest[1]


class BinlogClock:
    """When each binary log of a source was last written, told by when the next one appeared. What the agent saw
    at its first look at a source has no such moment (it may have appeared long before), so only rotations seen
    since count; the file's own mtime, when readable, is better and comes first (``last_written``)."""

    def __init__(self) -> None:
        self._appeared: dict[str, dict[str, float]] = {}

    def rotated(self, source: str, logs: list[BinaryLog], now: float) -> dict[str, float]:
        """Closed binary log → the moment (epoch seconds) the agent first saw the file after it."""
        first_look = source not in self._appeared
        appeared = self._appeared.setdefault(source, {})
        for log in logs:
            appeared.setdefault(log.name, math.nan if first_look else now)
        for gone in set(appeared) - {log.name for log in logs}:
            del appeared[gone]
        return {log.name: appeared[after.name] for log, after in zip(logs, logs[1:])
                if not math.isnan(appeared[after.name])}


def last_written(logs: list[BinaryLog], mtimes: Mapping[str, float], rotated: Mapping[str, float]
                 ) -> dict[str, float]:
    """Closed binary log → when it was last written: its mtime, else when the next one appeared."""
    closed = [log.name for log in logs[:-1]]
    return {name: mtimes[name] if name in mtimes else rotated[name] for name in closed
            if name in mtimes or name in rotated}


def needed_age(replica: ReplicaStatus, logs: list[BinaryLog], written: Mapping[str, float], now: float
               ) -> float | None:
    """Seconds since the primary last wrote to the oldest binary log the replica still needs: 0 while it reads the
    file being written; None when unknown (no position, the file gone or never seen rotating)."""
    needed = replica.master_log_file
    if not needed or not logs or is_purged(needed, logs):
        return None
    if needed == logs[-1].name:
        return 0.0
    at = written.get(needed)
    return max(now - at, 0.0) if at is not None else None


def unread_bytes(replica: ReplicaStatus, logs: list[BinaryLog]) -> float | None:
    """Bytes of the primary's binary logs the replica's IO thread has not read yet."""
    names = [log.name for log in logs]
    if replica.master_log_file not in names or replica.read_master_log_pos is None:
        return None
    at = names.index(replica.master_log_file)
    return float(max(logs[at].size - replica.read_master_log_pos, 0) + sum(log.size for log in logs[at + 1:]))


def stream_samples(replica: ReplicaStatus, logs: list[BinaryLog], written: Mapping[str, float], expire_s: float,
                   ts: datetime) -> list[Sample]:
    """A replica's distance from losing its stream, labelled by channel and source (its primary)."""
    labels = {"channel": replica.channel, "source": replica.source}
    samples = [Sample(name="mysql_source_binlog_expire_seconds", value=expire_s, ts=ts, labels=labels)]
    age = needed_age(replica, logs, written, ts.timestamp())
    if age is not None:
        samples.append(Sample(name="mysql_replica_needed_binlog_age_seconds", value=age, ts=ts, labels=labels))
    unread = unread_bytes(replica, logs)
    if unread is not None:
        samples.append(Sample(name="mysql_replica_unread_binlog_bytes", value=unread, ts=ts, labels=labels))
    return samples


def own_samples(logs: list[BinaryLog], written: Mapping[str, float], expire_s: float, disk_free: float | None,
                ts: datetime) -> list[Sample]:
    """A primary's own binary logs: how many, how large, how old the oldest, the expiry, and the disk they fill
    (what they hold plus what is free, when the directory is seen)."""
    size = float(sum(log.size for log in logs))
    samples = [Sample(name="mysql_binlog_files", value=len(logs), ts=ts),
               Sample(name="mysql_binlog_size_bytes", value=size, ts=ts),
               Sample(name="mysql_binlog_expire_seconds", value=expire_s, ts=ts)]
    if logs and logs[0].name in written:
        samples.append(Sample(name="mysql_binlog_oldest_age_seconds",
                              value=max(ts.timestamp() - written[logs[0].name], 0.0), ts=ts))
    if disk_free is not None:
        samples += [Sample(name="mysql_binlog_disk_free_bytes", value=disk_free, ts=ts),
                    Sample(name="mysql_binlog_disk_capacity_bytes", value=size + disk_free, ts=ts)]
    return samples
