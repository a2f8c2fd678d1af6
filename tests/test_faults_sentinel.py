"""Redis Sentinel through the whole pipeline: a primary that stalls while only the watched sentinel calls it down
(the others wait a minute, so the group does not fail over by itself) becomes an incident naming the sentinel
resource, a root-cause report ranking it first with the primary down, and a proposal to fail over."""

from __future__ import annotations

import contextlib

from tests.services.pipeline import RHYTHM, Pipeline
from tests.services.sentinel import MASTER, SentinelGroup


async def test_a_primary_down_is_found_ranked_first_and_answered_by_a_failover(
        pipeline: Pipeline, sentinel_group: SentinelGroup) -> None:
    group = sentinel_group
    target = {"type": "sentinel", "name": "watch", **RHYTHM,
              "config": {"host": group.host, "port": group.sentinels[0], "failover_window_s": 5}}
    fault = contextlib.ExitStack()

    def inject() -> None:
        fault.enter_context(group.only_first_sees_failures())
        fault.enter_context(group.stalled(group.primary_process()))

    async with pipeline.agent([target]) as resources:
        run = await pipeline.fault(resources["watch"], inject, fault.close, causes=("sentinel.primary_down",),
                                   action="sentinel.failover")
    assert run.incident and run.ranked_first and run.proposals, pipeline.diagnosis()
    assert run.proposals[0].params == {"master": MASTER}
