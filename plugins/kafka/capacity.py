"""Kafka series that fill up towards a limit: a consumer group's unconsumed records against what retention keeps
(see ``retention.py``). Reaching either limit, the records the group has not read yet are deleted."""

from kubestack.plugins.base import Capacity

LOSS = "group {group} on {topic} will lose unconsumed records (partition {partition}, {limit})"

CAPACITIES = (
    Capacity(used="kafka_consumer_group_lag_seconds", limit="kafka_topic_retention_seconds", match_labels=("topic",),
             title="unconsumed records against retention.ms", outcome=LOSS.replace("{limit}", "retention.ms")),
    Capacity(used="kafka_consumer_group_lag_bytes", limit="kafka_topic_retention_bytes", match_labels=("topic",),
             title="unconsumed records against retention.bytes", outcome=LOSS.replace("{limit}", "retention.bytes")),
)
