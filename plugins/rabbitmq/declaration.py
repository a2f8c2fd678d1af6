"""What the RabbitMQ plugin declares: its rules, the words that name it in a question, and its actions, each with
its risk, typed parameters and the signals it answers (``plugins/remedy.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from kubestack.contract.events import Risk
from kubestack.plugins.base import ActionParams, ActionSpec, WholeNumber
from kubestack.plugins.remedy import Clue, Offer, Remedy

RULES = (
    # health
    "rabbitmq.queue_backlog", "rabbitmq.no_consumers", "rabbitmq.unacked_messages", "rabbitmq.memory_alarm",
    "rabbitmq.memory_near_watermark", "rabbitmq.disk_alarm", "rabbitmq.blocked_publishers",
    "rabbitmq.connection_churn",
    # config risks
    "rabbitmq.memory_watermark_lowered", "rabbitmq.disk_limit_lowered", "rabbitmq.queue_limit_removed",
    "rabbitmq.admin_granted",
)
SYMPTOMS = frozenset({"rabbitmq.blocked_publishers", "rabbitmq.queue_backlog"})
KEYWORDS = ("rabbit", "amqp", "消息队列", "队列")

POLICY_PREFIX = "kubestack-max-length-"
"""The policies the length cap writes: one per queue, named after it, so that it can be found and undone."""

Text = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f]+$")]
Overflow = Literal["reject-publish", "drop-head"]


class QueueRef(ActionParams):
    vhost: Text = Field(default="/", description="The virtual host of the queue")
    queue: Text = Field(description="The queue's name")


class SetQueueMaxLength(QueueRef):
    max_length: WholeNumber = Field(ge=1, le=2**31 - 1, description="Most messages the queue may hold")
    overflow: Overflow = Field(
        default="reject-publish",
        description="What happens at the cap: reject-publish refuses new messages (publishers with confirms get a "
                    "nack; nothing held is lost), drop-head drops the oldest")


class CloseConnection(ActionParams):
    connection: Text = Field(description="The connection's name as the API shows it "
                                         "(e.g. '10.0.0.5:51234 -> 10.0.0.9:5672')")
    reason: str = Field(default="closed by KubeStack-AI", max_length=200,
                        description="Shown to the client in its connection.close")


def cap_at_current(clue: Clue) -> Iterable[Offer]:
    """Stop the fullest queue from growing: cap it at what it holds now, refusing new publishes over that."""
    vhost, queue, messages = clue.evidence.get("vhost"), clue.evidence.get("queue"), clue.evidence.get("messages")
    if isinstance(queue, str) and isinstance(messages, int) and messages > 0:
        yield ({"vhost": vhost or "/", "queue": queue, "max_length": messages, "overflow": "reject-publish"},
               f"cap queue {queue!r} at the {messages} messages it holds (reject-publish): it stops growing towards "
               "the memory and disk alarms, which would block every publisher; nothing it holds is dropped, "
               "publishers of that queue get refusals until its consumers catch up")


def stuck_consumer(clue: Clue) -> Iterable[Offer]:
    """Close the connection whose channel holds the most unacknowledged deliveries: they go back to the queue."""
    connection = clue.evidence.get("connection")
    if isinstance(connection, str) and connection:
        channels = clue.evidence.get("channels") or [{}]
        held = channels[0].get("messages_unacknowledged", "its")
        yield ({"connection": connection, "reason": "holding unacknowledged deliveries; closed by KubeStack-AI"},
               f"close {connection}, which holds {held} unacknowledged deliveries: they are requeued for the other "
               "consumers, and the client reconnects")


ACTIONS = (
    ActionSpec(id="rabbitmq.set_queue_max_length", title="Cap a queue's length (a policy with max-length)",
               risk=Risk.MEDIUM, params=SetQueueMaxLength,
               preconditions=["the queue exists and is not a stream",
                              "the policy keeps every key of the queue's current policy (dead-lettering, TTLs, ...)",
                              "with drop-head, the cap is not below what the queue holds now (nothing dropped now)",
                              "its publishers handle refusals (publisher confirms) or tolerate losing new messages"],
               rollback="delete the policy (rabbitmq.clear_queue_max_length), or set the previous cap again",
               answers=(Remedy(cap_at_current, findings=("rabbitmq.queue_backlog", "rabbitmq.no_consumers",
                                                         "rabbitmq.memory_alarm", "rabbitmq.disk_alarm",
                                                         "rabbitmq.memory_near_watermark")),)),
    ActionSpec(id="rabbitmq.clear_queue_max_length", title="Remove a queue's length cap set by KubeStack-AI",
               risk=Risk.LOW, params=QueueRef,
               preconditions=[f"the policy {POLICY_PREFIX}<queue> exists on the vhost"],
               rollback="set the cap again (rabbitmq.set_queue_max_length with the previous values)"),
    ActionSpec(id="rabbitmq.close_connection", title="Close one client connection", risk=Risk.MEDIUM,
               params=CloseConnection,
               preconditions=["the connection is open", "it is not a federation or shovel link",
                              "its application reconnects"],
               rollback="none: the client reconnects by itself; its unacknowledged deliveries were requeued",
               answers=(Remedy(stuck_consumer, findings=("rabbitmq.unacked_messages",)),)),
    ActionSpec(id="rabbitmq.purge_queue", title="Delete every ready message of a queue (purge)", risk=Risk.FORBIDDEN,
               params=QueueRef, preconditions=["never automated: purged messages cannot be brought back"],
               rollback="none: the messages are gone"),
)
