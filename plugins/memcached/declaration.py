"""What the Memcached plugin declares: its rules, the words that name it in a question, and its actions, each with
its risk, typed parameters and the signals it answers (``plugins/remedy.py``)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from pydantic import Field

from kubestack.contract.events import Risk
from kubestack.plugins.base import ActionParams, ActionSpec, NoParams, WholeNumber
from kubestack.plugins.remedy import Clue, Offer, Remedy

RULES = (
    # health
    "memcached.evictions", "memcached.out_of_memory", "memcached.items_too_large", "memcached.connections_near_max",
    "memcached.rejected_connections", "memcached.low_hit_ratio",
    # config risks
    "memcached.memory_limit_lowered", "memcached.maxconns_lowered", "memcached.evictions_disabled",
    "memcached.udp_enabled",
)
SYMPTOMS = frozenset({"memcached.low_hit_ratio"})
KEYWORDS = ("memcache",)
"""Not "缓存" (cache): Redis answers to it already, and a tie would go to the first name."""

MB = 1024 * 1024


class SetMemoryLimit(ActionParams):
    megabytes: WholeNumber = Field(ge=8, le=1024 * 1024, description="The new memory limit in megabytes (-m)")


def raise_by_a_quarter(clue: Clue) -> Iterable[Offer]:
    """A quarter more memory for a cache that evicts or refuses stores, if the host has it; for a low hit ratio only
    when it evicted in the same window (misses after a key format change or a restart need no memory)."""
    limit = clue.evidence.get("limit_maxbytes")
    if clue.rule == "memcached.low_hit_ratio" and not clue.evidence.get("evictions"):
        return
    if isinstance(limit, int) and limit > 0:
        current = math.ceil(limit / MB)
        raised = max(math.ceil(limit * 1.25 / MB), current + 1)
        yield ({"megabytes": raised},
               f"raise the memory limit by a quarter, from {current} to {raised} MB (cache_memlimit, at runtime), "
               "so that the working set fits again, if the host has the memory")


def undo_memory_limit(clue: Clue) -> Iterable[Offer]:
    old = clue.change.get("old")
    if clue.change.get("key") == "maxbytes" and isinstance(old, str) and old.isdigit() and int(old) >= 8 * MB:
        yield ({"megabytes": int(old) // MB},
               f"restore the memory limit to {int(old) // MB} MB (it was lowered to {clue.change.get('new')} bytes)")


ACTIONS = (
    ActionSpec(id="memcached.set_memory_limit", title="Set the memory limit at runtime (cache_memlimit)",
               risk=Risk.LOW, params=SetMemoryLimit,
               preconditions=["lowering: the new limit is not below the bytes stored now (nothing evicted by it)",
                              "raising: within memory_limit_max_mb when it is set, and the host has the memory free",
                              "the server accepts cache_memlimit (Memcached 1.4.x or later)"],
               rollback="cache_memlimit <previous megabytes>; a restart returns to -m as well",
               answers=(Remedy(raise_by_a_quarter, findings=("memcached.evictions", "memcached.out_of_memory",
                                                             "memcached.low_hit_ratio")),
                        Remedy(undo_memory_limit, changes=("maxbytes",)))),
    ActionSpec(id="memcached.flush_all", title="Invalidate every item (flush_all)", risk=Risk.FORBIDDEN,
               params=NoParams,
               preconditions=["never automated: every client misses at once and the backends take the whole load"],
               rollback="none: the cache refills from the backends"),
)
