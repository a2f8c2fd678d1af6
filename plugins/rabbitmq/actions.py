"""Carrying out the RabbitMQ plugin's actions (declared with their typed parameters in ``declaration.py``) through
the management API: the preconditions read on the live broker, the state before, the change, and its undo.

A length cap is a policy of its own (``kubestack-max-length-<queue>``) matching that one queue, one priority above
the policy the queue has now and carrying that policy's definition too: RabbitMQ applies one policy per queue, so a
cap that dropped the queue's dead-letter exchange or TTL would change more than its length."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from kubestack.errors import ActionError, CommandFailedError, PreconditionFailedError
from kubestack.plugins.base import ActionOutcome, ActionSpec, declared
from kubestack.plugins.rabbitmq.client import RabbitMQClient, path
from kubestack.plugins.rabbitmq.declaration import POLICY_PREFIX
from kubestack.plugins.rabbitmq.parse import items, parse_connections, parse_queues

log = logging.getLogger(__name__)

_LINK_PRODUCTS = ("federation", "shovel")
"""A connection a node opens itself to move messages: closing it stops a federation or a shovel."""


async def execute(client: RabbitMQClient, specs: Sequence[ActionSpec], action_id: str, params: dict[str, Any], *,
                  dry_run: bool = False) -> ActionOutcome:
    checked = declared(specs, action_id, "RabbitMQ").check(params)
    step = {"rabbitmq.set_queue_max_length": _set_max_length, "rabbitmq.clear_queue_max_length": _clear_max_length,
            "rabbitmq.close_connection": _close_connection}[action_id]
    outcome = await step(client, checked, dry_run)
    log.info("%s %s: %s", action_id, "dry run" if dry_run else "done", outcome.output)
    return outcome


def policy_name(queue: str) -> str:
    return f"{POLICY_PREFIX}{queue}"


def policy_body(queue: str, definition: dict[str, Any], priority: int) -> dict[str, Any]:
    """A policy matching exactly ``queue`` (its name as a literal pattern)."""
    return {"pattern": f"^{re.escape(queue)}$", "apply-to": "queues", "priority": priority, "definition": definition}


async def _missing_is_none(client: RabbitMQClient, resource: str) -> Any:
    try:
        return await client.get(resource)
    except CommandFailedError as exc:
        if exc.returncode == 404:
            return None
        raise


async def _queue(client: RabbitMQClient, action: str, vhost: str, queue: str) -> dict[str, Any]:
    raw = await _missing_is_none(client, path("queues", vhost, queue))
    if raw is None:
        raise PreconditionFailedError(action, [f"no queue {queue!r} on vhost {vhost!r}"])
    return raw


async def _apply(client: RabbitMQClient, action: str, call: str, resource: str, body: dict[str, Any] | None) -> None:
    try:
        if body is None:
            await client.delete(resource)
        else:
            await client.put(resource, body)
    except CommandFailedError as exc:
        raise ActionError(f"{action}: RabbitMQ refused {call} {resource}: {exc.stderr.strip()}") from exc


async def _set_max_length(client: RabbitMQClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action = "rabbitmq.set_queue_max_length"
    vhost, queue, cap, overflow = params["vhost"], params["queue"], params["max_length"], params["overflow"]
    raw = await _queue(client, action, vhost, queue)
    [q] = parse_queues([raw])
    name = policy_name(queue)
    ours = await _missing_is_none(client, path("policies", vhost, name))
    problems = []
    if q.type == "stream":
        problems.append(f"{queue!r} is a stream: its retention is max-length-bytes/max-age, not a message cap")
    if overflow == "drop-head" and cap < q.messages:
        problems.append(f"the cap {cap} is below the {q.messages} messages the queue holds: drop-head would drop "
                        f"{q.messages - cap} of them now")
    if problems:
        raise PreconditionFailedError(action, problems)
    current = None if q.policy in (None, name) else await _missing_is_none(client, path("policies", vhost, q.policy))
    inherited = dict(current.get("definition") or {}) if current else {}
    if ours is not None:  # keep what our own policy carried over from the queue's policy when it was written
        inherited = {k: v for k, v in (ours.get("definition") or {}).items()
                     if k not in ("max-length", "overflow")} | inherited
    priority = int(current.get("priority", 0)) + 1 if current else int((ours or {}).get("priority", 1))
    body = policy_body(queue, inherited | {"max-length": cap, "overflow": overflow}, priority)
    before = {"messages": q.messages, "policy": q.policy, "max-length": q.definition.get("max-length"),
              "overflow": q.definition.get("overflow"), "queue_type": q.type}
    what = (f"PUT policy {name!r} on vhost {vhost!r}: queue {queue!r} capped at {cap} messages ({overflow}); it holds "
            f"{q.messages} now" + (f", its policy {q.policy!r} kept in the cap (priority {priority})" if current else ""))
    if not dry_run:
        await _apply(client, action, "PUT", path("policies", vhost, name), body)
    previous = (ours or {}).get("definition") or {}
    undo: tuple[str, dict[str, Any]] = (
        ("rabbitmq.set_queue_max_length", {"vhost": vhost, "queue": queue, "max_length": previous["max-length"],
                                           "overflow": previous.get("overflow", "drop-head")})
        if "max-length" in previous else ("rabbitmq.clear_queue_max_length", {"vhost": vhost, "queue": queue}))
    return ActionOutcome(action=action, params=params, dry_run=dry_run, before=before,
                         output=what if dry_run else f"done: {what}", undo=undo)


async def _clear_max_length(client: RabbitMQClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action = "rabbitmq.clear_queue_max_length"
    vhost, queue = params["vhost"], params["queue"]
    name = policy_name(queue)
    ours = await _missing_is_none(client, path("policies", vhost, name))
    if ours is None:
        raise PreconditionFailedError(action, [f"no policy {name!r} on vhost {vhost!r}: no cap of KubeStack-AI "
                                               "on that queue"])
    definition = ours.get("definition") or {}
    what = f"DELETE policy {name!r} on vhost {vhost!r} (cap {definition.get('max-length')}, " \
           f"{definition.get('overflow', 'drop-head')})"
    if not dry_run:
        await _apply(client, action, "DELETE", path("policies", vhost, name), None)
    undo = ("rabbitmq.set_queue_max_length", {"vhost": vhost, "queue": queue, "max_length": definition["max-length"],
                                              "overflow": definition.get("overflow", "drop-head")}) \
        if "max-length" in definition else None
    return ActionOutcome(action=action, params=params, dry_run=dry_run, before={"policy": name, **definition},
                         output=what if dry_run else f"done: {what}", undo=undo)


async def _close_connection(client: RabbitMQClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action, name = "rabbitmq.close_connection", params["connection"]
    raw = await _missing_is_none(client, path("connections", name))
    if raw is None:
        raise PreconditionFailedError(action, [f"no open connection {name!r}"])
    [conn] = parse_connections([raw])
    if any(word in conn.product.lower() or word in conn.client_name.lower() for word in _LINK_PRODUCTS) \
            or raw.get("type") == "direct":
        raise PreconditionFailedError(action, [f"{name!r} is a link the broker opened itself "
                                               f"({conn.product or raw.get('type')}): closing it stops a federation "
                                               "or shovel"])
    held = sum(int(c.get("messages_unacknowledged") or 0)
               for c in items(await client.get(path("connections", name, "channels"))))
    before = conn.evidence() | {"channels": conn.channels, "messages_unacknowledged": held}
    what = (f"close connection {name!r} (client {conn.client_name or '-'}, user {conn.user}, {conn.channels} "
            f"channel(s), {held} unacknowledged deliveries to requeue)")
    if not dry_run:
        try:
            await client.delete(path("connections", name), reason=params["reason"])
        except CommandFailedError as exc:
            if exc.returncode == 404:
                raise PreconditionFailedError(action, [f"{name!r} closed before it could be closed"]) from exc
            raise ActionError(f"{action}: RabbitMQ refused to close {name!r}: {exc.stderr.strip()}") from exc
    return ActionOutcome(action=action, params=params, dry_run=dry_run, before=before,
                         output=what if dry_run else f"done: {what}")
