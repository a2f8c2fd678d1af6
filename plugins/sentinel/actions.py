"""Carrying out the Sentinel plugin's actions (declared in ``declaration.py``) on the sentinel: the preconditions
read there (the primary is monitored, no failover in progress, CKQUORUM, a healthy replica), the state before, the
change, and the undo where one exists. A dry run of a failover is the same checks and the replica that would be
promoted (the healthiest by priority and offset, as Sentinel chooses)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from kubestack.errors import ActionError, CommandFailedError, PreconditionFailedError
from kubestack.plugins.base import ActionOutcome, ActionSpec, declared
from kubestack.plugins.sentinel.client import SentinelClient
from kubestack.plugins.sentinel.parse import Primary, Replica, parse_primary, parse_replicas, parse_sentinels

log = logging.getLogger(__name__)

Step = Callable[[SentinelClient, dict[str, Any], bool], Awaitable[ActionOutcome]]
_FIELDS = {"down-after-milliseconds": "down_after_ms", "quorum": "quorum", "failover-timeout": "failover_timeout_ms",
           "parallel-syncs": "parallel_syncs"}


async def execute(client: SentinelClient, specs: Sequence[ActionSpec], action_id: str, params: dict[str, Any], *,
                  dry_run: bool = False) -> ActionOutcome:
    checked = declared(specs, action_id, "Sentinel").check(params)
    steps: dict[str, Step] = {"sentinel.failover": _failover, "sentinel.reset": _reset, "sentinel.set": _set}
    outcome = await steps[action_id](client, checked, dry_run)
    log.info("%s %s: %s", action_id, "dry run" if dry_run else "done", outcome.output)
    return outcome


async def _primary(client: SentinelClient, action: str, name: str) -> Primary:
    try:
        return parse_primary(await client.call("SENTINEL", "MASTER", name))
    except CommandFailedError as exc:
        raise PreconditionFailedError(action, [f"this sentinel does not monitor {name!r}: {exc.stderr.strip()}"]) \
            from exc


async def _run(client: SentinelClient, action: str, *args: str) -> Any:
    try:
        return await client.call(*args)
    except CommandFailedError as exc:
        raise ActionError(f"{action}: the sentinel refused {' '.join(args)}: {exc.stderr.strip()}") from exc


def candidate(replicas: list[Replica]) -> Replica | None:
    """The replica Sentinel would promote: healthy, lowest priority number, then the most data; pure."""
    healthy = [r for r in replicas if r.healthy]
    return min(healthy, key=lambda r: (r.priority, -r.offset), default=None)


async def _failover(client: SentinelClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action, name = "sentinel.failover", params["master"]
    primary = await _primary(client, action, name)
    replicas = parse_replicas(await client.call("SENTINEL", "REPLICAS", name))
    problems = []
    if primary.failing_over:
        problems.append(f"a failover of {name} is already in progress")
    try:
        quorum = str(await client.call("SENTINEL", "CKQUORUM", name))
    except CommandFailedError as exc:
        quorum = ""
        problems.append(f"the quorum cannot be reached: {exc.stderr.strip()}")
    chosen = candidate(replicas)
    if chosen is None:
        problems.append(f"no healthy replica to promote among {len(replicas)} known")
    if problems:
        raise PreconditionFailedError(action, problems)
    before = {"primary": primary.address, "config_epoch": primary.config_epoch, "ckquorum": quorum,
              "replicas": [{"address": r.address, "healthy": r.healthy, "priority": r.priority, "offset": r.offset}
                           for r in replicas]}
    what = f"SENTINEL FAILOVER {name}: {primary.address} steps down, {chosen.address} is promoted"
    if not dry_run:
        await _run(client, action, "SENTINEL", "FAILOVER", name)
    return ActionOutcome(action=action, params=params, dry_run=dry_run, before=before,
                         output=what if dry_run else f"done: {what}")


async def _reset(client: SentinelClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action, name = "sentinel.reset", params["master"]
    primary = await _primary(client, action, name)
    if primary.failing_over:
        raise PreconditionFailedError(action, [f"a failover of {name} is in progress: a reset would abort it"])
    replicas = parse_replicas(await client.call("SENTINEL", "REPLICAS", name))
    others = parse_sentinels(await client.call("SENTINEL", "SENTINELS", name))
    before = {"replicas": [r.address for r in replicas], "sentinels": [s.address for s in others],
              "down": [s.address for s in others if not s.up] + [r.address for r in replicas if not r.healthy]}
    what = f"SENTINEL RESET {name} (forgets {len(replicas)} replica(s) and {len(others)} sentinel(s); live ones return)"
    if not dry_run:
        await _run(client, action, "SENTINEL", "RESET", name)
    return ActionOutcome(action=action, params=params, dry_run=dry_run, before=before,
                         output=what if dry_run else f"done: {what}")


async def _set(client: SentinelClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action, name, option, value = "sentinel.set", params["master"], params["option"], params["value"]
    primary = await _primary(client, action, name)
    known = 1 + len(parse_sentinels(await client.call("SENTINEL", "SENTINELS", name)))
    if option == "quorum" and value > known:
        raise PreconditionFailedError(action, [f"a quorum of {value} is above the {known} sentinels that know {name}: "
                                               "no failover could be authorised"])
    previous = getattr(primary, _FIELDS[option])
    what = f"SENTINEL SET {name} {option} {value} (now {previous})"
    if not dry_run:
        await _run(client, action, "SENTINEL", "SET", name, option, str(value))
    return ActionOutcome(action=action, params=params, dry_run=dry_run, before={option: previous, "sentinels": known},
                         output=what if dry_run else f"done: {what}",
                         undo=("sentinel.set", {"master": name, "option": option, "value": previous}))
