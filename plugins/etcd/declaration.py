"""What the etcd plugin declares: its rules, the words that name it in a question, and its actions, each with its
risk, typed parameters and the signals it answers (``plugins/remedy.py``)."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import Field

from kubestack.contract.events import Risk
from kubestack.plugins.base import ActionParams, ActionSpec, Name, WholeNumber
from kubestack.plugins.remedy import Clue, Offer, Remedy

RULES = (
    # health
    "etcd.no_leader", "etcd.member_down", "etcd.leader_changes", "etcd.db_near_quota", "etcd.nospace_alarm",
    "etcd.corrupt_alarm", "etcd.db_fragmented", "etcd.slow_disk",
    # config risks
    "etcd.quota_lowered", "etcd.membership_changed", "etcd.tls_disabled", "etcd.version_changed",
)
SYMPTOMS = frozenset({"etcd.leader_changes"})
KEYWORDS = ("etcdctl", "raft", "键值存储")


class Defragment(ActionParams):
    member: Name = Field(description="The member's name as the member list shows it (etcdctl member list)")


class ReclaimSpace(ActionParams):
    retain_revisions: WholeNumber = Field(
        default=0, ge=0, le=100_000_000,
        description="Recent revisions the compaction keeps (0: only the current value of each key)")


def defragment_member(clue: Clue) -> Iterable[Offer]:
    member, size, in_use = (clue.evidence.get(k) for k in ("member", "db_size", "db_size_in_use"))
    if member and size and in_use is not None and int(in_use) < int(size):
        yield ({"member": member},
               f"defragment {member}: give the {int(size) - int(in_use)} bytes of free pages back to the disk and "
               "the quota (the member pauses while it rewrites its database)")


def reclaim(clue: Clue) -> Iterable[Offer]:
    if clue.evidence.get("db_size"):
        yield ({"retain_revisions": 0},
               "compact the key history to the current revision, defragment every member one at a time, then "
               "disarm NOSPACE once the database is below its quota: writes are accepted again")


ACTIONS = (
    ActionSpec(id="etcd.defragment", title="Defragment one member's database (maintenance defragment)",
               risk=Risk.LOW, params=Defragment,
               preconditions=["the member is in the member list and answers", "the cluster has a leader",
                              "no defragment is running on it",
                              "the other members that answer keep a quorum while it pauses"],
               rollback="none needed: defragmenting keeps every key and revision",
               answers=(Remedy(defragment_member, findings=("etcd.db_fragmented", "etcd.db_near_quota")),)),
    ActionSpec(id="etcd.reclaim_space",
               title="Compact the history, defragment every member and disarm NOSPACE (the etcd space quota recipe)",
               risk=Risk.MEDIUM, params=ReclaimSpace,
               preconditions=["the cluster has a leader", "every member answers (each is defragmented)",
                              "clients watching from a compacted revision re-list (Kubernetes does)",
                              "NOSPACE is disarmed only when every database ends below the quota's high ratio"],
               rollback="none: compacted revisions are gone (the current values of all keys are kept)",
               answers=(Remedy(reclaim, findings=("etcd.nospace_alarm", "etcd.db_near_quota")),)),
    ActionSpec(id="etcd.member_remove", title="Remove a member from the cluster", risk=Risk.FORBIDDEN,
               preconditions=["never automated: a wrong removal loses the quorum or the member's data"],
               rollback="add the member back and restore its data from a snapshot"),
)
