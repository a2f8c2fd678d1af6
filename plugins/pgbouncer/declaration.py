"""What the PgBouncer plugin declares: its rules, the words that name it in a question, and its admin-console
actions, each with its risk, typed parameters and the signals it answers (``plugins/remedy.py``)."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import Field

from kubestack.contract.events import Risk
from kubestack.plugins.base import ActionParams, ActionSpec, NoParams, WholeNumber
from kubestack.plugins.remedy import Clue, Offer, Remedy, undo

RULES = (
    # health
    "pgbouncer.clients_waiting", "pgbouncer.pool_exhausted", "pgbouncer.backend_unreachable",
    "pgbouncer.database_paused", "pgbouncer.client_connections_near_limit", "pgbouncer.avg_wait_high",
    # config risks
    "pgbouncer.pool_size_lowered", "pgbouncer.max_client_conn_lowered", "pgbouncer.pool_mode_changed",
    "pgbouncer.auth_weakened",
)
SYMPTOMS = frozenset({"pgbouncer.clients_waiting", "pgbouncer.avg_wait_high"})
KEYWORDS = ("pooler", "connection pool", "连接池")

DB_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$"


class SetDefaultPoolSize(ActionParams):
    size: WholeNumber = Field(ge=1, le=10_000, description="Server connections per user/database pair "
                                                           "(default_pool_size)")


class SetMaxClientConn(ActionParams):
    limit: WholeNumber = Field(ge=1, le=1_000_000, description="Client connections PgBouncer accepts "
                                                               "(max_client_conn)")


class Database(ActionParams):
    db: str = Field(pattern=DB_NAME, description="A pooled database's name as SHOW DATABASES shows it")


def bigger_pool(clue: Clue) -> Iterable[Offer]:
    """Half again as many server connections per pool (at least one more)."""
    size = clue.evidence.get("pool_size")
    if size and clue.evidence.get("pool_size") == clue.evidence.get("default_pool_size"):
        new = max(int(size) + 1, int(int(size) * 1.5))
        yield ({"size": new}, f"raise default_pool_size from {size} to {new} so the {clue.evidence.get('cl_waiting')}"
                              f" waiting client(s) of {clue.evidence.get('db')} get a server connection, if "
                              "PostgreSQL has the connections to spare")


def more_clients(clue: Clue) -> Iterable[Offer]:
    limit = clue.evidence.get("max_client_conn")
    if limit:
        new = int(int(limit) * 1.25) + 1
        yield ({"limit": new}, f"raise max_client_conn from {limit} to {new}, if the open-files limit allows")


def resume_held(clue: Clue) -> Iterable[Offer]:
    for db in clue.evidence.get("databases", []):
        if db.get("paused"):
            yield ({"db": db["db"]}, f"RESUME {db['db']}: its {db.get('cl_waiting', 0)} held client(s) go on")


ACTIONS = (
    ActionSpec(id="pgbouncer.set_default_pool_size", title="Set the pool size (admin SET default_pool_size)",
               risk=Risk.LOW, params=SetDefaultPoolSize,
               preconditions=["the new size is within max_db_connections when that is set",
                              "PostgreSQL has the connections to spare (max_connections)"],
               rollback="SET default_pool_size = <previous value>",
               answers=(Remedy(undo("size"), changes=("default_pool_size",)),
                        Remedy(bigger_pool, findings=("pgbouncer.pool_exhausted",)))),
    ActionSpec(id="pgbouncer.set_max_client_conn", title="Set the client limit (admin SET max_client_conn)",
               risk=Risk.LOW, params=SetMaxClientConn,
               preconditions=["the new limit is above the clients connected now"],
               rollback="SET max_client_conn = <previous value>",
               answers=(Remedy(undo("limit"), changes=("max_client_conn",)),
                        Remedy(more_clients, findings=("pgbouncer.client_connections_near_limit",)))),
    ActionSpec(id="pgbouncer.resume", title="Let a paused database's clients go on (RESUME db)", risk=Risk.LOW,
               params=Database,
               preconditions=["the database is pooled and paused"],
               rollback="PAUSE <db>",
               answers=(Remedy(resume_held, findings=("pgbouncer.database_paused",)),)),
    ActionSpec(id="pgbouncer.pause", title="Hold a database's clients and close its servers (PAUSE db)",
               risk=Risk.HIGH, params=Database,
               preconditions=["the database is pooled and not paused",
                              "its clients can wait (queries queue until RESUME)"],
               rollback="RESUME <db>"),
    ActionSpec(id="pgbouncer.kill", title="Drop every client and server connection of a database (KILL db)",
               risk=Risk.HIGH, params=Database,
               preconditions=["the database is pooled", "its applications reconnect after their connections drop",
                              "new clients wait until RESUME"],
               rollback="RESUME <db>"),
    ActionSpec(id="pgbouncer.reload", title="Reread the configuration file (RELOAD)", risk=Risk.MEDIUM,
               params=NoParams,
               preconditions=["the file on disk is the wanted configuration"],
               rollback="put the previous file back and RELOAD"),
)
