"""Memcached through the whole pipeline: a batch job writes far more one-off items than the cache holds (a real
memcached of 8 MB), evicting the hot ones; this becomes an incident naming the Memcached resource, a root-cause
report ranking it first with the evictions, and a proposal to raise the memory limit at runtime by a quarter."""

from __future__ import annotations

import asyncio

from tests.services.memcached import MemcachedServer
from tests.services.pipeline import RHYTHM, Pipeline


def batch_job(server: MemcachedServer, run: str) -> None:
    """12 MB of 100 KB items written once and never read."""
    value = b"b" * 100_000
    with server.connect() as sock:
        for i in range(120):
            assert server.set(sock, f"export-{run}-{i}", value) == b"STORED"


async def test_a_batch_job_evicting_the_cache_is_found_ranked_first_and_answered(
        pipeline: Pipeline, memcached_server: MemcachedServer, unique: str) -> None:
    target = {"type": "memcached", "name": "sessions", **RHYTHM, "config": memcached_server.config()}

    async def inject() -> None:
        await asyncio.to_thread(batch_job, memcached_server, unique)

    async with pipeline.agent([target]) as resources:
        run = await pipeline.fault(resources["sessions"], inject, lambda: None, causes=("memcached.evictions",),
                                   action="memcached.set_memory_limit")
    assert run.incident and run.ranked_first and run.proposals, pipeline.diagnosis()
    assert run.proposals[0].params == {"megabytes": 10}
