"""RabbitMQ through the whole pipeline: the consuming service of a queue dies while orders keep arriving (a real
rabbitmq-server node, a real AMQP consumer that goes away and a publisher that goes on) and becomes an incident
naming the RabbitMQ resource, a root-cause report ranking it first with the queue left without consumers, and a
proposal to cap that queue at its length so that it cannot grow into the memory alarm that blocks every
publisher."""

from __future__ import annotations

from kubestack.plugins.rabbitmq.client import path
from tests.services.pipeline import RHYTHM, Pipeline
from tests.services.rabbitmq import RabbitMQServer


async def test_a_queue_left_without_consumers_is_found_ranked_first_and_answered(
        pipeline: Pipeline, rabbitmq_server: RabbitMQServer, unique: str) -> None:
    server, queue = rabbitmq_server, f"payments-{unique}"
    target = {"type": "rabbitmq", "name": "mq", **RHYTHM,
              "config": server.config(idle_queue_min_messages=100)}
    consumer = server.amqp("payments-worker")
    consumer.queue_declare(queue)
    consumer.consume(queue, prefetch=10, no_ack=True)
    publisher = server.amqp("payments-api")

    def inject() -> None:
        consumer.close()  # the consuming service goes away ...
        publisher.publish(queue, b'{"amount": 12}', count=400)  # ... while payments keep coming

    def restore() -> None:
        publisher.close()
        with server.api() as api:
            api.delete(path("queues", "/", queue))
            api.delete(path("policies", "/", f"kubestack-max-length-{queue}"))

    async with pipeline.agent([target]) as resources:
        run = await pipeline.fault(resources["mq"], inject, restore, causes=("rabbitmq.no_consumers",),
                                   action="rabbitmq.set_queue_max_length")
    assert run.incident and run.ranked_first and run.proposals, pipeline.diagnosis()
    params = dict(run.proposals[0].params)
    assert 100 <= params.pop("max_length") <= 400  # what the queue held when the rule read it
    assert params == {"vhost": "/", "queue": queue, "overflow": "reject-publish"}
