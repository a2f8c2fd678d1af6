"""The Sentinel plugin's configuration: where one sentinel is, how to log in, and the thresholds of its rules."""

from __future__ import annotations

from pydantic import Field

from kubestack.plugins.base import PluginConfig, SecretRef


class SentinelConfig(PluginConfig):
    host: str = "127.0.0.1"
    port: int = Field(default=26379, ge=1, le=65535)
    user: str | None = Field(default=None, description="ACL user of the sentinel; none means the default user")
    password: SecretRef | None = Field(default=None, description="The sentinel's own password (requirepass)")
    masters: list[str] = Field(default_factory=list,
                               description="Monitored primaries to look at, by name; empty: every one")
    min_replicas: int = Field(default=1, ge=0, description="Healthy replicas a primary needs to fail over to")
    min_sentinels: int = Field(default=3, ge=1, description="Sentinels (this one included) a primary should have")
    failover_window_s: float = Field(default=300.0, gt=0,
                                     description="A failover this recent is reported (then it is history)")
    log_path: str | None = Field(default=None, description="Log file (glob allowed); default the Debian location")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"
