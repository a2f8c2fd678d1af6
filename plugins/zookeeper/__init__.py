"""ZooKeeper: four-letter words (mntr, srvr, conf, cons, dump) over TCP, health rules over the ensemble, and a purge
of old snapshots and transaction logs."""

from kubestack.plugins.zookeeper.config import ZooKeeperConfig
from kubestack.plugins.zookeeper.plugin import ZooKeeperPlugin

__all__ = ["ZooKeeperConfig", "ZooKeeperPlugin"]
