"""etcd health rules: pure functions over one observation of a member and what it sees of the others. Each finding
carries the values the rule looked at (``evidence``) and where they came from (``query``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kubestack.contract.events import Finding, Severity
from kubestack.plugins.etcd.config import EtcdConfig
from kubestack.plugins.etcd.leadership import LeaderChange
from kubestack.plugins.etcd.parse import Alarm, Member, Metrics, Status, buckets, metric, quantile

FSYNC = "etcd_disk_wal_fsync_duration_seconds"
COMMIT = "etcd_disk_backend_commit_duration_seconds"


@dataclass(frozen=True)
class Observation:
    status: Status
    """The asked member's own status."""
    members: list[Member]
    views: dict[str, Status | str]
    """Member id → its status read at its own client URL, or why it could not be read."""
    alarms: list[Alarm] | None
    """None when they could not be read (the alarm list needs a leader)."""
    metrics: Metrics
    previous: Metrics | None = None
    """The metrics of the round before: latency quantiles are over what happened in between."""
    leader_changes: list[LeaderChange] = field(default_factory=list)

    def name_of(self, member_id: str) -> str:
        return next((m.name for m in self.members if m.id == member_id), member_id)

    @property
    def name(self) -> str:
        return self.name_of(self.status.member_id)

    @property
    def quota(self) -> int:
        return int(metric(self.metrics, "etcd_server_quota_backend_bytes") or 0)

    @property
    def reachable(self) -> list[str]:
        return [m for m, v in self.views.items() if isinstance(v, Status)]


def quorum(members: int) -> int:
    return members // 2 + 1


Rule = Callable[[Observation, EtcdConfig], list[Finding]]


def _voters(obs: Observation) -> int:
    return len([m for m in obs.members if not m.is_learner]) or 1


def no_leader(obs: Observation, _: EtcdConfig) -> list[Finding]:
    if obs.status.has_leader and metric(obs.metrics, "etcd_server_has_leader") != 0:
        return []
    voters = _voters(obs)
    return [Finding(
        rule_id="etcd.no_leader", severity=Severity.CRITICAL,
        message=f"member {obs.name} has no leader: {len(obs.reachable)} of {voters} members answer, a quorum "
                f"needs {quorum(voters)}; every write and linearizable read fails",
        evidence={"member": obs.name, "members": voters, "reachable": len(obs.reachable), "quorum": quorum(voters),
                  "raft_term": obs.status.raft_term,
                  "down": sorted(obs.name_of(m) for m, v in obs.views.items() if not isinstance(v, Status))},
        query="POST /v3/maintenance/status; GET /metrics etcd_server_has_leader")]


def members_down(obs: Observation, _: EtcdConfig) -> list[Finding]:
    down = {m: v for m, v in obs.views.items() if not isinstance(v, Status)}
    if not down:
        return []
    voters = _voters(obs)
    lost = len(obs.reachable) < quorum(voters)
    names = sorted(obs.name_of(m) for m in down)
    tolerance = f"quorum lost ({len(obs.reachable)} of {voters})" if lost else \
        f"{len(obs.reachable) - quorum(voters)} more failure(s) lose the quorum"
    return [Finding(
        rule_id="etcd.member_down", severity=Severity.CRITICAL if lost else Severity.WARNING,
        message=f"{len(down)} etcd member(s) do not answer: {', '.join(names)}; {tolerance}",
        evidence={"down": [{"member": obs.name_of(m), "id": m, "error": str(e)[:300]} for m, e in sorted(down.items())],
                  "members": voters, "reachable": len(obs.reachable), "quorum": quorum(voters)},
        query="POST /v3/cluster/member/list; POST /v3/maintenance/status at each member's client URL")]


def leader_changes(obs: Observation, limits: EtcdConfig) -> list[Finding]:
    if not obs.leader_changes:
        return []
    last = obs.leader_changes[-1]
    now = obs.name_of(last.new_leader) if last.new_leader != "0" else "none"
    return [Finding(
        rule_id="etcd.leader_changes", severity=Severity.WARNING,
        message=f"the etcd leader changed {sum(c.changes_seen for c in obs.leader_changes)} time(s) in the last "
                f"{limits.leader_change_window_s:.0f}s, now {now} "
                f"(term {last.term})",
        evidence={"member": obs.name, "changes": [c.evidence() for c in obs.leader_changes[-10:]],
                  "leader": obs.name_of(obs.status.leader), "raft_term": obs.status.raft_term,
                  "leader_changes_seen_total": metric(obs.metrics, "etcd_server_leader_changes_seen_total")},
        query="POST /v3/maintenance/status (leader, raftTerm); GET /metrics etcd_server_leader_changes_seen_total")]


