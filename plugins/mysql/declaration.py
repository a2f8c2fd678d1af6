"""What the MySQL/MariaDB plugin declares: its rules, the words that name it in a question, and its actions, each
with its risk, typed parameters and the signals it answers (``plugins/remedy.py``)."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import Field

from kubestack.contract.events import Risk
from kubestack.plugins.base import ActionParams, ActionSpec, WholeNumber
from kubestack.plugins.agreement import AT_LEAST, Agreement, PeerAgreements
from kubestack.plugins.remedy import Clue, Offer, Remedy, undo

RULES = (
    # health
    "mysql.connections_near_max", "mysql.long_running_query", "mysql.row_lock_waits", "mysql.buffer_pool_hit_rate_low",
    "mysql.replica_stopped", "mysql.replica_lagging",
    # config risks
    "mysql.max_connections_cut", "mysql.durability_lowered", "mysql.buffer_pool_shrunk", "mysql.read_only_changed",
    "mysql.peer_config_drift",
)
SYMPTOMS = frozenset({"mysql.long_running_query"})
KEYWORDS = ("mariadb", "innodb", "binlog")
AGREEMENTS = PeerAgreements("mysql.peer_config_drift", (Agreement("max_allowed_packet", AT_LEAST),))
"""A replica applies every event its primary accepted: a smaller max_allowed_packet stops its SQL thread."""

MAX_CONNECTIONS_LIMIT = 100_000
"""The server's own upper bound of max_connections."""


class ThreadId(ActionParams):
    id: WholeNumber = Field(ge=1, le=2**63 - 1, description="Connection id from the processlist, e.g. the "
                                                            "blocking_id of a row lock wait")


class MaxConnections(ActionParams):
    value: WholeNumber = Field(ge=1, le=MAX_CONNECTIONS_LIMIT, description="New max_connections")


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
                        Remedy(raise_max_connections, findings=("mysql.connections_near_max",)))),
)
