"""Remediation proposals for the most likely cause of an incident, built from the plugins' actions and the
parameters its evidence supports. Pure: nothing here reaches a target; the remediation stage re-checks each
action's preconditions just before acting.

What the evidence can support:

- **undo a risky change**: the previous value of the setting a config-risk signal names;
- **room for a limit being reached**: raise it (Redis maxmemory, MariaDB max_connections) or free what is held for
  nothing (PostgreSQL sessions idle, or idle inside a transaction);
- **end what holds a lock**: the blocking connection or backend a lock-wait finding names;
- **stop an offender**: the client that ran a command slow enough to stall Redis, the role someone keeps failing
  to log in as;
- **Kubernetes**: a crash-looping pod deleted (its controller makes a fresh one) or its workload restarted, a node
  short of memory, disk or process ids (or NotReady) cordoned so that no new pod lands there.

Only actions whose required parameters are all known are proposed; forbidden ones never are.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import datetime

from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import Incident, IncidentSignal, RemediationProposal, Risk, SignalKind
from kubestack.pipeline.causes import CONFIG_RISK, SYMPTOMS, cause_of, weight
from kubestack.plugins.base import ActionSpec

MAX_PROPOSALS = 3
IDLE_SESSION_S = 300
"""Sessions idle this long are proposed for closing when connection slots run out (pools reconnect on demand)."""

KUBE_CRASHLOOP = "kubernetes.pod_crashloop"
KUBE_NODE_TROUBLE = {"kubernetes.node_not_ready": "is NotReady",
                     "kubernetes.node_memory_pressure": "is short of memory",
                     "kubernetes.node_disk_pressure": "is short of disk",
                     "kubernetes.node_pid_pressure": "runs out of process ids"}
"""Rule ids of the Kubernetes plugin (``plugins/kubernetes/pods.py``, ``nodes.py``), named here as the other plugins'
are: the proposals know evidence, not plugins."""

_FAILED_LOGIN = re.compile(r'password authentication failed for user "([^"]+)"')

Candidate = tuple[ActionSpec, dict, str, IncidentSignal]
"""(action, params, expected effect, the signal whose evidence supports it)"""


def propose(incident: Incident, resource: str, signals: list[IncidentSignal], offered: tuple[ActionSpec, ...],
            source: Source, now: datetime) -> list[RemediationProposal]:
    """Up to ``MAX_PROPOSALS`` proposals against ``resource`` (the top hypothesis's component), strongest
    evidence first. Proposal ids are stable for the same incident, action and parameters, so a later revision of
    the incident re-proposes nothing already proposed."""
    target = next((r for r in incident.resources if r.key == resource), incident.resource)
    findings = sorted({s.name for s in signals if s.kind == SignalKind.FINDING and s.name not in SYMPTOMS})
    proposals = []
    for action, params, why, origin in _supported(signals, offered, target)[:MAX_PROPOSALS]:
        watched = [origin.name] if origin.kind == SignalKind.FINDING else findings
        digest = hashlib.sha256(f"{incident.incident_id}|{action.id}|{sorted(params.items())}".encode()).hexdigest()
        proposals.append(RemediationProposal(
            source=source, resource=target, tenant=incident.tenant, ts=now, proposal_id=f"prop-{digest[:20]}",
            incident_id=incident.incident_id, action=action.id, params=params, risk=action.risk,
            preconditions=list(action.preconditions), expected_effect=why, rollback=action.rollback,
            dry_run=f"{action.id} {' '.join(f'{k}={v}' for k, v in params.items())}".strip(), verify_rules=watched))
    return proposals


def _supported(signals: list[IncidentSignal], offered: tuple[ActionSpec, ...],
               target: ResourceRef | None = None) -> list[Candidate]:
    by_id = {a.id: a for a in offered if a.risk != Risk.FORBIDDEN}
    out: list[Candidate] = []
    seen: set[tuple] = set()
    for signal in sorted(signals, key=lambda s: -weight(s)):
        for action_id, params, why in _evidence_actions(signal, target):
            action = by_id.get(action_id)
            key = (action_id, tuple(sorted(params.items())))
            if action is not None and _required(action) <= set(params) and key not in seen:
                seen.add(key)
                out.append((action, params, why, signal))
    return out


def _required(action: ActionSpec) -> set[str]:
    return {name for name, meaning in action.params.items() if "optional" not in meaning.lower()}


def _evidence_actions(signal: IncidentSignal, target: ResourceRef | None = None) -> list[tuple[str, dict, str]]:
    cause = cause_of(signal)
    evidence = signal.details.get("evidence") or {}
    return [*_undo_actions(signal), *_limit_actions(cause, evidence), *_holder_actions(cause, evidence),
            *_offender_actions(signal, cause, evidence), *_kubernetes_actions(cause, evidence, target)]


def _undo_actions(signal: IncidentSignal) -> Iterable[tuple[str, dict, str]]:
    if not signal.name.startswith(f"{CONFIG_RISK}:"):
        return
    plugin = cause_of(signal).split(".", 1)[0]
    for change in signal.details.get("changes", []):
        key, old = change.get("key"), change.get("old")
        if old is None:
            continue
        why = f"restore {key} to {old} (it was changed to {change.get('new')})"
        if plugin == "redis" and key == "maxmemory":
            yield "redis.set_maxmemory", {"bytes": old}, why
        elif plugin == "redis" and key == "maxmemory-policy":
            yield "redis.set_maxmemory_policy", {"policy": old}, why
        elif plugin == "mysql" and key == "max_connections":
            yield "mysql.set_max_connections", {"value": old}, why
        elif plugin == "postgresql":
            yield "postgresql.alter_system_set", {"name": key, "value": old}, why


def _limit_actions(cause: str, evidence: dict) -> Iterable[tuple[str, dict, str]]:
    """A limit that is being reached: room to breathe (raise it a quarter or a half, within what the
    preconditions say), or free what is held for nothing."""
    if cause in ("redis.memory_near_limit", "redis.noeviction_memory_high") and evidence.get("maxmemory"):
        current = int(evidence["maxmemory"])
        raised = int(current * 1.25)
        yield ("redis.set_maxmemory", {"bytes": str(raised)},
               f"raise maxmemory by a quarter, from {current} to {raised} bytes, if the host has the memory")
        if evidence.get("maxmemory_policy") == "noeviction":
            yield ("redis.set_maxmemory_policy", {"policy": "allkeys-lru"},
                   "let Redis evict the least recently used keys instead of refusing writes (a cache only)")
    if cause == "mysql.connections_near_max" and evidence.get("max_connections"):
        current = int(evidence["max_connections"])
        yield ("mysql.set_max_connections", {"value": str(int(current * 1.5))},
               f"raise max_connections by half, from {current}, while the clients are fixed")
    if cause == "postgresql.connections_near_max":
        states = evidence.get("by_state", {})
        if states.get("idle in transaction"):
            yield ("postgresql.terminate_idle_in_transaction", {"min_idle_s": "60"},
                   f"free the slots of {states['idle in transaction']} session(s) idle in a transaction for over "
                   "a minute")
        if states.get("idle"):
            yield ("postgresql.terminate_idle_sessions", {"min_idle_s": str(IDLE_SESSION_S)},
                   f"free the slots of sessions idle for over {IDLE_SESSION_S // 60} minutes ({states['idle']} "
                   "idle now); connection pools reopen them on demand")


def _holder_actions(cause: str, evidence: dict) -> Iterable[tuple[str, dict, str]]:
    if cause == "mysql.row_lock_waits":
        for blocker in sorted({w.get("blocking_id") for w in evidence.get("waits", []) if w.get("blocking_id")}):
            yield "mysql.kill_connection", {"id": blocker}, f"end connection {blocker}, which holds the lock"
    if cause == "postgresql.lock_wait" and evidence.get("blocking_pid"):
        pid = evidence["blocking_pid"]
        yield "postgresql.terminate_backend", {"pid": pid}, f"end backend {pid}, which holds the lock"


def _offender_actions(signal: IncidentSignal, cause: str, evidence: dict) -> Iterable[tuple[str, dict, str]]:
    if cause == "redis.slow_commands":
        entries = [e for e in evidence.get("entries", []) if e.get("client")]
        if entries:
            worst = max(entries, key=lambda e: e.get("duration_us", 0))
            yield ("redis.client_kill", {"addr": worst["client"]},
                   f"disconnect {worst['client']}, which ran `{worst.get('command', '?')[:60]}` for "
                   f"{worst.get('duration_us', 0) / 1e6:.1f}s and stalled every other client, if it is still "
                   "connected")
    line = str(signal.details.get("line", ""))
    if cause.startswith("log/") and (match := _FAILED_LOGIN.search(line)):
        role = match.group(1)
        yield ("postgresql.lock_role", {"name": role},
               f"stop password guessing against role {role} (ALTER ROLE NOLOGIN); an application that still logs "
               "in as it is locked out too, so first check where the attempts come from")


def _kubernetes_actions(cause: str, evidence: dict, target: ResourceRef | None) -> Iterable[tuple[str, dict, str]]:
    """A pod finding names the pod as ``namespace/name``; its workload is the resource's ``owner`` label
    (``deployment/x``, a ReplicaSet read as its Deployment); a node finding names the node."""
    if cause == KUBE_CRASHLOOP and "/" in str(evidence.get("pod", "")):
        namespace, name = str(evidence["pod"]).split("/", 1)
        last = (f"last exit {evidence['last_reason']}, code {evidence.get('last_exit_code')}; "
                if evidence.get("last_reason") else "")
        yield ("kubernetes.delete_pod", {"namespace": namespace, "name": name},
               f"replace pod {name} with a fresh one from its controller (a clean start, maybe on another node) if "
               f"it still crash-loops ({last}{evidence.get('restarts', '?')} restarts)")
        kind, _, workload = ((target.labels if target else {}).get("owner") or "").partition("/")
        if kind in ("deployment", "statefulset") and workload:
            yield ("kubernetes.rollout_restart", {"kind": kind, "namespace": namespace, "name": workload},
                   f"restart {kind} {workload} pod by pod, when what its pods crash on is shared (a dependency they "
                   "connect to at start, a cache warmed from elsewhere)")
    if cause in KUBE_NODE_TROUBLE and evidence.get("node"):
        node = evidence["node"]
        yield ("kubernetes.cordon_node", {"name": node},
               f"keep new pods off node {node} while it {KUBE_NODE_TROUBLE[cause]} (its pods stay; uncordon it once "
               "fixed)")
