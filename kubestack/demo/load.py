"""Steady load on the shop: ``rate`` requests a second (a share of them orders on the hot products, the rest product
reads over the catalogue, skewed towards the popular ones as real traffic is), each with its own deadline, never
more than ``max_inflight`` at once. Counts the answers by status (``0``: no answer, ``-1``: skipped)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter

import aiohttp

from kubestack.demo.config import DemoConfig

log = logging.getLogger(__name__)


class Load:
    def __init__(self, config: DemoConfig, *, seed: int = 7, max_inflight: int = 64, timeout_s: float = 10.0) -> None:
        self.config = config
        self.statuses: Counter[int] = Counter()
        self._rng = random.Random(seed)
        self._inflight = asyncio.Semaphore(max_inflight)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._task: asyncio.Task | None = None

    async def _one(self, session: aiohttp.ClientSession) -> None:
        base = self.config.app_url
        try:
            if self._rng.random() < self.config.order_share:
                body = {"product": self._rng.randint(1, self.config.hot_products), "qty": 1}
                async with session.post(f"{base}/orders", json=body) as response:
                    await response.read()
            else:
                product = int(self.config.products ** self._rng.random())  # skewed: popular products read most
                async with session.get(f"{base}/products/{product}") as response:
                    await response.read()
            self.statuses[response.status] += 1
        except (aiohttp.ClientError, TimeoutError):
            self.statuses[0] += 1
        finally:
            self._inflight.release()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        pending: set[asyncio.Task] = set()
        async with aiohttp.ClientSession(timeout=self._timeout) as session:
            next_at = loop.time()
            while True:
                next_at += 1 / self.config.rate
                await asyncio.sleep(max(0.0, next_at - loop.time()))
                if self._inflight.locked():
                    self.statuses[-1] += 1  # skipped: too many requests already waiting
                    continue
                await self._inflight.acquire()
                task = asyncio.create_task(self._one(session))
                pending.add(task)
                task.add_done_callback(pending.discard)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="demo-load")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


def serve(config: DemoConfig) -> None:
    async def main() -> None:
        load = Load(config)
        load.start()
        try:
            while True:
                await asyncio.sleep(30)
                log.info("load: answers so far %s", dict(load.statuses))
        finally:
            await load.stop()

    asyncio.run(main())
