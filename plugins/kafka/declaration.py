"""What the Kafka plugin declares: its rules, the words that name it in a question, and its actions with their risk
and typed parameters. None of them answers a signal (moving offsets or adding partitions is a decision about data
and keys that the evidence cannot make), so none is proposed; the plugin does not carry them out either (it has no
``execute``): they are the steps its runbooks describe for people."""

from __future__ import annotations

from pydantic import Field

from kubestack.contract.events import Risk
from kubestack.plugins.base import ActionParams, ActionSpec, Name, WholeNumber

RULES = ("kafka.under_replicated_partitions", "kafka.offline_partitions", "kafka.consumer_lag_high",
         "kafka.consumer_lag_growing", "kafka.group_inactive_with_lag")
SYMPTOMS: frozenset[str] = frozenset()
KEYWORDS = ("consumer group", "consumer lag", "broker", "topic", "partition", "消费", "分区")


class ResetOffsets(ActionParams):
    group: Name = Field(description="Consumer group")
    topic: str = Field(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$", description="Topic")
    to: str = Field(min_length=1, description="latest | earliest | <ISO time> | <offset>")
    partitions: list[WholeNumber] | None = Field(default=None, description="Partitions (default all)")


class AddPartitions(ActionParams):
    topic: str = Field(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$", description="Topic")
    count: WholeNumber = Field(ge=2, description="New total partition count (greater than now)")


ACTIONS = (
    ActionSpec(id="kafka.reset_offsets", title="Move a consumer group's committed offsets (to latest, earliest, a "
               "time or an offset)", risk=Risk.HIGH, params=ResetOffsets,
               preconditions=["the group has no active member (stop its consumers first)",
                              "skipping or replaying those messages is acceptable to its owners"],
               rollback="reset again to the offsets recorded before the change (kept in the action's output)"),
    ActionSpec(id="kafka.add_partitions", title="Add partitions to a topic (CreatePartitions)", risk=Risk.MEDIUM,
               params=AddPartitions,
               preconditions=["producers do not rely on key → partition mapping staying the same",
                              "brokers have disk and file handles for the new partitions"],
               rollback="none: partitions cannot be removed; recreate the topic to go back"),
)
