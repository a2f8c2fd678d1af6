"""``shop``: the demo's HTTP service. ``GET /products/{id}`` reads through the Redis cache to PostgreSQL;
``POST /orders`` reserves stock in PostgreSQL, writes the order to MariaDB and publishes it to Kafka. A dependency
that fails or answers late makes the request a 503 (a cache that fails only costs the database a read). Metrics at
``/metrics``: ``http_requests_total``, ``http_request_duration_seconds`` and the ``demo_*`` series."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

import psycopg
import pymysql
import redis.asyncio as aioredis
from aiohttp import web
from aiokafka import AIOKafkaProducer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kubestack.demo.config import DemoConfig
from kubestack.demo.deps import MariadbPool, PostgresPool, peers_of
from kubestack.demo.metrics import PartMetrics

log = logging.getLogger(__name__)

REQUESTS, LATENCY = "http_requests_total", "http_request_duration_seconds"
PRODUCT_QUERY = ("SELECT p.page FROM products p, LATERAL (SELECT count(*) FROM generate_series(1, %s)) work "
                 "WHERE p.id = %s")
"""A product page as the database builds it: its work (``db_read_cost`` rows aggregated, the page's related items
and ratings) is what makes the cache worth having."""


class DependencyError(Exception):
    """A dependency failed or answered late: the request gets a 503 naming it."""


class Shop:
    def __init__(self, config: DemoConfig) -> None:
        self.config = config
        self.metrics = PartMetrics(REQUESTS, LATENCY, peers_of(config, "redis", "postgresql", "mariadb", "kafka"))
        self.cache = aioredis.Redis(host=config.redis.host, port=config.redis.port,
                                    password=config.redis.password.get_secret_value() or None,
                                    socket_timeout=config.timeout_s, socket_connect_timeout=config.timeout_s)
        self.postgres = PostgresPool(config.postgresql, config.pool_size, config.pool_lifetime_s, config.timeout_s)
        self.mariadb = MariadbPool(config.mariadb, config.pool_size, config.timeout_s)
        self.producer: AIOKafkaProducer | None = None
        self._producer_task: asyncio.Task | None = None

    async def _start_producer(self) -> None:
        """Keeps trying until the broker answers: the shop serves reads meanwhile."""
        while True:
            producer = AIOKafkaProducer(bootstrap_servers=self.config.kafka_bootstrap, acks=1,
                                        request_timeout_ms=int(self.config.timeout_s * 1000) + 1000,
                                        client_id="kubestack-demo-shop")
            try:
                await producer.start()
            except Exception as exc:
                log.warning("Kafka at %s not ready: %s", self.config.kafka_bootstrap, exc)
                await producer.stop()
                await asyncio.sleep(1)
                continue
            self.producer = producer
            return

    async def _call(self, dependency: str, operation):
        started = time.monotonic()
        try:
            return await asyncio.wait_for(operation, self.config.timeout_s + 0.5)
        except Exception as exc:
            self.metrics.dependency_errors.labels(dependency).inc()
            raise DependencyError(f"{dependency}: {type(exc).__name__}: {str(exc)[:200]}") from exc
        finally:
            self.metrics.dependency_latency.labels(dependency).observe(time.monotonic() - started)

    async def _read_product(self, product: int) -> str | None:
        async with self.postgres.connection() as conn:
            row = await (await conn.execute(PRODUCT_QUERY, (self.config.db_read_cost, product))).fetchone()
        return row[0] if row else None

    async def product(self, product: int) -> str | None:
        key = f"product:{product}"
        try:
            page = await self._call("redis", self.cache.get(key))
        except DependencyError as exc:
            log.debug("cache read failed: %s", exc)
            self.metrics.cache.labels("error").inc()
            page = None
        else:
            self.metrics.cache.labels("hit" if page is not None else "miss").inc()
            if page is not None:
                return page.decode()
        page = await self._call("postgresql", self._read_product(product))
        if page is not None:
            try:
                await self._call("redis", self.cache.set(key, page, ex=self.config.cache_ttl_s))
            except DependencyError as exc:
                log.debug("cache write failed: %s", exc)
        return page

    async def order(self, product: int, qty: int) -> str:
        """The product's inventory row in MariaDB, its stock reservation in PostgreSQL, the order row in MariaDB,
        the event to Kafka; both transactions are committed only once the event is out. So a slow step holds the
        row locks of the steps before it, and one slow dependency shows up as lock waits in the others (as it does
        in many real services)."""
        order_id = uuid.uuid4().hex
        event = json.dumps({"order_id": order_id, "product": product, "qty": qty}).encode()
        try:
            async with self.mariadb.transaction() as tx:
                await self._call("mariadb", tx.execute(
                    ("UPDATE inventory SET sold = sold + %s WHERE product_id = %s", (qty, product))))
                async with self.postgres.connection() as pg, pg.transaction():
                    reserved = await self._call("postgresql", pg.execute(
                        "UPDATE stock SET reserved = reserved + %s WHERE product_id = %s", (qty, product)))
                    if not reserved.rowcount:
                        raise LookupError(product)
                    await self._call("mariadb", tx.execute(
                        ("INSERT INTO orders (order_id, product_id, qty) VALUES (%s, %s, %s)",
                         (order_id, product, qty))))
                    if self.producer is None:
                        raise DependencyError("kafka: the producer is not connected yet")
                    await self._call("kafka", self.producer.send_and_wait(self.config.topic, event,
                                                                          key=str(product).encode()))
        except psycopg.Error as exc:  # connecting, committing or rolling back
            self.metrics.dependency_errors.labels("postgresql").inc()
            raise DependencyError(f"postgresql: {type(exc).__name__}: {str(exc)[:200]}") from exc
        except pymysql.Error as exc:
            self.metrics.dependency_errors.labels("mariadb").inc()
            raise DependencyError(f"mariadb: {type(exc).__name__}: {str(exc)[:200]}") from exc
        return order_id

    async def close(self) -> None:
        if self._producer_task is not None:
            self._producer_task.cancel()
        if self.producer is not None:
            await self.producer.stop()
        await self.cache.aclose()
        await self.postgres.close()
        await self.mariadb.close()


def _timed(route: str):
    def wrap(handler):
        async def timed(request: web.Request) -> web.Response:
            shop: Shop = request.app["shop"]
            started = time.monotonic()
            try:
                response = await handler(shop, request)
            except DependencyError as exc:
                response = web.json_response({"error": str(exc)}, status=503)
            except (ValueError, KeyError) as exc:
                response = web.json_response({"error": f"bad request: {exc}"}, status=400)
            except Exception as exc:  # counted like any answer: a bug shows in the error ratio too
                log.exception("%s failed", route)
                response = web.json_response({"error": f"{type(exc).__name__}"}, status=500)
            shop.metrics.requests.labels(route, str(response.status)).inc()
            shop.metrics.latency.labels(route).observe(time.monotonic() - started)
            return response
        return timed
    return wrap


@_timed("product")
async def get_product(shop: Shop, request: web.Request) -> web.Response:
    product = int(request.match_info["id"])
    page = await shop.product(product)
    if page is None:
        return web.json_response({"error": f"no product {product}"}, status=404)
    return web.json_response({"id": product, "page": page[:64]})


@_timed("order")
async def post_order(shop: Shop, request: web.Request) -> web.Response:
    body = await request.json()
    product, qty = int(body["product"]), int(body.get("qty", 1))
    if not 1 <= qty <= 100:
        raise ValueError(f"qty must be 1..100, not {qty}")
    try:
        order_id = await shop.order(product, qty)
    except LookupError:
        return web.json_response({"error": f"no product {product}"}, status=404)
    return web.json_response({"order_id": order_id}, status=201)


async def metrics(request: web.Request) -> web.Response:
    shop: Shop = request.app["shop"]
    return web.Response(body=generate_latest(shop.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def create_app(config: DemoConfig) -> web.Application:
    app = web.Application()
    app.router.add_get("/products/{id}", get_product)
    app.router.add_post("/orders", post_order)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)

    async def lifecycle(app: web.Application):
        shop = Shop(config)
        shop._producer_task = asyncio.create_task(shop._start_producer(), name="demo-producer")
        app["shop"] = shop
        yield
        await shop.close()

    app.cleanup_ctx.append(lifecycle)
    return app


def serve(config: DemoConfig) -> None:
    web.run_app(create_app(config), host=config.app_host, port=config.app_port, print=None,
                access_log=None, handle_signals=True)
