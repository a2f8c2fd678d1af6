"""etcd: status, alarms, members and Prometheus metrics through the v3 HTTP JSON gateway, health rules, and space
reclaiming actions (defragment, compact and disarm NOSPACE)."""

from kubestack.plugins.etcd.config import EtcdConfig
from kubestack.plugins.etcd.plugin import EtcdPlugin

__all__ = ["EtcdConfig", "EtcdPlugin"]
