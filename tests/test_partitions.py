"""Partitions as the settings give them: ``kafka.min_partitions`` raises every partitioned topic (a group of N
workers wants N), ``kafka.partitions`` sets single topics, ordered topics keep one; the worker's tables and their
changelogs follow, and a worker whose settings disagree with the cluster's topics refuses to start, saying what to
change. Live parts on the session broker."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from kubestack.bus import ensure_topics, partition_counts
from kubestack.contract.topics import AUDIT, HEALTH, INCIDENTS, LOGS, METRICS, NOTIFICATIONS, SILENCES
from kubestack.errors import ConfigError
from kubestack.pipeline.app import create_app
from kubestack.pipeline.stages import check_partitions, create_internal_topics, register, signals_topic
from kubestack.settings import KafkaSettings, Settings, load_settings
from tests.cli import cli_env

def test_defaults_are_the_registrys() -> None:
    kafka = KafkaSettings()
    assert [kafka.partitions_of(s) for s in (METRICS, HEALTH, NOTIFICATIONS, AUDIT)] == [8, 4, 2, 1]


def test_min_partitions_raises_partitioned_topics_and_keeps_ordered_ones_at_one() -> None:
    kafka = KafkaSettings(min_partitions=6, partitions={"logs": 12})
    assert kafka.partitions_of(METRICS) == 8  # above the minimum already
    assert kafka.partitions_of(HEALTH) == kafka.partitions_of(NOTIFICATIONS) == 6
    assert kafka.partitions_of(LOGS) == 12
    assert kafka.partitions_of(AUDIT) == kafka.partitions_of(SILENCES) == 1


@pytest.mark.parametrize(("partitions", "said"), [
    ({"metric": 8}, "no contract topic metric; the topics are metrics, logs"),
    ({"audit": 4}, "audit keeps one partition, its order is its meaning"),
    ({"health": 0}, "kafka.partitions.health is 0"),
    ({"remediation-proposals": 8}, "read together, give them the same count (now remediation-proposals 8, "
                                   "remediation-decisions 4)"),
])
def test_a_wrong_partitions_setting_says_what_is_wrong(partitions: dict, said: str) -> None:
    with pytest.raises(ConfigError, match="kafka") as caught:
        load_settings(kafka={"partitions": partitions})
    assert said in str(caught.value)


def test_check_partitions_names_each_topic_that_differs_and_ignores_missing_ones() -> None:
    check_partitions({"a": 4, "b": 8, "missing": 2}, {"a": 4, "b": 8})
    with pytest.raises(ConfigError) as caught:
        check_partitions({"a": 4, "b": 8}, {"a": 6, "b": 8})
    assert "a has 6, the settings give it 4" in str(caught.value) and "b has" not in str(caught.value)
    assert "kafka.partitions" in str(caught.value)


def _settings(kafka: KafkaSettings, prefix: str, home: Path, **update) -> Settings:
    return Settings(home=home, kafka=kafka.model_copy(update={"topic_prefix": prefix, **update}),
                    worker={"app_id": f"{prefix}worker"})


@pytest.mark.asyncio(loop_scope="session")
async def test_topics_tables_and_changelogs_follow_the_settings(kafka: KafkaSettings, tmp_path: Path) -> None:
    prefix = f"parts-{uuid.uuid4().hex[:6]}."
    settings = _settings(kafka, prefix, tmp_path, min_partitions=6, partitions={"metrics": 10})
    await ensure_topics(settings.kafka)
    names = {s: s.qualified(prefix) for s in (METRICS, HEALTH, INCIDENTS, AUDIT)}
    counts = await partition_counts(settings.kafka, list(names.values()))
    assert {s.short: counts[n] for s, n in names.items()} == {"metrics": 10, "health": 6, "incidents": 6, "audit": 1}

    app = create_app(settings)
    register(app, settings)
    await create_internal_topics(app, settings)
    changelogs = {t.name: t.changelog_topic.get_topic_name() for t in app.tables.values()}
    internal = await partition_counts(settings.kafka, [*changelogs.values(), signals_topic(settings)])
    assert internal[changelogs["metric-detectors"]] == 10  # as the metrics topic it is keyed on
    assert internal[changelogs["root-causes"]] == internal[changelogs["incident-memory"]] == 6
    assert internal[changelogs["correlation"]] == internal[signals_topic(settings)] == 6
    assert internal[changelogs["remediation-earned"]] == 1

    # the same worker with the default partitions: its tables would no longer match the topics
    default = _settings(kafka, prefix, tmp_path)
    app = create_app(default)
    register(app, default)
    with pytest.raises(ConfigError) as caught:
        await create_internal_topics(app, default)
    assert f"{METRICS.qualified(prefix)} has 10, the settings give it 8" in str(caught.value)


@pytest.mark.asyncio(loop_scope="session")
async def test_the_worker_refuses_to_start_on_topics_split_otherwise(kafka: KafkaSettings, tmp_path: Path) -> None:
    """The same check, from ``kubestack worker`` as a user runs it: a clear message and exit 2, no Faust trace."""
    prefix = f"parts-{uuid.uuid4().hex[:6]}."
    await ensure_topics(kafka.model_copy(update={"topic_prefix": prefix}))  # metrics with its 8 partitions
    env = cli_env(KUBESTACK_KAFKA__BOOTSTRAP=kafka.bootstrap, KUBESTACK_KAFKA__TOPIC_PREFIX=prefix,
                  KUBESTACK_KAFKA__PARTITIONS='{"metrics": 12}', KUBESTACK_HOME=str(tmp_path / "home"),
                  KUBESTACK_WORKER__APP_ID=f"{prefix}worker")
    run = subprocess.run([sys.executable, "-m", "kubestack", "worker"], env=env, capture_output=True, text=True,
                         timeout=120, stdin=subprocess.DEVNULL)
    assert run.returncode == 2, run.stderr[-2000:]
    assert f"{METRICS.qualified(prefix)} has 8, the settings give it 12" in run.stderr
    assert "Traceback" not in run.stderr
