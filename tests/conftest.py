"""Session fixtures: a real Kafka broker, and unique names so tests never need a fresh one.

The broker comes from, in order: ``KUBESTACK_KAFKA_BOOTSTRAP`` (an existing cluster); testcontainers, when a
Docker engine actually answers (the docker CLI being installed proves nothing); the project's own launcher,
started in a temporary home on free ports and stopped at the end of the session.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import pkgutil

from kubestack.settings import BOOTSTRAP_SHORTCUT_ENV, KafkaSettings, LocalKafkaSettings
from tests import services
from tests.services.process import free_port

log = logging.getLogger(__name__)

pytest_plugins = [
    f"tests.services.{module.name}" for module in pkgutil.iter_modules(services.__path__) if module.name != "process"
]


def _docker_engine_answers() -> bool:
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        return False
    try:
        docker.from_env(timeout=3).ping()
    except (DockerException, OSError):
        return False
    return True


@contextlib.contextmanager
def _testcontainers_kafka() -> Iterator[str]:
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer().with_kraft() as container:
        yield container.get_bootstrap_server()


@contextlib.contextmanager
def _local_kafka(home: Path, jars: Path) -> Iterator[str]:
    from kubestack.deploy.kafka.launcher import LocalKafka
    from tests.services.kafka_jars import with_jars

    local = LocalKafkaSettings(port=free_port(), controller_port=free_port())
    broker = LocalKafka(local, with_jars(home, jars))
    broker.up()
    try:
        yield local.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[str]:
    if os.environ.get(BOOTSTRAP_SHORTCUT_ENV):
        yield os.environ[BOOTSTRAP_SHORTCUT_ENV]
    elif _docker_engine_answers():
        with _testcontainers_kafka() as bootstrap:
            yield bootstrap
    else:
        with _local_kafka(tmp_path_factory.mktemp("kafka-home"), request.getfixturevalue("kafka_jars")) as bootstrap:
            yield bootstrap


@pytest.fixture(scope="session")
def kafka(kafka_bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap=kafka_bootstrap, request_timeout_s=15)


@pytest.fixture()
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture()
def unique_topic(unique: str) -> str:
    return f"test.{unique}"


@pytest.fixture()
def unique_group(unique: str) -> str:
    return f"test-group-{unique}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under `make test` a skip means a service was not installed or started: fail the run."""
    if not os.environ.get("KUBESTACK_FAIL_ON_SKIP"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped:
        reporter.write_line(f"{skipped} test(s) skipped: every service must be installed and started", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
