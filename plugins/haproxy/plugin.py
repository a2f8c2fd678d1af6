"""The HAProxy plugin: metrics from the runtime API's ``show info`` and ``show stat``, a configuration snapshot of
the running process (and its file), health rules over frontends, backends and servers, peers (servers and
clients), and the actions the remediation stage may take."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from kubestack.contract.base import utcnow
from kubestack.contract.events import Finding, Peer, Sample
from kubestack.errors import CommandFailedError, TargetUnreachableError
from kubestack.plugins.base import ActionOutcome, ActionSpec, Capacity, CommandRunner, KubeDiscovery, LogSource
from kubestack.plugins.haproxy import actions as haproxy_actions
from kubestack.plugins.haproxy.capacity import CAPACITIES
from kubestack.plugins.haproxy.checks import Observation, evaluate
from kubestack.plugins.haproxy.client import RuntimeClient, SocatRuntimeClient, SocketRuntimeClient
from kubestack.plugins.haproxy.config import DEFAULT_PORT, HAProxyConfig
from kubestack.plugins.haproxy.declaration import ACTIONS, KEYWORDS, RULES, SYMPTOMS
from kubestack.plugins.haproxy.metrics import info_samples, stat_samples
from kubestack.plugins.haproxy.parse import StatRow, parse_info, parse_servers_state, parse_sessions, parse_stat
from kubestack.plugins.haproxy.peers import haproxy_peers
from kubestack.plugins.haproxy.risks import config_risks
from kubestack.plugins.haproxy.snapshot import file_snapshot, runtime_snapshot

DEFAULT_LOG = "/var/log/haproxy.log"
LOG_FORMAT = "<Month> <Day> <Time> <Host> <Process>: <Content>"
"""Debian's rsyslog file: ``Dec  7 04:50:01 lb1 haproxy[587]: 10.0.0.5:51234 [07/Dec/2026:04:50:01.123] ...``."""


class HAProxyPlugin:
    """HAProxy: frontends, backends and servers from the runtime API, health checks, queues, 5xx, session limits."""

    name: ClassVar[str] = "haproxy"
    config_model: ClassVar[type[HAProxyConfig]] = HAProxyConfig
    client_module: ClassVar[str] = "asyncio"
    rules: ClassVar[tuple[str, ...]] = RULES
    symptoms: ClassVar[frozenset[str]] = SYMPTOMS
    keywords: ClassVar[tuple[str, ...]] = KEYWORDS
    capacities: ClassVar[tuple[Capacity, ...]] = CAPACITIES
    config_risks = staticmethod(config_risks)
    default_port: ClassVar[int] = DEFAULT_PORT
    discovery: ClassVar[KubeDiscovery] = KubeDiscovery(port=DEFAULT_PORT, apps=("haproxy",),
                                                       images=("haproxy", "haproxy-alpine", "haproxy-ubuntu"))
    """In a pod the runtime API is reached over TCP (``stats socket ipv4@:9999 level admin`` in haproxy.cfg, the
    container port declared)."""

    def __init__(self, config: HAProxyConfig, client: RuntimeClient, runner: CommandRunner | None = None) -> None:
        self.config = config
        self.client = client
        self._runner = runner
        self._previous: dict[tuple[str, str], dict[str, str]] | None = None

    @classmethod
    def create(cls, config: HAProxyConfig, runner: CommandRunner | None = None) -> HAProxyPlugin:
        client = SocketRuntimeClient(config) if runner is None else SocatRuntimeClient(config, runner)
        return cls(config, client, runner)

    @classmethod
    def example_config(cls) -> dict[str, Any]:
        return {"socket": "/run/haproxy/admin.sock", "config_path": "/etc/haproxy/haproxy.cfg"}

    async def _stat(self) -> list[StatRow]:
        text = await self.client.command("show stat")
        try:
            return parse_stat(text)
        except ValueError as exc:
            raise TargetUnreachableError(f"{self.config.address} does not answer as HAProxy's runtime API: "
                                         f"{exc}") from exc

    async def collect(self) -> list[Sample]:
        info, rows = parse_info(await self.client.command("show info")), await self._stat()
        ts = utcnow()
        return info_samples(info, ts) + stat_samples(rows, ts)

    async def _config_file(self) -> str | None:
        path = self.config.config_path
        if path is None:
            return None
        if self._runner is not None:
            try:
                return await self._runner.run(["cat", path], timeout=self.config.timeout_s)
            except CommandFailedError:
                return None
        try:
            return Path(path).read_text(errors="replace")
        except OSError:
            return None

    async def snapshot_config(self) -> dict[str, str]:
        info, rows = parse_info(await self.client.command("show info")), await self._stat()
        states = parse_servers_state(await self.client.command("show servers state"))
        snapshot = runtime_snapshot(info, rows, states)
        text = await self._config_file()
        return snapshot | (file_snapshot(text) if text else {})

    def log_sources(self) -> list[LogSource]:
        return [LogSource(path=self.config.log_path or DEFAULT_LOG, format=LOG_FORMAT)]

    async def observe(self) -> Observation:
        """Everything the health rules look at; the 5xx window runs from the previous observation to this one."""
        info, rows = parse_info(await self.client.command("show info")), await self._stat()
        observation = Observation(info=info, rows=rows, previous=self._previous)
        self._previous = {(r.proxy, r.name): r.fields for r in rows}
        return observation

    async def check_health(self) -> list[Finding]:
        return evaluate(await self.observe(), self.config)

    async def peers(self) -> list[Peer]:
        rows = await self._stat()
        return haproxy_peers(rows, parse_sessions(await self.client.command("show sess")))

    def actions(self) -> list[ActionSpec]:
        return list(ACTIONS)

    async def execute(self, action_id: str, params: dict[str, Any], *, dry_run: bool = False) -> ActionOutcome:
        return await haproxy_actions.execute(self.client, ACTIONS, action_id, params, dry_run=dry_run)

    async def close(self) -> None:
        await self.client.close()
