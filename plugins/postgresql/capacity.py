"""PostgreSQL series that fill up towards a limit. Transaction ids wrap around at 2^31: a database whose
oldest xid age reaches it stops accepting writes."""

from kubestack.plugins.base import Capacity

XID_WRAPAROUND = 2**31

CAPACITIES = (
    Capacity(used="postgresql_client_connections", limit="postgresql_max_connections",
             title="PostgreSQL connections"),
    Capacity(used="postgresql_db_xid_age", limit_value=XID_WRAPAROUND, match_labels=("db",),
             title="transaction ids (wraparound)"),
)
