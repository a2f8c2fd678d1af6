"""etcd series that fill up towards a limit: the backend database against its quota (NOSPACE at the quota), and
open file descriptors."""

from kubestack.plugins.base import Capacity

CAPACITIES = (
    Capacity(used="etcd_db_size_bytes", limit="etcd_quota_backend_bytes", title="etcd database (backend quota)"),
    Capacity(used="etcd_open_fds", limit="etcd_max_fds", title="etcd file descriptors"),
)
