"""``kubestack ask``: understanding a question (pure), then answering it with live checks against a real Redis,
recent incidents from the real broker, and runbooks, in the language of the question (English or Chinese)."""

import json
import re

import pytest
import yaml

from kubestack.agents.targets import TargetCheck
from kubestack.bus import ensure_topics
from kubestack.contract.base import ResourceRef, utcnow
from kubestack.contract.events import Finding, Incident, Severity
from kubestack.contract.topics import INCIDENTS
from kubestack.knowledge.ask import Answer, localize, rank_runbooks
from kubestack.knowledge.language import detect_language, fix_steps, steps_in, title_in
from kubestack.knowledge.question import Words, plugin_words, understand
from kubestack.knowledge.runbook import Runbook, load_runbooks, parse_runbook
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



# --- the asker's language ----------------------------------------------------------------------------------------

HAN = re.compile(r"[\u4e00-\u9fff]")
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d.*\b(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b", re.MULTILINE)


@pytest.mark.parametrize(("text", "language"), [
    ("Redis 为什么变慢了?", "zh"),
    ("pg 连接数满了", "zh"),
    ("cache-ask 为什么变慢了?", "zh"),
    ("磁盘快满了怎么办", "zh"),
    ("why are MySQL queries slow?", "en"),
    ("why is redis slow? 慢", "en"),
    ("consumer lag keeps growing", "en"),
    ("", "en"),
])
def test_the_answer_language_is_the_questions(text, language) -> None:
    assert detect_language(text) == language
    assert understand(text).language == language


def _book(translations: dict | None = None, symptoms: tuple[str, ...] = ("redis is slow", "redis 变慢了")) -> Runbook:
    front = {"id": "redis/slow", "middleware": "redis", "title": "Redis slow commands", "symptoms": list(symptoms)}
    if translations:
        front["translations"] = translations
    body = ("## Fix\n\n1. Find the caller in SLOWLOG and replace `KEYS` with `SCAN`,\n   paginate ranges.\n"
            "2. Disconnect a harmful client (`redis.client_kill`, risk: medium).\n\n## Across middleware\n\n1. Not a step.")
    return parse_runbook(f"---\n{yaml.safe_dump(front, allow_unicode=True)}---\n\n{body}", "test")


def test_a_runbook_speaks_chinese_from_its_translation_and_falls_back_to_its_symptom_and_english_steps() -> None:
    translated = _book({"zh": {"title": "Redis 慢命令", "steps": ["在 SLOWLOG 中找到调用方", "断开有害的客户端"]}})
    plain = _book()
    assert fix_steps(plain) == ["Find the caller in SLOWLOG and replace `KEYS` with `SCAN`, paginate ranges.",
                                "Disconnect a harmful client (`redis.client_kill`, risk: medium)."]
    assert (title_in(translated, "zh"), steps_in(translated, "zh")) == (
        "Redis 慢命令", (["在 SLOWLOG 中找到调用方", "断开有害的客户端"], "zh"))
    assert title_in(translated, "en") == "Redis slow commands" and steps_in(translated, "en")[1] == "en"
    assert title_in(plain, "zh") == "redis 变慢了（Redis slow commands）", "its Chinese symptom names it"
    assert steps_in(plain, "zh") == (fix_steps(plain), "en"), "no translation: the English steps, said so"
    assert title_in(_book(symptoms=("redis is slow",)), "zh") == "Redis slow commands"


def test_every_packaged_runbook_of_the_core_plugins_has_its_chinese_title_and_steps() -> None:
    books = [b for b in load_runbooks() if b.meta.middleware in ("redis", "mysql", "postgresql", "kafka", "host",
                                                                   "kubernetes")]
    assert len(books) >= 60
    for book in books:
        zh = book.meta.translations.get("zh")
        assert zh is not None and HAN.search(zh.title), f"{book.id}: no Chinese title"
        assert len(zh.steps) == len(fix_steps(book)), f"{book.id}: {len(zh.steps)} Chinese steps for " \
                                                      f"{len(fix_steps(book))} English ones"
        assert all(HAN.search(step) for step in zh.steps), book.id


def _answer(question: str) -> Answer:
    finding = Finding(rule_id="redis.no_maxmemory", severity=Severity.WARNING, message="maxmemory is not set",
                      query="CONFIG GET maxmemory; INFO memory")
    checks = [TargetCheck("cache-1", "redis", [finding]), TargetCheck("cache-2", "redis", error="connection refused")]
    books = load_runbooks()
    ranked = rank_runbooks([("redis/slow-commands", "Redis slow commands")], checks, books)
    runbooks, steps = localize(ranked, books, detect_language(question))
    return Answer(understand(question), checks, runbooks, [], ["a note"], steps=steps)


def test_a_chinese_question_gets_a_chinese_answer_and_an_english_one_an_english_answer() -> None:
    zh = _answer("redis 为什么变慢了?").as_text()
    assert zh.splitlines()[0] == "问题涉及：redis；症状：变慢"
    assert "实时检查：" in zh and "发现 1 个问题" in zh and "无法检查：connection refused" in zh
    assert "[F1] WARNING redis.no_maxmemory: maxmemory is not set" in zh, "the evidence stays as the server said it"
    assert "[R1] redis/slow-commands: Redis 慢命令和延迟尖刺（SLOWLOG、KEYS、大 key）（与问题匹配）" in zh
    assert "处理步骤：" in zh and "在 SLOWLOG 中找到调用方" in zh
    assert "redis/no-maxmemory: Redis 未设置 maxmemory" in zh and "实时检查：redis.no_maxmemory 已触发" in zh
    assert "Live checks" not in zh and "Runbooks" not in zh

    en = _answer("why is redis slow?").as_text()
    assert en.splitlines()[0] == "About: redis; symptoms: slow"
    assert "Live checks:" in en and "What to do:" in en and "Find the caller in SLOWLOG" in en
    assert not HAN.search(en)


def test_ask_in_chinese_on_the_command_line_answers_in_chinese_and_logs_only_to_stderr(redis_server, tmp_path) -> None:
    env = cli_env(KUBESTACK_KAFKA__BOOTSTRAP="127.0.0.1:1", KUBESTACK_HOME=str(tmp_path / "home"))
    result = run("ask", "cache-ask 为什么变慢了?", "--agent-config", agent_yaml(tmp_path, redis_server),
                 "--timeout", "3", env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.splitlines()[0] == "问题涉及：redis (cache-ask)；症状：变慢"
    assert "redis/cache-ask: " in out and "无法检查" not in out.split("redis/cache-ask")[1].splitlines()[0]
    assert "[R1] redis/slow-commands: Redis 慢命令和延迟尖刺" in out and "处理步骤：" in out
    assert "未能读取近期事件" in out, "the broker that does not answer is said in Chinese too"
    assert not LOG_LINE.search(out), "a log line reached standard output"
    assert LOG_LINE.search(result.stderr), "the libraries' and our logs go to standard error"
