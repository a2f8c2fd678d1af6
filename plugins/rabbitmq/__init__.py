"""RabbitMQ: the management HTTP API's node, queue, connection and channel figures, the policy and user snapshot,
health rules, and safe actions (a queue length cap through a policy, closing one connection)."""

from kubestack.plugins.rabbitmq.config import RabbitMQConfig
from kubestack.plugins.rabbitmq.plugin import RabbitMQPlugin

__all__ = ["RabbitMQConfig", "RabbitMQPlugin"]
