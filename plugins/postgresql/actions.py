"""Carrying out the PostgreSQL plugin's actions (declared with their typed parameters in ``declaration.py``): on the
live server, the preconditions that can be read there (the backend's type and owner, the setting's context and
source, the role's attributes), the state before, and the change. Names and values reach SQL only as quoted
identifiers and literals (as the server's ``quote_ident`` and ``quote_literal`` write them), so that ``psql`` and
the direct connection run the same text.

Beyond ``pg_monitor`` the role needs ``pg_signal_backend`` (cancel and terminate other roles' sessions; never a
superuser's), ``CREATEROLE`` (lock and unlock roles), and for settings ``GRANT ALTER SYSTEM ON PARAMETER <name>``
(PostgreSQL 15+; superuser before) with ``GRANT EXECUTE ON FUNCTION pg_reload_conf()``."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from typing import Any

from kubestack.errors import ActionError, ActionParamsError, CommandFailedError, PreconditionFailedError
from kubestack.plugins.base import ActionOutcome, ActionSpec, declared
from kubestack.plugins.postgresql.client import PostgreSQLClient, Rows

log = logging.getLogger(__name__)
_TERMINATE_IDLE = ("postgresql.terminate_idle_in_transaction", "postgresql.terminate_idle_sessions")
_ALTER_SYSTEM = ("postgresql.alter_system_set", "postgresql.alter_system_reset")

CHANGEABLE_CONTEXTS = frozenset({"sighup", "user", "superuser"})
"""Settings ALTER SYSTEM + pg_reload_conf() applies without a restart or new sessions."""
FIXED_SOURCES = frozenset({"command line", "environment variable", "override"})
"""Sources that win over postgresql.auto.conf: ALTER SYSTEM would be written and never take effect."""
_BOOLEANS = frozenset({"on", "off", "true", "false", "yes", "no", "1", "0"})
_IDLE_IN_TRANSACTION = ("idle in transaction", "idle in transaction (aborted)")

BACKEND = """\
select a.pid::text, coalesce(a.backend_type, ''), coalesce(a.usename, ''), coalesce(a.datname, ''),
       coalesce(a.state, ''), coalesce(host(a.client_addr), ''), coalesce(a.application_name, ''),
       regexp_replace(left(a.query, 200), '\\s+', ' ', 'g'), (a.pid = pg_backend_pid())::text,
       coalesce(r.rolsuper, false)::text, (select rolsuper from pg_roles where rolname = current_user)::text
from pg_stat_activity a left join pg_roles r on r.oid = a.usesysid
where a.pid = {pid}"""
_BACKEND_KEYS = ("pid", "backend_type", "user", "db", "state", "client_addr", "application_name", "query", "own",
                 "superuser", "we_are_superuser")

# Client sessions of non-superusers but this one, in a state, for at least some seconds; {signal} terminates.
IDLE = """\
select a.pid::text, coalesce(a.usename, ''), coalesce(a.datname, ''), coalesce(host(a.client_addr), ''),
       round(extract(epoch from now() - a.state_change))::text{signal}
from pg_stat_activity a join pg_roles r on r.oid = a.usesysid
where a.backend_type = 'client backend' and a.pid <> pg_backend_pid() and not r.rolsuper
  and a.state in ({states}) and a.state_change <= now() - make_interval(secs => {min_idle_s}){filters}
order by a.pid"""

SETTING = """\
select setting, coalesce(unit, ''), context, vartype, coalesce(min_val, ''), coalesce(max_val, ''),
       coalesce(array_to_string(enumvals, ','), ''), source, coalesce(sourcefile, ''),
       has_function_privilege('pg_reload_conf()', 'execute')::text
