"""Carrying out the Memcached plugin's actions (declared with their typed parameters in ``declaration.py``): the
preconditions read on the live server (``stats``), the state before, the change (``cache_memlimit``) and its undo."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from kubestack.errors import ActionError, CommandFailedError, PreconditionFailedError
from kubestack.plugins.base import ActionOutcome, ActionSpec, declared
from kubestack.plugins.memcached.client import MemcachedClient
from kubestack.plugins.memcached.config import MemcachedConfig
from kubestack.plugins.memcached.declaration import MB
from kubestack.plugins.memcached.parse import number, parse_stats

log = logging.getLogger(__name__)


async def execute(client: MemcachedClient, config: MemcachedConfig, specs: Sequence[ActionSpec], action_id: str,
                  params: dict[str, Any], *, dry_run: bool = False) -> ActionOutcome:
    checked = declared(specs, action_id, "Memcached").check(params)
    outcome = await _set_memory_limit(client, config, checked, dry_run)
    log.info("%s %s: %s", action_id, "dry run" if dry_run else "done", outcome.output)
    return outcome


def limit_problems(new_mb: int, current_bytes: int, used_bytes: int, cap_mb: int | None) -> list[str]:
    """Why ``new_mb`` may not be set now; pure."""
    problems = []
    new_bytes = new_mb * MB
    if new_bytes < current_bytes and new_bytes < used_bytes:
        problems.append(f"{new_mb} MB is below the {used_bytes} bytes stored now: lowering to it evicts items")
    if cap_mb is not None and new_mb > cap_mb and new_bytes > current_bytes:
        problems.append(f"{new_mb} MB is above memory_limit_max_mb ({cap_mb} MB) set for this target")
    return problems


async def _set_memory_limit(client: MemcachedClient, config: MemcachedConfig, params: dict[str, Any],
                            dry_run: bool) -> ActionOutcome:
    action, new_mb = "memcached.set_memory_limit", params["megabytes"]
    stats = parse_stats(await client.stats())
    current, used = int(number(stats, "limit_maxbytes") or 0), int(number(stats, "bytes") or 0)
    problems = limit_problems(new_mb, current, used, config.memory_limit_max_mb)
    if problems:
        raise PreconditionFailedError(action, problems)
    previous_mb = max(math.ceil(current / MB), 8)
    before = {"limit_maxbytes": current, "bytes": used, "evictions": int(number(stats, "evictions") or 0)}
    what = f"cache_memlimit {new_mb} (now {current} bytes, {used} stored)"
    if not dry_run:
        try:
            reply = await client.command(f"cache_memlimit {new_mb}")
        except CommandFailedError as exc:
            raise ActionError(f"{action}: Memcached refused cache_memlimit {new_mb}: {exc.stderr}") from exc
        if reply != "OK":
            raise ActionError(f"{action}: Memcached answered {reply!r} to cache_memlimit {new_mb}")
    return ActionOutcome(action=action, params=params, dry_run=dry_run, before=before,
                         output=what if dry_run else f"done: {what}",
                         undo=("memcached.set_memory_limit", {"megabytes": previous_mb}))
