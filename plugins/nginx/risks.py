"""Which nginx configuration changes are risky (the worker's config-risk stage); pure, over the keys of
``parse.flatten`` (``events | worker_connections``, ``http/upstream app | server 10.0.0.5:8080``, ...)."""

from __future__ import annotations

import re

from kubestack.contract.events import ConfigChange, ConfigDiff, Finding, Severity

UPSTREAM_SERVER = re.compile(r"/upstream (?P<upstream>\S+) \| server (?P<server>\S+)$")
_TIMEOUTS = ("proxy_read_timeout", "proxy_connect_timeout", "proxy_send_timeout")
_DURATION = re.compile(r"^(?P<n>\d+)(?P<unit>ms|s|m|h|d)?$")
_SIZE = re.compile(r"^(?P<n>\d+)(?P<unit>[kKmMgG])?$")
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_BODY_BYTES = 1024 * 1024


def seconds(text: str | None) -> float | None:
    """An nginx time (``30s``, ``1m``, ``500ms``, ``10``) in seconds."""
    match = _DURATION.match((text or "").strip())
    if match is None:
        return None
    scale = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}[match["unit"]]
    return int(match["n"]) * scale


def size_bytes(text: str | None) -> int | None:
    match = _SIZE.match((text or "").strip())
    if match is None:
        return None
    return int(match["n"]) * {None: 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[(match["unit"] or "").lower() or None]


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def _diff(c: ConfigDiff) -> dict[str, str | None]:
    return {"setting": c.key, "old": c.old, "new": c.new}


def _workers(changes: list[ConfigDiff]) -> list[Finding]:
    lowered = [c for c in changes if c.key.endswith(("| worker_connections", "| worker_processes"))
               and _int(c.old) is not None and _int(c.new) is not None and _int(c.new) < _int(c.old)]
    if not lowered:
        return []
    return [Finding(rule_id="nginx.worker_connections_lowered", severity=Severity.WARNING,
                    message="connection capacity lowered: " + ", ".join(f"{c.key.split('| ')[-1]} {c.old} -> {c.new}"
                                                                        for c in lowered),
                    evidence=_diff(lowered[0]) | {"changes": {c.key: {"old": c.old, "new": c.new} for c in lowered}},
                    query="nginx -T")]


def _servers(changes: list[ConfigDiff]) -> list[Finding]:
    lost = [(c, m) for c in changes if (m := UPSTREAM_SERVER.search(c.key)) and c.old is not None
            and (c.new is None or ("down" in c.new.split() and "down" not in c.old.split()))]
    if not lost:
        return []
    c, m = lost[0]
    return [Finding(rule_id="nginx.upstream_server_removed", severity=Severity.WARNING,
                    message="upstream servers taken out of rotation: "
                            + ", ".join(f"{m['upstream']}/{m['server']} ({'removed' if c.new is None else 'down'})"
                                        for c, m in lost),
                    evidence=_diff(c) | {"upstream": m["upstream"], "server": m["server"],
                                         "servers": [f"{m['upstream']}/{m['server']}" for _, m in lost]},
                    query="nginx -T")]


def _timeouts(changes: list[ConfigDiff]) -> list[Finding]:
    shorter = [c for c in changes if c.key.endswith(_TIMEOUTS) and c.new is not None
               and (seconds(c.new) or 0) < (seconds(c.old) if c.old is not None else DEFAULT_TIMEOUT_S)]
    if not shorter:
        return []
    return [Finding(rule_id="nginx.proxy_timeout_lowered", severity=Severity.WARNING,
                    message="proxy timeouts shortened (slow upstream answers become 504): "
                            + ", ".join(f"{c.key} {c.old or '60s (default)'} -> {c.new}" for c in shorter),
                    evidence=_diff(shorter[0]) | {"changes": {c.key: {"old": c.old, "new": c.new} for c in shorter}},
                    query="nginx -T")]


def _body_size(changes: list[ConfigDiff]) -> list[Finding]:
    smaller = [c for c in changes if c.key.endswith("| client_max_body_size") and c.new is not None
               and (size_bytes(c.new) or 0) != 0
               and (size_bytes(c.new) or 0) < (size_bytes(c.old) if c.old is not None else DEFAULT_BODY_BYTES)]
    if not smaller:
        return []
    return [Finding(rule_id="nginx.body_size_lowered", severity=Severity.WARNING,
                    message="client_max_body_size lowered (larger uploads get 413): "
                            + ", ".join(f"{c.key} {c.old or '1m (default)'} -> {c.new}" for c in smaller),
                    evidence=_diff(smaller[0]), query="nginx -T")]


def config_risks(change: ConfigChange) -> list[Finding]:
    changes = list(change.changes)
    return _workers(changes) + _servers(changes) + _timeouts(changes) + _body_size(changes)
