"""Redis series that fill up towards a limit (``maxmemory 0`` means none: not forecast)."""

from kubestack.plugins.base import Capacity

CAPACITIES = (
    Capacity(used="redis_used_memory_bytes", limit="redis_maxmemory_bytes", title="Redis memory"),
    Capacity(used="redis_connected_clients", limit="redis_maxclients", title="Redis client connections"),
)
