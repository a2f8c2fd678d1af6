"""What the Redis plugin declares: its rules, the words that name it in a question, and its actions, each with its
risk, typed parameters and the signals it answers (``plugins/remedy.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from kubestack.contract.events import Risk
from kubestack.plugins.base import ActionParams, ActionSpec, WholeNumber, no_bool
from kubestack.plugins.agreement import AT_LEAST, Agreement, PeerAgreements, align
from kubestack.plugins.remedy import Clue, Offer, Remedy, undo

RULES = (
    # health
    "redis.no_maxmemory", "redis.noeviction_memory_high", "redis.volatile_policy_without_ttl",
    "redis.memory_near_limit", "redis.rdb_bgsave_failed", "redis.aof_write_failed", "redis.no_auth_exposed",
    "redis.high_fragmentation", "redis.blocked_clients", "redis.rejected_connections", "redis.slow_commands",
    "redis.runaway_client", "redis.replica_link_down", "redis.replica_lagging",
    # config risks
    "redis.maxmemory_lowered", "redis.eviction_policy_changed", "redis.persistence_disabled",
    "redis.replication_changed", "redis.peer_config_drift",
)
SYMPTOMS = frozenset({"redis.slow_commands", "redis.blocked_clients"})
KEYWORDS = ("缓存",)

Policy = Literal["noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu",
                 "volatile-random", "volatile-ttl"]
ADDR = r"^(\[[0-9A-Fa-f:.]+\]|[^\s\[\]]+):\d{1,5}$"
MEMORY_FULL = ("redis.memory_near_limit", "redis.noeviction_memory_high")
AGREEMENTS = PeerAgreements("redis.peer_config_drift", (
    Agreement("maxmemory", AT_LEAST, unlimited=("0",)), Agreement("maxmemory-policy")))
"""A replica holds what its primary holds: as much memory, and the same keys go when it is full."""


class SetMaxmemory(ActionParams):
    bytes: WholeNumber = Field(ge=0, description="New limit in bytes (0 = none)")


class SetMaxmemoryPolicy(ActionParams):
    policy: Policy = Field(description="The eviction policy")


class ClientKill(ActionParams):
    """Exactly one of ``client_id`` and ``addr``."""

    client_id: Annotated[int, Field(ge=1), BeforeValidator(no_bool)] | None = Field(
        default=None, description="The id from CLIENT LIST")
    addr: str | None = Field(default=None, pattern=ADDR,
                             description="ip:port as the slowlog and CLIENT LIST show it (e.g. 10.0.0.5:51234)")

    @model_validator(mode="after")
    def _one(self) -> ClientKill:
        if (self.client_id is None) == (self.addr is None):
            raise ValueError("give exactly one of 'client_id' (the id from CLIENT LIST) or 'addr' (ip:port as CLIENT "
                             "LIST shows it)")
        return self


def raise_maxmemory(clue: Clue) -> Iterable[Offer]:
    """Room to breathe: a quarter more memory, within what the preconditions allow."""
    if clue.evidence.get("maxmemory"):
        current = int(clue.evidence["maxmemory"])
        raised = int(current * 1.25)
        yield ({"bytes": str(raised)},
               f"raise maxmemory by a quarter, from {current} to {raised} bytes, if the host has the memory")


def evict_instead(clue: Clue) -> Iterable[Offer]:
    if clue.evidence.get("maxmemory") and clue.evidence.get("maxmemory_policy") == "noeviction":
        yield ({"policy": "allkeys-lru"},
               "let Redis evict the least recently used keys instead of refusing writes (a cache only)")


def slowest_client(clue: Clue) -> Iterable[Offer]:
    """The client that ran the slowest command the slowlog names."""
    entries = [e for e in clue.evidence.get("entries", []) if e.get("client")]
    if entries:
        worst = max(entries, key=lambda e: e.get("duration_us", 0))
        yield ({"addr": worst["client"]},
               f"disconnect {worst['client']}, which ran `{worst.get('command', '?')[:60]}` for "
               f"{worst.get('duration_us', 0) / 1e6:.1f}s and stalled every other client, if it is still connected")


ACTIONS = (
    ActionSpec(id="redis.set_maxmemory", title="Set maxmemory (CONFIG SET maxmemory)", risk=Risk.LOW,
               params=SetMaxmemory,
               preconditions=["the new limit is above used_memory, or the policy can evict",
                              "the host has that much memory free for Redis"],
               rollback="CONFIG SET maxmemory <previous value>",
               answers=(Remedy(undo("bytes"), changes=("maxmemory",)),
                        Remedy(raise_maxmemory, findings=MEMORY_FULL),
                        Remedy(align("bytes", settings=("maxmemory",)), findings=(AGREEMENTS.rule_id,)))),
    ActionSpec(id="redis.set_maxmemory_policy", title="Set the eviction policy (CONFIG SET maxmemory-policy)",
               risk=Risk.MEDIUM, params=SetMaxmemoryPolicy,
               preconditions=["the data set tolerates losing keys (a cache, not a primary store)"],
               rollback="CONFIG SET maxmemory-policy <previous value>",
               answers=(Remedy(undo("policy"), changes=("maxmemory-policy",)),
                        Remedy(evict_instead, findings=MEMORY_FULL),
                        Remedy(align("policy", settings=("maxmemory-policy",)), findings=(AGREEMENTS.rule_id,)))),
    ActionSpec(id="redis.client_kill", title="Disconnect a runaway client (CLIENT KILL ID)", risk=Risk.MEDIUM,
               params=ClientKill,
               preconditions=["the client is connected", "exactly one of client_id and addr is given",
                              "the client is not a replica or the primary link (flags without S/M)",
                              "it is not the plugin's own connection", "its application reconnects"],
               rollback="none: the client reconnects by itself",
               answers=(Remedy(slowest_client, findings=("redis.slow_commands",)),)),
    ActionSpec(id="redis.flushall", title="Delete every key of every database (FLUSHALL)", risk=Risk.FORBIDDEN,
               preconditions=["never automated: data loss cannot be rolled back"],
               rollback="restore from a backup"),
)
