"""The Memcached plugin's configuration: where the server is and the thresholds of its rules."""

from __future__ import annotations

from pydantic import Field

from kubestack.plugins.base import PluginConfig


class MemcachedConfig(PluginConfig):
    """Memcached's text protocol has no users: the plugin needs only to reach the port (``stats`` commands; the
    memory-limit action sends ``cache_memlimit``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=11211, ge=1, le=65535)
    unix_socket: str | None = Field(default=None, description="Connect through this socket instead of host:port")
    connections_high_ratio: float = Field(default=0.8, gt=0, le=1,
                                          description="curr_connections / max_connections that is near the limit")
    hit_ratio_min: float = Field(default=0.5, ge=0, le=1, description="Hit ratio of gets between two rounds that is low")
    hit_ratio_min_gets: int = Field(default=100, ge=1,
                                    description="Gets between two rounds below which the hit ratio is not judged")
    memory_limit_max_mb: int | None = Field(
        default=None, ge=1, description="The most memory the memory-limit action may give (MB); none: no cap")
    log_path: str | None = Field(default=None, description="Log file (memcached -vv output), if it is kept")

    @property
    def address(self) -> str:
        return self.unix_socket or (f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}")
