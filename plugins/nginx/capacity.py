"""Nginx series that fill up towards a limit: active connections against worker_connections x worker_processes."""

from kubestack.plugins.base import Capacity

CAPACITIES = (
    Capacity(used="nginx_connections_active", limit="nginx_max_connections", title="nginx worker connections"),
)
