"""etcd through the whole pipeline: a writer that rewrites the same keys fills a real etcd member's backend up to its
quota (2 MiB here) until etcd raises NOSPACE and refuses every write; it becomes an incident naming the etcd
resource, a root-cause report ranking it first with the full database, and a proposal to reclaim the space (compact,
defragment, disarm), which the restore then carries out for real."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kubestack.plugins.etcd import EtcdConfig, EtcdPlugin
from tests.services.etcd import EtcdMember, start_cluster
from tests.services.pipeline import RHYTHM, Pipeline

QUOTA = 2 * 1024 * 1024


@pytest.fixture()
def member(tmp_path: Path) -> Iterator[EtcdMember]:
    cluster = start_cluster(tmp_path, 1, quota_bytes=QUOTA, prefix="registry")
    yield cluster.members[0]
    cluster.stop()


async def test_a_full_database_is_found_ranked_first_and_answered(pipeline: Pipeline, member: EtcdMember) -> None:
    config = {"host": member.host, "port": member.port}
    target = {"type": "etcd", "name": "registry", **RHYTHM, "config": config}
    refused: list[dict] = []

    def inject() -> None:
        for i in range(200):  # a status writer rewriting three keys with 100 KB values; every revision is kept
            reply = member.put(f"status/{i % 3}", b"x" * 100_000)
            if "error" in reply:
                refused.append(reply)
                return

    async def restore() -> None:
        plugin = EtcdPlugin.create(EtcdConfig.model_validate(config))
        try:
            await plugin.execute("etcd.reclaim_space", {"retain_revisions": 0})
        finally:
            await plugin.close()

    async with pipeline.agent([target]) as resources:
        run = await pipeline.fault(resources["registry"], inject, restore,
                                   causes=("etcd.nospace_alarm", "etcd.db_near_quota"), action="etcd.reclaim_space")
    assert refused and refused[0]["message"] == "etcdserver: mvcc: database space exceeded"
    assert run.incident and run.ranked_first and run.proposals, pipeline.diagnosis()
    assert run.proposals[0].params == {"retain_revisions": 0}
    assert "error" not in member.put("after/reclaim", "v")  # the restore reclaimed the space and disarmed NOSPACE
