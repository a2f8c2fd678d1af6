"""``kubestack ask``: understanding a question (pure), then answering it with live checks against a real Redis,
recent incidents from the real broker, and runbooks."""

import json

import pytest
import yaml

from kubestack.bus import ensure_topics
from kubestack.contract.base import ResourceRef, utcnow
from kubestack.contract.events import Incident, Severity
from kubestack.contract.topics import INCIDENTS
from kubestack.knowledge.question import Words, plugin_words, understand
from tests.cli import cli_env, run
from tests.factories import SOURCE
from tests.kafka_io import produce


@pytest.mark.parametrize(("text", "middleware", "symptoms"), [
    ("Redis 为什么变慢了?", "redis", ("slow",)),
    ("why are MySQL queries slow?", "mysql", ("slow",)),
    ("pg 连接数满了", "postgresql", ("connections", "disk")),
    ("consumer lag keeps growing", "kafka", ("replication",)),
    ("磁盘快满了怎么办", "host", ("disk",)),
    ("redis on a full disk", "redis", ("disk",)),
    ("we need to upgrade soon", None, ()),
])
def test_questions_name_their_middleware_and_symptoms(text, middleware, symptoms) -> None:
    question = understand(text)
    assert question.middleware == middleware
    assert question.symptoms == symptoms


def test_the_words_come_from_the_plugins_declarations() -> None:
    words = plugin_words()
    assert {"redis", "mysql", "postgresql", "kafka", "host", "kubernetes"} <= set(words.middleware)
    assert "mariadb" in words.middleware["mysql"] and "host" in words.generic
    memcached = Words(middleware=words.middleware | {"memcached": ("memcached", "mc")}, generic=words.generic)
    assert understand("mc evictions on a full disk", words=memcached).middleware == "memcached"
    assert understand("mc evictions on a full disk").middleware == "host", "no plugin declares 'mc'"


def test_a_named_instance_settles_the_middleware() -> None:
    question = understand("orders-db 很慢", {"orders-db": "postgresql", "cache-1": "redis"})
    assert (question.middleware, question.instances) == ("postgresql", ("orders-db",))


def agent_yaml(tmp_path, redis_server) -> str:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({"agent": {"name": "ask-test"}, "targets": [
        {"type": "redis", "name": "cache-ask", "config": {"host": redis_server.host, "port": redis_server.port,
                                                          "password": {"value": redis_server.password}}},
        {"type": "mysql", "name": "nowhere", "config": {"host": "127.0.0.1", "port": 1, "user": "x"}},
    ]}))
    return str(path)


@pytest.mark.kafka
async def test_ask_checks_the_instance_live_reads_its_incidents_and_cites_runbooks(
        redis_server, kafka, unique, tmp_path) -> None:
    prefix = f"ask.{unique}."
    cache = ResourceRef(kind="redis", name="cache-ask", host="127.0.0.1")
    incident = Incident(source=SOURCE, resource=cache, incident_id=f"inc-{unique}", title="redis.slow_commands on "
                        "redis/cache-ask", severity=Severity.WARNING, opened_at=utcnow(),
                        resources=[cache], member_event_ids=["e1"])
    other = incident.model_copy(update={"incident_id": "inc-other", "resources": [cache.model_copy(
        update={"kind": "mysql", "name": "orders"})]})
    await ensure_topics(kafka.model_copy(update={"topic_prefix": prefix}))
    await produce(kafka, INCIDENTS.qualified(prefix), [INCIDENTS.encode(incident), INCIDENTS.encode(other)])
    env = cli_env(KUBESTACK_KAFKA__BOOTSTRAP=kafka.bootstrap, KUBESTACK_KAFKA__TOPIC_PREFIX=prefix,
                  KUBESTACK_HOME=str(tmp_path / "home"))
    result = run("ask", "cache-ask 为什么变慢了?", "--agent-config", agent_yaml(tmp_path, redis_server), "--json",
                 env=env)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert (answer["middleware"], answer["instances"], answer["symptoms"]) == ("redis", ["cache-ask"], ["slow"])
    [check] = answer["checks"]
    assert check["target"] == "cache-ask" and check["error"] is None, "the real Redis was checked"
    assert [i["incident_id"] for i in answer["incidents"]] == [f"inc-{unique}"], answer["notes"]
    assert answer["runbooks"][0]["id"] == "redis/slow-commands"


def test_ask_reports_an_unreachable_target_and_a_missing_broker_without_failing(redis_server, tmp_path) -> None:
    env = cli_env(KUBESTACK_KAFKA__BOOTSTRAP="127.0.0.1:1", KUBESTACK_HOME=str(tmp_path / "home"))
    result = run("ask", "why are MySQL queries slow?", "--agent-config", agent_yaml(tmp_path, redis_server),
                 "--timeout", "3", env=env)
    assert result.returncode == 0, result.stderr
    assert "mysql/nowhere: cannot be checked" in result.stdout
    assert "recent incidents not read" in result.stdout
    assert "mysql/slow-queries" in result.stdout

