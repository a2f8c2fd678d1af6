"""The Faust app, configured from ``Settings``; stages register their agents on it (``stages.py``)."""

from __future__ import annotations

from typing import Any

import faust

from kubestack.bus import client_options
from kubestack.contract.topics import TopicSpec
from kubestack.settings import KafkaSettings, Settings


def broker_credentials(kafka: KafkaSettings) -> faust.types.auth.CredentialsT | None:
    options = client_options(kafka)
    if kafka.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=options["sasl_plain_username"],
            password=options["sasl_plain_password"],
            mechanism=options["sasl_mechanism"],
            ssl_context=options.get("ssl_context"),
        )
    if kafka.security_protocol == "SSL":
        return faust.SSLCredentials(options["ssl_context"])
    return None


def create_app(settings: Settings) -> faust.App:
    kafka = settings.kafka.for_component("worker")
    return faust.App(
        settings.worker.app_id,
        broker=";".join(f"kafka://{server}" for server in kafka.bootstrap_servers),
        broker_credentials=broker_credentials(kafka),
        store=settings.worker.store,
        datadir=str(settings.home / "worker" / settings.worker.app_id),
        web_enabled=settings.worker.web_enabled,
        web_port=settings.worker.web_port,
        processing_guarantee=settings.worker.processing_guarantee,
        # the contract decodes at the edge: Faust hands agents the raw bytes
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,  # all in-sync replicas, as every producer of the product (kubestack.bus.producer_options)
        topic_replication_factor=kafka.replication_factor,
        broker_session_timeout=settings.worker.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.worker.session_timeout_s / 10),
    )


def contract_topic(app: faust.App, spec: TopicSpec, kafka: KafkaSettings, **extra: Any) -> faust.TopicT:
    """The Faust topic for a registry entry: its name under the settings' prefix, the partitions the settings give
    it, the registry's retention."""
    return app.topic(
        spec.qualified(kafka.topic_prefix),
        key_serializer="raw",
        value_serializer="raw",
        partitions=kafka.partitions_of(spec),
        retention=spec.retention,
        **extra,
    )
