"""The targets of the API's agent config (``api.agent_config``): listed without their secrets, and checked on
demand with the agent's own loading and plugin creation (``agents.config``, ``agents.targets.check_target``)."""

from __future__ import annotations

from pathlib import Path

from kubestack.agents.config import AgentConfig, TargetConfig, load_agent_config
from kubestack.agents.targets import check_target, resource_of
from kubestack.api.errors import NotFoundError
from kubestack.api.views import DiagnoseResponse, TargetView
from kubestack.contract.base import ResourceRef


class Targets:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.config = load_agent_config(path) if path is not None else AgentConfig()

    def resource(self, target: TargetConfig) -> ResourceRef:
        """The resource the agent reports this target as (``agents.targets.resource_of``)."""
        return resource_of(target, self.config.agent)

    @property
    def tenant(self) -> str:
        return self.config.agent.tenant

    def views(self) -> list[TargetView]:
        return [TargetView(name=t.name, type=t.type, resource=self.resource(t).key, tenant=self.tenant,
                           labels=t.labels, interval_s=t.interval, health_interval_s=t.health_interval)
                for t in self.config.targets]

    def find(self, wanted: str) -> TargetConfig:
        for target in self.config.targets:
            if wanted in (target.name, self.resource(target).key):
                return target
        if self.path is None:
            raise NotFoundError(f"no target {wanted!r}: the API has no agent config (set api.agent_config)")
        known = ", ".join(t.name for t in self.config.targets) or "none"
        raise NotFoundError(f"no target {wanted!r} in {self.path}; known: {known}")

    async def diagnose(self, target: TargetConfig, timeout_s: float) -> DiagnoseResponse:
        check = await check_target(target, timeout_s)
        return DiagnoseResponse(target=target.name, kind=target.type, resource=self.resource(target).key,
                                findings=check.findings, error=check.error)
