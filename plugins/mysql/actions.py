"""Carrying out the MySQL/MariaDB plugin's actions (declared with their typed parameters in ``declaration.py``): on
the live server, the preconditions that can be read there (the thread exists and is an application's, the
connections in use), the state before, and the change.

Beyond the monitoring grants the user needs ``CONNECTION ADMIN`` (MariaDB 10.5.2+; ``SUPER`` before, and on
MySQL ``CONNECTION_ADMIN`` plus ``SYSTEM_VARIABLES_ADMIN``) to kill other users' threads and set
max_connections and max_allowed_packet; ``BINLOG ADMIN`` on a replica's primary (MySQL: ``BINLOG_ADMIN``) to set
its binary log expiry. That action runs on the primary the replica names (``SHOW REPLICA STATUS``), reached with
the plugin's own credentials: the replica is where the risk shows, the primary is what keeps the logs."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

from kubestack.errors import ActionError, CommandFailedError, PreconditionFailedError
from kubestack.plugins.base import ActionOutcome, ActionSpec, declared
from kubestack.plugins.mysql import queries
from kubestack.plugins.mysql.binlogs import expire_seconds
from kubestack.plugins.mysql.client import MySQLClient
from kubestack.plugins.mysql.parse import Row, name_value, parse_replica_status

log = logging.getLogger(__name__)

_SYSTEM_USERS = frozenset({"system user", "event_scheduler"})
_SYSTEM_COMMANDS = frozenset({"Daemon", "Binlog Dump", "Binlog Dump GTID", "Slave_IO", "Slave_SQL", "Slave_worker"})

THREAD = """SELECT ID AS id, USER AS user, HOST AS host, DB AS db, COMMAND AS command, TIME AS time,
 STATE AS state, LEFT(INFO, 200) AS info, (ID = CONNECTION_ID()) AS own
