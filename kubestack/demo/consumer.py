"""``order-writer``: consumes the shop's order events from Kafka and writes each to PostgreSQL (``order_events``),
committing its offsets only after the write. Metrics at ``/metrics`` on its own port: ``demo_events_total`` by
status (ok, error), ``demo_event_duration_seconds`` and ``demo_consumer_lag``."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import psycopg
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kubestack.demo.config import DemoConfig
from kubestack.demo.deps import PostgresPool, peers_of
from kubestack.demo.metrics import PartMetrics

log = logging.getLogger(__name__)

EVENTS, EVENT_LATENCY = "demo_events_total", "demo_event_duration_seconds"


class OrderWriter:
    def __init__(self, config: DemoConfig) -> None:
        self.config = config
        self.metrics = PartMetrics(EVENTS, EVENT_LATENCY, peers_of(config, "kafka", "postgresql"))
        self.postgres = PostgresPool(config.postgresql, 1, config.pool_lifetime_s, config.timeout_s)

    async def _write(self, event: dict) -> None:
        """The event recorded and its reservation turned into a sale, in one transaction."""
        async with self.postgres.connection() as conn, conn.transaction():
            await conn.execute("INSERT INTO order_events (order_id, product_id, qty) VALUES (%s, %s, %s)",
                               (event["order_id"], int(event["product"]), int(event["qty"])))
            await conn.execute("UPDATE stock SET qty = qty - %s, reserved = reserved - %s WHERE product_id = %s",
                               (int(event["qty"]), int(event["qty"]), int(event["product"])))

    async def handle(self, value: bytes) -> None:
        """One event, retried until PostgreSQL takes it (an event is never dropped)."""
        event = json.loads(value)
        while True:
            started = time.monotonic()
            try:
                await asyncio.wait_for(self._write(event), self.config.timeout_s + 1)
            except (psycopg.Error, OSError, TimeoutError) as exc:
                self.metrics.requests.labels("order-event", "error").inc()
                self.metrics.dependency_errors.labels("postgresql").inc()
                log.debug("order event not written: %s", exc)
                await asyncio.sleep(0.5)
                continue
            finally:
                self.metrics.latency.labels("order-event").observe(time.monotonic() - started)
            self.metrics.requests.labels("order-event", "ok").inc()
            return

    async def _round(self, consumer: AIOKafkaConsumer) -> None:
        batches = await consumer.getmany(timeout_ms=500, max_records=100)
        for records in batches.values():
            for record in records:
                await self.handle(record.value)
        if batches:
            await consumer.commit()  # after the writes: an event is written at least once
        lag = 0
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is not None:
                lag += max(0, high - await consumer.position(tp))
        self.metrics.lag.set(lag)

    async def run(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(self.config.topic, bootstrap_servers=self.config.kafka_bootstrap,
                                    group_id=self.config.group, enable_auto_commit=False,
                                    auto_offset_reset="earliest", client_id="kubestack-demo-order-writer")
        while not stop.is_set():
            try:
                await consumer.start()
                break
            except Exception as exc:
                log.warning("Kafka at %s not ready: %s", self.config.kafka_bootstrap, exc)
                await asyncio.sleep(1)
        try:
            while not stop.is_set():
                try:
                    await self._round(consumer)
                except KafkaError as exc:  # a broker away (paused, restarting): the next round retries
                    log.warning("consuming %s: %s", self.config.topic, exc)
                    await asyncio.sleep(1)
        finally:
            await consumer.stop()
            await self.postgres.close()


def serve(config: DemoConfig) -> None:
    async def main() -> None:
        writer = OrderWriter(config)
        app = web.Application()

        async def metrics(request: web.Request) -> web.Response:
            return web.Response(body=generate_latest(writer.metrics.registry),
                                headers={"Content-Type": CONTENT_TYPE_LATEST})

        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, config.app_host, config.consumer_metrics_port).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await writer.run(stop)
        finally:
            await runner.cleanup()

    asyncio.run(main())
