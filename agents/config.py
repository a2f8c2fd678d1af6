"""The agent's configuration file (``agent.yaml``): who the agent is, and the targets it watches.

```yaml
agent:
  name: db-host-1               # default: this host's name
  cluster: null                 # Kubernetes cluster or site
  spool_max_bytes: 268435456    # disk spool bound while Kafka is away
  metrics_listen: 127.0.0.1:9464
targets:
  - type: redis                 # a plugin name (`kubestack plugins list`)
    name: cache-1
    interval: 10s               # metrics; health every health_interval, config every config_interval
    labels: {service: checkout, environment: prod}
    config: {host: 127.0.0.1, port: 6379, password: {env: REDIS_PASSWORD}}
    ssh: {host: 10.0.0.5, user: monitor, key_file: ~/.ssh/id_ed25519, known_hosts: ~/.ssh/known_hosts}
    logs: [{path: /var/log/redis/redis-server.log}]   # in addition to what the plugin knows
prometheus:                     # Prometheus as a source (agents/prometheus_source.py)
  - url: http://prometheus:9090
    interval: 30s
    queries: [{name: node_load1, promql: node_load1, resource: {kind: host, name_labels: [instance]}}]
alertmanager: {listen: 0.0.0.0:9465, token: {env: ALERTMANAGER_TOKEN}}   # webhook receiver
```
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kubestack.agents.durations import parse_duration
from kubestack.agents.prometheus_config import PrometheusSourceConfig
from kubestack.errors import ConfigError, validation_problems
from kubestack.plugins.base import LogSource, SecretRef

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentIdentity(_Strict):
    name: str = Field(default_factory=socket.gethostname, min_length=1)
    cluster: str | None = None
    tenant: str = "default"
    spool_dir: Path | None = Field(default=None, description="Default: <home>/agent/<name>/spool")
    state_dir: Path | None = Field(default=None, description="Default: <home>/agent/<name>/state")
    spool_max_bytes: int = Field(default=256 * 1024 * 1024, ge=64 * 1024)
    metrics_listen: str | None = Field(default="127.0.0.1:9464", description="host:port, or null to disable")
    log_poll_interval: float = 1.0
    rediscover_interval: float = Field(default=300.0, ge=0, description=(
        "How often targets that find others (a Kubernetes cluster) look again: new middleware is watched, gone "
        "middleware is dropped (0: only at start)"))

    _durations = field_validator("log_poll_interval", "rediscover_interval", mode="before")(parse_duration)


class TargetConfig(_Strict):
    type: str = Field(min_length=1)
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:@/-]+$")
    interval: float = 10.0
    health_interval: float = 60.0
    config_interval: float = 300.0
    labels: dict[str, str] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    ssh: dict[str, Any] | None = Field(default=None, description="Agentless: run the plugin's commands over SSH")
    logs: list[LogSource] = Field(default_factory=list)
    cluster: str | None = Field(default=None, description="Cluster of the target's resource (default: the agent's)")
    namespace: str | None = Field(default=None, description=(
        "Kubernetes namespace of the target's resource: it runs in a cluster, not on the agent's host"))
    host: str | None = Field(default=None, min_length=1, description=(
        "Host the target's resource is reported on (default: its SSH host, else the agent's host name): set it when "
        "the agent reporting the target and the worker acting on it run on different hosts, in both configs"))
    found_by: str | None = Field(default=None, description=(
        "Set by discovery: the target (type/name) that found this one; it is dropped when that target no longer "
        "finds it"))

    _durations = field_validator("interval", "health_interval", "config_interval", mode="before")(parse_duration)

    @field_validator("interval", "health_interval", "config_interval")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be positive")
        return value


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class AlertmanagerReceiverConfig(_Strict):
    """Alertmanager webhook receiver: point a ``webhook_configs`` url at http://<listen>/alerts. Listening beyond
    loopback it needs a token: anyone who reaches the port could otherwise post alerts that become incidents."""

    listen: str = Field(default="127.0.0.1:9465", pattern=r"^[^:]*:\d+$")
    token: SecretRef | None = Field(default=None, description="Bearer token Alertmanager must send")

    @model_validator(mode="after")
    def _token_beyond_loopback(self) -> AlertmanagerReceiverConfig:
        host = self.listen.rsplit(":", 1)[0].strip("[]")
        if self.token is None and (host not in LOOPBACK_HOSTS and not host.startswith("127.")):
            raise ValueError(f"alertmanager.token is required when the receiver listens beyond loopback "
                             f"({self.listen}); set it (and Alertmanager's http_config authorization), or listen "
                             "on 127.0.0.1")
        return self


class AgentConfig(_Strict):
    agent: AgentIdentity = Field(default_factory=AgentIdentity)
    targets: list[TargetConfig] = Field(default_factory=list)
    prometheus: list[PrometheusSourceConfig] = Field(default_factory=list, description="Prometheus servers to pull")
    alertmanager: AlertmanagerReceiverConfig | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> AgentConfig:
        seen: set[tuple[str, str]] = set()
        for target in self.targets:
            if (target.type, target.name) in seen:
                raise ValueError(f"target {target.type}/{target.name} is listed twice")
            seen.add((target.type, target.name))
        return self


def load_agent_config(path: Path) -> AgentConfig:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"agent config {path} not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"agent config {path} is not valid YAML: {exc}") from exc
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"agent config {path}: {validation_problems(exc)}") from exc
