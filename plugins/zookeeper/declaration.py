"""What the ZooKeeper plugin declares: its rules, the words that name it in a question, and its actions.

The four-letter words cannot act on a server (no word closes a client's connections or expires a session), and a
``reconfig`` of the ensemble is too risky to automate. The one safe action is housekeeping on the server's disk: a
purge of old snapshots and transaction logs as ZooKeeper's own ``zkCleanup.sh`` does, through the target's runner
(this host, or the ZooKeeper host over SSH). It answers the data-directory rule; it cannot be undone (the files are
deleted), which is why it keeps at least three snapshots."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import Field

from kubestack.contract.events import Risk
from kubestack.plugins.base import ActionParams, ActionSpec, WholeNumber
from kubestack.plugins.remedy import Clue, Offer, Remedy

RULES = (
    # health
    "zookeeper.not_serving", "zookeeper.member_down", "zookeeper.outstanding_requests", "zookeeper.high_latency",
    "zookeeper.connections_near_limit", "zookeeper.connections_rejected", "zookeeper.session_expirations",
    "zookeeper.slow_fsync", "zookeeper.data_dir_large",
    # config risks
    "zookeeper.max_cnxns_lowered", "zookeeper.session_timeout_lowered", "zookeeper.ensemble_changed",
    "zookeeper.txnlog_shared",
)
SYMPTOMS = frozenset({"zookeeper.high_latency", "zookeeper.outstanding_requests", "zookeeper.session_expirations"})
KEYWORDS = ("zk", "zkcli", "quorum", "ephemeral", "分布式协调")


class PurgeSnapshots(ActionParams):
    keep: WholeNumber = Field(default=3, ge=3, le=1000,
                              description="Newest snapshots kept, with the transaction logs they need (3 at least)")


def purge_old(clue: Clue) -> Iterable[Offer]:
    if clue.evidence.get("bytes"):
        yield ({"keep": 3},
               f"delete all but the newest 3 snapshots and the transaction logs they do not need, in "
               f"{clue.evidence.get('dataDir')}, as zkCleanup.sh -n 3 does (turn on autopurge.snapRetainCount and "
               "autopurge.purgeInterval so that it does not come back)")


ACTIONS = (
    ActionSpec(id="zookeeper.purge_snapshots",
               title="Purge old snapshots and transaction logs (zkCleanup.sh -n KEEP)", risk=Risk.LOW,
               params=PurgeSnapshots,
               preconditions=["the server serves (its current snapshot and log are known good)",
                              "its dataDir and dataLogDir are readable where the target's commands run",
                              "more than KEEP snapshots exist", "KEEP is 3 or more"],
               rollback="none: deleted snapshots and logs are gone (the newest KEEP snapshots and every log after "
                        "the oldest of them stay, enough to restart)",
               answers=(Remedy(purge_old, findings=("zookeeper.data_dir_large",)),)),
    ActionSpec(id="zookeeper.reconfig_remove", title="Remove a member from the ensemble (reconfig -remove)",
               risk=Risk.FORBIDDEN,
               preconditions=["never automated: a wrong reconfig loses the quorum"],
               rollback="reconfig -add the member back"),
)
