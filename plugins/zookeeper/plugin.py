"""The ZooKeeper plugin: four-letter words (``ruok mntr isro conf srvr cons dump``) to one server and ``srvr``/``cons``
to the other members of its ensemble, health rules over what they say, peers, and the purge of old snapshots."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from kubestack.contract.base import utcnow
from kubestack.contract.events import Finding, Peer, Sample
from kubestack.errors import CommandFailedError, TargetError, TargetUnreachableError
from kubestack.plugins.base import (
    ActionOutcome,
    ActionSpec,
    Capacity,
    CommandRunner,
    KubeDiscovery,
    LocalRunner,
    LogSource,
)
from kubestack.plugins.zookeeper import actions as zk_actions
from kubestack.plugins.zookeeper.capacity import CAPACITIES
from kubestack.plugins.zookeeper.checks import MemberView, Observation, evaluate
from kubestack.plugins.zookeeper.client import FourLetterClient
from kubestack.plugins.zookeeper.config import ZooKeeperConfig
from kubestack.plugins.zookeeper.declaration import ACTIONS, KEYWORDS, RULES, SYMPTOMS
from kubestack.plugins.zookeeper.metrics import samples
from kubestack.plugins.zookeeper.parse import (
    EnsembleMember,
    parse_conf,
    parse_cons,
    parse_dump,
    parse_mntr,
    parse_srvr,
    serving,
)
from kubestack.plugins.zookeeper.peers import zookeeper_peers
from kubestack.plugins.zookeeper.risks import config_risks
from kubestack.plugins.zookeeper.sessions import SessionWatch

DEFAULT_LOG = "/var/log/zookeeper/zookeeper*.log"
LOG_FORMAT = "<Date> <Time> - <Level> <Content>"
VOLATILE = frozenset({"dataDirSize", "dataLogSize"})
"""conf keys that change with every write: metrics, not configuration."""


class ZooKeeperPlugin:
    """ZooKeeper: quorum, ensemble members, outstanding requests, latency, connections, session expiries, fsync."""

    name: ClassVar[str] = "zookeeper"
    config_model: ClassVar[type[ZooKeeperConfig]] = ZooKeeperConfig
    client_module: ClassVar[str] = "asyncio"
    rules: ClassVar[tuple[str, ...]] = RULES
    symptoms: ClassVar[frozenset[str]] = SYMPTOMS
    keywords: ClassVar[tuple[str, ...]] = KEYWORDS
    capacities: ClassVar[tuple[Capacity, ...]] = CAPACITIES
    config_risks = staticmethod(config_risks)
    default_port: ClassVar[int] = 2181
    discovery: ClassVar[KubeDiscovery] = KubeDiscovery(port=2181, apps=("zookeeper", "zk"),
                                                       images=("zookeeper", "cp-zookeeper"))

    def __init__(self, config: ZooKeeperConfig, client: FourLetterClient, runner: CommandRunner) -> None:
        self.config = config
        self.client = client
        self.runner = runner
        self._settings: dict[str, str] = {}
        self._ensemble: list[EnsembleMember] = []
        """What ``conf`` said the last time the server served (a server without quorum does not say)."""
        self._previous: dict[str, dict[str, str]] = {}
        self._sessions = SessionWatch(config.expiry_window_s)

    @classmethod
    def create(cls, config: ZooKeeperConfig, runner: CommandRunner | None = None) -> ZooKeeperPlugin:
        """The four-letter words go over TCP either way; the runner (this host without one) runs the purge."""
        return cls(config, FourLetterClient(config.host, config.port, config.timeout_s), runner or LocalRunner())

    @classmethod
    def example_config(cls) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": cls.default_port}

    def _addresses(self) -> list[str]:
        """Every member's client address: the configured ones, else from the ensemble in ``conf``."""
        own = self.client.address
        if self.config.members:
            return sorted(set(self.config.members) | {own})
        found = {m.client or f"{m.host}:{self.config.port}" for m in self._ensemble if m.role == "participant"}
        return sorted(found | {own}) if found else [own]

    async def _view(self, address: str) -> tuple[MemberView, set[str] | None]:
        """A member's view and the sessions connected to it (None when it cannot say)."""
        host, _, port = address.rpartition(":")
        other = FourLetterClient(host.strip("[]"), int(port), self.config.timeout_s)
        try:
            text = await other.word("srvr")
            if not serving(text):
                return MemberView(address=address, serving=False, error="not serving requests"), None
            mode = parse_srvr(text).get("Mode")
            sessions = {c.session for c in parse_cons(await other.word("cons")) if c.session}
            return MemberView(address=address, serving=mode != "read-only", mode=mode), sessions
        except (TargetError, CommandFailedError) as exc:
            return MemberView(address=address, serving=False, error=str(exc)[:300]), None

    async def observe(self, use: str = "health") -> Observation:
        """Everything the rules and the metrics look at, read in one round."""
        ruok = await self.client.word("ruok")
        mntr_text = await self.client.word("mntr")
        now_serving = serving(mntr_text)
        mntr = parse_mntr(mntr_text) if now_serving else {}
        isro = await self.client.word("isro")
        connections, owners = [], {}
        if now_serving:
            self._settings, self._ensemble = parse_conf(await self.client.word("conf"))
            connections = parse_cons(await self.client.word("cons"))
            owners = parse_dump(await self.client.word("dump"))
        own = self.client.address
        views: dict[str, MemberView] = {}
        connected: set[str] | None = {c.session for c in connections if c.session}
        for address in self._addresses():
            if address == own:
                views[own] = MemberView(address=own, serving=now_serving and isro.strip() != "ro",
                                        mode=mntr.get("zk_server_state"))
                continue
            views[address], sessions = await self._view(address)
            connected = None if sessions is None or connected is None else connected | sessions
        now = time.time()
        expiries = self._sessions.update(owners, connected, now) if now_serving else self._sessions.recent(now)
        obs = Observation(address=own, serving=now_serving, mntr=mntr, ruok=ruok, isro=isro,
                          settings=self._settings, views=views, connections=connections,
                          previous=self._previous.get(use), expiries=expiries, orphans=self._sessions.orphans)
        if now_serving:
            self._previous[use] = mntr
        return obs

    async def collect(self) -> list[Sample]:
        return samples(await self.observe("collect"), utcnow())

    async def snapshot_config(self) -> dict[str, str]:
        text = await self.client.word("conf")
        if not serving(text):
            if not self._settings:
                raise TargetUnreachableError(f"ZooKeeper at {self.client.address} does not serve requests: its "
                                             "configuration cannot be read")
            settings, ensemble = self._settings, self._ensemble
        else:
            settings, ensemble = parse_conf(text)
        snapshot = {k: v for k, v in settings.items() if k not in VOLATILE}
        snapshot["txnlog_dedicated"] = "yes" if settings.get("dataLogDir") != settings.get("dataDir") else "no"
        for member in ensemble:
            snapshot[f"server.{member.sid}"] = (f"{member.host}:{member.quorum_port}:{member.election_port}:"
                                                f"{member.role}" + (f";{member.client}" if member.client else ""))
        version = parse_srvr(await self.client.word("srvr")).get("Zookeeper version")
        if version:
            snapshot["version"] = version.split("-", 1)[0].split(",", 1)[0]
        return snapshot

    def log_sources(self) -> list[LogSource]:
        return [LogSource(path=self.config.log_path or DEFAULT_LOG, format=LOG_FORMAT)]

    async def check_health(self) -> list[Finding]:
        return evaluate(await self.observe("health"), self.config)

    async def peers(self) -> list[Peer]:
        """The other ensemble members (the leader as primary) and the clients by IP."""
        obs = await self.observe("peers")
        return zookeeper_peers(obs.address, obs.views, obs.connections)

    def actions(self) -> list[ActionSpec]:
        return list(ACTIONS)

    async def execute(self, action_id: str, params: dict[str, Any], *, dry_run: bool = False) -> ActionOutcome:
        return await zk_actions.execute(self.client, self.runner, ACTIONS, action_id, params, dry_run=dry_run,
                                        timeout=max(self.config.timeout_s, 30.0))

    async def close(self) -> None:
        await self.runner.close()
