"""A target, opened: its config validated against its plugin's model, the command runner it needs (none for a
direct connection, SSH for an agentless one), the plugin built on them, and the resource it is reported as. The one
place that does this for every user of targets: the agent's collectors, the remediation stage (``TargetSet``: the
targets it may act on), ``kubestack ask`` and ``kubestack diagnose`` and the API (``check_target``: a target's
health findings now; ``resource_of``)."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from kubestack.agents.config import AgentIdentity, TargetConfig, load_agent_config
from kubestack.contract.base import ResourceRef
from kubestack.contract.events import Finding
from kubestack.errors import ActionError, ConfigError, PluginError, validation_problems
from kubestack.plugins.base import CommandRunner, Plugin, PluginConfig, ResourceChecks
from kubestack.plugins.registry import get_plugin, plugin_for_kind


def runner_for(target: TargetConfig) -> CommandRunner | None:
    """None for direct connections; an SSH runner for agentless targets."""
    if target.ssh is None:
        return None
    from kubestack.agents.ssh import SSHRunner, SSHTarget

    try:
        return SSHRunner(SSHTarget.model_validate(target.ssh))
    except ValidationError as exc:
        raise ConfigError(f"target {target.type}/{target.name}: bad ssh settings: {exc}") from exc


def plugin_config(target: TargetConfig) -> PluginConfig:
    """The target's config validated by its plugin's model (``ConfigError`` naming the target and what is wrong)."""
    plugin_cls = get_plugin(target.type)
    try:
        return plugin_cls.config_model.model_validate(target.config)
    except ValidationError as exc:
        raise ConfigError(f"target {target.type}/{target.name}: {validation_problems(exc)}") from exc


ADDRESS_LABEL = "address"


def listen_address(plugin_config: object) -> str | None:
    """``host:port`` where a target listens, from its plugin config (``host`` and ``port``), for the resource's
    ``address`` label: how the worker matches the primary or replica addresses other servers report to this
    resource. A Unix socket directory as ``host`` means this host (``localhost:port``); a target reached through a
    socket file (``unix_socket``) or without host and port has none. A loopback address is read by the worker
    against the resource's host; set the label on the target when peers see it under another address."""
    host, port = getattr(plugin_config, "host", None), getattr(plugin_config, "port", None)
    if not isinstance(host, str) or not host or not isinstance(port, int):
        return None
    if getattr(plugin_config, "unix_socket", None):
        return None
    if host.startswith("/"):
        return f"localhost:{port}"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def resource_of(target: TargetConfig, agent: AgentIdentity, config: PluginConfig | None = None) -> ResourceRef:
    """The resource the agent reports ``target`` as: on its ``host``, its SSH host or this host, or in its namespace
    when it runs in a Kubernetes cluster; in its cluster, else the agent's; its labels, after the ``address`` its plugin
    ``config`` gives (when given)."""
    if target.namespace:
        host = None
    else:
        host = target.host or (target.ssh.get("host") if target.ssh else None) or socket.gethostname()
    address = listen_address(config) if config is not None else None
    labels = ({ADDRESS_LABEL: address} if address else {}) | target.labels
    return ResourceRef(kind=target.type, name=target.name, host=host, namespace=target.namespace,
                       cluster=target.cluster or agent.cluster, labels=labels)


@dataclass
class OpenTarget:
    """A target's plugin and the runner it runs commands through; ``close`` releases both."""

    target: TargetConfig
    config: PluginConfig
    plugin: Plugin
    runner: CommandRunner | None

    async def close(self) -> None:
        try:
            await self.plugin.close()
        finally:
            if self.runner is not None:
                await self.runner.close()


def open_target(target: TargetConfig) -> OpenTarget:
    """Build the target's plugin (connecting lazily, as every plugin does): ``ConfigError`` for a config its plugin
    refuses, ``PluginNotFoundError`` for an unknown plugin."""
    config = plugin_config(target)
    runner = runner_for(target)
    try:
        plugin = get_plugin(target.type).create(config, runner)
    except ValueError as exc:
        raise ConfigError(f"target {target.type}/{target.name}: {exc}") from exc
    return OpenTarget(target, config, plugin, runner)


class TargetSet:
    """The targets of an agent config, found by the tenant and the resource they report (the remediation stage acts
    on them): the agent's tenant, and the whole resource key (kind, name, host or namespace, cluster) that
    ``resource_of`` gives, so a proposal of one tenant never reaches another tenant's target, nor one of another
    host or cluster a target named like it."""

    def __init__(self, targets: list[TargetConfig], agent: AgentIdentity | None = None) -> None:
        self.targets = targets
        self.agent = agent or AgentIdentity()

    @classmethod
    def load(cls, path: Path | None) -> TargetSet:
        if path is None:
            return cls([])
        config = load_agent_config(path)
        return cls(config.targets, config.agent)

    def find(self, resource: ResourceRef, tenant: str) -> TargetConfig | None:
        if tenant != self.agent.tenant:
            return None
        return next((t for t in self.targets if resource_of(t, self.agent).key == resource.key), None)

    async def open_for(self, resource: ResourceRef, tenant: str) -> OpenTarget:
        """The target ``resource`` of ``tenant`` belongs to, opened: its own target, else the target whose plugin
        reports resources of its kind and owns it (a pod through its cluster's ``kubernetes`` target)."""
        target = self.find(resource, tenant)
        if target is not None:
            return open_target(target)
        owner = plugin_for_kind(resource.kind) if tenant == self.agent.tenant else None
        for candidate in (t for t in self.targets if owner is not None and t.type == owner):
            opened = open_target(candidate)
            if isinstance(opened.plugin, ResourceChecks) and opened.plugin.owns(resource):
                return opened
            await opened.close()
        if tenant != self.agent.tenant:
            why = f" (its targets are tenant {self.agent.tenant}'s)"
        else:
            why = f" (nor a {owner} target of cluster {resource.cluster})" if owner else ""
        raise ActionError(f"no target {resource.kind}/{resource.name} of tenant {tenant} at {resource.key} in "
                          f"remediation.targets{why}: nothing to act on")


@dataclass
class TargetCheck:
    target: str
    kind: str
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None


async def check_target(target: TargetConfig, timeout_s: float) -> TargetCheck:
    """The target's health findings now; an unreachable or misconfigured target is reported, not raised."""
    check = TargetCheck(target.name, target.type)
    try:
        opened = open_target(target)
    except (PluginError, ConfigError) as exc:
        check.error = f"{type(exc).__name__}: {exc}"
        return check
    try:
        check.findings = await asyncio.wait_for(opened.plugin.check_health(), timeout_s)
    except (PluginError, ConfigError) as exc:
        check.error = str(exc) or type(exc).__name__
    except TimeoutError:
        check.error = f"no answer within {timeout_s:.0f}s"
    finally:
        await opened.close()
    return check
