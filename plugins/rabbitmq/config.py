"""The RabbitMQ plugin's configuration: where the management API is, how to log in, and its rules' thresholds."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kubestack.plugins.base import PluginConfig, SecretRef


class RabbitMQConfig(PluginConfig):
    """The plugin reads the management API (the ``rabbitmq_management`` plugin). The least a user needs is the
    ``monitoring`` tag (read everything); actions need ``policymaker`` on the vhost (policies) and ``management``
    rights to close connections: ``rabbitmqctl set_user_tags kubestack monitoring policymaker``."""

    host: str = "127.0.0.1"
    port: int = Field(default=15672, ge=1, le=65535, description="Port of the management API (HTTP)")
    scheme: Literal["http", "https"] = "http"
    verify_tls: bool = Field(default=True, description="Check the server's certificate over https")
    user: str = Field(default="guest", min_length=1)
    password: SecretRef | None = Field(default=None, description="The user's password (guest's default: guest)")
    curl: str = Field(default="curl", description="curl binary, used when collecting through a runner")
    max_queues: int = Field(default=500, ge=1, le=500,
                            description="Queues read per round, the fullest first (the rules see these)")
    queue_series: int = Field(default=20, ge=0, le=1000, description="Queues (the fullest) sent as their own series")
    backlog_max: int = Field(default=10_000, ge=1, description="Ready messages in one queue that make a backlog")
    unacked_max: int = Field(default=1_000, ge=1, description="Unacknowledged messages in one queue that are too many")
    idle_queue_min_messages: int = Field(default=100, ge=1,
                                         description="Ready messages in a queue without consumers that are reported")
    memory_high_ratio: float = Field(default=0.8, gt=0, lt=1,
                                     description="mem_used / the memory high watermark that is near the alarm")
    churn_max_per_s: float = Field(default=10.0, gt=0, description="Connections opened per second that is churn")
    log_path: str | None = Field(default=None, description="Log file (glob allowed); default the Debian location")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}/api"
