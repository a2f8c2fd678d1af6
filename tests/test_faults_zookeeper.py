"""ZooKeeper through the whole pipeline: a write-heavy client on a real ZooKeeper server without autopurge (snapshots
every few transactions here) fills the data directory with snapshots and transaction logs; it becomes an incident
naming the ZooKeeper resource, a root-cause report ranking it first with the data directory, and a proposal to purge
the old snapshots as zkCleanup.sh does, which the restore then carries out for real."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kubestack.plugins.zookeeper import ZooKeeperConfig, ZooKeeperPlugin
from tests.services.pipeline import RHYTHM, Pipeline
from tests.services.zookeeper import ZkServer, ZkSession, start_ensemble

LIMIT = 1_500_000
"""Bytes of snapshots and logs the target allows: the burst below writes well past it, three snapshots stay under."""


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[ZkServer]:
    ensemble = start_ensemble(tmp_path, 1, extra={"snapCount": "10"})
    yield ensemble.servers[0]
    ensemble.stop()


async def test_a_data_dir_filling_with_snapshots_is_found_ranked_first_and_answered(pipeline: Pipeline,
                                                                                    server: ZkServer) -> None:
    config = {"host": server.host, "port": server.port, "data_dir_max_bytes": LIMIT}
    target = {"type": "zookeeper", "name": "coordination", **RHYTHM, "config": config}

    def inject() -> None:
        session = ZkSession(server.port)
        try:
            for i in range(100):
                assert session.create(f"/jobs/job-{i}" if i else "/jobs", b"j" * 3000) == 0
        finally:
            session.close()

    async def restore() -> None:
        plugin = ZooKeeperPlugin.create(ZooKeeperConfig.model_validate(config))
        try:
            await plugin.execute("zookeeper.purge_snapshots", {"keep": 3})
        finally:
            await plugin.close()

    async with pipeline.agent([target]) as resources:
        run = await pipeline.fault(resources["coordination"], inject, restore, causes=("zookeeper.data_dir_large",),
                                   action="zookeeper.purge_snapshots")
    assert run.incident and run.ranked_first and run.proposals, pipeline.diagnosis()
    assert run.proposals[0].params == {"keep": 3}
    assert len(list((server.dir / "data" / "version-2").glob("snapshot.*"))) == 3
