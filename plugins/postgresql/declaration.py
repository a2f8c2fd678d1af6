"""What the PostgreSQL plugin declares: its rules, the words that name it in a question, and its actions, each with
its risk, typed parameters and the signals it answers (``plugins/remedy.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints, field_validator

from kubestack.contract.events import Risk
from kubestack.plugins.base import ActionParams, ActionSpec, Name, Number, WholeNumber
from kubestack.plugins.agreement import AT_LEAST, Agreement, PeerAgreements, align
from kubestack.plugins.remedy import Clue, Offer, Remedy, undo

RULES = (
    # health
    "postgresql.connections_near_max", "postgresql.long_transaction", "postgresql.idle_in_transaction",
    "postgresql.lock_wait", "postgresql.replica_lag", "postgresql.inactive_slot_retaining_wal",
    "postgresql.xid_age_high", "postgresql.low_cache_hit_ratio",
    # config risks
    "postgresql.max_connections_cut", "postgresql.durability_lowered", "postgresql.memory_cut",
    "postgresql.autovacuum_disabled", "postgresql.archiving_disabled", "postgresql.wal_level_lowered",
    "postgresql.replication_limit_lowered", "postgresql.peer_config_drift",
)
SYMPTOMS: frozenset[str] = frozenset()
AGREEMENTS = PeerAgreements("postgresql.peer_config_drift", tuple(
    Agreement(name, AT_LEAST) for name in ("max_connections", "max_worker_processes", "max_wal_senders",
                                           "max_prepared_transactions", "max_locks_per_transaction")))
"""A hot standby needs these at least as high as its primary's: lower, it pauses replay (or does not start)."""
KEYWORDS = ("postgres", "pg", "psql", "vacuum", "wal")

IDLE_SESSION_S = 300
"""Sessions idle this long are proposed for closing when connection slots run out (pools reconnect on demand)."""
FAILED_LOGIN = r'password authentication failed for user "(?P<name>[^"]+)"'
SETTING_NAME = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$"
RISKY_SETTINGS = ("max_connections", "fsync", "full_page_writes", "synchronous_commit", "wal_level", "archive_mode",
                  "shared_buffers", "work_mem", "autovacuum", "track_counts", "max_wal_senders", "max_replication_slots")
"""The settings whose risky change the config-risk rules report: what the setting actions undo."""
SETTINGS = RISKY_SETTINGS + ("idle_in_transaction_session_timeout", "idle_session_timeout",
                             "max_slot_wal_keep_size")
"""The only settings the setting actions change: the risky ones, and the timeouts and the slots' WAL limit their
runbooks suggest. Never one that runs a command on the database host (``archive_command``,
``ssl_passphrase_command``, ``restore_command``) or loads code (``shared_preload_libraries``,
``local_preload_libraries``)."""


