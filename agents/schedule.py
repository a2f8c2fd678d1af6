"""Periodic work on a fixed grid."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def every(interval: float, step: Callable[[], Awaitable]) -> None:
    """Run ``step`` on a fixed grid (no drift); rounds missed while a step ran long are skipped."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    ticks = 0
    while True:
        await step()
        ticks = max(ticks + 1, int((loop.time() - start) / interval) + 1)
        await asyncio.sleep(max(0.0, start + ticks * interval - loop.time()))
