"""``kubestack audit``: verify a real store file (intact, then tampered by hand) and its copy on a real topic."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiokafka.admin import NewTopic

from kubestack.bus import create_topics
from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import AuditEntry, AuditRecord
from kubestack.contract.topics import AUDIT
from kubestack.pipeline.audit import AuditChain
from kubestack.pipeline.auditstore import AuditStore, default_path
from kubestack.settings import KafkaSettings
from tests.cli import cli_env, run
from tests.kafka_io import produce

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
ACTIONS = ("proposal.approved", "action.executed", "action.verified", "proposal.rejected", "api.token_used")


def chained(count: int) -> list[AuditRecord]:
    chain = AuditChain()
    return [chain.link(AuditEntry(
        event_id=f"entry-{n}", ts=T0 + timedelta(minutes=n), source=Source(agent="api", host="ops-1"),
        resource=ResourceRef(kind="mysql", name="orders", host="db-2"), tenant="acme",
        actor=f"user-{n}", action=ACTIONS[n % len(ACTIONS)], subject_id=f"prop-{n}", details={"reason": f"r{n}"},
    )) for n in range(count)]


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    with AuditStore(path) as writer:
        writer.append(chained(5))
    return path


def verify_store(path: Path, *extra: str, env: dict[str, str] | None = None):
    return run("audit", "verify", "--store", str(path), *extra, env=env)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def test_an_intact_store_verifies(store: Path) -> None:
    result = verify_store(store)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "intact" in result.stdout and "5 records" in result.stdout and "seq 0..4" in result.stdout


def test_the_default_store_lives_under_home(tmp_path: Path) -> None:
    with AuditStore(default_path(tmp_path)) as writer:
        writer.append(chained(2))
    result = run("audit", "verify", "--json", env=cli_env(KUBESTACK_HOME=str(tmp_path)))
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["intact"] is True and report["records"] == 2
    assert report["store"] == str(tmp_path / "audit" / "audit.jsonl")


def test_one_edited_byte_is_named_by_seq(store: Path) -> None:
    text = store.read_text()
    assert text.count('"actor":"user-2"') == 1
    store.write_text(text.replace('"actor":"user-2"', '"actor":"user-9"'))
    result = verify_store(store)
    assert result.returncode == 1
    assert "NOT intact" in result.stdout and "edited: seq 2: hash does not match" in result.stdout


def test_a_deleted_line_is_named_by_seq(store: Path) -> None:
    kept = lines(store)
    del kept[3]
    store.write_text("".join(kept))
    result = verify_store(store)
    assert result.returncode == 1 and "missing: seq 3 is missing (removed)" in result.stdout


def test_two_swapped_lines_are_named_by_seq(store: Path) -> None:
    swapped = lines(store)
    swapped[1], swapped[2] = swapped[2], swapped[1]
    store.write_text("".join(swapped))
    result = verify_store(store, "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["intact"] is False
    assert [(p["in"], p["kind"], p["seq"], p["where"]) for p in report["problems"]] == [
        ("store", "out-of-order", 1, 3)]


def test_a_malformed_line_is_reported_not_a_crash(store: Path) -> None:
    damaged = lines(store)
    damaged[2] = damaged[2][:30] + "\n"
    store.write_text("".join(damaged))
    result = verify_store(store)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "malformed: line 3 is not an audit record" in result.stdout


def test_no_store_is_an_error_not_an_intact_chain(tmp_path: Path) -> None:
    result = verify_store(tmp_path / "absent.jsonl")
    assert result.returncode == 1 and "no audit store at" in result.stderr and "Traceback" not in result.stderr


def test_list_shows_the_last_records(store: Path) -> None:
    result = run("audit", "list", "--store", str(store), "--limit", "2", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"seq": 3, "ts": "2025-03-01T12:03:00+00:00", "actor": "user-3", "action": "proposal.rejected",
         "subject_id": "prop-3", "tenant": "acme"},
        {"seq": 4, "ts": "2025-03-01T12:04:00+00:00", "actor": "user-4", "action": "api.token_used",
         "subject_id": "prop-4", "tenant": "acme"},
    ]
    table = run("audit", "list", "--store", str(store))
    assert table.returncode == 0 and "proposal.approved" in table.stdout and "user-4" in table.stdout


def test_drill_a_chain_forged_without_the_key_is_named_though_every_hash_links(store: Path) -> None:
    """Whoever can write the store rebuilt a consistent chain naming another actor: an unkeyed chain verified it.
    The lines keep the seals they had (a forger cannot make new ones without the writer's key)."""
    from kubestack.pipeline.audit import GENESIS, record_hash

    originals = [json.loads(line) for line in lines(store)]
    head, forged = GENESIS, []
    for line in originals:
        record = AuditRecord.model_validate(line)
        draft = record.model_copy(update={"prev_hash": head} | ({"actor": "alice"} if record.seq == 2 else {}))
        draft = draft.model_copy(update={"hash": record_hash(draft)})
        head = draft.hash
        forged.append(json.dumps(json.loads(draft.model_dump_json()) | {"key_id": line["key_id"], "mac": line["mac"]}))
    store.write_text("\n".join(forged) + "\n")
    result = verify_store(store, "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 1 and report["keys"]["ids"] == ["k1"] and report["keys"]["sealed_from"] == 0
    assert [(p["kind"], p["seq"]) for p in report["problems"]] == [("forged", 2), ("forged", 3), ("forged", 4)]
    text = verify_store(store).stdout
    assert "forged: seq 2: forged (its seal (key k1) does not match: written without the key)" in text


def test_a_sealed_store_without_its_key_ring_is_not_called_intact(store: Path) -> None:
    (store.parent / "audit-keys.json").rename(store.parent / "elsewhere.json")
    result = verify_store(store)
    assert result.returncode == 1 and "no-key-ring" in result.stdout
    assert verify_store(store, "--keys", str(store.parent / "elsewhere.json")).returncode == 0


def test_rotate_key_adds_a_current_key_and_keeps_the_old_ones(store: Path) -> None:
    result = run("audit", "rotate-key", "--store", str(store))
    assert result.returncode == 0 and "current key k2" in result.stdout, result.stdout + result.stderr
    with AuditStore(store) as writer:
        writer.append([AuditChain.resume(writer.last()).link(AuditEntry(
            source=Source(agent="api", host="ops-1"), resource=ResourceRef(kind="mysql", name="orders"),
            actor="user-5", action="proposal.approved", subject_id="prop-5"))])
    report = json.loads(verify_store(store, "--json").stdout)
    assert report["intact"] is True and report["keys"]["ids"] == ["k1", "k2"] and report["keys"]["current"] == "k2"
    assert json.loads(lines(store)[-1])["key_id"] == "k2"


# --- against the audit topic on a real broker ------------------------------------------------------


async def publish(kafka: KafkaSettings, prefix: str, records: list[AuditRecord]) -> dict[str, str]:
    settings = kafka.model_copy(update={"topic_prefix": prefix})
    name = AUDIT.qualified(prefix)
    await create_topics(settings, [NewTopic(name, AUDIT.partitions, 1, topic_configs=AUDIT.topic_configs)])
    await produce(settings, name, [AUDIT.encode(record) for record in records])
    return cli_env(KUBESTACK_KAFKA__BOOTSTRAP=kafka.bootstrap, KUBESTACK_KAFKA__TOPIC_PREFIX=prefix)


async def test_store_and_topic_agree(kafka: KafkaSettings, unique_topic: str, tmp_path: Path) -> None:
    records = chained(6)
    with AuditStore(tmp_path / "audit.jsonl") as writer:
        writer.append(records)
    # Retention dropped the first two records; the stage republished seq 4 after a restart.
    env = await publish(kafka, f"{unique_topic}.", [*records[2:5], records[4], records[5]])
    result = verify_store(tmp_path / "audit.jsonl", "--topic", "--json", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["intact"] is True
    assert report["topic"] == {"name": f"{unique_topic}.kubestack.audit.v1", "records": 4, "first_seq": 2,
                               "last_seq": 5, "head": records[5].hash}


async def test_a_last_record_removed_from_the_store_shows_against_the_topic(
        kafka: KafkaSettings, unique_topic: str, tmp_path: Path) -> None:
    records = chained(5)
    path = tmp_path / "audit.jsonl"
    with AuditStore(path) as writer:
        writer.append(records[:-1])  # as if someone cut the last line: the chain alone looks fine
    assert verify_store(path).returncode == 0
    env = await publish(kafka, f"{unique_topic}.", records)
    result = verify_store(path, "--topic", env=env)
    assert result.returncode == 1
    assert "store-vs-topic: not-in-store: seq 4 is on the topic but not in the store" in result.stdout


async def test_a_store_edited_and_rehashed_differs_from_the_topic(
        kafka: KafkaSettings, unique_topic: str, tmp_path: Path) -> None:
    records = chained(3)
    forged = records[2].model_copy(update={"actor": "mallory"})
    forged = AuditChain.resume(records[1]).link(AuditEntry.model_validate(
        forged.model_dump() | {"event_id": forged.entry_id}))
    path = tmp_path / "audit.jsonl"
    with AuditStore(path) as writer:
        writer.append([*records[:2], forged])  # a consistent chain: only the other copy can tell
    assert verify_store(path).returncode == 0
    env = await publish(kafka, f"{unique_topic}.", records)
    result = verify_store(path, "--topic", "--json", env=env)
    assert result.returncode == 1
    problems = json.loads(result.stdout)["problems"]
    assert [(p["in"], p["kind"], p["seq"]) for p in problems] == [("store-vs-topic", "differs", 2)]


async def test_a_missing_topic_is_an_error(kafka: KafkaSettings, unique_topic: str, store: Path) -> None:
    env = cli_env(KUBESTACK_KAFKA__BOOTSTRAP=kafka.bootstrap, KUBESTACK_KAFKA__TOPIC_PREFIX=f"{unique_topic}.")
    result = verify_store(store, "--topic", env=env)
    assert result.returncode == 1 and f"no topic {unique_topic}.kubestack.audit.v1" in result.stderr
