"""The Faust worker against the real broker: valid batches update the inventory table (changelog-backed),
malformed messages go to the dead-letter topic with the reason, and Ctrl-C stops it cleanly."""

import json

import pytest

from kubestack.contract.base import ResourceRef
from kubestack.contract.topics import DEAD_LETTER, METRICS
from tests.cli import cli_env, follow, run
from tests.factories import example
from tests.kafka_io import consume, produce

pytestmark = pytest.mark.kafka


async def test_worker_dead_letters_malformed_input_and_keeps_processing(kafka, unique, tmp_path) -> None:
    prefix, app_id = f"test.{unique}.", f"test-worker-{unique}"
    env = cli_env(KUBESTACK_KAFKA__BOOTSTRAP=kafka.bootstrap, KUBESTACK_KAFKA__TOPIC_PREFIX=prefix,
                  KUBESTACK_WORKER__APP_ID=app_id, KUBESTACK_HOME=str(tmp_path),
                  KUBESTACK_WORKER__CHECKPOINT_S="0")  # every batch reaches the tables, not one per 30 s
    worker = follow("worker", env=env)
    try:
        assert worker.wait_for("Worker ready"), worker.output
        redis = ResourceRef(kind="redis", name="cache-1", host="db-1")
        before, after = example(METRICS, redis), example(METRICS, redis)
        garbage = [(redis.key.encode(), b"{not json"), (redis.key.encode(), b'{"samples": []}')]
        await produce(kafka, METRICS.qualified(prefix), [METRICS.encode(before), *garbage, METRICS.encode(after)])

        letters = await consume(kafka, DEAD_LETTER.qualified(prefix), 2, f"{app_id}-dlq")
        decoded = [DEAD_LETTER.decode(r.value) for r in letters]
        assert [d.offset for d in decoded] == [1, 2]
        assert all(d.original_topic == METRICS.qualified(prefix) and d.stage == "intake" for d in decoded)
        assert "Invalid JSON" in decoded[0].reason and decoded[0].payload == "{not json"
        assert "source: Field required" in decoded[1].reason and decoded[1].key == redis.key

        changelog = await consume(kafka, f"{app_id}-resource-inventory-changelog", 2, f"{app_id}-cl")
        entries = [json.loads(r.value) for r in changelog]
        assert [e["batches"] for e in entries] == [1, 2], "both valid batches counted, around the garbage"
        assert json.loads(changelog[-1].key) == redis.key
    finally:
        code = worker.stop()
    assert code == 0, worker.output


async def test_findings_become_one_incident_that_resolves_when_they_clear(kafka, unique, tmp_path) -> None:
    from kubestack.contract.events import Finding, HealthReport, IncidentStatus, Severity
    from kubestack.contract.topics import HEALTH, INCIDENTS
    from tests.factories import SOURCE

    prefix, app_id = f"test.{unique}.", f"test-worker-{unique}"
    env = cli_env(KUBESTACK_KAFKA__BOOTSTRAP=kafka.bootstrap, KUBESTACK_KAFKA__TOPIC_PREFIX=prefix,
                  KUBESTACK_WORKER__APP_ID=app_id, KUBESTACK_HOME=str(tmp_path))
    worker = follow("worker", env=env)
    try:
        assert worker.wait_for("Worker ready"), worker.output
        redis = ResourceRef(kind="redis", name="cache-1", host="db-1", labels={"service": "shop"})
        host = ResourceRef(kind="host", name="db-1", host="db-1")

        def health(resource, *rules):
            return HealthReport(source=SOURCE, resource=resource, tenant="acme", findings=[
                Finding(rule_id=r, severity=Severity.CRITICAL, message=f"{r} fired") for r in rules])

        # order holds per resource (per partition), not across them: each step waits for its incident event
        steps = [([health(redis, "redis.evictions"), health(redis, "redis.evictions")], 1),
                 ([health(host, "host.memory_pressure")], 2),
                 ([health(redis), health(host)], 3)]
        for reports, expected in steps:
            await produce(kafka, HEALTH.qualified(prefix), [HEALTH.encode(r) for r in reports])
            records = await consume(kafka, INCIDENTS.qualified(prefix), expected, f"{app_id}-inc-{expected}",
                                    timeout_s=60)
            assert len(records) >= expected, worker.output[-6000:]
        incidents = [INCIDENTS.decode(r.value) for r in records]
        assert len(incidents) == 3, worker.output[-6000:]
        assert [i.status for i in incidents] == [IncidentStatus.OPEN, IncidentStatus.UPDATED,
                                                 IncidentStatus.RESOLVED]
        assert len({i.incident_id for i in incidents}) == 1, "one incident for related signals"
        assert {r.key for r in incidents[1].resources} == {redis.key, host.key}
        assert incidents[0].tenant == "acme" and "redis.evictions" in incidents[0].title
    finally:
        code = worker.stop()
    assert code == 0, worker.output


def test_a_detector_no_model_provides_stops_the_worker_at_start(tmp_path) -> None:
    result = run("worker", "--no-create-topics",
                 env=cli_env(KUBESTACK_HOME=str(tmp_path), KUBESTACK_WORKER__ANOMALY_DETECTOR="nope"))
    assert result.returncode == 2, result.stderr
    assert "worker.anomaly_detector 'nope' is none of likelihood" in result.stderr
