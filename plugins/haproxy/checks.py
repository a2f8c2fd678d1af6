"""HAProxy health rules: pure functions over one observation of the runtime API. Each finding carries the values
the rule looked at (``evidence``) and the commands that produced them (``query``). The 5xx rule judges the responses
since the previous observation (the counters' difference); the first observation only sets where it starts, so that
errors from before the agent came (counted since HAProxy started) raise nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubestack.contract.events import Finding, Severity
from kubestack.plugins.haproxy.config import HAProxyConfig
from kubestack.plugins.haproxy.metrics import connections_used_ratio
from kubestack.plugins.haproxy.parse import StatRow, number

STAT = "show stat"
_CODES = ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other")


@dataclass(frozen=True)
class Observation:
    info: dict[str, str]
    rows: list[StatRow]
    previous: dict[tuple[str, str], dict[str, str]] | None = None
    """``show stat`` fields of the previous observation by (proxy, name): the window of the 5xx rule (None: this is
    the first observation)."""

    def servers(self, backend: str) -> list[StatRow]:
        return [r for r in self.rows if r.kind == "server" and r.proxy == backend]


Rule = Callable[[Observation, HAProxyConfig], list[Finding]]


def server_evidence(row: StatRow) -> dict[str, Any]:
    f = row.fields
    return {"server": row.name, "address": f.get("addr", ""), "status": row.status,
            "check_status": f.get("check_status", ""), "check_desc": f.get("check_desc", ""),
            "last_check": f.get("last_chk", ""), "check_failures": row.int("chkfail"), "downs": row.int("chkdown"),
            "sessions": row.int("scur"), "maxconn": f.get("slim", "")}


def backends_down(obs: Observation, _: HAProxyConfig) -> list[Finding]:
    down = [r for r in obs.rows if r.kind == "backend" and not r.up]
    if not down:
        return []
    first = down[0]
    servers = obs.servers(first.proxy)
    in_maint = all(s.maint for s in servers) and bool(servers)
    return [Finding(
        rule_id="haproxy.backend_down", severity=Severity.CRITICAL,
        message=f"backend {first.proxy} has no server available"
                + (" (every server is in maintenance)" if in_maint else "")
                + ": HAProxy answers its requests with 503"
                + (f"; {len(down) - 1} more backend(s) down" if len(down) > 1 else ""),
        evidence={"backend": first.proxy, "status": first.status, "servers": [server_evidence(s) for s in servers],
                  "all_in_maintenance": in_maint, "backends_down": [r.proxy for r in down],
                  "responses_5xx": first.int("hrsp_5xx")},
        query=STAT)]


def _down(row: StatRow) -> str:
    why = " ".join(filter(None, (row.fields.get("check_status"), row.fields.get("check_desc"))))
    return f"{row.proxy}/{row.name}" + (f" ({why})" if why else "")


def servers_down(obs: Observation, _: HAProxyConfig) -> list[Finding]:
    """Servers failing their health checks in backends that still have others (a dead backend is the rule above)."""
    up_backends = {r.proxy for r in obs.rows if r.kind == "backend" and r.up}
    down = [r for r in obs.rows if r.kind == "server" and r.proxy in up_backends
            and r.status.startswith(("DOWN", "NOLB"))]
    if not down:
        return []
    first = down[0]
    left = [s.name for s in obs.servers(first.proxy) if s.up]
    return [Finding(
        rule_id="haproxy.servers_down", severity=Severity.WARNING,
        message=f"{len(down)} server(s) are down: " + ", ".join(_down(r) for r in down[:5])
                + f"; {first.proxy} runs on {len(left)} server(s)",
        evidence={"backend": first.proxy, "server": first.name, "servers": [server_evidence(r) | {"backend": r.proxy}
                                                                            for r in down[:20]],
                  "servers_up": left},
        query=STAT)]


def queue_building(obs: Observation, limits: HAProxyConfig) -> list[Finding]:
    """Requests waiting for a server slot: every server of the backend is at its maxconn (or none is up)."""
    queued = [r for r in obs.rows if r.kind == "backend" and r.int("qcur") >= limits.queue_min]
    if not queued:
        return []
    worst = max(queued, key=lambda r: r.int("qcur"))
    servers = obs.servers(worst.proxy)
    full = [s for s in servers if s.up and s.fields.get("slim") and s.int("scur") >= s.int("slim")]
    evidence: dict[str, Any] = {
        "backend": worst.proxy, "queue": worst.int("qcur"), "queue_max": worst.int("qmax"),
        "queue_time_ms": worst.int("qtime"), "sessions": worst.int("scur"),
        "servers": [server_evidence(s) | {"queue": s.int("qcur")} for s in servers],
        "backends_queueing": {r.proxy: r.int("qcur") for r in queued}}
    if full:
        busiest = max(full, key=lambda s: s.int("qcur"))
        evidence |= {"server": busiest.name, "maxconn": busiest.int("slim")}
    return [Finding(
        rule_id="haproxy.queue_building", severity=Severity.WARNING,
        message=f"{worst.int('qcur')} request(s) wait in backend {worst.proxy}'s queue"
                + (f": {len(full)} of {len(servers)} server(s) are at their maxconn" if full else
                   ": no server slot is free"),
        evidence=evidence, query=STAT)]


def _responses(fields: dict[str, str]) -> tuple[float, float]:
    total = sum(number(fields.get(c)) or 0 for c in _CODES)
    return number(fields.get("hrsp_5xx")) or 0, total


def _window(row: StatRow, previous: dict[tuple[str, str], dict[str, str]]) -> tuple[int, int]:
    """(5xx, responses) of ``row`` since ``previous``; a row new since then counts from zero."""
    errors, total = _responses(row.fields)
    before = previous.get((row.proxy, row.name))
    if before is not None:
        old_errors, old_total = _responses(before)
        if total >= old_total and errors >= old_errors:  # a reload resets the counters: then count from zero
            errors, total = errors - old_errors, total - old_total
    return int(errors), int(total)


def backend_5xx(obs: Observation, limits: HAProxyConfig) -> list[Finding]:
    if obs.previous is None:
        return []
    failing = []
    for row in obs.rows:
        if row.kind != "backend" or row.fields.get("mode") != "http":
            continue
        errors, total = _window(row, obs.previous)
        if total >= limits.errors_min_responses and errors / total >= limits.errors_5xx_ratio:
            failing.append((row, errors, total))
    if not failing:
        return []
    row, errors, total = max(failing, key=lambda f: f[1] / f[2])
    servers = [(s, *_window(s, obs.previous)) for s in obs.servers(row.proxy)]
    evidence: dict[str, Any] = {
        "backend": row.proxy, "responses_5xx": errors, "responses": total, "ratio_5xx": round(errors / total, 4),
        "connection_errors": row.int("econ"), "response_errors": row.int("eresp"),
        "servers": [{"server": s.name, "address": s.fields.get("addr", ""), "status": s.status, "responses_5xx": e,
                     "responses": t} for s, e, t in servers],
        "servers_up": [s.name for s, _, _ in servers if s.up and not s.maint],
        "backends_failing": {r.proxy: e for r, e, _ in failing}}
    worst = max(servers, key=lambda s: s[1], default=None)
    if worst is not None and worst[1]:
        evidence |= {"server": worst[0].name, "server_responses_5xx": worst[1], "server_responses": worst[2]}
    by = (f"; server {worst[0].name} answered {worst[1]} of them" if worst is not None and worst[1] else
          "; HAProxy itself answered them (no server available or reachable)")
    return [Finding(
        rule_id="haproxy.backend_5xx", severity=Severity.CRITICAL if errors / total >= 0.5 else Severity.WARNING,
        message=f"{errors} of {total} responses of backend {row.proxy} were 5xx ({errors / total:.0%}){by}",
        evidence=evidence, query=STAT)]


def sessions_near_limit(obs: Observation, limits: HAProxyConfig) -> list[Finding]:
    near = []
    ratio = connections_used_ratio(obs.info)
    if ratio is not None and ratio >= limits.sessions_high_ratio:
        near.append({"scope": "process", "sessions": int(number(obs.info.get("CurrConns")) or 0),
                     "limit": int(number(obs.info.get("Maxconn")) or 0), "ratio": round(ratio, 4)})
    for row in obs.rows:
        limit = row.int("slim")
        if row.kind == "frontend" and limit and row.int("scur") / limit >= limits.sessions_high_ratio:
            near.append({"scope": "frontend", "frontend": row.proxy, "sessions": row.int("scur"),
                         "limit": row.int("slim"), "ratio": round(row.int("scur") / row.int("slim"), 4)})
    if not near:
        return []
    worst = max(near, key=lambda n: n["ratio"])
    where = "the process" if worst["scope"] == "process" else f"frontend {worst['frontend']}"
    return [Finding(
        rule_id="haproxy.sessions_near_limit",
        severity=Severity.CRITICAL if worst["ratio"] >= 1 else Severity.WARNING,
        message=f"{where} holds {worst['sessions']} of its {worst['limit']} sessions ({worst['ratio']:.0%}): "
                "new connections wait in the kernel's backlog, then fail",
        evidence=worst | {"near_limit": near}, query="show info; show stat")]


RULES: tuple[Rule, ...] = (backends_down, servers_down, queue_building, backend_5xx, sessions_near_limit)


def evaluate(obs: Observation, limits: HAProxyConfig) -> list[Finding]:
    return [finding for rule in RULES for finding in rule(obs, limits)]