FROM information_schema.PROCESSLIST WHERE ID = {id}"""
LIMITS = "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('max_connections', 'open_files_limit')"
CONNECTED = "SHOW GLOBAL STATUS LIKE 'Threads_connected'"


def thread_problems(row: Row | None, thread_id: int, *, query_only: bool) -> list[str]:
    """Why the processlist row of ``thread_id`` may not be killed (empty: it may); pure."""
    if row is None:
        return [f"no connection has id {thread_id}"]
    problems = []
    if row.get("own") == "1":
        problems.append(f"connection {thread_id} is this plugin's own")
    if row.get("user") in _SYSTEM_USERS or row.get("command") in _SYSTEM_COMMANDS:
        problems.append(f"connection {thread_id} is a system or replication thread "
                        f"(user {row.get('user')}, command {row.get('command')})")
    if query_only and row.get("command") == "Sleep":
        problems.append(f"connection {thread_id} is idle (Sleep): it runs no statement to stop")
    return problems


def margin(connected: int) -> int:
    """Connections kept free above those in use when lowering max_connections: 10%, at least 5."""
    return max(5, math.ceil(connected * 0.1))


def max_connections_problems(value: int, state: dict[str, str]) -> list[str]:
    """Why ``value`` cannot be set given the live variables/status (upper-case names); pure."""
    connected = int(state.get("THREADS_CONNECTED", "0"))
    problems = []
    if value < connected + margin(connected):
        problems.append(f"{value} is below the {connected} connections in use plus a margin of {margin(connected)}")
    files = int(state.get("OPEN_FILES_LIMIT", "0") or 0)
    if files and value > files:
        problems.append(f"{value} is above open_files_limit {files}: the server could not open that many")
    return problems


def expiry_setting(variables: dict[str, str], seconds: int) -> tuple[str, int]:
    """The variable that sets a server's binary log expiry and its value for ``seconds``: the seconds where the
    server has them (MariaDB 10.6+, MySQL 8), else whole days (at least one, for a positive expiry)."""
    if "binlog_expire_logs_seconds" in variables:
        return "binlog_expire_logs_seconds", seconds
    return "expire_logs_days", max(1, math.ceil(seconds / 86_400)) if seconds else 0


async def execute(client: MySQLClient, specs: Sequence[ActionSpec], action_id: str, params: dict[str, Any], *,
                  dry_run: bool = False, open_client: Callable[[str, int], MySQLClient] | None = None
                  ) -> ActionOutcome:
    checked = declared(specs, action_id, "MySQL").check(params)
    if action_id == "mysql.set_max_connections":
        outcome = await _set_max_connections(client, checked, dry_run)
    elif action_id == "mysql.set_max_allowed_packet":
        outcome = await _set_max_allowed_packet(client, checked, dry_run)
    elif action_id == "mysql.set_source_binlog_expiry":
        if open_client is None:
            raise ActionError(f"{action_id}: no way to reach the replica's primary was given")
        outcome = await _set_source_binlog_expiry(client, open_client, checked, dry_run)
    else:
        outcome = await _kill(client, action_id, checked, dry_run)
    log.info("%s %s: %s", action_id, "dry run" if dry_run else "done", outcome.output)
    return outcome


async def _write(action_id: str, step: Any) -> None:
    try:
        await step
    except CommandFailedError as exc:
        raise ActionError(f"{action_id}: the server refused it: {exc}") from exc


async def _kill(client: MySQLClient, action_id: str, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    thread_id, query_only = params["id"], action_id == "mysql.kill_query"
    rows = await client.rows(THREAD.format(id=int(thread_id)))
    row = rows[0] if rows else None
    problems = thread_problems(row, thread_id, query_only=query_only)
    if problems or row is None:
        raise PreconditionFailedError(action_id, problems)
    before = {k: row.get(k) for k in ("id", "user", "host", "db", "command", "time", "state", "info")}
    what = (f"KILL {'QUERY' if query_only else 'CONNECTION'} {thread_id} (user {row.get('user')}, host "
            f"{row.get('host')}, command {row.get('command')} for {row.get('time')}s"
            + (f": {row['info'][:80]}" if row.get("info") else "") + ")")
    if not dry_run:
        await _write(action_id, client.kill(thread_id, query_only=query_only))
    return ActionOutcome(action=action_id, params=params, dry_run=dry_run, before=before,
                         output=what if dry_run else f"done: {what}")


async def _set_max_connections(client: MySQLClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action, value = "mysql.set_max_connections", params["value"]
    rows = await client.rows(LIMITS) + await client.rows(CONNECTED)
    state = {k.upper(): v for k, v in name_value(rows).items()}
    problems = max_connections_problems(value, state)
    if problems:
        raise PreconditionFailedError(action, problems)
    previous = int(state["MAX_CONNECTIONS"])
    before = {"max_connections": previous, "threads_connected": int(state.get("THREADS_CONNECTED", "0"))}
    what = (f"SET GLOBAL max_connections = {value} (now {previous}; "
            f"{before['threads_connected']} connected)")
    if not dry_run:
        await _write(action, client.set_global("max_connections", value))
    return ActionOutcome(action=action, params=params, dry_run=dry_run, before=before,
                         output=what if dry_run else f"done: {what}",
                         undo=("mysql.set_max_connections", {"value": previous}))


async def _set_max_allowed_packet(client: MySQLClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action, value = "mysql.set_max_allowed_packet", params["value"]
    previous = int(name_value(await client.rows(
        "SHOW GLOBAL VARIABLES WHERE Variable_name = 'max_allowed_packet'"))["max_allowed_packet"])
    what = (f"SET GLOBAL max_allowed_packet = {value} (now {previous}; new connections and restarted replication "
            "threads read it)")
    if not dry_run:
        await _write(action, client.set_global("max_allowed_packet", value))
    return ActionOutcome(action=action, params=params, dry_run=dry_run, before={"max_allowed_packet": previous},
                         output=what if dry_run else f"done: {what}",
                         undo=("mysql.set_max_allowed_packet", {"value": previous}))


async def _set_source_binlog_expiry(client: MySQLClient, open_client: Callable[[str, int], MySQLClient],
                                    params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action, seconds, channel = "mysql.set_source_binlog_expiry", params["seconds"], params["channel"]
    replicas = parse_replica_status(await client.replica_status())
    replica = next((r for r in replicas if r.channel == channel), None)
    host, _, port = replica.source.rpartition(":") if replica is not None else ("", "", "")
    if replica is None or not host or not port.isdigit():
        raise PreconditionFailedError(action, [f"this server replicates no channel {channel!r} from a known primary "
                                               f"(channels: {[r.channel for r in replicas]})"])
    source = open_client(host.strip("[]"), int(port))
    try:
        variables = name_value(await source.rows(queries.BINLOG_VARIABLES))
        if variables.get("log_bin") != "ON":
            raise PreconditionFailedError(action, [f"{replica.source} writes no binary log (log_bin is "
                                                   f"{variables.get('log_bin')})"])
        previous = int(expire_seconds(variables))
        name, value = expiry_setting(variables, seconds)
        what = (f"SET GLOBAL {name} = {value} on {replica.source}, the primary of this replica (now "
                f"{previous} s" + (", never purged automatically" if not previous else "") + ")")
        if not dry_run:
            await _write(action, source.set_global(name, value))
    finally:
        await source.close()
    return ActionOutcome(action=action, params=params, dry_run=dry_run,
                         before={"source": replica.source, "expire_seconds": previous, "variable": name},
                         output=what if dry_run else f"done: {what}",
                         undo=(action, {"seconds": previous, "channel": channel}))
