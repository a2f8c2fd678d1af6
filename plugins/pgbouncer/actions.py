"""Carrying out the PgBouncer plugin's actions (declared with their typed parameters in ``declaration.py``) through
the admin console: the preconditions read there (the setting now, the clients connected, whether the database is
pooled and paused), the state before, the change, and the undo.

The user must be in ``admin_users``; a ``stats_users`` member is refused ("admin access needed")."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from kubestack.errors import ActionError, CommandFailedError, PreconditionFailedError
from kubestack.plugins.base import ActionOutcome, ActionSpec, declared
from kubestack.plugins.pgbouncer.client import PgBouncerClient
from kubestack.plugins.pgbouncer.parse import Database, parse_config, parse_databases, parse_lists, parse_pools

log = logging.getLogger(__name__)

Step = Callable[[PgBouncerClient, dict[str, Any], bool], Awaitable[ActionOutcome]]


async def execute(client: PgBouncerClient, specs: Sequence[ActionSpec], action_id: str, params: dict[str, Any], *,
                  dry_run: bool = False) -> ActionOutcome:
    checked = declared(specs, action_id, "PgBouncer").check(params)
    steps: dict[str, Step] = {"pgbouncer.set_default_pool_size": _set_pool_size,
                              "pgbouncer.set_max_client_conn": _set_max_client_conn, "pgbouncer.resume": _resume,
                              "pgbouncer.pause": _pause, "pgbouncer.kill": _kill, "pgbouncer.reload": _reload}
    outcome = await steps[action_id](client, checked, dry_run)
    log.info("%s %s: %s", action_id, "dry run" if dry_run else "done", outcome.output)
    return outcome


async def _run(client: PgBouncerClient, action: str, statement: str) -> None:
    try:
        await client.command(statement)
    except CommandFailedError as exc:
        raise ActionError(f"{action}: PgBouncer refused {statement}: {exc.stderr.strip()}") from exc


def _outcome(action: str, params: dict[str, Any], dry_run: bool, what: str, before: dict[str, Any],
             undo: tuple[str, dict[str, Any]] | None) -> ActionOutcome:
    return ActionOutcome(action=action, params=params, dry_run=dry_run, before=before,
                         output=what if dry_run else f"done: {what}", undo=undo)


async def _set_pool_size(client: PgBouncerClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action, new = "pgbouncer.set_default_pool_size", params["size"]
    config = parse_config(await client.show("CONFIG"))
    previous, cap = int(config.get("default_pool_size", "0")), int(config.get("max_db_connections", "0") or 0)
    if cap and new > cap:
        raise PreconditionFailedError(action, [f"the new size {new} is above max_db_connections {cap}: pools could "
                                               "not use it"])
    pools = parse_pools(await client.show("POOLS"))
    before = {"default_pool_size": previous, "max_db_connections": cap,
              "cl_waiting": sum(p.cl_waiting for p in pools), "server_connections": sum(p.servers for p in pools)}
    what = f"SET default_pool_size = {new} (now {previous})"
    if not dry_run:
        await _run(client, action, f"SET default_pool_size = {new}")
    return _outcome(action, params, dry_run, what, before, ("pgbouncer.set_default_pool_size", {"size": previous}))


async def _set_max_client_conn(client: PgBouncerClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action, new = "pgbouncer.set_max_client_conn", params["limit"]
    previous = int(parse_config(await client.show("CONFIG")).get("max_client_conn", "0"))
    used = parse_lists(await client.show("LISTS")).get("used_clients", 0)
    if new <= used:
        raise PreconditionFailedError(action, [f"the new limit {new} is not above the {used} clients connected now: "
                                               "every new client would be refused"])
    what = f"SET max_client_conn = {new} (now {previous}; {used} clients connected)"
    if not dry_run:
        await _run(client, action, f"SET max_client_conn = {new}")
    return _outcome(action, params, dry_run, what, {"max_client_conn": previous, "used_clients": used},
                    ("pgbouncer.set_max_client_conn", {"limit": previous}))


async def _database(client: PgBouncerClient, action: str, name: str) -> Database:
    databases = parse_databases(await client.show("DATABASES"))
    db = next((d for d in databases if d.name == name), None)
    if db is None:
        raise PreconditionFailedError(action, [f"no pooled database {name!r}; pooled: "
                                               f"{', '.join(d.name for d in databases) or 'none'}"])
    return db


def _db_state(db: Database) -> dict[str, Any]:
    return {"db": db.name, "paused": int(db.paused), "disabled": int(db.disabled),
            "current_connections": db.current_connections, "backend": db.backend}


async def _resume(client: PgBouncerClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action, name = "pgbouncer.resume", params["db"]
    db = await _database(client, action, name)
    if not db.paused:
        raise PreconditionFailedError(action, [f"database {name} is not paused"])
    if not dry_run:
        await _run(client, action, f'RESUME "{name}"')
    return _outcome(action, params, dry_run, f"RESUME {name}", _db_state(db), ("pgbouncer.pause", {"db": name}))


async def _pause(client: PgBouncerClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action, name = "pgbouncer.pause", params["db"]
    db = await _database(client, action, name)
    if db.paused:
        raise PreconditionFailedError(action, [f"database {name} is paused already"])
    if not dry_run:
        await _run(client, action, f'PAUSE "{name}"')
    return _outcome(action, params, dry_run, f"PAUSE {name} (its clients wait until RESUME)", _db_state(db),
                    ("pgbouncer.resume", {"db": name}))


async def _kill(client: PgBouncerClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action, name = "pgbouncer.kill", params["db"]
    db = await _database(client, action, name)
    what = f"KILL {name} (drops its {db.current_connections} server connection(s) and their clients)"
    if not dry_run:
        await _run(client, action, f'KILL "{name}"')
    return _outcome(action, params, dry_run, what, _db_state(db), ("pgbouncer.resume", {"db": name}))


async def _reload(client: PgBouncerClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action = "pgbouncer.reload"
    config = parse_config(await client.show("CONFIG"))
    before = {k: config.get(k) for k in ("default_pool_size", "max_client_conn", "pool_mode", "auth_type")}
    if not dry_run:
        await _run(client, action, "RELOAD")
    return _outcome(action, params, dry_run, f"RELOAD (settings now {before})", before, None)
