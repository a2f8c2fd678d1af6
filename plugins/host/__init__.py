"""The host itself: CPU, load, memory, swap, disks, network, file handles and middleware processes, from /proc."""

from kubestack.plugins.host.config import HostConfig
from kubestack.plugins.host.plugin import HostPlugin

__all__ = ["HostConfig", "HostPlugin"]
