"""What the Sentinel plugin declares: its rules, the words that name it in a question, and its actions, each with
its risk, typed parameters and the signals it answers (``plugins/remedy.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import Field

from kubestack.contract.events import Risk
from kubestack.plugins.base import ActionParams, ActionSpec, WholeNumber
from kubestack.plugins.remedy import Clue, Offer, Remedy

RULES = (
    # health
    "sentinel.failover_happened", "sentinel.primary_down", "sentinel.quorum_unreachable",
    "sentinel.too_few_replicas", "sentinel.too_few_sentinels", "sentinel.tilt",
    # config risks
    "sentinel.down_after_changed", "sentinel.quorum_changed", "sentinel.failover_timeout_lowered",
    "sentinel.primary_switched",
)
SYMPTOMS = frozenset({"sentinel.failover_happened"})
KEYWORDS = ("redis-sentinel", "failover", "哨兵", "主从切换")

MASTER_NAME = r"^[A-Za-z0-9_.:-]{1,64}$"
Setting = Literal["down-after-milliseconds", "quorum", "failover-timeout", "parallel-syncs"]


class Master(ActionParams):
    master: str = Field(pattern=MASTER_NAME, description="The monitored primary's name (SENTINEL MASTERS name)")


class SetOption(ActionParams):
    master: str = Field(pattern=MASTER_NAME, description="The monitored primary's name (SENTINEL MASTERS name)")
    option: Setting = Field(description="The setting SENTINEL SET changes")
    value: WholeNumber = Field(ge=1, le=86_400_000, description="Its new value (milliseconds, or a count)")


def fail_over(clue: Clue) -> Iterable[Offer]:
    """Only when this sentinel alone sees the primary down: with o_down the sentinels fail over by themselves."""
    flags = clue.evidence.get("flags", [])
    if clue.evidence.get("master") and "o_down" not in flags and clue.evidence.get("healthy_replicas"):
        yield ({"master": clue.evidence["master"]},
               f"promote a healthy replica of {clue.evidence['master']} now, without waiting for the quorum to "
               "agree that the primary is down")


def restore_setting(clue: Clue) -> Iterable[Offer]:
    primary, _, setting = str(clue.change.get("key", "")).rpartition(".")
    old = clue.change.get("old")
    if primary and setting in Setting.__args__ and old not in (None, ""):
        yield ({"master": primary, "option": setting, "value": old},
               f"set {setting} of {primary} back to {old} (it was changed to {clue.change.get('new')})")


ACTIONS = (
    ActionSpec(id="sentinel.failover", title="Fail over a primary now (SENTINEL FAILOVER)", risk=Risk.HIGH,
               params=Master,
               preconditions=["the primary is monitored by this sentinel and no failover is in progress",
                              "SENTINEL CKQUORUM says the quorum can be reached",
                              "at least one replica is healthy: reachable, linked, priority above 0"],
               rollback="none: a later SENTINEL FAILOVER moves the primary again, to whichever replica is best then",
               answers=(Remedy(fail_over, findings=("sentinel.primary_down",)),)),
    ActionSpec(id="sentinel.reset", title="Forget a primary's replicas and sentinels and rediscover them "
                                          "(SENTINEL RESET)", risk=Risk.MEDIUM, params=Master,
               preconditions=["the primary is monitored and no failover is in progress",
                              "the other sentinels are up (they are rediscovered within seconds)"],
               rollback="none needed: live replicas and sentinels are found again by their hello messages"),
    ActionSpec(id="sentinel.set", title="Change a monitoring setting (SENTINEL SET)", risk=Risk.LOW,
               params=SetOption,
               preconditions=["the primary is monitored by this sentinel",
                              "a quorum is not above the sentinels that know the primary"],
               rollback="SENTINEL SET <master> <option> <previous value>",
               answers=(Remedy(restore_setting, changes=("*",)),)),
    ActionSpec(id="sentinel.remove", title="Stop monitoring a primary (SENTINEL REMOVE)", risk=Risk.FORBIDDEN,
               preconditions=["never automated: nothing would fail the primary over any more"],
               rollback="SENTINEL MONITOR <master> <ip> <port> <quorum> and its settings again"),
)
