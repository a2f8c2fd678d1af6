"""The Kafka settings and the local cluster's files, without a broker: ports and replication per node count, the
single broker of ``make run`` rendered as it always was, each component's identity, the secure cluster's CA,
certificate and users."""

from __future__ import annotations

import stat

import pytest
from cryptography import x509
from pydantic import SecretStr, ValidationError

from kubestack.bus import client_options, producer_options
from kubestack.deploy.kafka.launcher import LocalKafka
from kubestack.deploy.kafka.secure import BROKER_USER, SHARED_USER, SecureMaterial
from kubestack.errors import ConfigError
from kubestack.settings import KafkaCredentials, KafkaSettings, LocalKafkaSettings


def _properties(path) -> dict[str, str]:
    lines = [line for line in path.read_text().replace("\\\n  ", "").splitlines() if "=" in line
             and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_one_node_by_default_three_on_their_own_ports_with_three_replicas_and_two_in_sync() -> None:
    one = LocalKafkaSettings()
    assert (one.bootstrap, one.replication_factor, one.min_insync_replicas) == ("127.0.0.1:9092", 1, 1)
    three = LocalKafkaSettings(brokers=3)
    assert three.bootstrap == "127.0.0.1:9092,127.0.0.1:9192,127.0.0.1:9292", "never 9093 (Alertmanager)"
    assert three.node_controller_ports == [19093, 19193, 19293]
    assert (three.replication_factor, three.min_insync_replicas) == (3, 2)
    given = LocalKafkaSettings(brokers=2, ports=[1001, 1002, 1003], controller_ports=[2001, 2002, 2003])
    assert given.node_ports == [1001, 1002] and given.replication_factor == 2 and given.min_insync_replicas == 1
    with pytest.raises(ValidationError, match="has 1 ports for 3 brokers"):
        LocalKafkaSettings(brokers=3, ports=[1001])
    with pytest.raises(ValidationError, match="of its own"):
        LocalKafkaSettings(port=19093)


def test_the_single_broker_of_make_run_keeps_its_layout_and_configuration(tmp_path) -> None:
    broker = LocalKafka(LocalKafkaSettings(port=1111, controller_port=2222), tmp_path)
    broker.render_properties()
    assert broker.properties == tmp_path / "kafka" / "server.properties" and broker.data == tmp_path / "kafka" / "data"
    props = _properties(broker.properties)
    assert props["node.id"] == "1" and props["controller.quorum.voters"] == "1@127.0.0.1:2222"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:1111,CONTROLLER://127.0.0.1:2222"
    assert props["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert {props[k] for k in ("default.replication.factor", "offsets.topic.replication.factor",
                               "min.insync.replicas", "transaction.state.log.min.isr")} == {"1"}
    assert not any(key.startswith(("ssl.", "sasl.", "super.")) for key in props)
    assert broker.client_settings().min_insync_replicas is None, "topics keep the broker's default, as before"


