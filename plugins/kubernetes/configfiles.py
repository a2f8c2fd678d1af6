"""Middleware configuration files kept in ConfigMaps (``redis.conf``, ``my.cnf``, ``postgresql.conf``, Kafka's
``server.properties``) → flat ``key → value`` snapshots (pure). Keys read the way the middleware's own plugin
reports them where it can (Redis memory sizes in bytes as CONFIG GET gives them, MySQL options with ``_``);
passwords and other secrets are redacted."""

from __future__ import annotations

import re

from kubestack.plugins.kubernetes.objects import Obj, meta
from kubestack.plugins.kubernetes.resources import app_name

REDACTED = "<redacted>"
_SECRET = re.compile(r"pass|secret|token|masterauth|credential|\.jaas\.config|ssl\.key", re.IGNORECASE)
_REDIS_MEMORY_KEYS = frozenset({"maxmemory", "repl-backlog-size", "client-query-buffer-limit", "proto-max-bulk-len",
                                "active-defrag-ignore-bytes", "hash-max-listpack-value", "list-max-listpack-size"})
_REDIS_UNITS = {"k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}
_MYSQL_SERVER_SECTIONS = frozenset({"mysqld", "server", "mariadb", "mariadbd", "galera", "mysqld_safe"})

FILE_KINDS = (
    (re.compile(r"(^|[-_.])redis[-_.a-z0-9]*\.conf$|^(master|replica)\.conf$"), "redis"),
    (re.compile(r"\.cnf$"), "mysql"),
    (re.compile(r"^postgresql(\.[a-z]+)?\.conf$"), "postgresql"),
    (re.compile(r"^(server|broker)\.properties$"), "kafka"),
)
_SUFFIXES = {"redis": ".conf", "postgresql": ".conf", "mysql": ".cnf", "kafka": ".properties"}
_NOT_SETTINGS = frozenset({"pg_hba.conf", "pg_ident.conf", "users.acl", "sentinel.conf"})
"""Configuration files that are not key-value settings (access rules, ACLs, Sentinel's own state)."""


def _redact(config: dict[str, str]) -> dict[str, str]:
    return {k: (REDACTED if v and _SECRET.search(k) else v) for k, v in config.items()}


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _redis_bytes(value: str) -> str:
    match = re.fullmatch(r"(\d+)([kmg]b?)?", value.strip().lower())
    if not match:
        return value
    number, unit = match.groups()
    return str(int(number) * _REDIS_UNITS.get(unit or "", 1))


def parse_redis_conf(text: str) -> dict[str, str]:
    """``directive args`` lines; a repeated directive (``save``) joins its arguments as CONFIG GET shows them."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        key, value = key.lower(), " ".join(_unquote(v) for v in value.split())
        if key == "include":
            continue
        if key in _REDIS_MEMORY_KEYS:
            value = _redis_bytes(value)
        out[key] = f"{out[key]} {value}".strip() if key in out and key in ("save", "rename-command") else value
    return _redact(out)


def parse_my_cnf(text: str) -> dict[str, str]:
    """INI sections; server sections' options bare (``max_connections``), others as ``section.option``; a bare
    option (``skip-name-resolve``) is ``ON``."""
    out: dict[str, str] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip() if not raw.lstrip().startswith("!") else ""
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            continue
        key, sep, value = line.partition("=")
        key = key.strip().lower().replace("-", "_")
        value = _unquote(value) if sep else "ON"
        out[key if section in _MYSQL_SERVER_SECTIONS else f"{section}.{key}"] = value
    return _redact(out)


def _pg_value(rest: str) -> str:
    rest = rest.strip()
    if rest.startswith("'"):
        value, i = [], 1
        while i < len(rest):
            if rest[i] == "'" and rest[i + 1:i + 2] == "'":
                value.append("'")
                i += 2
            elif rest[i] == "'":
                break
            else:
                value.append(rest[i])
                i += 1
        return "".join(value)
    return rest.split("#", 1)[0].strip()


def parse_postgresql_conf(text: str) -> dict[str, str]:
    """``name = value`` (``=`` optional), ``'quoted'`` values with ``''`` escapes, ``#`` comments."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"([A-Za-z_][A-Za-z0-9_.]*)\s*=?\s*(.*)$", line)
        if match and match.group(1).lower() not in ("include", "include_dir", "include_if_exists"):
            out[match.group(1).lower()] = _pg_value(match.group(2))
    return _redact(out)


def parse_properties(text: str) -> dict[str, str]:
    """Java properties: ``key=value`` or ``key: value``, ``#``/``!`` comments (no continuation lines)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        match = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)$", line)
        if match:
            out[match.group(1)] = match.group(2).strip()
    return _redact(out)


PARSERS = {"redis": parse_redis_conf, "mysql": parse_my_cnf, "postgresql": parse_postgresql_conf,
           "kafka": parse_properties}


def file_kind(filename: str, app: str | None = None) -> str | None:
    """Which middleware a ConfigMap key holds the configuration of: any file with the middleware's suffix in a
    ConfigMap labelled as that middleware, else by its file name."""
    name = filename.lower()
    if name in _NOT_SETTINGS:
        return None
    if app in _SUFFIXES and name.endswith(_SUFFIXES[app]):
        return app
    for pattern, kind in FILE_KINDS:
        if pattern.search(name):
            return kind
    return None


def configmap_configs(configmap: Obj) -> dict[str, dict[str, str]]:
    """Middleware kind → its configuration from the ConfigMap's files (keys of several files of the same kind are
    prefixed with the file name); empty when none is a middleware file."""
    app = app_name(meta(configmap).get("labels") or {})
    app = {"mariadb": "mysql", "postgres": "postgresql"}.get(app or "", app)
    files: dict[str, list[tuple[str, str]]] = {}
    for filename, text in sorted((configmap.get("data") or {}).items()):
        kind = file_kind(filename, app)
        if kind is not None and isinstance(text, str):
            files.setdefault(kind, []).append((filename, text))
    out = {}
    for kind, group in files.items():
        merged: dict[str, str] = {}
        for filename, text in group:
            parsed = PARSERS[kind](text)
            merged |= parsed if len(group) == 1 else {f"{filename}:{k}": v for k, v in parsed.items()}
        out[kind] = merged
    return out
