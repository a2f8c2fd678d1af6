"""ZooKeeper health rules: pure functions over one observation of a server and what it sees of the other members.
Each finding carries the values the rule looked at (``evidence``) and the four-letter words they came from
(``query``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from kubestack.contract.events import Finding, Severity
from kubestack.plugins.zookeeper.config import ZooKeeperConfig
from kubestack.plugins.zookeeper.parse import Connection, number
from kubestack.plugins.zookeeper.sessions import Expiry


@dataclass(frozen=True)
class MemberView:
    address: str
    serving: bool
    mode: str | None = None
    """leader, follower, observer, standalone, read-only; None when it cannot be asked."""
    error: str | None = None

    def evidence(self) -> dict[str, object]:
        return {"member": self.address, "serving": self.serving, "mode": self.mode, "error": self.error}


@dataclass(frozen=True)
class Observation:
    address: str
    serving: bool
    mntr: dict[str, str]
    """Empty when the server does not serve."""
    ruok: str
    isro: str
    settings: dict[str, str]
    """``conf`` (of the last round it served, when it does not now)."""
    views: dict[str, MemberView]
    """Every ensemble member (this server included) by client address."""
    connections: list[Connection] = field(default_factory=list)
    previous: dict[str, str] | None = None
    """``mntr`` of the round before: latencies and fsync times are over what lies between."""
    expiries: list[Expiry] = field(default_factory=list)
    orphans: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def value(self, key: str) -> float | None:
        return number(self.mntr.get(key))

    def delta(self, key: str) -> float | None:
        now, before = self.value(key), number((self.previous or {}).get(key))
        return None if now is None or before is None or now < before else now - before

    @property
    def participants(self) -> int:
        return len(self.views) or 1


Rule = Callable[[Observation, ZooKeeperConfig], list[Finding]]


def quorum(members: int) -> int:
    return members // 2 + 1


def _serving_members(obs: Observation) -> list[str]:
    return sorted(a for a, v in obs.views.items() if v.serving)


def not_serving(obs: Observation, _: ZooKeeperConfig) -> list[Finding]:
    if obs.serving and obs.isro.strip() != "ro":
        return []
    serving = _serving_members(obs)
    lost = len(serving) < quorum(obs.participants)
    why = (f"the ensemble lost its quorum: {len(serving)} of {obs.participants} members serve, "
           f"{quorum(obs.participants)} needed" if obs.participants > 1 and lost else "it is not serving requests")
    if obs.isro.strip() == "ro":
        why = "it is in read-only mode (cut off from the quorum): writes fail"
    return [Finding(
        rule_id="zookeeper.not_serving", severity=Severity.CRITICAL,
        message=f"ZooKeeper at {obs.address} refuses clients: {why}; sessions cannot be created or renewed and "
                "expire",
        evidence={"server": obs.address, "ruok": obs.ruok.strip(), "isro": obs.isro.strip(),
                  "members": obs.participants, "serving": serving, "quorum": quorum(obs.participants),
                  "views": [v.evidence() for _, v in sorted(obs.views.items())]},
        query="ruok; isro; srvr at each member")]


def members_down(obs: Observation, _: ZooKeeperConfig) -> list[Finding]:
    down = {a: v for a, v in obs.views.items() if not v.serving and a != obs.address}
    if not down:
        return []
    serving = _serving_members(obs)
    lost = len(serving) < quorum(obs.participants)
    tolerance = (f"quorum lost ({len(serving)} of {obs.participants})" if lost
                 else f"{len(serving) - quorum(obs.participants)} more failure(s) lose the quorum")
    return [Finding(
        rule_id="zookeeper.member_down", severity=Severity.CRITICAL if lost else Severity.WARNING,
        message=f"{len(down)} ZooKeeper member(s) do not serve: {', '.join(sorted(down))}; {tolerance}",
        evidence={"down": [v.evidence() for _, v in sorted(down.items())], "members": obs.participants,
                  "serving": serving, "quorum": quorum(obs.participants)},
        query="conf (membership); srvr at each member's client port")]


def outstanding(obs: Observation, limits: ZooKeeperConfig) -> list[Finding]:
    queued = obs.value("zk_outstanding_requests")
    if queued is None or queued <= limits.outstanding_max:
        return []
    return [Finding(
        rule_id="zookeeper.outstanding_requests", severity=Severity.WARNING,
        message=f"{int(queued)} requests are queued in ZooKeeper at {obs.address} (more than "
                f"{limits.outstanding_max}): the server cannot keep up, or waits on its quorum or disk",
        evidence={"server": obs.address, "outstanding_requests": int(queued), "max": limits.outstanding_max,
                  "mode": obs.mntr.get("zk_server_state"), "avg_latency_ms": obs.value("zk_avg_latency"),
                  "max_latency_ms": obs.value("zk_max_latency"),
                  "connections": obs.value("zk_num_alive_connections")},
        query="mntr zk_outstanding_requests")]


def high_latency(obs: Observation, limits: ZooKeeperConfig) -> list[Finding]:
    slow = {}
    for kind in ("update", "read"):
        count, total = obs.delta(f"zk_cnt_{kind}latency"), obs.delta(f"zk_sum_{kind}latency")
        if count and total is not None and count >= limits.latency_min_ops and total / count > limits.latency_max_ms:
            slow[kind] = {"avg_ms": round(total / count, 1), "requests": int(count),
                          "p99_ms": obs.value(f"zk_p99_{kind}latency")}
    if not slow:
        return []
    return [Finding(
        rule_id="zookeeper.high_latency", severity=Severity.WARNING,
        message=f"ZooKeeper at {obs.address} answers slowly: " + ", ".join(
            f"{k}s average {v['avg_ms']} ms over {v['requests']}" for k, v in slow.items())
        + f" (limit {limits.latency_max_ms:g} ms)",
        evidence={"server": obs.address, **slow, "max_ms": limits.latency_max_ms,
                  "outstanding_requests": obs.value("zk_outstanding_requests")},
        query="mntr zk_sum/zk_cnt of updatelatency and readlatency (difference since the round before)")]


def per_ip(connections: list[Connection]) -> Counter[str]:
    """Connections with a session, by client IP (the unit of ``maxClientCnxns``)."""
    return Counter(c.ip for c in connections if c.session)


def connections(obs: Observation, limits: ZooKeeperConfig) -> list[Finding]:
    findings = []
    limit = int(number(obs.settings.get("maxClientCnxns")) or 0)
    counts = per_ip(obs.connections)
    crowded = {ip: n for ip, n in counts.items() if limit and n >= limits.connections_high_ratio * limit}
    if crowded:
        findings.append(Finding(
            rule_id="zookeeper.connections_near_limit", severity=Severity.WARNING,
            message=f"client(s) {', '.join(sorted(crowded))} hold {max(crowded.values())} connections to "
                    f"{obs.address}, near maxClientCnxns {limit} per IP: more are refused",
            evidence={"server": obs.address, "maxClientCnxns": limit,
                      "by_ip": dict(sorted(crowded.items(), key=lambda kv: -kv[1])[:20]),
                      "connections": obs.value("zk_num_alive_connections")},
            query="cons; conf maxClientCnxns"))
    rejected = obs.delta("zk_connection_rejected")
    if rejected:
        findings.append(Finding(
            rule_id="zookeeper.connections_rejected", severity=Severity.WARNING,
            message=f"ZooKeeper at {obs.address} refused {int(rejected)} connection(s) since the round before "
                    f"(maxClientCnxns {limit} per IP, or the server throttles)",
            evidence={"server": obs.address, "rejected": int(rejected), "maxClientCnxns": limit,
                      "by_ip": dict(counts.most_common(10)),
                      "connection_rejected_total": obs.value("zk_connection_rejected")},
            query="mntr zk_connection_rejected; cons"))
    return findings


def session_expirations(obs: Observation, limits: ZooKeeperConfig) -> list[Finding]:
    if not obs.expiries:
        return []
    paths = sorted({p for e in obs.expiries for p in e.ephemerals})
    return [Finding(
        rule_id="zookeeper.session_expirations", severity=Severity.WARNING,
        message=f"{len(obs.expiries)} session(s) expired in the last {limits.expiry_window_s:.0f}s and took "
                f"{len(paths)} ephemeral node(s) with them (locks, leader elections, registrations)",
        evidence={"server": obs.address, "expired": [e.evidence() for e in obs.expiries[-20:]],
                  "ephemerals": paths[:50], "maxSessionTimeout": obs.settings.get("maxSessionTimeout"),
                  "disconnected_sessions": sorted(obs.orphans)[:20],
                  "ephemerals_count": obs.value("zk_ephemerals_count")},
        query="dump (sessions with ephemerals) and cons at every member, round after round")]


def slow_fsync(obs: Observation, limits: ZooKeeperConfig) -> list[Finding]:
    count, total = obs.delta("zk_cnt_fsynctime"), obs.delta("zk_sum_fsynctime")
    if not count or total is None or count < limits.fsync_min_ops or total / count <= limits.fsync_max_ms:
        return []
    return [Finding(
        rule_id="zookeeper.slow_fsync", severity=Severity.WARNING,
        message=f"transaction log fsync on {obs.address} takes {total / count:.1f} ms on average over {int(count)} "
                f"(limit {limits.fsync_max_ms:g} ms): every write waits for it",
        evidence={"server": obs.address, "avg_fsync_ms": round(total / count, 2), "fsyncs": int(count),
                  "max_fsync_ms": obs.value("zk_max_fsynctime"), "max_ms": limits.fsync_max_ms,
                  "dataLogDir": obs.settings.get("dataLogDir"), "dataDir": obs.settings.get("dataDir")},
        query="mntr zk_sum_fsynctime, zk_cnt_fsynctime (difference since the round before)")]


def data_dir_bytes(settings: dict[str, str]) -> int:
    """Snapshots and transaction logs, counted once when both live in the same directory."""
    snap, log = int(number(settings.get("dataDirSize")) or 0), int(number(settings.get("dataLogSize")) or 0)
    return snap if settings.get("dataDir") == settings.get("dataLogDir") else snap + log


def data_dir_large(obs: Observation, limits: ZooKeeperConfig) -> list[Finding]:
    size = data_dir_bytes(obs.settings)
    if size < limits.data_dir_max_bytes:
        return []
    return [Finding(
        rule_id="zookeeper.data_dir_large", severity=Severity.WARNING,
        message=f"ZooKeeper at {obs.address} keeps {size} bytes of snapshots and transaction logs (limit "
                f"{limits.data_dir_max_bytes}): old ones are not purged (autopurge off?) and the disk fills",
        evidence={"server": obs.address, "bytes": size, "max_bytes": limits.data_dir_max_bytes,
                  "dataDir": obs.settings.get("dataDir"), "dataLogDir": obs.settings.get("dataLogDir"),
                  "dataDirSize": obs.settings.get("dataDirSize"), "dataLogSize": obs.settings.get("dataLogSize")},
        query="conf dataDirSize, dataLogSize")]


RULES: tuple[Rule, ...] = (not_serving, members_down, outstanding, high_latency, connections, session_expirations,
                           slow_fsync, data_dir_large)


def evaluate(obs: Observation, limits: ZooKeeperConfig) -> list[Finding]:
    return [finding for rule in RULES for finding in rule(obs, limits)]
