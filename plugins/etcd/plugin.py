"""The etcd plugin: one member's status, alarms, members and Prometheus metrics through its client URL (the v3
JSON gateway), what it sees of the other members, health rules, and the space-reclaiming actions."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from kubestack.contract.base import utcnow
from kubestack.contract.events import Finding, Peer, Sample
from kubestack.errors import CommandFailedError, TargetTimeoutError
from kubestack.plugins.base import (
    ActionOutcome,
    ActionSpec,
    Capacity,
    CommandRunner,
    KubeDiscovery,
    LogSource,
)
from kubestack.plugins.etcd import actions as etcd_actions
from kubestack.plugins.etcd.capacity import CAPACITIES
from kubestack.plugins.etcd.checks import Observation, evaluate
from kubestack.plugins.etcd.client import EtcdClient, member_views
from kubestack.plugins.etcd.config import EtcdConfig
from kubestack.plugins.etcd.declaration import ACTIONS, KEYWORDS, RULES, SYMPTOMS
from kubestack.plugins.etcd.leadership import LeaderHistory
from kubestack.plugins.etcd.metrics import samples
from kubestack.plugins.etcd.parse import Alarm, Metrics, metric, parse_metrics
from kubestack.plugins.etcd.peers import member_peers
from kubestack.plugins.etcd.risks import config_risks


class EtcdPlugin:
    """etcd: leader, quorum, members, alarms, database size against its quota, disk latency."""

    name: ClassVar[str] = "etcd"
    config_model: ClassVar[type[EtcdConfig]] = EtcdConfig
    client_module: ClassVar[str] = "httpx"
    rules: ClassVar[tuple[str, ...]] = RULES
    symptoms: ClassVar[frozenset[str]] = SYMPTOMS
    keywords: ClassVar[tuple[str, ...]] = KEYWORDS
    capacities: ClassVar[tuple[Capacity, ...]] = CAPACITIES
    config_risks = staticmethod(config_risks)
    default_port: ClassVar[int] = 2379
    discovery: ClassVar[KubeDiscovery] = KubeDiscovery(port=2379, apps=("etcd",), images=("etcd", "etcd-amd64"))

    def __init__(self, config: EtcdConfig, client: EtcdClient) -> None:
        self.config = config
        self.client = client
        self._leaders = LeaderHistory(config.leader_change_window_s)
        self._previous: dict[str, Metrics] = {}
        """The metrics of the round before, per use (collect, health): latency quantiles span what lies between."""

    @classmethod
    def create(cls, config: EtcdConfig, runner: CommandRunner | None = None) -> EtcdPlugin:
        """The gateway is HTTP: the same client serves with or without a runner."""
        return cls(config, EtcdClient(config))

    @classmethod
    def example_config(cls) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": cls.default_port}

    async def _alarms(self) -> list[Alarm] | None:
        try:
            return await self.client.alarms()
        except (TargetTimeoutError, CommandFailedError):
            return None  # the alarm list goes through raft: without a leader it cannot be read

    async def observe(self, use: str = "health") -> Observation:
        """Everything the rules and the metrics look at, read in one round."""
        status = await self.client.status()
        metrics = parse_metrics(await self.client.metrics())
        members = await self.client.members()
        views = await member_views(self.client, members, own=status)
        alarms = await self._alarms() if status.has_leader else None
        changes = self._leaders.update(status, metric(metrics, "etcd_server_leader_changes_seen_total"), time.time())
        obs = Observation(status=status, members=members, views=views, alarms=alarms, metrics=metrics,
                          previous=self._previous.get(use), leader_changes=changes)
        self._previous[use] = metrics
        return obs

    async def collect(self) -> list[Sample]:
        return samples(await self.observe("collect"), utcnow())

    async def snapshot_config(self) -> dict[str, str]:
        status = await self.client.status()
        metrics = parse_metrics(await self.client.metrics())
        members = await self.client.members()
        snapshot = {"version": status.version, "members": str(len(members)),
                    "quota_backend_bytes": str(int(metric(metrics, "etcd_server_quota_backend_bytes") or 0)),
                    "learners": str(sum(m.is_learner for m in members))}
        for m in members:
            snapshot[f"member.{m.name or m.id}.peer_urls"] = ",".join(sorted(m.peer_urls))
            snapshot[f"member.{m.name or m.id}.client_urls"] = ",".join(sorted(m.client_urls))
        return snapshot

    def log_sources(self) -> list[LogSource]:
        if self.config.log_path:
            return [LogSource(path=self.config.log_path)]
        return [LogSource(journald_unit="etcd")]

    async def check_health(self) -> list[Finding]:
        return evaluate(await self.observe("health"), self.config)

    async def peers(self) -> list[Peer]:
        """The other members, by client URL: the leader as primary, the others as replicas."""
        return member_peers(await self.client.status(), await self.client.members())

    def actions(self) -> list[ActionSpec]:
        return list(ACTIONS)

    async def execute(self, action_id: str, params: dict[str, Any], *, dry_run: bool = False) -> ActionOutcome:
        return await etcd_actions.execute(self.client, self.config, ACTIONS, action_id, params, dry_run=dry_run)

    async def close(self) -> None:
        await self.client.close()
