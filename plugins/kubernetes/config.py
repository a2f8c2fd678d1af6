"""The Kubernetes target's config: the connection (``connection.py``), what to watch, and the rules' thresholds.

```yaml
- type: kubernetes
  name: prod-eu
  config:
    kubeconfig: ~/.kube/config
    context: prod-eu
    namespaces: [shop, payments]     # empty: every namespace
    discover: {kinds: [redis, mysql, postgresql, kafka]}   # middleware pods become targets of their plugins
```
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from kubestack.plugins.base import PluginConfig
from kubestack.plugins.kubernetes.connection import KubernetesConnection


class Watched(StrEnum):
    PODS = "pods"
    EVENTS = "events"
    DEPLOYMENTS = "deployments"
    STATEFULSETS = "statefulsets"
    NODES = "nodes"
    CONFIGMAPS = "configmaps"


class Thresholds(BaseModel):
    """When a state becomes a finding."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pending_s: float = Field(default=300.0, gt=0, description="A pod Pending this long, with no known reason")
    not_ready_s: float = Field(default=300.0, gt=0, description="A running pod not Ready this long")
    recent_s: float = Field(default=3600.0, gt=0,
                            description="A restart or OOM kill this recent still counts")
    restarts: int = Field(default=3, ge=1, description="Restarts of one container that make it 'restarting'")
    event_s: float = Field(default=900.0, gt=0, description="A Warning event counts this long after it was last seen")


def _discoverable() -> list[str]:
    from kubestack.plugins.kubernetes.discovery import discoverable_kinds  # it reads this module's models

    return discoverable_kinds()


class DiscoveryConfig(BaseModel):
    """Middleware pods (by image and ``app.kubernetes.io/name`` labels) turned into targets of their plugins,
    reached through the Services that select them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kinds: list[str] = Field(default_factory=lambda: _discoverable(), description=(
        "Plugins whose pods become targets; default: every installed plugin that declares discovery"))
    cluster_domain: str = Field(default="cluster.local", description="Suffix of Service DNS names")
    interval: float = Field(default=10.0, gt=0, description="Metrics interval of the discovered targets")
    config: dict[str, dict] = Field(default_factory=dict, description=(
        "Extra plugin config per kind, e.g. {postgresql: {user: monitor, password: {env: PG_PASSWORD}}}"))


class KubernetesConfig(KubernetesConnection, PluginConfig):
    namespaces: list[str] = Field(default_factory=list, description="Namespaces to watch; empty: all of them")
    watch: list[Watched] = Field(default_factory=lambda: list(Watched), description="Kinds of object to watch")
    thresholds: Thresholds = Field(default_factory=Thresholds)
    resync_interval_s: float = Field(default=60.0, gt=0, description=(
        "Every resource with findings is reported again this often (a state, like every target's health round), "
        "and every resource's metrics"))
    watch_timeout_s: int = Field(default=300, ge=10, description="Server-side end of each watch request")
    backoff_max_s: float = Field(default=30.0, gt=0, description="Longest wait between reconnection attempts")
    max_objects: int = Field(default=50000, ge=1, description="Objects kept per kind; more are dropped and logged")
    discover: DiscoveryConfig | None = Field(default=None, description="Find middleware in the cluster")
