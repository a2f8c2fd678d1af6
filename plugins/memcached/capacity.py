"""Memcached series that fill up towards a limit: memory in use towards ``-m`` (``cache_memlimit``), connections
towards ``-c``."""

from kubestack.plugins.base import Capacity

CAPACITIES = (
    Capacity(used="memcached_bytes", limit="memcached_limit_bytes", title="Memcached memory"),
    Capacity(used="memcached_curr_connections", limit="memcached_max_connections",
             title="Memcached client connections"),
)
