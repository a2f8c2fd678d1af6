"""Carrying out the HAProxy plugin's actions (declared with their typed parameters in ``declaration.py``) through
the runtime API: the preconditions read there (the server exists, others carry the traffic, the process's limit),
the state before, and the change. The socket needs ``level admin``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from kubestack.errors import ActionError, PreconditionFailedError
from kubestack.plugins.base import ActionOutcome, ActionSpec, declared
from kubestack.plugins.haproxy.client import RuntimeClient
from kubestack.plugins.haproxy.parse import ServerState, StatRow, number, parse_info, parse_servers_state, parse_stat

log = logging.getLogger(__name__)


async def execute(client: RuntimeClient, specs: Sequence[ActionSpec], action_id: str, params: dict[str, Any], *,
                  dry_run: bool = False) -> ActionOutcome:
    checked = declared(specs, action_id, "HAProxy").check(params)
    step = {"haproxy.set_server_state": _set_state, "haproxy.set_server_maxconn": _set_maxconn}[action_id]
    outcome = await step(client, checked, dry_run)
    log.info("%s %s: %s", action_id, "dry run" if dry_run else "done", outcome.output)
    return outcome


async def _set(client: RuntimeClient, action: str, command: str) -> None:
    answer = (await client.command(command)).strip()
    if answer:  # a set command that worked answers nothing
        raise ActionError(f"{action}: HAProxy refused `{command}`: {answer}")


async def _server(client: RuntimeClient, action: str, params: dict[str, Any]) -> tuple[list[StatRow], ServerState]:
    backend, server = params["backend"], params["server"]
    rows = [r for r in parse_stat(await client.command("show stat")) if r.proxy == backend]
    states = parse_servers_state(await client.command(f"show servers state {backend}"))
    state = next((s for s in states if s.server == server), None)
    if state is None:
        known = ", ".join(s.server for s in states) or "none (no such backend)"
        raise PreconditionFailedError(action, [f"backend {backend} has no server {server}; its servers: {known}"])
    return rows, state


def state_problems(rows: list[StatRow], backend: str, server: str, new: str) -> list[str]:
    """Why taking ``server`` out (drain or maint) would leave ``backend`` without a server; pure."""
    if new == "ready":
        return []
    others = [r for r in rows if r.kind == "server" and r.name != server and r.status.startswith("UP")]
    if not others:
        return [f"no other server of {backend} is up and in rotation: {new} on {server} would leave the backend "
                "without a server (every request answered 503)"]
    return []


async def _set_state(client: RuntimeClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action, backend, server, new = "haproxy.set_server_state", params["backend"], params["server"], params["state"]
    rows, state = await _server(client, action, params)
    problems = state_problems(rows, backend, server, new)
    if problems:
        raise PreconditionFailedError(action, problems)
    row = next((r for r in rows if r.kind == "server" and r.name == server), None)
    before = {"state": state.admin, "status": row.status if row else "", "sessions": row.int("scur") if row else 0,
              "servers_up": [r.name for r in rows if r.kind == "server" and r.status.startswith("UP")]}
    what = f"set server {backend}/{server} state {new} (now {state.admin}, status {before['status']})"
    if not dry_run:
        await _set(client, action, f"set server {backend}/{server} state {new}")
    return ActionOutcome(action=action, params=params, dry_run=dry_run, before=before,
                         output=what if dry_run else f"done: {what}",
                         undo=(action, {"backend": backend, "server": server, "state": state.admin}))


async def _set_maxconn(client: RuntimeClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action, backend, server, new = "haproxy.set_server_maxconn", params["backend"], params["server"], params["maxconn"]
    rows, _ = await _server(client, action, params)
    row = next(r for r in rows if r.kind == "server" and r.name == server)
    process_limit = int(number(parse_info(await client.command("show info")).get("Maxconn")) or 0)
    if process_limit and new > process_limit:
        raise PreconditionFailedError(action, [f"the new limit {new} is above the process's maxconn {process_limit}: "
                                               "HAProxy could never open that many"])
    previous = row.int("slim")
    before = {"maxconn": previous, "sessions": row.int("scur"), "queue": row.int("qcur"),
              "process_maxconn": process_limit}
    what = f"set maxconn server {backend}/{server} {new} (now {previous or 'no limit'}, {row.int('scur')} open)"
    if not dry_run:
        await _set(client, action, f"set maxconn server {backend}/{server} {new}")
    return ActionOutcome(action=action, params=params, dry_run=dry_run, before=before,
                         output=what if dry_run else f"done: {what}",
                         undo=(action, {"backend": backend, "server": server, "maxconn": previous}))
