"""A local Kafka cluster of three KRaft nodes with TLS and SASL/SCRAM, started once per session by the real
``kubestack kafka up --brokers 3 --secure`` on free ports in a temporary home, and stopped by ``kafka down``.

Every cluster test shares it: a test that stops or kills a node starts it again before it ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubestack.deploy.kafka.launcher import LocalKafka
from kubestack.settings import KafkaSettings, LocalKafkaSettings, load_settings
from tests.cli import cli_env, run
from tests.services.kafka_jars import with_jars
from tests.services.process import free_port

log = logging.getLogger(__name__)

BROKERS = 3


@dataclass
class KafkaCluster:
    home: Path
    local: LocalKafka
    env: dict[str, str]  # runs the CLI against this cluster (with client_file as --config)
    client_file: Path  # the settings `kafka up --secure` wrote: users, passwords, CA
    started_in_s: float

    @property
    def kafka(self) -> KafkaSettings:
        """The cluster as the product's settings describe it: SASL_SSL, the CA, the shared identity, components'."""
        return load_settings(self.client_file).kafka

    def restart(self, node_id: int) -> None:
        self.local.start(self.local.check_java(), [node_id])


def _ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory, kafka_jars: Path) -> Iterator[KafkaCluster]:
    home = with_jars(tmp_path_factory.mktemp("kafka-cluster-home"), kafka_jars)  # the session's: no Maven run
    ports = _ports(2 * BROKERS)
    local = LocalKafkaSettings(brokers=BROKERS, secure=True, ports=ports[:BROKERS], controller_ports=ports[BROKERS:],
                               heap="384m", start_timeout_s=300)
    env = cli_env(KUBESTACK_HOME=str(home), KUBESTACK_LOCAL_KAFKA__PORTS=str(local.ports),
                  KUBESTACK_LOCAL_KAFKA__CONTROLLER_PORTS=str(local.controller_ports),
                  KUBESTACK_LOCAL_KAFKA__HEAP=local.heap, KUBESTACK_LOCAL_KAFKA__START_TIMEOUT_S="300")
    cluster = LocalKafka(local, home)
    started = time.monotonic()
    up = run("kafka", "up", "--brokers", str(BROKERS), "--secure", env=env, timeout=600)
    started_in_s = time.monotonic() - started
    assert up.returncode == 0, up.stdout + up.stderr + "\n".join(node.tail() for node in cluster.nodes)
    log.warning("3-node secure Kafka cluster up in %.1fs (jars resolved, storage formatted, topics created)",
                started_in_s)
    client_file = cluster.secure.client_file
    try:
        yield KafkaCluster(home, cluster, {**env, "KUBESTACK_CONFIG": str(client_file)}, client_file, started_in_s)
    finally:
        run("kafka", "down", "--brokers", str(BROKERS), "--secure", env=env, timeout=300)
        cluster.stop()
