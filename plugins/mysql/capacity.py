"""MySQL/MariaDB series that fill up towards a limit."""

from kubestack.plugins.base import Capacity

CAPACITIES = (
    Capacity(used="mysql_threads_connected", limit="mysql_max_connections", title="MySQL connections"),
    Capacity(used="mysql_open_files", limit="mysql_open_files_limit", title="MySQL open files"),
)
