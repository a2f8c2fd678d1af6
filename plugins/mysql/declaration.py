"""What the MySQL/MariaDB plugin declares: its rules, the words that name it in a question, and its actions, each
with its risk, typed parameters and the signals it answers (``plugins/remedy.py``)."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import Field

from kubestack.contract.events import Risk
from kubestack.plugins.base import ActionParams, ActionSpec, WholeNumber
from kubestack.plugins.agreement import AT_LEAST, EQUAL, Agreement, PeerAgreements, align
from kubestack.plugins.remedy import Clue, Offer, Remedy, undo

RULES = (
    # health
    "mysql.connections_near_max", "mysql.long_running_query", "mysql.row_lock_waits", "mysql.buffer_pool_hit_rate_low",
    "mysql.replica_stopped", "mysql.replica_lagging", "mysql.replica_binlog_purged",
    # config risks
    "mysql.max_connections_cut", "mysql.durability_lowered", "mysql.buffer_pool_shrunk", "mysql.read_only_changed",
    "mysql.peer_config_drift",
)
SYMPTOMS = frozenset({"mysql.long_running_query"})
KEYWORDS = ("mariadb", "innodb", "binlog")
AGREEMENTS = PeerAgreements("mysql.peer_config_drift", (
    Agreement("max_allowed_packet", AT_LEAST), Agreement("max_connections", AT_LEAST),
    Agreement("sql_mode", EQUAL)))
"""A replica applies every event its primary accepted: a smaller max_allowed_packet stops its SQL thread. It takes
over the primary's clients at a failover: fewer max_connections refuse some of them, another sql_mode changes
what their statements do."""

MAX_CONNECTIONS_LIMIT = 100_000
"""The server's own upper bound of max_connections."""
PACKET_MIN, PACKET_MAX = 1024, 2**30
"""The server's bounds of max_allowed_packet (bytes)."""
EXPIRY_MAX_S = 99 * 86_400
"""The longest expiry MariaDB accepts (expire_logs_days 99)."""
BINLOG_AGE = "mysql_replica_needed_binlog_age_seconds exhaustion"
"""The forecast that a replica's primary will purge a binary log the replica still needs (``capacity.py``)."""


class ThreadId(ActionParams):
    id: WholeNumber = Field(ge=1, le=2**63 - 1, description="Connection id from the processlist, e.g. the "
                                                            "blocking_id of a row lock wait")


class MaxConnections(ActionParams):
    value: WholeNumber = Field(ge=1, le=MAX_CONNECTIONS_LIMIT, description="New max_connections")


class MaxAllowedPacket(ActionParams):
    value: WholeNumber = Field(ge=PACKET_MIN, le=PACKET_MAX, description="New max_allowed_packet, bytes")


class SourceBinlogExpiry(ActionParams):
    seconds: WholeNumber = Field(ge=0, le=EXPIRY_MAX_S, description=(
        "How long the replica's primary keeps a binary log after its last write, seconds (0: until purged by hand)"))
    channel: str = Field(default="", max_length=64, description="The replication channel (MariaDB: connection "
                                                                "name); empty for the default one")


def keep_binlogs_longer(clue: Clue) -> Iterable[Offer]:
    """A forecast that the primary will purge a binary log this replica still needs (its evidence: the channel,
    the source and the expiry in seconds): keep them twice as long, so the replica has time to catch up."""
    limit = clue.evidence.get("capacity")
    if not isinstance(limit, int | float) or limit <= 0:
        return
    seconds = min(int(limit) * 2, EXPIRY_MAX_S)
    yield ({"seconds": seconds, "channel": str(clue.evidence.get("channel", ""))},
           f"{clue.evidence.get('source', 'the primary')} keeps its binary logs {seconds} s instead of {int(limit)} s "
           "before purging them, so this replica can read them before they go; they take as much more disk there")


def raise_max_connections(clue: Clue) -> Iterable[Offer]:
    if clue.evidence.get("max_connections"):
        current = int(clue.evidence["max_connections"])
        yield ({"value": str(int(current * 1.5))},
               f"raise max_connections by half, from {current}, while the clients are fixed")


def lock_holders(clue: Clue) -> Iterable[Offer]:
    """The connections a row lock wait names as blocking."""
    for blocker in sorted({w.get("blocking_id") for w in clue.evidence.get("waits", []) if w.get("blocking_id")}):
        yield {"id": blocker}, f"end connection {blocker}, which holds the lock"


ACTIONS = (
    ActionSpec(id="mysql.kill_query", title="Stop one running statement (KILL QUERY id)", risk=Risk.MEDIUM,
               params=ThreadId,
               preconditions=["the connection exists and runs a statement (not Sleep)",
                              "it is not the plugin's own connection",
                              "the statement is not a replication or system thread",
                              "the application retries or tolerates the error"],
               rollback="none: the statement is rolled back by the server; the client may rerun it"),
    ActionSpec(id="mysql.kill_connection", title="Close one connection (KILL CONNECTION id)", risk=Risk.MEDIUM,
               params=ThreadId,
               preconditions=["the connection exists", "it is not the plugin's own connection",
                              "it is not a replication or system thread",
                              "its open transaction may be rolled back", "its application reconnects"],
               rollback="none: the application reconnects",
               answers=(Remedy(lock_holders, findings=("mysql.row_lock_waits",)),)),
    ActionSpec(id="mysql.set_max_connections", title="Raise or lower max_connections (SET GLOBAL)", risk=Risk.MEDIUM,
               params=MaxConnections,
               preconditions=["the new value is at least the connections in use plus a margin (10%, at least 5)",
                              "the host has memory for that many connection threads",
                              "open_files_limit allows it"],
               rollback="SET GLOBAL max_connections = <previous value>",
               answers=(Remedy(undo("value"), changes=("max_connections",)),
                        Remedy(raise_max_connections, findings=("mysql.connections_near_max",)),
                        Remedy(align("value", settings=("max_connections",)), findings=(AGREEMENTS.rule_id,)))),
    ActionSpec(id="mysql.set_max_allowed_packet", title="Set max_allowed_packet (SET GLOBAL)", risk=Risk.LOW,
               params=MaxAllowedPacket,
               preconditions=["the value is what the primary accepts, or more",
                              "replication threads read it once restarted (STOP/START REPLICA)"],
               rollback="SET GLOBAL max_allowed_packet = <previous value>",
               answers=(Remedy(undo("value"), changes=("max_allowed_packet",)),
                        Remedy(align("value", settings=("max_allowed_packet",)), findings=(AGREEMENTS.rule_id,)))),
    ActionSpec(id="mysql.set_source_binlog_expiry",
               title="Keep binary logs longer on this replica's primary (SET GLOBAL binlog_expire_logs_seconds there)",
               risk=Risk.MEDIUM, params=SourceBinlogExpiry,
               preconditions=["this server replicates the channel from a primary reachable with the plugin's user",
                              "the primary writes binary logs (log_bin ON)",
                              "the primary's binary log disk has room for the logs kept longer"],
               rollback="SET GLOBAL binlog_expire_logs_seconds = <previous value> on the primary",
               answers=(Remedy(keep_binlogs_longer, findings=(BINLOG_AGE,)),)),
)
