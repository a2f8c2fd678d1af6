"""PgBouncer through the whole pipeline: a pool whose every server connection is held while another client queues
(a real PgBouncer in front of the session PostgreSQL) becomes an incident naming the PgBouncer resource, a root-cause
report ranking it first with the exhausted pool, and a proposal to raise the pool size."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg

from tests.services.pgbouncer import POOL_SIZE, PgBouncerServer
from tests.services.pipeline import RHYTHM, Pipeline


async def _client(server: PgBouncerServer) -> psycopg.AsyncConnection:
    return await psycopg.AsyncConnection.connect(host=server.host, port=server.port, dbname="shop",
                                                 user=server.app_user, password=server.app_password, autocommit=True)


async def test_an_exhausted_pool_is_found_ranked_first_and_answered(pipeline: Pipeline,
                                                                     pgbouncer_server: PgBouncerServer) -> None:
    server = pgbouncer_server
    target = {"type": "pgbouncer", "name": "pool", **RHYTHM,
              "config": {"host": server.host, "port": server.port, "user": server.admin_user,
                         "password": {"value": server.admin_password}, "wait_max_s": 0.5}}
    held: list[psycopg.AsyncConnection] = []
    waiters: list[asyncio.Task] = []

    async def inject() -> None:
        for _ in range(POOL_SIZE):
            conn = await _client(server)
            await conn.execute("select 1")
            held.append(conn)

        async def wait_for_a_server() -> None:
            async with await _client(server) as conn:
                await conn.execute("select 1")

        waiters.append(asyncio.create_task(wait_for_a_server()))

    async def restore() -> None:
        for conn in held:
            await conn.close()
        for task in waiters:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)

    async with pipeline.agent([target]) as resources:
        run = await pipeline.fault(resources["pool"], inject, restore, causes=("pgbouncer.pool_exhausted",),
                                   action="pgbouncer.set_default_pool_size")
    assert run.incident and run.ranked_first and run.proposals, pipeline.diagnosis()
    assert run.proposals[0].params == {"size": POOL_SIZE + 1}
