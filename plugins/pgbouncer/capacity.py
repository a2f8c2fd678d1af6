"""PgBouncer series that fill up towards a limit: client connections against max_client_conn, and each pool's
server connections against its size."""

from kubestack.plugins.base import Capacity

CAPACITIES = (
    Capacity(used="pgbouncer_client_connections", limit="pgbouncer_max_client_conn",
             title="PgBouncer client connections"),
    Capacity(used="pgbouncer_pool_server_connections", limit="pgbouncer_pool_size", match_labels=("db", "user"),
             title="PgBouncer pool server connections"),
)