def test_a_secure_cluster_of_three_nodes_renders_sasl_ssl_everywhere(tmp_path) -> None:
    cluster = LocalKafka(LocalKafkaSettings(brokers=3, secure=True), tmp_path)
    cluster.secure.ensure("127.0.0.1")
    cluster.render_properties()
    nodes = [_properties(node.properties) for node in cluster.nodes]
    assert [n["node.id"] for n in nodes] == ["1", "2", "3"]
    assert {n["controller.quorum.voters"] for n in nodes} == {"1@127.0.0.1:19093,2@127.0.0.1:19193,3@127.0.0.1:19293"}
    assert nodes[2]["listeners"] == "SASL_SSL://127.0.0.1:9292,CONTROLLER://127.0.0.1:19293"
    assert nodes[0]["inter.broker.listener.name"] == "SASL_SSL" and nodes[0]["super.users"] == f"User:{BROKER_USER}"
    assert nodes[0]["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:SASL_SSL"
    assert nodes[0]["sasl.mechanism.controller.protocol"] == "PLAIN"
    assert nodes[0]["default.replication.factor"] == "3" and nodes[0]["min.insync.replicas"] == "2"
    assert cluster.secure.passwords()[BROKER_USER] in nodes[0]["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    assert all(stat.S_IMODE(node.properties.stat().st_mode) == 0o600 for node in cluster.nodes)


def test_secure_material_a_ca_a_certificate_for_the_host_and_users_only_their_owner_reads(tmp_path) -> None:
    material = SecureMaterial(tmp_path)
    material.ensure("127.0.0.1")
    ca = x509.load_pem_x509_certificate(material.ca.read_bytes())
    chain = x509.load_pem_x509_certificates(material.keystore.read_bytes())
    chain[0].verify_directly_issued_by(ca)
    names = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    assert b"BEGIN PRIVATE KEY" in material.keystore.read_bytes()
    assert stat.S_IMODE(material.keystore.stat().st_mode) == 0o600
    assert stat.S_IMODE(material.credentials_file.stat().st_mode) == 0o600
    users = material.passwords()
    assert set(users) == {BROKER_USER, SHARED_USER, "kubestack-agent", "kubestack-worker", "kubestack-api"}
    assert len(set(users.values())) == len(users)
    before = material.keystore.read_bytes()
    material.ensure("127.0.0.1")
    assert material.keystore.read_bytes() == before and material.passwords() == users, "made once, then kept"
    arguments = material.scram_arguments()
    assert arguments.count("--add-scram") == len(users)
    assert f"SCRAM-SHA-512=[name={SHARED_USER},password={users[SHARED_USER]}]" in arguments

    client = material.client_settings(KafkaSettings(bootstrap="127.0.0.1:9092"))
    written = material.write_client_file(client)
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    from kubestack.settings import load_settings

    assert load_settings(written).kafka == client, "client.yaml is a settings file that reaches the cluster"


def test_each_component_authenticates_as_itself_or_else_as_the_shared_identity() -> None:
    kafka = KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512", sasl_username="shared",
                          sasl_password=SecretStr("s"), components={
                              "agent": KafkaCredentials(username="agent-user", password=SecretStr("a"))})
    agent = client_options(kafka.for_component("agent"))
    assert (agent["sasl_plain_username"], agent["sasl_plain_password"], agent["client_id"]) == (
        "agent-user", "a", "kubestack-agent")
    worker = client_options(kafka.for_component("worker"))
    assert (worker["sasl_plain_username"], worker["client_id"]) == ("shared", "kubestack-worker")
    assert client_options(kafka)["client_id"] == "kubestack"
    assert "s" not in repr(kafka.sasl_password) and "a" not in str(kafka.components["agent"].password)

    only_components = kafka.model_copy(update={"sasl_username": None, "sasl_password": None})
    assert client_options(only_components.for_component("agent"))["sasl_plain_username"] == "agent-user"
    with pytest.raises(ConfigError, match="no credentials for worker"):
        client_options(only_components.for_component("worker"))
    with pytest.raises(ValidationError, match="needs sasl_mechanism"):
        KafkaSettings(security_protocol="SASL_SSL")
    with pytest.raises(ValidationError, match="over replication_factor"):
        KafkaSettings(replication_factor=1, min_insync_replicas=2)


def test_every_producer_waits_for_all_in_sync_replicas() -> None:
    options = producer_options(KafkaSettings())
    assert options["acks"] == "all" and options["enable_idempotence"] is True
    from kubestack.pipeline.app import create_app
    from kubestack.settings import Settings

    app = create_app(Settings(kafka=KafkaSettings(replication_factor=3)))
    assert app.conf.producer_acks == -1 and app.conf.topic_replication_factor == 3


def test_the_secure_cluster_lets_each_component_write_only_its_own_topics(tmp_path) -> None:
    from kubestack.contract.topics import HEALTH, INCIDENTS, REMEDIATION_DECISIONS
    from kubestack.deploy.kafka.acls import WRITE_OPERATION, topic_acls

    users = {"agent": "a", "worker": "w", "api": "p"}
    writers: dict[str, set[str]] = {}
    for acl in topic_acls("staging.", users):
        if acl.operation == WRITE_OPERATION:
            writers.setdefault(acl.resource_name, set()).add(acl.principal)
    assert writers[REMEDIATION_DECISIONS.qualified("staging.")] == {"User:p"}, "only the API decides"
    assert writers[HEALTH.qualified("staging.")] == {"User:a"}
    assert writers[INCIDENTS.qualified("staging.")] == {"User:w"}
    assert "User:*" not in set().union(*writers.values()), "nobody else writes the contract"

    cluster = LocalKafka(LocalKafkaSettings(secure=True), tmp_path)
    cluster.secure.ensure("127.0.0.1")
    cluster.render_properties()
    props = _properties(cluster.properties)
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