from pg_settings where name = {name}"""
_SETTING_KEYS = ("setting", "unit", "context", "vartype", "min_val", "max_val", "enumvals", "source", "sourcefile",
                 "may_reload")

ROLE = """\
select rolsuper::text, rolcanlogin::text, (rolname = current_user or rolname = session_user)::text
from pg_roles where rolname = {name}"""


def literal(value: str) -> str:
    """A string constant: quotes doubled; with a backslash, the ``E''`` form with backslashes doubled, which reads
    the same whatever ``standard_conforming_strings`` says."""
    _no_nul(value)
    quoted = "'" + value.replace("'", "''") + "'"
    return "E" + quoted.replace("\\", "\\\\") if "\\" in value else quoted


def identifier(name: str) -> str:
    _no_nul(name)
    return '"' + name.replace('"', '""') + '"'


def _no_nul(text: str) -> None:
    if "\0" in text:
        raise ActionParamsError(f"{text!r}: PostgreSQL text cannot hold a NUL character")


# --- preconditions (pure, on rows read from the server) ------------------------------------------------

def backend_problems(backend: dict[str, str] | None, pid: int, *, cancel: bool) -> list[str]:
    if backend is None:
        return [f"no server process has pid {pid}"]
    problems = []
    if backend["own"] == "true":
        problems.append(f"pid {pid} is this plugin's own session")
    if backend["backend_type"] != "client backend":
        problems.append(f"pid {pid} is a {backend['backend_type'] or 'server process'}, not a client backend")
    elif backend["superuser"] == "true" and backend["we_are_superuser"] != "true":
        problems.append(f"pid {pid} belongs to superuser {backend['user']}, which only a superuser may signal")
    if cancel and backend["backend_type"] == "client backend" and backend["state"] != "active":
        problems.append(f"pid {pid} runs no statement (state {backend['state'] or 'unknown'})")
    return problems


def setting_problems(name: str, value: str | None, setting: dict[str, str] | None) -> list[str]:
    """Why ``name`` cannot be changed (to ``value``; None for a reset) with ALTER SYSTEM and a reload."""
    if setting is None:
        return [f"no setting named {name}"]
    problems = []
    if setting["context"] not in CHANGEABLE_CONTEXTS:
        problems.append(f"{name} has context {setting['context']}: "
                        + ("it cannot be changed" if setting["context"] == "internal" else
                           "a reload does not apply it (a restart or new sessions would)"))
    if setting.get("may_reload") == "false":
        problems.append("this role may not run pg_reload_conf(): the change would be written and not applied")
    if setting["source"] in FIXED_SOURCES:
        problems.append(f"{name} is set by {setting['source']}, which wins over ALTER SYSTEM")
    if value is None:
        if not setting["sourcefile"].endswith("postgresql.auto.conf"):
            problems.append(f"{name} has no ALTER SYSTEM value to reset (source {setting['source']})")
        return problems
    kind, lowered = setting["vartype"], value.strip().lower()
    if kind == "enum" and lowered not in setting["enumvals"].split(","):
        problems.append(f"{value!r} is not one of {setting['enumvals'].replace(',', ', ')}")
    elif kind == "bool" and lowered not in _BOOLEANS:
        problems.append(f"{value!r} is not a boolean (on/off)")
    elif kind in ("integer", "real") and re.fullmatch(r"-?[0-9.]+(e[+-]?[0-9]+)?", lowered):
        low, high = float(setting["min_val"] or "-inf"), float(setting["max_val"] or "inf")
        if not low <= float(lowered) <= high:
            problems.append(f"{value} is outside {setting['min_val']}..{setting['max_val']} {setting['unit']}".strip())
    return problems


def role_problems(name: str, role: dict[str, str] | None, *, lock: bool) -> list[str]:
    if role is None:
        return [f"no role named {name}"]
    if not lock:
        return [] if role["canlogin"] == "false" else [f"role {name} can log in already"]
    problems = []
    if role["superuser"] == "true":
        problems.append(f"role {name} is a superuser: locking it is for a person, not automation")
    if role["own"] == "true":
        problems.append(f"role {name} is the role this plugin is connected as")
    if role["canlogin"] == "false":
        problems.append(f"role {name} cannot log in already")
    return problems


def idle_sql(states: Sequence[str], min_idle_s: float, *, user: str | None = None, db: str | None = None,
             terminate: bool = False) -> str:
    filters = (f"\n  and a.usename = {literal(user)}" if user else "") + \
              (f"\n  and a.datname = {literal(db)}" if db else "")
    return IDLE.format(states=", ".join(literal(s) for s in states), min_idle_s=float(min_idle_s),
                       filters=filters, signal=", pg_terminate_backend(a.pid)::text" if terminate else "")


# --- execution -----------------------------------------------------------------------------------------

async def execute(client: PostgreSQLClient, specs: Sequence[ActionSpec], action_id: str, params: dict[str, Any], *,
                  dry_run: bool = False) -> ActionOutcome:
    checked = declared(specs, action_id, "PostgreSQL").check(params)
    if action_id in ("postgresql.cancel_backend", "postgresql.terminate_backend"):
        outcome = await _signal(client, action_id, checked, dry_run)
    elif action_id in _TERMINATE_IDLE:
        outcome = await _terminate_idle(client, action_id, checked, dry_run)
    elif action_id in _ALTER_SYSTEM:
        outcome = await _alter_system(client, action_id, checked, dry_run)
    else:
        outcome = await _role_login(client, action_id, checked, dry_run)
    log.info("%s %s: %s", action_id, "dry run" if dry_run else "done", outcome.output)
    return outcome


async def _write(client: PostgreSQLClient, action_id: str, statement: str) -> Rows:
    try:
        return await client.write(statement)
    except CommandFailedError as exc:
        raise ActionError(f"{action_id}: the server refused it: {exc.stderr.strip()}") from exc


def _outcome(action_id: str, params: dict[str, Any], dry_run: bool, what: str, before: dict[str, Any],
             undo: tuple[str, dict[str, Any]] | None = None) -> ActionOutcome:
    return ActionOutcome(action=action_id, params=params, dry_run=dry_run, before=before,
                         output=what if dry_run else f"done: {what}", undo=undo)


async def _signal(client: PostgreSQLClient, action_id: str, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    pid, cancel = params["pid"], action_id == "postgresql.cancel_backend"
    rows = await client.rows(BACKEND.format(pid=int(pid)))
    backend = dict(zip(_BACKEND_KEYS, (c or "" for c in rows[0]))) if rows else None
    problems = backend_problems(backend, pid, cancel=cancel)
    if problems or backend is None:
        raise PreconditionFailedError(action_id, problems)
    before = {k: backend[k] for k in ("pid", "user", "db", "state", "client_addr", "application_name", "query")}
    function = "pg_cancel_backend" if cancel else "pg_terminate_backend"
    what = (f"select {function}({pid}) (user {backend['user']}, db {backend['db']}, state {backend['state']}: "
            f"{backend['query'][:80]})")
    if not dry_run:
        [(signalled,)] = await _write(client, action_id, f"select {function}({int(pid)})::text")
        if signalled != "true":
            raise PreconditionFailedError(action_id, [f"pid {pid} ended before it could be signalled"])
    return _outcome(action_id, params, dry_run, what, before)


async def _terminate_idle(client: PostgreSQLClient, action_id: str, params: dict[str, Any],
                          dry_run: bool) -> ActionOutcome:
    states = ("idle",) if action_id == "postgresql.terminate_idle_sessions" else _IDLE_IN_TRANSACTION
    filters = {k: params[k] for k in ("user", "db") if k in params}
    sessions = await client.rows(idle_sql(states, params["min_idle_s"], **filters))
    scope = f"{' or '.join(states)} for at least {params['min_idle_s']:g}s" + \
        "".join(f", {k} {v}" for k, v in filters.items())
    if not sessions:
        raise PreconditionFailedError(action_id, [f"no client session of a non-superuser is {scope}"])
    if not dry_run:
        sessions = [row for row in await _write(client, action_id, idle_sql(states, params["min_idle_s"],
                                                                            terminate=True, **filters))
                    if row[-1] == "true"]
        if not sessions:
            raise PreconditionFailedError(action_id, [f"the sessions {scope} ended or woke before they were closed"])
    pids = [int(str(row[0])) for row in sessions]
    listed = ", ".join(f"{row[0]} ({row[1]}@{row[2]}, {row[4]}s)" for row in sessions)
    what = f"pg_terminate_backend on {len(pids)} session(s) {scope}: pids {listed}"
    before = {"sessions": [dict(zip(("pid", "user", "db", "client_addr", "idle_s"), row[:5])) for row in sessions],
              "pids": pids}
    return _outcome(action_id, params, dry_run, what, before)


async def _alter_system(client: PostgreSQLClient, action_id: str, params: dict[str, Any],
                        dry_run: bool) -> ActionOutcome:
    name, value = params["name"], params.get("value")
    rows = await client.rows(SETTING.format(name=literal(name)))
    setting = dict(zip(_SETTING_KEYS, (c or "" for c in rows[0]))) if rows else None
    problems = setting_problems(name, value, setting)
    if problems or setting is None:
        raise PreconditionFailedError(action_id, problems)
    before = {k: setting[k] for k in ("setting", "unit", "context", "source")}
    if setting["sourcefile"].endswith("postgresql.auto.conf"):
        undo = ("postgresql.alter_system_set", {"name": name, "value": setting["setting"]})
    else:
        undo = ("postgresql.alter_system_reset", {"name": name})
    change = f"SET {identifier(name)} = {literal(value)}" if value is not None else f"RESET {identifier(name)}"
    what = f"ALTER SYSTEM {change}; select pg_reload_conf() (now {setting['setting']}{setting['unit']}, " \
           f"from {setting['source']})"
    if not dry_run:
        await _write(client, action_id, f"ALTER SYSTEM {change}")
        await _write(client, action_id, "select pg_reload_conf()::text")
        what += f"; it reads {await _settled(client, name, setting['setting'])}{setting['unit']}"
    return _outcome(action_id, params, dry_run, what, before, undo)


async def _settled(client: PostgreSQLClient, name: str, previous: str, wait_s: float = 2.0) -> str:
    """The setting once this session has taken the reload in (the postmaster signals backends asynchronously)."""
    current = previous
    for _ in range(int(wait_s / 0.1)):
        current = str((await client.rows(SETTING.format(name=literal(name))))[0][0])
        if current != previous:
            break
        await asyncio.sleep(0.1)
    return current


async def _role_login(client: PostgreSQLClient, action_id: str, params: dict[str, Any],
                      dry_run: bool) -> ActionOutcome:
    name, lock = params["name"], action_id == "postgresql.lock_role"
    rows = await client.rows(ROLE.format(name=literal(name)))
    role = dict(zip(("superuser", "canlogin", "own"), (c or "" for c in rows[0]))) if rows else None
    problems = role_problems(name, role, lock=lock)
    if problems or role is None:
        raise PreconditionFailedError(action_id, problems)
    statement = f"ALTER ROLE {identifier(name)} {'NOLOGIN' if lock else 'LOGIN'}"
    what = statement + (" (its open sessions stay; new logins are refused)" if lock else "")
    if not dry_run:
        await _write(client, action_id, statement)
    return _outcome(action_id, params, dry_run, what, {"rolcanlogin": role["canlogin"] == "true"},
                    ("postgresql.unlock_role" if lock else "postgresql.lock_role", {"name": name}))