def _as_text(value: Any) -> Any:
    """A setting's value as PostgreSQL reads it: booleans as on/off, numbers as written."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value) if isinstance(value, int | float) else value


class Backend(ActionParams):
    pid: WholeNumber = Field(ge=1, description="Backend pid, e.g. the blocking_pid (or blocked_pid) of a lock wait")


class IdleInTransaction(ActionParams):
    min_idle_s: Number = Field(ge=1, description="Only sessions idle in transaction at least this long, seconds")
    db: Name | None = Field(default=None, description="Limit to one database")


class IdleSessions(ActionParams):
    min_idle_s: Number = Field(ge=1, description="Only sessions idle (state 'idle') at least this long, seconds")
    user: Name | None = Field(default=None, description="Limit to one role")
    db: Name | None = Field(default=None, description="Limit to one database")


class Setting(ActionParams):
    name: Annotated[Name, StringConstraints(pattern=SETTING_NAME)] = Field(
        description=f"A pg_settings name, one of {', '.join(SETTINGS)}")

    @field_validator("name")
    @classmethod
    def _allowed(cls, name: str) -> str:
        if name.lower() not in SETTINGS:
            raise ValueError(f"{name} is not a setting these actions may change (only {', '.join(SETTINGS)})")
        return name.lower()


class SettingValue(Setting):
    value: Annotated[str, BeforeValidator(_as_text), StringConstraints(min_length=1, max_length=1024)] = Field(
        description="The new value as text, e.g. 64MB")


class Role(ActionParams):
    name: Name = Field(description="Role name, e.g. the user of failed password attempts")


def lock_holder(clue: Clue) -> Iterable[Offer]:
    if clue.evidence.get("blocking_pid"):
        pid = clue.evidence["blocking_pid"]
        yield {"pid": pid}, f"end backend {pid}, which holds the lock"


def idle_in_transaction(clue: Clue) -> Iterable[Offer]:
    states = clue.evidence.get("by_state", {})
    if states.get("idle in transaction"):
        yield ({"min_idle_s": "60"}, f"free the slots of {states['idle in transaction']} session(s) idle in a "
                                     "transaction for over a minute")


def idle_sessions(clue: Clue) -> Iterable[Offer]:
    states = clue.evidence.get("by_state", {})
    if states.get("idle"):
        yield ({"min_idle_s": str(IDLE_SESSION_S)},
               f"free the slots of sessions idle for over {IDLE_SESSION_S // 60} minutes ({states['idle']} idle "
               "now); connection pools reopen them on demand")


def larger_slot_wal_keep(clue: Clue) -> Iterable[Offer]:
    """A forecast that a slot will pass ``max_slot_wal_keep_size`` (its evidence: the slot and the limit in bytes):
    keep twice as much, so its consumer has time to catch up before the slot is invalidated."""
    limit = clue.evidence.get("capacity")
    if not isinstance(limit, int | float) or limit <= 0:
        return
    new_mb = int(limit // 2**20) * 2
    yield ({"name": "max_slot_wal_keep_size", "value": f"{new_mb}MB"},
           f"slot {clue.evidence.get('slot', '?')} may retain {new_mb} MB of WAL instead of {new_mb // 2} MB before it "
           f"is invalidated, so its consumer can catch up; pg_wal may grow by as much on disk")


def guessed_role(clue: Clue) -> Iterable[Offer]:
    if clue.match is not None:
        role = clue.match.group("name")
        yield ({"name": role},
               f"stop password guessing against role {role} (ALTER ROLE NOLOGIN); an application that still logs in "
               "as it is locked out too, so first check where the attempts come from")


ACTIONS = (
    ActionSpec(id="postgresql.cancel_backend", title="Cancel the running statement of one session "
               "(pg_cancel_backend)", risk=Risk.LOW, params=Backend,
               preconditions=["the session is a client backend, not a replication or system process",
                              "it runs a statement (state active)", "it is not the plugin's own session",
                              "it is not a superuser's session (unless the plugin's role is one)",
                              "the application tolerates a cancelled statement"],
               rollback="none: the statement is rolled back by the server; the client may rerun it"),
    ActionSpec(id="postgresql.terminate_backend", title="Close one session (pg_terminate_backend)",
               risk=Risk.MEDIUM, params=Backend,
               preconditions=["the session is a client backend, not a replication or system process",
                              "it is not the plugin's own session",
                              "it is not a superuser's session (unless the plugin's role is one)",
                              "its open transaction may be rolled back", "its application reconnects"],
               rollback="none: the application reconnects",
               answers=(Remedy(lock_holder, findings=("postgresql.lock_wait",)),)),
    ActionSpec(id="postgresql.terminate_idle_in_transaction",
               title="Close the sessions idle inside a transaction for too long", risk=Risk.MEDIUM,
               params=IdleInTransaction,
               preconditions=["at least one client session of a non-superuser is idle in transaction that long",
                              "never the plugin's own session, a superuser's, replication or background processes",
                              "their open transactions are rolled back", "their applications reconnect"],
               rollback="none; to prevent it: ALTER SYSTEM SET idle_in_transaction_session_timeout",
               answers=(Remedy(idle_in_transaction, findings=("postgresql.connections_near_max",)),)),
    ActionSpec(id="postgresql.terminate_idle_sessions", title="Close the client sessions idle for too long",
               risk=Risk.MEDIUM, params=IdleSessions,
               preconditions=["at least one client session of a non-superuser is idle that long",
                              "never the plugin's own session, a superuser's, replication or background processes",
                              "their applications reconnect (a pool may log errors)"],
               rollback="none: the applications reconnect; to prevent it: ALTER SYSTEM SET idle_session_timeout",
               answers=(Remedy(idle_sessions, findings=("postgresql.connections_near_max",)),)),
    ActionSpec(id="postgresql.alter_system_set", title="Change a server setting (ALTER SYSTEM SET; pg_reload_conf)",
               risk=Risk.HIGH, params=SettingValue,
               preconditions=["the setting exists and its context is sighup, user or superuser (postmaster ones "
                              "need a restart)", "it is not fixed on the command line (which wins over ALTER SYSTEM)",
                              "the value fits the setting's type, choices and bounds",
                              "the host has the memory or disk the new value implies"],
               rollback="ALTER SYSTEM SET <name> = <previous value>, or ALTER SYSTEM RESET <name> when it had none; "
                        "SELECT pg_reload_conf()",
               answers=(Remedy(undo("value", name_param="name"), changes=RISKY_SETTINGS),
                        Remedy(larger_slot_wal_keep, findings=("postgresql_slot_retained_wal_bytes exhaustion",)),
                        Remedy(align("value", name_param="name", settings=SETTINGS), findings=(AGREEMENTS.rule_id,)))),
    ActionSpec(id="postgresql.alter_system_reset", title="Drop a setting's ALTER SYSTEM value (ALTER SYSTEM RESET; "
               "pg_reload_conf)", risk=Risk.MEDIUM, params=Setting,
               preconditions=["the setting has a value in postgresql.auto.conf",
                              "its context is sighup, user or superuser"],
               rollback="ALTER SYSTEM SET <name> = <previous value>; SELECT pg_reload_conf()"),
    ActionSpec(id="postgresql.lock_role", title="Refuse new logins of one role (ALTER ROLE ... NOLOGIN)",
               risk=Risk.HIGH, params=Role,
               preconditions=["the role exists and can log in", "it is not a superuser",
                              "it is not the role the plugin is connected as",
                              "its applications may be refused new connections (open sessions stay)"],
               rollback="ALTER ROLE <name> LOGIN (postgresql.unlock_role)",
               answers=(Remedy(guessed_role, logs=(FAILED_LOGIN,)),)),
    ActionSpec(id="postgresql.unlock_role", title="Allow logins of one role again (ALTER ROLE ... LOGIN)",
               risk=Risk.MEDIUM, params=Role,
               preconditions=["the role exists and cannot log in"],
               rollback="ALTER ROLE <name> NOLOGIN (postgresql.lock_role)"),
)
