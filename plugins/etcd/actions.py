"""Carrying out the etcd plugin's actions (declared in ``declaration.py``) through the members' client URLs:
preconditions read live (leader, members that answer, defragments in flight), the state before, the change, and
the state after. Needs a user allowed maintenance calls when etcd auth is on (root, in practice)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from kubestack.errors import ActionError, CommandFailedError, PreconditionFailedError, TargetError
from kubestack.plugins.base import ActionOutcome, ActionSpec, declared
from kubestack.plugins.etcd.checks import quorum
from kubestack.plugins.etcd.client import EtcdClient, member_views
from kubestack.plugins.etcd.config import EtcdConfig
from kubestack.plugins.etcd.parse import Status, metric, parse_metrics

log = logging.getLogger(__name__)


async def execute(client: EtcdClient, config: EtcdConfig, specs: Sequence[ActionSpec], action_id: str,
                  params: dict[str, Any], *, dry_run: bool = False) -> ActionOutcome:
    checked = declared(specs, action_id, "etcd").check(params)
    step = {"etcd.defragment": _defragment, "etcd.reclaim_space": _reclaim}[action_id]
    outcome = await step(client, config, checked, dry_run)
    log.info("%s %s: %s", action_id, "dry run" if dry_run else "done", outcome.output)
    return outcome


async def _call(action: str, what: str, call: Any) -> Any:
    try:
        return await call
    except (TargetError, CommandFailedError) as exc:
        raise ActionError(f"{action}: {what} failed: {exc}") from exc


async def _defragment(client: EtcdClient, config: EtcdConfig, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action, name = "etcd.defragment", params["member"]
    members = await client.members()
    member = next((m for m in members if m.name == name), None)
    if member is None or not member.client_urls:
        known = ", ".join(m.name for m in members)
        raise PreconditionFailedError(action, [f"no started member named {name!r} (members: {known})"])
    views = await member_views(client, members)
    target = views[member.id]
    if not isinstance(target, Status):
        raise PreconditionFailedError(action, [f"{name} does not answer: {target}"])
    problems = []
    if not target.has_leader:
        problems.append(f"{name} has no leader: defragmenting cannot help and the quorum must come back first")
    voters = [m for m in members if not m.is_learner]
    others = [m for m in voters if m.id != member.id and isinstance(views.get(m.id), Status)]
    if len(voters) > 1 and len(others) < quorum(len(voters)):
        problems.append(f"only {len(others)} other member(s) answer: the cluster loses its quorum while {name} pauses")
    member_client = client.at(member.client_urls[0])
    try:
        if metric(parse_metrics(await member_client.metrics()), "etcd_disk_defrag_inflight"):
            problems.append(f"a defragment is already running on {name}")
        if problems:
            raise PreconditionFailedError(action, problems)
        before = {"member": name, "db_size": target.db_size, "db_size_in_use": target.db_in_use,
                  "is_leader": target.leader == target.member_id}
        what = (f"defragment {name} at {member.client_urls[0]} (db {target.db_size} bytes, {target.db_in_use} in "
                "use)")
        if dry_run:
            return ActionOutcome(action=action, params=params, dry_run=True, before=before, output=what)
        await _call(action, f"defragment of {name}", member_client.defragment())
        after = await _call(action, f"status of {name}", member_client.status())
    finally:
        await member_client.close()
    return ActionOutcome(action=action, params=params, dry_run=False, before=before,
                         output=f"done: {what}; now {after.db_size} bytes ({target.db_size - after.db_size} freed)")


async def _reclaim(client: EtcdClient, config: EtcdConfig, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    action, retain = "etcd.reclaim_space", params["retain_revisions"]
    members = await client.members()
    views = await member_views(client, members)
    own = await client.status()
    metrics = parse_metrics(await client.metrics())
    quota = int(metric(metrics, "etcd_server_quota_backend_bytes") or 0)
    compacted = int(metric(metrics, "etcd_debugging_mvcc_compact_revision") or 0)
    problems = []
    if not own.has_leader:
        problems.append("the cluster has no leader: nothing can be compacted until the quorum is back")
    down = [m.name for m in members if not isinstance(views.get(m.id), Status)]
    if down:
        problems.append(f"member(s) {', '.join(down)} do not answer: each must be defragmented")
    if problems:
        raise PreconditionFailedError(action, problems)
    alarms = await client.alarms()
    target = own.revision - retain
    before = {"revision": own.revision, "compact_revision": compacted, "quota_backend_bytes": quota,
              "alarms": [{"member": a.member_id, "alarm": a.alarm} for a in alarms],
              "db_size": {m.name: views[m.id].db_size for m in members if isinstance(views[m.id], Status)}}
    steps = [f"compact to revision {target} (now {own.revision}, compacted at {compacted})" if target > compacted
             else f"no compaction (revision {target} is compacted already)",
             "defragment " + ", ".join(m.name for m in members) + " one at a time",
             f"disarm {len(alarms)} alarm(s) ({', '.join(sorted({a.alarm for a in alarms})) or 'none raised'}) "
             f"if every database ends below {config.quota_high_ratio:.0%} of the {quota}-byte quota"]
    if dry_run:
        return ActionOutcome(action=action, params=params, dry_run=True, before=before, output="; ".join(steps))
    if target > compacted:
        await _call(action, f"compaction to {target}", client.compact(target))
    sizes = {}
    for member in members:
        member_client = client.at(member.client_urls[0])
        try:
            await _call(action, f"defragment of {member.name}", member_client.defragment())
            sizes[member.name] = (await _call(action, f"status of {member.name}", member_client.status())).db_size
        finally:
            await member_client.close()
    full = {n: s for n, s in sizes.items() if quota and s >= config.quota_high_ratio * quota}
    if full:
        raise ActionError(f"{action}: compacted and defragmented, but {full} are still at or above "
                          f"{config.quota_high_ratio:.0%} of the quota {quota}: the alarm stays raised (delete keys "
                          "or raise --quota-backend-bytes)")
    for alarm in (a for a in alarms if a.alarm == "NOSPACE"):
        await _call(action, f"disarming NOSPACE of {alarm.member_id}", client.disarm(alarm.member_id, "NOSPACE"))
    return ActionOutcome(action=action, params=params, dry_run=False, before=before,
                         output="done: " + "; ".join(steps) + f"; database sizes now {sizes}")
