"""What the Kafka plugin asks of a cluster, through aiokafka's admin client and a group-less consumer (for end
offsets). Every answer is plain lists and dicts (recordable as JSON, parsed by ``parse``); failures become
``TargetError`` subclasses."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka import errors as kerr
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from kubestack.bus import client_options
from kubestack.errors import CommandFailedError, TargetAuthError, TargetTimeoutError, TargetUnreachableError
from kubestack.plugins.kafka.config import KafkaPluginConfig
from kubestack.plugins.kafka.logdirs import DescribeLogDirsRequest, partition_sizes

log = logging.getLogger(__name__)

T = TypeVar("T")
Offsets = list[tuple[str, int, int]]
"""(topic, partition, offset) triples."""
PEEK_FETCH_BYTES = 64 * 1024
"""Per partition, when reading the timestamp of the oldest unconsumed record (the broker still sends a whole batch)."""

_AUTH_ERRORS = (kerr.AuthenticationFailedError, kerr.SaslAuthenticationFailed, kerr.IllegalSaslStateError,
                kerr.UnsupportedSaslMechanismError, kerr.TopicAuthorizationFailedError,
                kerr.GroupAuthorizationFailedError, kerr.ClusterAuthorizationFailedError)
_TIMEOUT_ERRORS = (kerr.KafkaTimeoutError, kerr.RequestTimedOutError, TimeoutError)


class KafkaClient(Protocol):
    async def cluster(self) -> dict[str, Any]:
        """Metadata: ``brokers`` (node_id, host, port, rack), ``cluster_id``, ``controller_id``."""
        ...

    async def topics(self) -> list[dict[str, Any]]:
        """Metadata of every topic: ``topic``, ``is_internal``, ``partitions`` (partition, leader, replicas, isr)."""
        ...

    async def group_ids(self) -> list[str]: ...

    async def describe_groups(self, group_ids: list[str]) -> list[dict[str, Any]]:
        """``group``, ``state``, ``protocol_type``, ``members`` per group."""
        ...

    async def committed(self, group_id: str) -> Offsets: ...

    async def end_offsets(self, partitions: list[tuple[str, int]]) -> Offsets: ...

    async def configs(self, kind: ConfigResourceType, names: list[str]) -> list[dict[str, Any]]:
        """DescribeConfigs resources: ``resource_name`` and ``config_entries`` (name, value, source, sensitive)."""
        ...

    async def log_start_offsets(self, partitions: list[tuple[str, int]]) -> Offsets:
        """ListOffsets (earliest): the first offset each partition still holds."""
        ...

    async def log_dir_sizes(self) -> list[tuple[int, str, int, int]]:
        """DescribeLogDirs on every broker: ``(broker, topic, partition, bytes)`` of each replica."""
        ...

    async def record_timestamps(self, offsets: Offsets) -> list[tuple[str, int, int, int]]:
        """``(topic, partition, offset, timestamp ms)``: each offset asked with the timestamp of the first record at
        or after it (those not read within the timeout are left out)."""
        ...

    async def alter_topic_configs(self, topic: str, configs: dict[str, str]) -> None:
        """AlterConfigs: ``configs`` become the topic's whole set of overrides (the rest inherit the broker's)."""
        ...

    async def alter_broker_configs(self, broker: int, configs: dict[str, str]) -> None:
        """AlterConfigs on one broker: ``configs`` become its whole set of per-broker dynamic overrides."""
        ...

    async def create_partitions(self, topic: str, count: int) -> None: ...

    async def close(self) -> None: ...


class AIOKafkaClient:
    """One admin client and one consumer without a group, both started on first use."""

    def __init__(self, config: KafkaPluginConfig) -> None:
        self._config = config
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._peeker: AIOKafkaConsumer | None = None
        # the metrics and the health loops ask at the same moment at start: without it each made a client, and the
        # one not kept was never closed ("Unclosed AIOKafkaConsumer" when it was collected)
        self._opening = asyncio.Lock()

    async def _call(self, what: str, make: Callable[[], Awaitable[T]]) -> T:
        where = self._config.bootstrap
        try:
            return await asyncio.wait_for(make(), self._config.timeout_s * 2)
        except _AUTH_ERRORS as exc:
            raise TargetAuthError(f"Kafka at {where} refused {what}: {exc}") from exc
        except _TIMEOUT_ERRORS as exc:
            raise TargetTimeoutError(f"Kafka at {where} gave no answer to {what} in time: {exc}") from exc
        except (kerr.KafkaConnectionError, kerr.NodeNotReadyError, OSError) as exc:
            await self.close()
            raise TargetUnreachableError(f"Kafka at {where} cannot be reached: {exc}") from exc
        except kerr.KafkaError as exc:
            raise CommandFailedError(["kafka", what], 1, f"{type(exc).__name__}: {exc}") from exc

    async def _admin_client(self) -> AIOKafkaAdminClient:
        async with self._opening:
            if self._admin is None:
                self._admin = await self._started_admin()
        return self._admin

    async def _started_admin(self) -> AIOKafkaAdminClient:
        admin = AIOKafkaAdminClient(**client_options(self._config.settings()))
        try:
            await admin.start()
        except BaseException:
            await admin.close()
            raise
        return admin

    async def _end_offsets_consumer(self) -> AIOKafkaConsumer:
        async with self._opening:
            if self._consumer is None:
                self._consumer = await self._started_consumer()
        return self._consumer

    async def _started_consumer(self, **options: Any) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **options,
                                    **client_options(self._config.settings()))
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    async def cluster(self) -> dict[str, Any]:
        return await self._call("Metadata", lambda: self._admin_then(lambda a: a.describe_cluster()))

    async def topics(self) -> list[dict[str, Any]]:
        return await self._call("Metadata", lambda: self._admin_then(lambda a: a.describe_topics()))

    async def group_ids(self) -> list[str]:
        groups = await self._call("ListGroups", lambda: self._admin_then(lambda a: a.list_consumer_groups()))
        return sorted(group for group, *_ in groups)

    async def describe_groups(self, group_ids: list[str]) -> list[dict[str, Any]]:
        # aiokafka 0.14 decodes a v3 DescribeGroups answer with the v2 schema (without authorized_operations),
        # which garbles every group after the first: one group per request.
        responses = [response for group_id in group_ids for response in await self._call(
            "DescribeGroups", lambda g=group_id: self._admin_then(lambda a: a.describe_consumer_groups([g])))]
        return [{k: v for k, v in group.items() if k in ("error_code", "group", "state", "protocol_type", "protocol")}
                | {"members": [{"member_id": m["member_id"], "client_id": m["client_id"],
                                "client_host": m["client_host"]} for m in group["members"]]}
                for response in responses for group in response.to_object()["groups"]]

    async def committed(self, group_id: str) -> Offsets:
        offsets = await self._call("OffsetFetch",
                                   lambda: self._admin_then(lambda a: a.list_consumer_group_offsets(group_id)))
        return sorted((tp.topic, tp.partition, meta.offset) for tp, meta in offsets.items())

    async def end_offsets(self, partitions: list[tuple[str, int]]) -> Offsets:
        if not partitions:
            return []

        async def fetch() -> dict[TopicPartition, int]:
            consumer = await self._end_offsets_consumer()
            # aiokafka learns the leaders of topics it does not track one stale-metadata retry at a time, which
            # on a cluster with hundreds of topics outlasts its timeout: one metadata refresh for all of them.
            await consumer._client.set_topics(sorted({t for t, _ in partitions}))
            return await consumer.end_offsets([TopicPartition(t, p) for t, p in partitions])

        offsets = await self._call("ListOffsets", fetch)
        return sorted((tp.topic, tp.partition, offset) for tp, offset in offsets.items())

    async def log_start_offsets(self, partitions: list[tuple[str, int]]) -> Offsets:
        if not partitions:
            return []

        async def fetch() -> dict[TopicPartition, int]:
            consumer = await self._end_offsets_consumer()
            await consumer._client.set_topics(sorted({t for t, _ in partitions}))
            return await consumer.beginning_offsets([TopicPartition(t, p) for t, p in partitions])

        offsets = await self._call("ListOffsets (earliest)", fetch)
        return sorted((tp.topic, tp.partition, offset) for tp, offset in offsets.items())

    async def log_dir_sizes(self) -> list[tuple[int, str, int, int]]:
        async def fetch() -> list[tuple[int, str, int, int]]:
            admin = await self._admin_client()
            brokers = [b["node_id"] for b in (await admin.describe_cluster())["brokers"]]
            out = []
            for broker in brokers:
                answer = await admin._client.send(broker, DescribeLogDirsRequest())
                out += partition_sizes(broker, answer.to_object())
            return out

        return sorted(await self._call("DescribeLogDirs", fetch))

    async def record_timestamps(self, offsets: Offsets) -> list[tuple[str, int, int, int]]:
        if not offsets:
            return []
        wanted = {TopicPartition(t, p): o for t, p, o in offsets}

        async def fetch() -> dict[TopicPartition, tuple[int, int]]:
            async with self._opening:
                if self._peeker is None:
                    self._peeker = await self._started_consumer(auto_offset_reset="earliest",
                                                                max_partition_fetch_bytes=PEEK_FETCH_BYTES)
            consumer = self._peeker
            await consumer._client.set_topics(sorted({tp.topic for tp in wanted}))
            consumer.assign(list(wanted))
            for tp, offset in wanted.items():
                consumer.seek(tp, offset)
            found: dict[TopicPartition, tuple[int, int]] = {}
            deadline = asyncio.get_running_loop().time() + self._config.timeout_s
            try:
                while len(found) < len(wanted) and asyncio.get_running_loop().time() < deadline:
                    for tp, records in (await consumer.getmany(timeout_ms=100)).items():
                        if records and tp not in found:
                            found[tp] = (wanted[tp], records[0].timestamp)
                            consumer.pause(tp)  # one record is all it needs
            finally:
                consumer.assign([])
            return found

        found = await self._call("Fetch (one record per partition)", fetch)
        return sorted((tp.topic, tp.partition, offset, ts) for tp, (offset, ts) in found.items())

    async def alter_topic_configs(self, topic: str, configs: dict[str, str]) -> None:
        await self._alter(ConfigResource(ConfigResourceType.TOPIC, topic, configs))

    async def alter_broker_configs(self, broker: int, configs: dict[str, str]) -> None:
        await self._alter(ConfigResource(ConfigResourceType.BROKER, str(broker), configs))  # sent to that broker

    async def _alter(self, resource: ConfigResource) -> None:
        responses = await self._call("AlterConfigs", lambda: self._admin_then(lambda a: a.alter_configs([resource])))
        for response in responses:
            for r in response.to_object()["resources"]:
                if r["error_code"]:
                    raise CommandFailedError(["kafka", "AlterConfigs", resource.name], r["error_code"],
                                             r.get("error_message") or f"error code {r['error_code']}")

    async def create_partitions(self, topic: str, count: int) -> None:
        await self._call("CreatePartitions", lambda: self._admin_then(
            lambda a: a.create_partitions({topic: NewPartitions(count)})))

    async def configs(self, kind: ConfigResourceType, names: list[str]) -> list[dict[str, Any]]:
        if not names:
            return []
        resources = [ConfigResource(kind, name) for name in names]
        responses = await self._call("DescribeConfigs",
                                     lambda: self._admin_then(lambda a: a.describe_configs(resources)))
        return [{"resource_name": r["resource_name"], "error_code": r["error_code"],
                 "config_entries": [{"name": e["config_names"], "value": e["config_value"],
                                     "source": e["config_source"], "sensitive": e["is_sensitive"]}
                                    for e in r["config_entries"]]}
                for response in responses for r in response.to_object()["resources"]]

    async def _admin_then(self, call: Callable[[AIOKafkaAdminClient], Awaitable[T]]) -> T:
        return await call(await self._admin_client())

    async def close(self) -> None:
        admin, consumers = self._admin, (self._consumer, self._peeker)
        self._admin, self._consumer, self._peeker = None, None, None
        if admin is not None:
            await admin.close()
        for consumer in consumers:
            if consumer is not None:
                await consumer.stop()
