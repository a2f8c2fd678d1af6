"""Which RabbitMQ configuration changes are risky (used by the worker's config-risk stage)."""

from __future__ import annotations

import json
from typing import Any

from kubestack.contract.events import ConfigChange, ConfigDiff, Finding, Severity

LIMIT_KEYS = ("max-length", "max-length-bytes", "message-ttl", "expires")
"""Policy keys that keep a queue from growing without bound."""
DEFAULT_DISK_FREE_LIMIT = 50_000_000


def config_risks(change: ConfigChange) -> list[Finding]:
    findings = []
    for c in change.changes:
        if c.key == "mem_limit":
            findings += _memory_lowered(c, change.observed.get("rabbitmq_mem_used_bytes"))
        elif c.key == "disk_free_limit":
            findings += _disk_limit_lowered(c)
        elif c.key.startswith(("policy/", "operator_policy/")):
            findings += _queue_limit_removed(c)
        elif c.key.startswith("user/"):
            findings += _admin_granted(c)
    return findings


def _memory_lowered(c: ConfigDiff, used: float | None) -> list[Finding]:
    old, new = _int(c.old), _int(c.new)
    if new is None or old is None or new >= old:
        return []
    below = used is not None and new <= used
    return [Finding(
        rule_id="rabbitmq.memory_watermark_lowered", severity=Severity.CRITICAL if below else Severity.WARNING,
        message=f"the memory high watermark was lowered from {old} to {new} bytes"
                + (f", at or below the {int(used)} bytes in use: the memory alarm blocks every publisher" if below
                   else ""),
        evidence={"old": c.old, "new": c.new, "mem_used": used}, query="GET /api/nodes (mem_limit)")]


def _disk_limit_lowered(c: ConfigDiff) -> list[Finding]:
    old, new = _int(c.old), _int(c.new)
    if new is None or old is None or new >= old:
        return []
    tiny = new < DEFAULT_DISK_FREE_LIMIT
    return [Finding(
        rule_id="rabbitmq.disk_limit_lowered", severity=Severity.WARNING,
        message=f"disk_free_limit was lowered from {old} to {new} bytes"
                + (": below the 50 MB default, the disk can fill up before the alarm stops publishers" if tiny
                   else ""),
        evidence={"old": c.old, "new": c.new, "below_default": tiny}, query="GET /api/nodes (disk_free_limit)")]


def _definition(text: str | None) -> dict[str, Any]:
    try:
        return dict(json.loads(text).get("definition") or {}) if text else {}
    except (ValueError, AttributeError):
        return {}


def _queue_limit_removed(c: ConfigDiff) -> list[Finding]:
    old, new = _definition(c.old), _definition(c.new)
    removed = [k for k in LIMIT_KEYS if k in old and k not in new]
    if not removed:
        return []
    _, vhost, name = (c.key.split("/", 2) + ["", ""])[:3]
    return [Finding(
        rule_id="rabbitmq.queue_limit_removed", severity=Severity.WARNING,
        message=f"policy {name!r} on vhost {vhost!r} no longer limits its queues ({', '.join(removed)} "
                f"{'removed' if c.new else 'gone with the policy'}): they can grow until the memory or disk alarm",
        evidence={"policy": c.key, "removed": removed, "old": c.old, "new": c.new},
        query="GET /api/policies")]


def _admin_granted(c: ConfigDiff) -> list[Finding]:
    old = set(filter(None, (c.old or "").split(",")))
    new = set(filter(None, (c.new or "").split(",")))
    if "administrator" not in new or "administrator" in old:
        return []
    user = c.key.removeprefix("user/")
    return [Finding(
        rule_id="rabbitmq.admin_granted", severity=Severity.WARNING,
        message=f"user {user!r} {'was created with' if c.old is None else 'was given'} the administrator tag: it can "
                "read every message, change every policy and delete every queue",
        evidence={"user": user, "old_tags": sorted(old), "new_tags": sorted(new)}, query="GET /api/users")]


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
