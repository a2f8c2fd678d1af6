"""PostgreSQL series that fill up towards a limit. Transaction ids wrap around at 2^31: a database whose
oldest xid age reaches it stops accepting writes. A replication slot that retains more WAL than
``max_slot_wal_keep_size`` is invalidated at the next checkpoint: its standby or logical consumer has lost its
place and must be rebuilt (the WAL filling the disk is the host's filesystem forecast)."""

from kubestack.plugins.base import Capacity

XID_WRAPAROUND = 2**31

CAPACITIES = (
    Capacity(used="postgresql_client_connections", limit="postgresql_max_connections",
             title="PostgreSQL connections"),
    Capacity(used="postgresql_db_xid_age", limit_value=XID_WRAPAROUND, match_labels=("db",),
             title="transaction ids (wraparound)"),
    Capacity(used="postgresql_slot_retained_wal_bytes", limit="postgresql_max_slot_wal_keep_size_bytes",
             title="WAL a replication slot may retain (max_slot_wal_keep_size)",
             outcome="replication slot {slot} will lose WAL its consumer has not received (max_slot_wal_keep_size)"),
)
