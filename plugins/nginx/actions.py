"""Carrying out the Nginx plugin's actions (declared with their typed parameters in ``declaration.py``): the
configuration read through ``nginx -T``, a server line edited in the file that holds it, ``nginx -t`` before
anything is reloaded (the file restored when the test fails), then ``nginx -s reload``."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from kubestack.errors import ActionError, CommandFailedError, PreconditionFailedError
from kubestack.plugins.base import ActionOutcome, ActionSpec, declared
from kubestack.plugins.nginx.client import NginxClient
from kubestack.plugins.nginx.parse import parse_dump, upstream_servers

log = logging.getLogger(__name__)


async def execute(client: NginxClient, specs: Sequence[ActionSpec], action_id: str, params: dict[str, Any], *,
                  dry_run: bool = False) -> ActionOutcome:
    checked = declared(specs, action_id, "nginx").check(params)
    step = {"nginx.set_upstream_server": _set_server, "nginx.reload": _reload}[action_id]
    outcome = await step(client, checked, dry_run)
    log.info("%s %s: %s", action_id, "dry run" if dry_run else "done", outcome.output)
    return outcome


def _block(text: str, upstream: str) -> tuple[int, int]:
    """Start and end of the inside of ``upstream <name> { ... }`` in ``text``."""
    match = re.search(rf"(?m)^[^#\n]*?\bupstream\s+{re.escape(upstream)}\s*\{{", text)
    if match is None:
        raise ValueError(f"no 'upstream {upstream} {{' in the file")
    depth, pos = 1, match.end()
    while pos < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[pos], 0)
        pos += 1
    return match.end(), pos - 1


def mark_server(text: str, upstream: str, server: str, down: bool) -> str:
    """``text`` with the ``server <address> ...;`` line of ``upstream`` given or rid of the ``down`` flag; pure."""
    start, end = _block(text, upstream)
    inside = text[start:end]
    line = re.compile(rf"(?m)^(?P<indent>[ \t]*)server\s+{re.escape(server)}(?P<flags>(?:\s+[^;#\s]+)*)\s*;")
    match = line.search(inside)
    if match is None:
        raise ValueError(f"no 'server {server}' line in upstream {upstream}")
    flags = [f for f in match["flags"].split() if f != "down"] + (["down"] if down else [])
    edited = f"{match['indent']}server {server}{''.join(' ' + f for f in flags)};"
    return text[:start] + inside[:match.start()] + edited + inside[match.end():] + text[end:]


async def config_test(client: NginxClient, action: str) -> None:
    """``nginx -t``; ``PreconditionFailedError`` with nginx's words when it fails."""
    try:
        await client.nginx("-t", "-q")
    except CommandFailedError as exc:
        raise PreconditionFailedError(action, [f"the configuration does not pass nginx -t: {exc.stderr.strip()}"])


async def _reload(client: NginxClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    await config_test(client, "nginx.reload")
    if not dry_run:
        try:
            await client.nginx("-s", "reload")
        except CommandFailedError as exc:
            raise ActionError(f"nginx.reload: nginx -s reload failed: {exc.stderr.strip()}") from exc
    what = "nginx -t passed; nginx -s reload"
    return ActionOutcome(action="nginx.reload", params=params, dry_run=dry_run,
                         output=what if dry_run else f"done: {what}")


async def _set_server(client: NginxClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action, upstream, server, state = "nginx.set_upstream_server", params["upstream"], params["server"], params["state"]
    servers = upstream_servers(parse_dump(await client.dump()))
    target = next((s for s in servers if s.upstream == upstream and s.address == server), None)
    if target is None:
        known = ", ".join(f"{s.upstream}/{s.address}" for s in servers) or "none"
        raise PreconditionFailedError(action, [f"no server {server} in upstream {upstream}; the servers: {known}"])
    problems = []
    if target.down == (state == "down"):
        problems.append(f"{server} in upstream {upstream} is already {state}")
    others = [s.address for s in servers if s.upstream == upstream and s.address != server and not s.down
              and not s.backup]
    if state == "down" and not others:
        problems.append(f"{server} is the last server of upstream {upstream} in rotation: marking it down would "
                        "answer every request with 502")
    if problems:
        raise PreconditionFailedError(action, problems)
    old = await client.read_text(target.file)
    try:
        new = mark_server(old, upstream, server, state == "down")
    except ValueError as exc:
        raise PreconditionFailedError(action, [f"{target.file}: {exc}"]) from None
    await config_test(client, action)
    before = {"state": "down" if target.down else "up", "flags": list(target.flags), "file": target.file,
              "servers_in_rotation": others}
    what = f"{target.file}: upstream {upstream}: server {server} {'marked down' if state == 'down' else 'back up'}"
    if not dry_run:
        await client.write_text(target.file, new)
        try:
            await client.nginx("-t", "-q")
        except CommandFailedError as exc:
            await client.write_text(target.file, old)
            raise ActionError(f"{action}: the edited configuration fails nginx -t, the file is restored: "
                              f"{exc.stderr.strip()}") from exc
        try:
            await client.nginx("-s", "reload")
        except CommandFailedError as exc:
            raise ActionError(f"{action}: {target.file} is edited but nginx -s reload failed: "
                              f"{exc.stderr.strip()}") from exc
    return ActionOutcome(action=action, params=params, dry_run=dry_run, before=before,
                         output=f"{what}, nginx -t passed, reload" if dry_run else f"done: {what}, reloaded",
                         undo=(action, {"upstream": upstream, "server": server, "state": before["state"]}))
