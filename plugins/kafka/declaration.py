"""What the Kafka plugin declares: its rules, the words that name it in a question, and its actions with their risk
and typed parameters. Raising a topic's retention answers a forecast that a consumer group will lose unconsumed
records (the evidence names the topic and its limit); a broker whose ``min.insync.replicas`` differs from the other
brokers' is given theirs (the drift's evidence names the broker, the setting and the value); moving offsets or adding partitions is a decision about data
and keys that the evidence cannot make, so neither is proposed. The plugin carries out the broker and retention changes and
adding partitions (``actions.py``); moving offsets stays a step its runbooks describe for people."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal, get_args

from pydantic import Field, model_validator

from kubestack.contract.events import Risk
from kubestack.plugins.base import ActionParams, ActionSpec, Name, WholeNumber
from kubestack.plugins.agreement import Agreement, PeerAgreements
from kubestack.plugins.remedy import Clue, Offer, Remedy

RULES = ("kafka.under_replicated_partitions", "kafka.offline_partitions", "kafka.consumer_lag_high",
         "kafka.consumer_lag_growing", "kafka.group_inactive_with_lag", "kafka.broker_config_drift")
SYMPTOMS: frozenset[str] = frozenset()
KEYWORDS = ("consumer group", "consumer lag", "broker", "topic", "partition", "消费", "分区")
AGREEMENTS = PeerAgreements("kafka.broker_config_drift", (Agreement("min.insync.replicas"),
                                                          Agreement("default.replication.factor"),
                                                          Agreement("message.max.bytes")),
                            members=r"^broker\.(?P<member>[^.]+)\.(?P<setting>.+)$")
"""The brokers of one cluster (``broker.<id>.<setting>`` in its snapshot) apply the same durability defaults and
the same largest record batch (a producer's batch that one leader takes is refused by another:
``RecordTooLargeException`` on some partitions only)."""


BrokerSetting = Literal["min.insync.replicas", "message.max.bytes"]
"""The agreed-on settings a broker takes as a per-broker dynamic override (``default.replication.factor`` is
read-only on a running broker: aligning it is a restart with an edited server.properties, which the runbook says)."""


class SetBrokerConfig(ActionParams):
    broker: WholeNumber = Field(ge=0, description="Broker id (node.id)")
    setting: BrokerSetting = Field(description="The setting the brokers must agree on")
    value: WholeNumber | None = Field(default=None, ge=1, description=(
        "New per-broker value; none removes the broker's override (it takes the cluster-wide value again)"))


def align_broker(clue: Clue) -> Iterable[Offer]:
    """A broker that differs from the others (``member`` drifts of ``kafka.broker_config_drift``) gets what the
    others hold, as a per-broker override."""
    for drift in clue.evidence.get("drifts", []):
        member, setting, value = drift.get("member"), drift.get("setting"), drift.get("peer_value")
        if (drift.get("side") != "member" or setting not in get_args(BrokerSetting) or not str(member).isdigit()
                or not str(value).isdigit()):
            continue
        yield ({"broker": int(member), "setting": setting, "value": int(value)},
               f"set {setting} on broker {member} to {value} as on the other brokers (it is {drift.get('value')} "
               f"there): a partition led by that broker accepts acks=all writes with fewer in-sync copies")


class ResetOffsets(ActionParams):
    group: Name = Field(description="Consumer group")
    topic: str = Field(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$", description="Topic")
    to: str = Field(min_length=1, description="latest | earliest | <ISO time> | <offset>")
    partitions: list[WholeNumber] | None = Field(default=None, description="Partitions (default all)")


class AddPartitions(ActionParams):
    topic: str = Field(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$", description="Topic")
    count: WholeNumber = Field(ge=2, description="New total partition count (greater than now)")


DAY_MS = 86_400_000
RETENTION_MS_MAX = 365 * DAY_MS


class SetTopicRetention(ActionParams):
    topic: str = Field(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$", description="Topic")
    retention_ms: WholeNumber | None = Field(default=None, ge=60_000, le=RETENTION_MS_MAX,
                                             description="New retention.ms (1 min to 365 days)")
    retention_bytes: WholeNumber | None = Field(default=None, ge=1_048_576,
                                                description="New retention.bytes per partition (at least 1 MiB)")

    @model_validator(mode="after")
    def _one_at_least(self) -> SetTopicRetention:
        if self.retention_ms is None and self.retention_bytes is None:
            raise ValueError("give retention_ms, retention_bytes or both")
        return self


RETENTION_FACTOR = 2
"""A retention forecast is answered by keeping records this many times as long (or as many bytes)."""


def _longer_retention(param: str, setting: str, per: float) -> Callable[[Clue], Iterable[Offer]]:
    def derive(clue: Clue) -> Iterable[Offer]:
        topic, limit = clue.evidence.get("topic"), clue.evidence.get("capacity")
        if not topic or not isinstance(limit, int | float) or limit <= 0:
            return
        new = min(int(limit * per * RETENTION_FACTOR), RETENTION_MS_MAX if param == "retention_ms" else 2**62)
        who = f"group {clue.evidence['group']}" if clue.evidence.get("group") else "its consumers"
        yield ({"topic": topic, param: new},
               f"{topic} keeps records {RETENTION_FACTOR}x as long ({setting} {int(limit * per)} → {new}), so {who} "
               f"can catch up before they are deleted; the brokers need about {RETENTION_FACTOR}x its disk")
    return derive


ACTIONS = (
    ActionSpec(id="kafka.set_broker_config", title="Set one broker's per-broker dynamic config (AlterConfigs on the "
               "broker)", risk=Risk.MEDIUM, params=SetBrokerConfig,
               preconditions=["the broker is in the cluster",
                              "the cluster runs without eligible leader replicas (Kafka 4 enables ELR by default "
                              "and then refuses a broker-level min.insync.replicas)",
                              "the broker has no sensitive per-broker override (AlterConfigs replaces them all and "
                              "a sensitive value cannot be read back)"],
               rollback="set the previous per-broker value again, or remove the override when there was none (the "
                        "action's undo)",
               answers=(Remedy(align_broker, findings=(AGREEMENTS.rule_id,)),)),
    ActionSpec(id="kafka.set_topic_retention", title="Set a topic's retention.ms / retention.bytes (AlterConfigs)",
               risk=Risk.MEDIUM, params=SetTopicRetention,
               preconditions=["the topic exists and its cleanup.policy includes delete",
                              "the brokers' disks hold the partitions for the longer retention"],
               rollback="set the previous values again (the action's undo; an inherited value comes back as an "
                        "override of the same value)",
               answers=(Remedy(_longer_retention("retention_ms", "retention.ms", 1000),
                               findings=("kafka_consumer_group_lag_seconds exhaustion",)),
                        Remedy(_longer_retention("retention_bytes", "retention.bytes", 1),
                               findings=("kafka_consumer_group_lag_bytes exhaustion",)))),
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
