"""Carrying out the Redis plugin's actions: pure checks of the parameters, then, on the live server, the
preconditions that can be read there (memory in use, the client's flags), the state before, and the change.

The connection needs ``CONFIG GET``/``CONFIG SET``, ``INFO`` and ``CLIENT LIST``/``CLIENT KILL``:
``ACL SETUSER kubestack ... +config|set +client|kill`` on top of the monitoring grants."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from kubestack.errors import (
    ActionError,
    ActionParamsError,
    CommandFailedError,
    PreconditionFailedError,
    UnknownActionError,
)
from kubestack.plugins.base import ActionOutcome, ActionSpec, declared as declared_action, no_unknown_params
from kubestack.plugins.redis.client import RedisClient
from kubestack.plugins.redis.parse import info_number, parse_client_list, parse_info

log = logging.getLogger(__name__)

POLICIES = frozenset({"noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu",
                      "volatile-random", "volatile-ttl"})
_LINK_FLAGS = frozenset("SM")
_OWN_COMMANDS = frozenset({"client|list", "client"})
"""The connection that runs CLIENT LIST is this plugin's own (Redis before 7 shows only ``client``)."""
_ADDR = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^\s\[\]]+):\d{1,5}$")
_CLIENT_FIELDS = ("id", "addr", "laddr", "name", "user", "flags", "cmd", "age", "idle", "omem", "tot-mem")


def declared(specs: Sequence[ActionSpec], action_id: str) -> ActionSpec:
    return declared_action(specs, action_id, "Redis")


def whole_number(action_id: str, params: dict[str, Any], name: str, *, minimum: int) -> int:
    """An integer parameter (an int, or a string of digits as a form sends it) of at least ``minimum``."""
    if name not in params:
        raise ActionParamsError(f"{action_id}: parameter {name!r} is missing (an integer >= {minimum})")
    raw = params[name]
    if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).strip().lstrip("-").isdigit():
        raise ActionParamsError(f"{action_id}: parameter {name!r} must be an integer >= {minimum}, not {raw!r}")
    value = int(str(raw).strip())
    if value < minimum:
        raise ActionParamsError(f"{action_id}: parameter {name!r} must be an integer >= {minimum}, not {value}")
    return value


def validate(action_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters of a (declared, not forbidden) action, checked and normalised; pure."""
    if action_id == "redis.set_maxmemory":
        no_unknown_params(action_id, params, {"bytes"})
        return {"bytes": whole_number(action_id, params, "bytes", minimum=0)}
    if action_id == "redis.set_maxmemory_policy":
        no_unknown_params(action_id, params, {"policy"})
        policy = params.get("policy")
        if policy not in POLICIES:
            raise ActionParamsError(f"{action_id}: parameter 'policy' must be one of {', '.join(sorted(POLICIES))}"
                                    f", not {policy!r}")
        return {"policy": policy}
    if action_id == "redis.client_kill":
        no_unknown_params(action_id, params, {"client_id", "addr"})
        given = [k for k in ("client_id", "addr") if params.get(k) not in (None, "")]
        if len(given) != 1:
            raise ActionParamsError(f"{action_id}: give exactly one of 'client_id' (the id from CLIENT LIST) or "
                                    f"'addr' (ip:port as CLIENT LIST shows it), not {len(given)}")
        if given == ["client_id"]:
            return {"client_id": whole_number(action_id, params, "client_id", minimum=1)}
        addr = params["addr"]
        if not isinstance(addr, str) or not _ADDR.match(addr):
            raise ActionParamsError(f"{action_id}: parameter 'addr' must be ip:port as CLIENT LIST shows it "
                                    f"(e.g. 10.0.0.5:51234 or [::1]:51234), not {addr!r}")
        return {"addr": addr}
    raise UnknownActionError(f"{action_id} has no implementation in the Redis plugin")


async def execute(client: RedisClient, specs: Sequence[ActionSpec], action_id: str, params: dict[str, Any], *,
                  dry_run: bool = False) -> ActionOutcome:
    declared(specs, action_id)
    checked = validate(action_id, params)
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
