"""The Redis plugin's configuration: where the server is, how to log in, and the thresholds of its rules."""

from __future__ import annotations

from pydantic import Field

from kubestack.plugins.base import PluginConfig, SecretRef


class RedisConfig(PluginConfig):
    """The least an ACL user needs:
    ``ACL SETUSER kubestack on >PASSWORD -@all +info +config|get +slowlog|get +slowlog|len +client|list``."""

    host: str = "127.0.0.1"
    port: int = Field(default=6379, ge=1, le=65535)
    unix_socket: str | None = Field(default=None, description="Connect through this socket instead of host:port")
    user: str | None = Field(default=None, description="ACL user; none means the default user")
    password: SecretRef | None = None
    cli: str = Field(default="redis-cli", description="redis-cli binary, used when collecting through a runner")
    slowlog_entries: int = Field(default=10, ge=1, le=1000, description="Recent SLOWLOG entries to look at")
    slowlog_window_s: float = Field(default=300.0, gt=0, description="Slow commands newer than this are reported")
    memory_high_ratio: float = Field(default=0.9, gt=0, le=1, description="used_memory / maxmemory that is high")
    fragmentation_max: float = Field(default=1.5, gt=1, description="mem_fragmentation_ratio that is too high")
    fragmentation_min_bytes: int = Field(default=100 * 1024 * 1024, ge=0,
                                         description="Fragmentation is ignored below this many wasted RSS bytes")
    replica_lag_max_s: int = Field(default=10, ge=0, description="Seconds since a replica's last ack that is lagging")
    client_output_max_bytes: int = Field(default=64 * 1024 * 1024, ge=0,
                                         description="Output buffer of one client that makes it a runaway")
    log_path: str | None = Field(default=None, description="Log file (glob allowed); default the Debian location")

    @property
    def address(self) -> str:
        return self.unix_socket or f"{self.host}:{self.port}"
