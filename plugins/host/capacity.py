"""Host series that fill up towards a limit: forecast by the worker's prediction stage."""

from kubestack.plugins.base import Capacity

CAPACITIES = (
    Capacity(used="host_filesystem_used_bytes", limit="host_filesystem_size_bytes", match_labels=("mountpoint",),
             title="disk space"),
    Capacity(used="host_filesystem_inodes_used", limit="host_filesystem_inodes", match_labels=("mountpoint",),
             title="inodes"),
    Capacity(used="host_memory_used_bytes", limit="host_memory_total_bytes", title="memory"),
    Capacity(used="host_file_handles_allocated", limit="host_file_handles_max", title="file handles"),
    Capacity(used="host_swap_used_bytes", limit="host_swap_total_bytes", title="swap"),
)
