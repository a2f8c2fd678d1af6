"""DescribeLogDirs (API key 35, version 1), which aiokafka's admin client does not offer: the size on disk of every
partition replica a broker holds. Sent to each broker (a broker answers for its own log directories only)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeAlias

from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Boolean, Int16, Int32, Int64, Schema, String


class DescribeLogDirsResponse_v1(Response):  # noqa: N801 (the protocol's naming)
    API_KEY = 35
    API_VERSION = 1
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("results", Array(
            ("error_code", Int16),
            ("log_dir", String("utf-8")),
            ("topics", Array(
                ("name", String("utf-8")),
                ("partitions", Array(
                    ("partition_index", Int32),
                    ("partition_size", Int64),
                    ("offset_lag", Int64),
                    ("is_future_key", Boolean))))))),
    )


class DescribeLogDirsRequest_v1(RequestStruct):  # noqa: N801
    API_KEY = 35
    API_VERSION = 1
    RESPONSE_TYPE = DescribeLogDirsResponse_v1
    SCHEMA = Schema(("topics", Array(("topic", String("utf-8")), ("partitions", Array(Int32)))))


DescribeLogDirsRequestStruct: TypeAlias = DescribeLogDirsRequest_v1


class DescribeLogDirsRequest(Request[DescribeLogDirsRequestStruct]):
    """All topics (a null list) or the given ``(topic, partitions)``."""

    API_KEY = 35

    def __init__(self, topics: Iterable[tuple[str, list[int]]] | None = None) -> None:
        self._topics = None if topics is None else list(topics)

    def build(self, request_struct_class: type[DescribeLogDirsRequestStruct]) -> DescribeLogDirsRequestStruct:
        return request_struct_class(self._topics)


def partition_sizes(broker: int, answer: dict[str, Any]) -> list[tuple[int, str, int, int]]:
    """``(broker, topic, partition, bytes)`` of each current replica in one broker's answer (a replica being moved
    to another directory, ``is_future_key``, is left out; a directory with an error is skipped)."""
    out = []
    for result in answer.get("results", []):
        if result.get("error_code"):
            continue
        for topic in result.get("topics", []):
            for p in topic.get("partitions", []):
                if not p.get("is_future_key"):
                    out.append((broker, topic["name"], p["partition_index"], p["partition_size"]))
    return sorted(out)
