"""Session fixture: the Kafka broker jars, resolved with Maven once per session, for every broker a test starts in
a home of its own (``LocalKafka`` resolves them into each new home otherwise: one Maven run per broker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubestack.deploy.kafka.launcher import LocalKafka
from kubestack.settings import LocalKafkaSettings


@pytest.fixture(scope="session")
def kafka_jars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return LocalKafka(LocalKafkaSettings(), tmp_path_factory.mktemp("kafka-jars")).resolve_jars()


def with_jars(home: Path, jars: Path) -> Path:
    """``home`` for a ``LocalKafka`` whose jars are ``jars`` (linked, as resolved for the same pom.xml)."""
    (home / "kafka").mkdir(parents=True, exist_ok=True)
    (home / "kafka" / "lib").symlink_to(jars, target_is_directory=True)
    return home
