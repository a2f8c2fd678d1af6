"""Reading binary logs: the server's own, and on a replica its primary's (``source_binlogs``: a client of the
primary opened with the plugin's own user and password at ``Master_Host:Master_Port``, the same way as to this
server: directly, or through the runner's CLI). The files' ages and the disk's free space come from the binary
log directory when the agent sees it (``binlog_dir``, or a server on this host); else ages come from the rotations
the agent saw (``binlogs.BinlogClock``)."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kubestack.errors import CommandFailedError, TargetError
from kubestack.plugins.mysql import queries
from kubestack.plugins.mysql.binlogs import BinaryLog, BinlogClock, expire_seconds, last_written, parse_binary_logs
from kubestack.plugins.mysql.client import MySQLClient
from kubestack.plugins.mysql.parse import ReplicaStatus, name_value

log = logging.getLogger(__name__)

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
SELF = ""
"""The clock's key for the server's own binary logs (a source is keyed by its ``host:port``)."""

RETRY_S = 60.0
"""A primary that could not be read is asked again after this long, not at every round (a firewalled one would hold
each round for the whole connect timeout)."""

OpenClient = Callable[[str, int], MySQLClient]
"""A client of another server (host, port) with the plugin's credentials."""


@dataclass(frozen=True)
class BinlogView:
    """One server's binary logs as the agent sees them now."""

    logs: list[BinaryLog]
    variables: dict[str, str]
    written: dict[str, float] = field(default_factory=dict)
    """Closed binary log → when it was last written (epoch seconds), where known."""
    disk_free: float | None = None

    @property
    def expire_s(self) -> float:
        return expire_seconds(self.variables)


def local_dir(basename: str | None, host: str | None, configured: str | None) -> Path | None:
    """Where this agent reads the binary logs: ``configured``, else the directory of ``log_bin_basename`` when the
    server is on this host (``host`` None: a socket) and that directory exists here."""
    if configured:
        return Path(configured)
    if not basename or (host is not None and host not in LOOPBACK):
        return None
    directory = Path(basename).parent
    return directory if directory.is_dir() else None


def file_mtimes(directory: Path | None, logs: list[BinaryLog]) -> dict[str, float]:
    if directory is None:
        return {}
    mtimes = {}
    for binlog in logs:
        try:
            mtimes[binlog.name] = os.stat(directory / binlog.name).st_mtime
        except OSError:
            continue  # purged meanwhile, or not readable by the agent
    return mtimes


def disk_free(directory: Path | None) -> float | None:
    try:
        return float(shutil.disk_usage(directory).free) if directory is not None else None
    except OSError:
        return None


class BinlogReader:
    def __init__(self, client: MySQLClient, open_client: OpenClient, *, host: str | None, binlog_dir: str | None,
                 read_sources: bool, files_here: bool = True) -> None:
        """``host``: the server's (None: a socket); ``files_here``: False when the server is reached through a
        runner (its files are on the runner's host, not the agent's)."""
        self.client, self.open_client = client, open_client
        self.host, self.binlog_dir, self.read_sources, self.files_here = host, binlog_dir, read_sources, files_here
        self.clock = BinlogClock()
        self._sources: dict[str, MySQLClient] = {}
        self._unread: dict[str, float] = {}
        """Servers whose binary logs could not be read → when that was (said once at info, then at debug)."""

    async def own(self, variables: dict[str, str]) -> BinlogView | None:
        """This server's binary logs, when it writes them (``log_bin`` ON)."""
        if variables.get("log_bin", "").upper() != "ON":
            return None
        try:
            logs = parse_binary_logs(await self.client.rows(queries.BINARY_LOGS))
        except CommandFailedError as exc:  # the grant it needs is missing: the rest of the round still counts
            self._cannot_read(SELF, "this server", exc)
            return None
        directory = local_dir(variables.get("log_bin_basename"), self.host, self.binlog_dir)
        return self._view(SELF, logs, variables, directory if self.files_here else None)

    async def of_source(self, replica: ReplicaStatus) -> BinlogView | None:
        """The binary logs of a replica's primary; None when not asked for, or the primary cannot be read."""
        host, _, port = replica.source.rpartition(":")
        if not self.read_sources or not host or not port.isdigit():
            return None
        if time.monotonic() - self._unread.get(replica.source, -RETRY_S) < RETRY_S:
            return None
        client = self._sources.get(replica.source)
        if client is None:
            client = self._sources[replica.source] = self.open_client(host.strip("[]"), int(port))
        try:
            variables = name_value(await client.rows(queries.BINLOG_VARIABLES))
            logs = parse_binary_logs(await client.rows(queries.BINARY_LOGS)) if variables.get("log_bin") == "ON" \
                else []
        except (TargetError, CommandFailedError) as exc:
            self._cannot_read(replica.source, f"{replica.source} (the primary of channel {replica.channel!r})", exc)
            return None
        self._unread.pop(replica.source, None)
        directory = local_dir(variables.get("log_bin_basename"), host.strip("[]"), None) if self.files_here else None
        return self._view(replica.source, logs, variables, directory)

    def _cannot_read(self, key: str, what: str, exc: Exception) -> None:
        level = logging.DEBUG if key in self._unread else logging.INFO
        self._unread[key] = time.monotonic()
        log.log(level, "the binary logs of %s cannot be read (no forecast of its replicas' streams): %s", what, exc)

    def _view(self, key: str, logs: list[BinaryLog], variables: dict[str, str], directory: Path | None
              ) -> BinlogView:
        rotated = self.clock.rotated(key, logs, time.time())
        return BinlogView(logs, variables, last_written(logs, file_mtimes(directory, logs), rotated),
                          disk_free(directory))

    async def close(self) -> None:
        clients, self._sources = list(self._sources.values()), {}
        for client in clients:
            await client.close()
