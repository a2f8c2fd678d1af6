"""Redis: INFO metrics, SLOWLOG, the CONFIG snapshot, health rules and safe actions."""

from kubestack.plugins.redis.config import RedisConfig
from kubestack.plugins.redis.plugin import RedisPlugin

__all__ = ["RedisConfig", "RedisPlugin"]