def _db_evidence(obs: Observation) -> dict[str, object]:
    size, quota = obs.status.db_size, obs.quota
    return {"member": obs.name, "db_size": size, "db_size_in_use": obs.status.db_in_use, "quota_backend_bytes": quota,
            "db_used_ratio": round(size / quota, 4) if quota else None, "revision": obs.status.revision,
            "compact_revision": metric(obs.metrics, "etcd_debugging_mvcc_compact_revision")}


def near_quota(obs: Observation, limits: EtcdConfig) -> list[Finding]:
    quota = obs.quota
    if not quota or obs.status.db_size < limits.quota_high_ratio * quota:
        return []
    ratio = obs.status.db_size / quota
    return [Finding(
        rule_id="etcd.db_near_quota",
        severity=Severity.CRITICAL if ratio >= limits.quota_critical_ratio else Severity.WARNING,
        message=f"the etcd database of {obs.name} is {ratio:.0%} of its quota ({obs.status.db_size} of {quota} bytes): "
                "at the quota etcd raises NOSPACE and refuses every write",
        evidence=_db_evidence(obs), query="POST /v3/maintenance/status; GET /metrics etcd_server_quota_backend_bytes")]


def alarms(obs: Observation, _: EtcdConfig) -> list[Finding]:
    findings = []
    for kind, rule, what in (("NOSPACE", "etcd.nospace_alarm", "the database reached its quota: etcd refuses every "
                                                                  "write until the space is reclaimed and the alarm "
                                                                  "disarmed"),
                             ("CORRUPT", "etcd.corrupt_alarm", "a member's data differs from the others': the "
                                                               "cluster refuses writes")):
        raised = [a for a in obs.alarms or () if a.alarm == kind]
        if raised:
            findings.append(Finding(
                rule_id=rule, severity=Severity.CRITICAL,
                message=f"etcd alarm {kind} raised by {', '.join(sorted(obs.name_of(a.member_id) for a in raised))}: "
                        + what,
                evidence=_db_evidence(obs) | {"alarms": [{"member": obs.name_of(a.member_id), "id": a.member_id,
                                                          "alarm": a.alarm} for a in raised]},
                query='POST /v3/maintenance/alarm {"action": "GET"}'))
    return findings


def fragmented(obs: Observation, limits: EtcdConfig) -> list[Finding]:
    size, in_use = obs.status.db_size, obs.status.db_in_use
    if not size or size - in_use < limits.fragmented_min_bytes or in_use / size > limits.fragmented_max_in_use:
        return []
    return [Finding(
        rule_id="etcd.db_fragmented", severity=Severity.WARNING,
        message=f"only {in_use / size:.0%} of the {size}-byte etcd database of {obs.name} is in use: "
                f"{size - in_use} bytes of free pages count against the quota until it is defragmented",
        evidence=_db_evidence(obs) | {"free_bytes": size - in_use},
        query="POST /v3/maintenance/status (dbSize, dbSizeInUse)")]


def slow_disk(obs: Observation, limits: EtcdConfig) -> list[Finding]:
    if obs.previous is None:
        return []  # the first round sets the baseline: a member's lifetime includes its start-up
    slow = {}
    for histogram, key, limit in ((FSYNC, "wal_fsync", limits.fsync_p99_max_s),
                                  (COMMIT, "backend_commit", limits.commit_p99_max_s)):
        p99, count = quantile(buckets(obs.metrics, histogram), buckets(obs.previous, histogram), 0.99)
        if p99 is not None and count >= limits.disk_min_ops and p99 > limit:
            slow[key] = {"p99_s": p99, "max_s": limit, "count": count}
    if not slow:
        return []
    return [Finding(
        rule_id="etcd.slow_disk", severity=Severity.WARNING,
        message=f"etcd's disk is slow on {obs.name}: " + ", ".join(
            f"{k} p99 {v['p99_s'] * 1000:g} ms (limit {v['max_s'] * 1000:g} ms, {v['count']} ops)" for k, v in
            slow.items()) + "; heartbeats and elections suffer",
        evidence={"member": obs.name, **slow,
                  "slow_applies_total": metric(obs.metrics, "etcd_server_slow_apply_total")},
        query=f"GET /metrics {FSYNC}_bucket, {COMMIT}_bucket (difference since the round before)")]


RULES: tuple[Rule, ...] = (no_leader, members_down, leader_changes, near_quota, alarms, fragmented, slow_disk)


def evaluate(obs: Observation, limits: EtcdConfig) -> list[Finding]:
    return [finding for rule in RULES for finding in rule(obs, limits)]
