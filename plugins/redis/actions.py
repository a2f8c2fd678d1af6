"""Carrying out the Redis plugin's actions (declared with their typed parameters in ``declaration.py``): on the
live server, the preconditions that can be read there (memory in use, the client's flags), the state before,
and the change.

The connection needs ``CONFIG GET``/``CONFIG SET``, ``INFO`` and ``CLIENT LIST``/``CLIENT KILL``:
``ACL SETUSER kubestack ... +config|set +client|kill`` on top of the monitoring grants."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from kubestack.errors import ActionError, CommandFailedError, PreconditionFailedError
from kubestack.plugins.base import ActionOutcome, ActionSpec, declared
from kubestack.plugins.redis.client import RedisClient
from kubestack.plugins.redis.parse import info_number, parse_client_list, parse_info

log = logging.getLogger(__name__)

_LINK_FLAGS = frozenset("SM")
_OWN_COMMANDS = frozenset({"client|list", "client"})
"""The connection that runs CLIENT LIST is this plugin's own (Redis before 7 shows only ``client``)."""
_CLIENT_FIELDS = ("id", "addr", "laddr", "name", "user", "flags", "cmd", "age", "idle", "omem", "tot-mem")


async def execute(client: RedisClient, specs: Sequence[ActionSpec], action_id: str, params: dict[str, Any], *,
                  dry_run: bool = False) -> ActionOutcome:
    checked = declared(specs, action_id, "Redis").check(params)
    step = {"redis.set_maxmemory": _set_maxmemory, "redis.set_maxmemory_policy": _set_policy,
            "redis.client_kill": _client_kill}[action_id]
    outcome = await step(client, checked, dry_run)
    log.info("%s %s: %s", action_id, "dry run" if dry_run else "done", outcome.output)
    return outcome


async def _config_set(client: RedisClient, action_id: str, name: str, value: str) -> None:
    try:
        await client.config_set(name, value)
    except CommandFailedError as exc:
        raise ActionError(f"{action_id}: Redis refused CONFIG SET {name} {value}: {exc.stderr.strip()}") from exc


async def _set_maxmemory(client: RedisClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action, new = "redis.set_maxmemory", params["bytes"]
    info = parse_info(await client.info())
    previous = int((await client.config_get("maxmemory")).get("maxmemory", "0"))
    policy = (await client.config_get("maxmemory-policy")).get("maxmemory-policy", "")
    used = int(info_number(info, "memory", "used_memory") or 0)
    total = int(info_number(info, "memory", "total_system_memory") or 0)
    problems = []
    if new and new < used and policy == "noeviction":
        problems.append(f"the new limit {new} is below used_memory {used} and the policy is noeviction: "
                        "every write would be refused")
    if new and total and new > total:
        problems.append(f"the new limit {new} is above the host's total memory {total}")
    if problems:
        raise PreconditionFailedError(action, problems)
    before = {"maxmemory": previous, "used_memory": used, "maxmemory_policy": policy, "total_system_memory": total}
    what = f"CONFIG SET maxmemory {new} (now {previous}; used_memory {used})"
    if not dry_run:
        await _config_set(client, action, "maxmemory", str(new))
    return ActionOutcome(action=action, params=params, dry_run=dry_run, before=before,
                         output=what if dry_run else f"done: {what}",
                         undo=("redis.set_maxmemory", {"bytes": previous}))


async def _set_policy(client: RedisClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action, new = "redis.set_maxmemory_policy", params["policy"]
    previous = (await client.config_get("maxmemory-policy")).get("maxmemory-policy", "")
    what = f"CONFIG SET maxmemory-policy {new} (now {previous})"
    if not dry_run:
        await _config_set(client, action, "maxmemory-policy", new)
    return ActionOutcome(action=action, params=params, dry_run=dry_run, before={"maxmemory_policy": previous},
                         output=what if dry_run else f"done: {what}",
                         undo=("redis.set_maxmemory_policy", {"policy": previous}))


def client_problems(clients: list[dict[str, str]], params: dict[str, Any]) -> tuple[dict[str, str] | None, list[str]]:
    """The client ``params`` names (by id or addr) in a parsed CLIENT LIST, and why it may not be killed; pure."""
    key, wanted = ("id", str(params["client_id"])) if "client_id" in params else ("addr", params["addr"])
    target = next((c for c in clients if c.get(key) == wanted), None)
    if target is None:
        return None, [f"no client with {key} {wanted} is connected"]
    problems = []
    links = _LINK_FLAGS & set(target.get("flags", ""))
    if links:
        problems.append(f"client {target.get('id')} ({target.get('addr')}) is a replication link "
                        f"(flags {target.get('flags')}): killing it breaks replication")
    if target.get("cmd") in _OWN_COMMANDS:
        problems.append(f"client {target.get('id')} ({target.get('addr')}) is this plugin's own connection")
    return target, problems


async def _client_kill(client: RedisClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action = "redis.client_kill"
    target, problems = client_problems(parse_client_list(await client.client_list()), params)
    if problems or target is None:
        raise PreconditionFailedError(action, problems)
    before = {k: target[k] for k in _CLIENT_FIELDS if k in target}
    what = (f"CLIENT KILL ID {target['id']} (addr {target.get('addr')}, name {target.get('name') or '-'}, "
            f"cmd {target.get('cmd')}, idle {target.get('idle')}s)")
    if not dry_run:
        try:
            killed = await client.client_kill(int(target["id"]))
        except CommandFailedError as exc:
            raise ActionError(f"{action}: Redis refused CLIENT KILL: {exc.stderr.strip()}") from exc
        if not killed:
            raise PreconditionFailedError(action, [f"client {target['id']} disconnected before it could be killed"])
    return ActionOutcome(action=action, params=params, dry_run=dry_run, before=before,
                         output=what if dry_run else f"done: {what}")
