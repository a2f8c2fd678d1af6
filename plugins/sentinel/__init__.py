"""Redis Sentinel: the monitored primaries, their replicas and fellow sentinels, quorum checks, failover events,
health rules and the SENTINEL actions."""

from kubestack.plugins.sentinel.config import SentinelConfig
from kubestack.plugins.sentinel.plugin import SentinelPlugin

__all__ = ["SentinelConfig", "SentinelPlugin"]
