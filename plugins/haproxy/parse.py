"""Pure parsers of HAProxy's runtime API answers: ``show info`` (``Name: value``), ``show stat`` (CSV whose header
line starts with ``# ``), ``show servers state`` (space separated, version line first), ``show sess`` and the
lines of ``haproxy.cfg``."""

from __future__ import annotations

import csv
import re

from kubestack.redaction import redact
from dataclasses import dataclass
from typing import Literal

Kind = Literal["frontend", "backend", "server", "listener"]
_KINDS: dict[str, Kind] = {"0": "frontend", "1": "backend", "2": "server", "3": "listener"}

ADMIN_MAINT = 0x01 | 0x02 | 0x04 | 0x20 | 0x40
"""srv_admin_state bits of maintenance: forced, inherited, configured, resolution, health check (``srvadm``)."""
ADMIN_DRAIN = 0x08 | 0x10
"""srv_admin_state bits of drain: forced, inherited."""
CHECK_ENABLED = 0x04
"""srv_check_state bit of an enabled health check (0x02: one is configured)."""


def parse_info(text: str) -> dict[str, str]:
    info = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            info[key.strip()] = value.strip()
    return info


def number(value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        result = float(value)
    except ValueError:
        return None
    return result if result == result else None


@dataclass(frozen=True)
class StatRow:
    """One line of ``show stat``: a frontend, a backend (its totals), a server or a listener."""

    proxy: str
    name: str
    kind: Kind
    fields: dict[str, str]

    def num(self, key: str) -> float | None:
        return number(self.fields.get(key))

    def int(self, key: str) -> int:
        return int(self.num(key) or 0)

    @property
    def status(self) -> str:
        return self.fields.get("status", "")

    @property
    def up(self) -> bool:
        """UP, or going down but still serving (``UP 1/2``), or draining; DOWN, MAINT and NOLB are not."""
        return self.status.startswith(("UP", "DRAIN", "OPEN")) or self.status == "no check"

    @property
    def maint(self) -> bool:
        return self.status.startswith("MAINT")


def parse_stat(text: str) -> list[StatRow]:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("# "):
        raise ValueError(f"not a 'show stat' answer: {text[:120]!r}")
    header = [h for h in lines[0][2:].split(",")]
    rows = []
    for values in csv.reader(lines[1:]):
        fields = dict(zip(header, values, strict=False))
        kind = _KINDS.get(fields.get("type", ""))
        if kind is None:
            continue
        rows.append(StatRow(proxy=fields.get("pxname", ""), name=fields.get("svname", ""), kind=kind, fields=fields))
    return rows


@dataclass(frozen=True)
class ServerState:
    """One line of ``show servers state``: the runtime state a ``set server`` changes."""

    backend: str
    server: str
    address: str
    port: str
    admin_state: int
    weight: int
    check_state: int

    @property
    def admin(self) -> Literal["ready", "drain", "maint"]:
        """The state ``set server ... state`` takes back to restore this one."""
        if self.admin_state & ADMIN_MAINT:
            return "maint"
        if self.admin_state & ADMIN_DRAIN:
            return "drain"
        return "ready"

    @property
    def check_enabled(self) -> bool | None:
        """None when the server has no health check configured."""
        return bool(self.check_state & CHECK_ENABLED) if self.check_state & 0x02 else None


def parse_servers_state(text: str) -> list[ServerState]:
    header: list[str] = []
    states = []
    for line in text.splitlines():
        if line.startswith("# "):
            header = line[2:].split()
            continue
        parts = line.split()
        if not header or len(parts) < len(header) - 2:
            continue
        f = dict(zip(header, parts, strict=False))
        states.append(ServerState(backend=f.get("be_name", ""), server=f.get("srv_name", ""),
                                  address=f.get("srv_addr", ""), port=f.get("srv_port", ""),
                                  admin_state=int(f.get("srv_admin_state", "0")), weight=int(f.get("srv_uweight", "0")),
                                  check_state=int(f.get("srv_check_state", "0"))))
    return states


_SESS = re.compile(r"\bsrc=(?P<src>\S+)\s+fe=(?P<fe>\S+)")


def parse_sessions(text: str) -> list[tuple[str, str]]:
    """(client address, frontend) of each session of ``show sess``; the runtime API's own (``fe=GLOBAL``) and
    Unix socket clients left out."""
    sessions = []
    for match in _SESS.finditer(text):
        src, fe = match["src"], match["fe"]
        if fe == "GLOBAL" or src.startswith("unix"):
            continue
        sessions.append((src, fe))
    return sessions


_SECRET = re.compile(r"(password|passwd|secret|token|authorization|cookie|api.?key|\bauth\b)", re.I)
SECTIONS = ("global", "defaults", "frontend", "backend", "listen", "resolvers", "peers", "userlist", "program",
            "http-errors", "ring", "mailers", "cache")
_SECRET_DIRECTIVES = ("user ", "stats auth", "password", "insecure-password")


def parse_config_file(text: str) -> dict[str, str]:
    """``haproxy.cfg`` as ``{"<section> <name> | <directive words>": rest}``: a directive keyed by its leading
    words (``timeout server``, ``server s1``, ``bind``), several of the same joined by ``; ``. Passwords are
    redacted."""
    config: dict[str, str] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0] in SECTIONS and raw[:1] not in (" ", "\t"):
            section = " ".join(words[:2])
            continue
        key = " ".join(words[:2]) if words[0] in ("timeout", "server", "stats") and len(words) > 1 else words[0]
        if key.startswith(("option", "http-request", "http-response")) and not _SECRET.search(line):
            key, value = line, "on"
        else:
            key = key if not key.startswith(("http-request", "http-response")) else " ".join(words[:2])
            value = " ".join(words[len(key.split()):])
        secret = any(line.startswith(s) or f" {s}" in line for s in _SECRET_DIRECTIVES) or _SECRET.search(line)
        if secret and words[0] != "server":
            value = "<redacted>"
        key, value = redact(key), redact(value)
        name = f"{section} | {key}"
        config[name] = f"{config[name]}; {value}" if name in config else value
    return config
