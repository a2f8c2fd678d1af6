"""The HAProxy plugin's configuration: where the runtime API listens, and the thresholds of its rules."""

from __future__ import annotations

from pydantic import Field

from kubestack.plugins.base import PluginConfig

DEFAULT_PORT = 9999
"""The runtime API over TCP as HAProxy's management guide shows it: ``stats socket ipv4@:9999 level admin``."""


class HAProxyConfig(PluginConfig):
    """Reading needs a runtime API socket of ``level operator``; the actions need ``level admin``
    (``stats socket /run/haproxy/admin.sock mode 660 level admin``). With ``socket`` the Unix socket is used,
    otherwise ``host:port`` (``stats socket ipv4@0.0.0.0:9999 level admin``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535, description="TCP port of the runtime API")
    socket: str | None = Field(default=None, description="Unix socket of the runtime API, e.g. /run/haproxy/admin.sock")
    socat: str = Field(default="socat", description="socat binary, used to reach the socket through a runner")
    config_path: str | None = Field(default=None, description="haproxy.cfg to add to the configuration snapshot")
    log_path: str | None = Field(default=None, description="HAProxy's log file (glob allowed); default the Debian one")
    sessions_high_ratio: float = Field(default=0.8, gt=0, le=1,
                                       description="Sessions / limit of a frontend or the process that is high")
    queue_min: int = Field(default=1, ge=1, description="Requests queued in a backend that are reported")
    errors_5xx_ratio: float = Field(default=0.05, gt=0, le=1,
                                    description="Share of a backend's responses being 5xx that is reported")
    errors_min_responses: int = Field(default=5, ge=1,
                                      description="Responses a backend needs in the window before its 5xx are judged")

    @property
    def address(self) -> str:
        return self.socket or f"{self.host}:{self.port}"
