"""ZooKeeper series that fill up towards a limit: one client IP's connections against ``maxClientCnxns`` (0 means
none: not forecast), and open file descriptors."""

from kubestack.plugins.base import Capacity

CAPACITIES = (
    Capacity(used="zookeeper_connections_max_per_ip", limit="zookeeper_max_client_cnxns",
             title="ZooKeeper connections of one client IP (maxClientCnxns)"),
    Capacity(used="zookeeper_open_fds", limit="zookeeper_max_fds", title="ZooKeeper file descriptors"),
)
