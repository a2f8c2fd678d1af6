"""The ZooKeeper plugin's configuration: which server to ask, where the other members' client ports are, and the
thresholds of its rules."""

from __future__ import annotations

from pydantic import Field

from kubestack.plugins.base import PluginConfig

ADDRESS = r"^(\[[0-9A-Fa-f:.]+\]|[^\s\[\]:]+):\d{1,5}$"


class ZooKeeperConfig(PluginConfig):
    """Needs the four-letter words ``srvr mntr conf cons dump ruok isro`` in ``4lw.commands.whitelist``."""

    host: str = "127.0.0.1"
    port: int = Field(default=2181, ge=1, le=65535)
    members: list[str] = Field(
        default_factory=list,
        description="host:port of every ensemble member's client port; default: the hosts of the server.N lines of "
                    "its conf with this server's client port (or the client address a dynamic config gives)")
    outstanding_max: int = Field(default=10, ge=0, description="Outstanding requests that are a backlog")
    latency_max_ms: float = Field(default=100.0, gt=0, description="Average request latency over a round that is high")
    latency_min_ops: int = Field(default=5, ge=1, description="Requests in a round before its latency is judged")
    connections_high_ratio: float = Field(default=0.8, gt=0, le=1,
                                          description="Connections of one client IP / maxClientCnxns that is high")
    fsync_max_ms: float = Field(default=50.0, gt=0, description="Average transaction log fsync over a round that is "
                                                                 "slow (ZooKeeper itself warns at 1000 ms)")
    fsync_min_ops: int = Field(default=5, ge=1, description="fsyncs in a round before their time is judged")
    expiry_window_s: float = Field(default=600.0, gt=0, description="A session expiry this recent is reported")
    data_dir_max_bytes: int = Field(default=10 * 1024**3, ge=1,
                                    description="Snapshots and transaction logs together that are too many bytes")
    log_path: str | None = Field(default=None, description="Server log (glob allowed); default the Debian location")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"
