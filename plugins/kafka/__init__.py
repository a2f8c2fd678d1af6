"""Kafka: brokers, under-replicated and offline partitions, consumer group lag, broker configs, health rules and
safe actions."""

from kubestack.plugins.kafka.config import KafkaPluginConfig
from kubestack.plugins.kafka.plugin import KafkaPlugin

__all__ = ["KafkaPlugin", "KafkaPluginConfig"]
