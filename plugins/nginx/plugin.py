"""The Nginx plugin: stub_status and the access log as metrics, ``nginx -T`` as the configuration snapshot, health
rules over responses, upstream servers and connections, peers (upstream servers, clients), and the actions the
remediation stage may take."""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any, ClassVar

from kubestack.contract.base import utcnow
from kubestack.contract.events import Finding, Peer, Sample
from kubestack.errors import CommandFailedError, TargetError, TargetUnreachableError
from kubestack.plugins.base import ActionOutcome, ActionSpec, Capacity, CommandRunner, KubeDiscovery, LogSource
from kubestack.plugins.nginx import actions as nginx_actions
from kubestack.plugins.nginx.capacity import CAPACITIES
from kubestack.plugins.nginx.checks import Observation, evaluate
from kubestack.plugins.nginx.client import NginxClient
from kubestack.plugins.nginx.config import NginxConfig
from kubestack.plugins.nginx.declaration import ACTIONS, KEYWORDS, RULES, SYMPTOMS
from kubestack.plugins.nginx.logs import LogCursor
from kubestack.plugins.nginx.metrics import TrafficTotals, stub_samples
from kubestack.plugins.nginx.parse import (
    Access,
    Directive,
    ErrorLine,
    flatten,
    parse_access_line,
    parse_dump,
    parse_error_line,
    parse_stub_status,
    upstream_servers,
    worker_capacity,
)
from kubestack.plugins.nginx.peers import nginx_peers
from kubestack.plugins.nginx.risks import config_risks
from kubestack.plugins.nginx.traffic import responses, server_traffic

log = logging.getLogger(__name__)

ACCESS_FORMAT = "<Date> <Client> <Content>"
ERROR_FORMAT = "<Date> <Time> [<Level>] <Pid>: <Content>"
CONFIG_TTL_S = 60.0
"""How long a parsed ``nginx -T`` serves the metrics and peers before it is read again."""


class NginxPlugin:
    """Nginx: stub_status connections, responses and upstream servers from its logs, the configuration (nginx -T)."""

    name: ClassVar[str] = "nginx"
    config_model: ClassVar[type[NginxConfig]] = NginxConfig
    client_module: ClassVar[str] = "urllib"
    rules: ClassVar[tuple[str, ...]] = RULES
    symptoms: ClassVar[frozenset[str]] = SYMPTOMS
    keywords: ClassVar[tuple[str, ...]] = KEYWORDS
    capacities: ClassVar[tuple[Capacity, ...]] = CAPACITIES
    config_risks = staticmethod(config_risks)
    default_port: ClassVar[int] = 80
    discovery: ClassVar[KubeDiscovery] = KubeDiscovery(port=80, apps=("nginx",),
                                                       images=("nginx", "nginx-unprivileged", "openresty"))

    def __init__(self, config: NginxConfig, client: NginxClient) -> None:
        self.config = config
        self.client = client
        limit = config.log_max_bytes
        self._metric_log = LogCursor(client, config.access_log, limit)
        self._health_log = LogCursor(client, config.access_log, limit)
        self._health_errors = LogCursor(client, config.error_log, limit)
        self._totals = TrafficTotals()
        self._clients: Counter[str] = Counter()
        self._tree: list[Directive] | None = None
        self._tree_at = 0.0
        self._cpus: int | None = None
        self._unreadable: str | None = None

    @classmethod
    def create(cls, config: NginxConfig, runner: CommandRunner | None = None) -> NginxPlugin:
        return cls(config, NginxClient(config, runner))

    @classmethod
    def example_config(cls) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": 80, "status_path": "/nginx_status"}

    async def _stub(self) -> dict[str, int]:
        text = await self.client.status()
        try:
            return parse_stub_status(text)
        except ValueError as exc:
            raise TargetUnreachableError(f"{self.config.status_url} is not nginx's stub_status: {exc}") from exc

    async def _dump(self) -> str | None:
        """``nginx -T``, or None where it cannot run (a target reached only through stub_status, as a pod found
        in Kubernetes from the agent's host): the rules that need the configuration are then skipped."""
        try:
            return await self.client.dump()
        except (CommandFailedError, TargetError) as exc:
            if self._unreadable is None:
                log.warning("%s: nginx -T cannot run (%s): upstream names, worker capacity and the configuration "
                            "snapshot are unavailable", self.config.status_url, exc)
            self._unreadable = str(exc)
            return None

    async def _config(self, fresh: bool = False) -> list[Directive]:
        if fresh or self._tree is None or time.monotonic() - self._tree_at > CONFIG_TTL_S:
            dump = await self._dump()
            self._tree, self._tree_at = (parse_dump(dump) if dump else []), time.monotonic()
            if dump:
                self._unreadable = None
        return self._tree

    async def _capacity(self, tree: list[Directive]) -> tuple[int, int]:
        if self._cpus is None:
            self._cpus = await self.client.cpus()
        return worker_capacity(tree, self._cpus)

    async def collect(self) -> list[Sample]:
        stub, tree = await self._stub(), await self._config()
        workers, per_worker = await self._capacity(tree) if tree else (0, 0)
        accesses = [a for a in map(parse_access_line, await self._metric_log.new_lines()) if a is not None]
        traffic = server_traffic(accesses, upstream_servers(tree))
        self._totals.add(responses(accesses), traffic)
        ts = utcnow()
        return stub_samples(stub, workers * per_worker, ts) + self._totals.samples(traffic, ts)

    async def snapshot_config(self) -> dict[str, str]:
        tree = await self._config(fresh=True)
        if not tree:
            return {"status_url": self.config.status_url, "nginx -T": f"unavailable: {self._unreadable or 'empty'}"}
        return flatten(tree)

    def log_sources(self) -> list[LogSource]:
        return [LogSource(path=self.config.access_log, format=ACCESS_FORMAT),
                LogSource(path=self.config.error_log, format=ERROR_FORMAT)]

    async def observe(self) -> Observation:
        """Everything the health rules look at; the log window runs from the previous observation to this one."""
        stub, tree = await self._stub(), await self._config(fresh=True)
        workers, per_worker = await self._capacity(tree) if tree else (0, 0)
        accesses: list[Access] = [a for a in map(parse_access_line, await self._health_log.new_lines()) if a]
        errors: list[ErrorLine] = [e for e in map(parse_error_line, await self._health_errors.new_lines()) if e]
        self._clients = Counter(a.client for a in accesses)
        return Observation(stub=stub, workers=workers, worker_connections=per_worker, servers=upstream_servers(tree),
                           accesses=accesses, errors=errors)

    async def check_health(self) -> list[Finding]:
        return evaluate(await self.observe(), self.config)

    async def peers(self) -> list[Peer]:
        tree = await self._config()
        return nginx_peers(tree, upstream_servers(tree), self._clients)

    def actions(self) -> list[ActionSpec]:
        return list(ACTIONS)

    async def execute(self, action_id: str, params: dict[str, Any], *, dry_run: bool = False) -> ActionOutcome:
        outcome = await nginx_actions.execute(self.client, ACTIONS, action_id, params, dry_run=dry_run)
        self._tree = None  # the configuration may have changed
        return outcome

    async def close(self) -> None:
        await self.client.close()
