import json

from kubestack.contract.topics import TOPICS
from tests.cli import cli_env, run


def test_topics_list_json_lists_the_whole_registry() -> None:
    result = run("topics", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == [spec.name for spec in TOPICS]
    metrics = rows[0]
    assert metrics == {
        "name": "kubestack.metrics.v1", "model": "MetricBatch", "key": "resource.key", "partitions": 8,
        "retention_ms": 3 * 24 * 3600 * 1000, "cleanup_policy": "delete",
        "description": TOPICS[0].description,
    }


def test_topics_list_applies_the_configured_prefix() -> None:
    result = run("topics", "list", "--json", env=cli_env(KUBESTACK_KAFKA__TOPIC_PREFIX="staging."))
    assert json.loads(result.stdout)[0]["name"] == "staging.kubestack.metrics.v1"


def test_topics_list_table_for_people() -> None:
    result = run("topics", "list")
    assert result.returncode == 0
    assert "kubestack.dead-letter.v1" in result.stdout and "DeadLetter" in result.stdout


def test_committed_schemas_are_current_via_the_cli() -> None:
    result = run("topics", "schemas", "--check")
    assert result.returncode == 0 and f"{len(TOPICS)} schemas up to date" in result.stdout


def test_bad_settings_exit_2_with_one_line_not_a_traceback(tmp_path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("local_kafka:\n  port: not-a-port\n")
    result = run("--config", str(config), "topics", "list")
    assert result.returncode == 2
    assert "error: invalid settings in" in result.stderr and "local_kafka.port" in result.stderr
    assert "Traceback" not in result.stderr
