"""The audit chain (pure) and its local store: chaining, replays, resuming, and what verify can and cannot see."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta, timezone

import pytest

from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import AuditEntry, AuditRecord
from kubestack.errors import AuditError, AuditStoreLockedError
from kubestack.pipeline.audit import (
    GENESIS,
    AuditChain,
    Problem,
    Unreadable,
    canonical_json,
    compare,
    record_hash,
    verify,
)
from kubestack.pipeline.auditstore import AuditStore, default_path

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def entry(number: int, **details: object) -> AuditEntry:
    return AuditEntry(
        event_id=f"entry-{number}", ts=T0 + timedelta(seconds=number, microseconds=number * 7),
        source=Source(agent="api", host="ops-1"), resource=ResourceRef(kind="redis", name="cache-1", host="db-1"),
        tenant="acme", actor="alice" if number % 2 else "stage:remediation",
        action="proposal.approved" if number % 2 else "action.executed", subject_id=f"prop-{number // 2}",
        details=details or {"n": number},
    )


def chained(count: int) -> list[AuditRecord]:
    chain = AuditChain()
    return [chain.link(entry(n)) for n in range(count)]


def kinds(problems) -> list[tuple[Problem, int | None]]:
    return [(p.kind, p.seq) for p in problems]


def edited(record: AuditRecord, **fields: object) -> AuditRecord:
    return record.model_copy(update=fields)


# --- chaining -----------------------------------------------------------------------------------


def test_records_link_from_genesis_and_carry_the_entry() -> None:
    records = chained(3)
    assert [r.seq for r in records] == [0, 1, 2]
    assert records[0].prev_hash == GENESIS
    assert records[1].prev_hash == records[0].hash and records[2].prev_hash == records[1].hash
    assert len({r.hash for r in records}) == 3
    first = records[0]
    assert (first.entry_id, first.actor, first.action, first.subject_id, first.tenant) == (
        "entry-0", "stage:remediation", "action.executed", "prop-0", "acme")
    assert first.event_id == "entry-0-a0" and first.ts == entry(0).ts
    assert verify(records) == []


def test_a_replayed_entry_is_not_chained_twice() -> None:
    chain = AuditChain()
    first = chain.link(entry(0))
    assert chain.link(entry(0)) is None
    second = chain.link(entry(1))
    assert (second.seq, second.prev_hash) == (1, first.hash)


def test_the_memory_of_chained_entries_is_bounded() -> None:
    chain = AuditChain(remember=2)
    for n in range(3):
        chain.link(entry(n))
    assert chain.link(entry(2)) is None and chain.link(entry(1)) is None
    assert chain.link(entry(0)).seq == 3  # forgotten: older than the memory


def test_resume_continues_the_chain_and_remembers_recent_entries() -> None:
    records = chained(4)
    chain = AuditChain.resume(records[-1], recent=records[-3:])
    assert (chain.seq, chain.head) == (4, records[-1].hash)
    assert chain.link(entry(2)) is None and chain.link(entry(3)) is None
    following = chain.link(entry(4))
    assert verify([*records, following]) == []
    fresh = AuditChain.resume(None)
    assert (fresh.seq, fresh.head) == (0, GENESIS)


# --- canonical form ------------------------------------------------------------------------------


def test_canonical_json_is_sorted_compact_with_one_datetime_form() -> None:
    record = chained(1)[0]
    text = canonical_json(record)
    fields = json.loads(text)
    assert list(fields) == sorted(fields) and " " not in text.replace("proposal approved", "")
    assert "hash" not in fields and "prev_hash" not in fields
    assert fields["ts"] == "2025-03-01T12:00:00.000000Z"
    assert fields["seq"] == 0 and fields["entry_id"] == "entry-0"


def test_a_record_read_back_from_json_hashes_identically() -> None:
    odd = entry(5, when=T0, ratio=0.1 + 0.2, missing=float("nan"), pair=(1, 2), text="naïve ☃",
                nested={"b": 1, "a": [None]})
    record = AuditChain().link(odd)
    back = AuditRecord.model_validate_json(record.model_dump_json())
    assert back == record
    assert record_hash(back) == back.hash == record.hash
    assert back.details["when"] == "2025-03-01T12:00:00Z" and back.details["missing"] is None


def test_a_timestamp_in_another_zone_hashes_as_the_same_instant() -> None:
    record = chained(1)[0]
    shifted = record.model_copy(update={"ts": record.ts.astimezone(timezone(timedelta(hours=8)))})
    assert canonical_json(shifted) == canonical_json(record)


# --- what verify catches --------------------------------------------------------------------------


def test_an_edited_field_is_caught_at_its_seq() -> None:
    records = chained(5)
    records[2] = edited(records[2], actor="mallory")
    assert kinds(verify(records)) == [(Problem.EDITED, 2)]


def test_an_edited_hash_breaks_its_own_check_and_the_next_link() -> None:
    records = chained(5)
    records[2] = edited(records[2], hash="f" * 64)
    assert kinds(verify(records)) == [(Problem.EDITED, 2), (Problem.BROKEN_LINK, 3)]


def test_an_edited_and_rehashed_record_breaks_the_next_link() -> None:
    records = chained(5)
    forged = edited(records[2], details={"n": 99})
    records[2] = edited(forged, hash=record_hash(forged))
    assert kinds(verify(records)) == [(Problem.BROKEN_LINK, 3)]


def test_a_record_removed_in_the_middle_is_missing() -> None:
    records = chained(5)
    del records[2]
    problems = verify(records)
    assert kinds(problems) == [(Problem.MISSING, 2)]
    assert "removed" in problems[0].detail


def test_a_run_of_removed_records_is_one_problem_however_long() -> None:
    records = chained(3)
    forged = edited(records[2], seq=10**12)
    problems = verify([*records[:2], edited(forged, hash=record_hash(forged))])
    assert kinds(problems) == [(Problem.MISSING, 2)]
    assert problems[0].detail == f"seqs 2..{10**12 - 1} are missing (removed)"


def test_a_removed_first_record_is_caught() -> None:
    assert kinds(verify(chained(4)[1:])) == [(Problem.MISSING, 0)]


def test_a_removed_last_record_cannot_be_seen_from_the_chain_alone() -> None:
    """Nothing comes after the last record to break: only another copy (the topic) or a count anchors the end."""
    records = chained(5)
    assert verify(records[:-1]) == []
    assert kinds(compare(records[:-1], records)) == [(Problem.NOT_IN_STORE, 4)]


def test_reordered_records_are_out_of_order() -> None:
    records = chained(5)
    records[1], records[2] = records[2], records[1]
    assert kinds(verify(records)) == [(Problem.OUT_OF_ORDER, 1)]


def test_renumbered_records_do_not_hash() -> None:
    records = chained(4)
    del records[1]
    records[1:] = [edited(r, seq=r.seq - 1) for r in records[1:]]
    assert kinds(verify(records)) == [(Problem.EDITED, 1), (Problem.BROKEN_LINK, 1), (Problem.EDITED, 2)]


def test_duplicate_seqs_are_named() -> None:
    records = chained(3)
    problems = verify([*records, edited(records[1], actor="mallory")])
    assert (Problem.DUPLICATE, 1) in kinds(problems)
    assert "different records" in next(p.detail for p in problems if p.kind is Problem.DUPLICATE)


def test_a_wrong_genesis_is_caught() -> None:
    records = chained(2)
    forged = edited(records[0], prev_hash="1" * 64)
    assert (Problem.GENESIS, 0) in kinds(verify([edited(forged, hash=record_hash(forged)), records[1]]))


def test_a_malformed_line_is_a_problem_not_a_crash() -> None:
    records = chained(3)
    problems = verify([records[0], Unreadable(2, "line 2 is not an audit record: bad json"), records[1], records[2]])
    assert kinds(problems) == [(Problem.MALFORMED, None)]
    assert problems[0].where == 2


def test_a_chain_truncated_by_retention_verifies_when_told_where_it_starts() -> None:
    records = chained(6)
    later = records[3:]
    problems = verify(later)
    assert kinds(problems) == [(Problem.MISSING, 0)]
    assert problems[0].detail.startswith("seqs 0..2 are missing") and "verify from a later start" in problems[0].detail
    assert verify(later, start_seq=None) == []
    assert verify(later, start_seq=3, start_hash=records[2].hash) == []
    assert kinds(verify(later, start_seq=3, start_hash="e" * 64)) == [(Problem.GENESIS, 3)]


def test_compare_names_where_store_and_topic_disagree() -> None:
    records = chained(6)
    topic = records[2:]  # retention dropped 0 and 1: not a problem
    assert compare(records, topic) == []
    assert compare(records, [*topic, records[3]]) == []  # a republished copy
    changed = [*records[:3], edited(records[3], actor="mallory"), *records[4:]]
    assert kinds(compare(changed, topic)) == [(Problem.DIFFERS, 3)]
    assert kinds(compare(records, [r for r in topic if r.seq != 4])) == [(Problem.NOT_ON_TOPIC, 4)]
    assert kinds(compare(records, [])) == [(Problem.NOT_ON_TOPIC, 0)]


# --- the store ------------------------------------------------------------------------------------


def test_the_store_appends_private_fsynced_lines_and_reads_them_back(tmp_path) -> None:
    path = default_path(tmp_path)
    assert path == tmp_path / "audit" / "audit.jsonl"
    records = chained(5)
    with AuditStore(path) as store:
        assert store.append(records[0]) == 1
        assert store.append(records[1:]) == 4
        assert store.append([]) == 0
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert list(AuditStore(path).read()) == records
    assert AuditStore(path).last() == records[-1]
    assert AuditStore(path).tail(2) == records[-2:]
    assert AuditStore(path).tail(50) == records
    assert len(path.read_text().splitlines()) == 5


def test_a_second_writer_on_the_same_store_is_refused(tmp_path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditStore(path):
        with pytest.raises(AuditStoreLockedError, match="held by another writer"):
            AuditStore(path).open()
    with AuditStore(path) as again:  # the lock went with the first writer
        assert again.append(chained(1)) == 1


def test_appending_needs_the_store_open(tmp_path) -> None:
    with pytest.raises(AuditError, match="not open for writing"):
        AuditStore(tmp_path / "audit.jsonl").append(chained(1))


def test_a_store_resumes_a_chain_across_a_restart(tmp_path) -> None:
    path = tmp_path / "audit.jsonl"
    chain = AuditChain()
    with AuditStore(path) as store:
        store.append([chain.link(entry(n)) for n in range(3)])
    store = AuditStore(path)
    chain = AuditChain.resume(store.last(), recent=store.tail(100))
    with store:
        replayed = [chain.link(entry(n)) for n in range(5)]  # Kafka delivers 0..2 again after the restart
        store.append([r for r in replayed if r is not None])
    assert [r is None for r in replayed] == [True, True, True, False, False]
    assert [r.seq for r in store.read()] == [0, 1, 2, 3, 4]
    assert verify(store.read()) == []


def test_a_write_cut_short_is_dropped_on_open_not_glued_to_the_next(tmp_path) -> None:
    path = tmp_path / "audit.jsonl"
    records = chained(3)
    with AuditStore(path) as store:
        store.append(records[:2])
    with path.open("a") as stream:
        stream.write(records[2].model_dump_json()[:40])
    with AuditStore(path) as store:
        store.append(records[2])
    assert list(store.read()) == records


def test_a_damaged_line_is_read_as_unreadable_and_last_refuses_to_resume_past_it(tmp_path) -> None:
    path = tmp_path / "audit.jsonl"
    records = chained(2)
    path.write_text(records[0].model_dump_json() + "\n{not json\n" + records[1].model_dump_json() + "\n")
    read = list(AuditStore(path).read())
    assert isinstance(read[1], Unreadable) and read[1].where == 2 and "line 2" in read[1].reason
    assert kinds(verify(read)) == [(Problem.MALFORMED, None)]
    path.write_text(records[0].model_dump_json() + "\n{not json\n")
    with pytest.raises(AuditError, match="ends with a damaged line"):
        AuditStore(path).last()


def test_an_absent_store_reads_as_empty(tmp_path) -> None:
    store = AuditStore(tmp_path / "none.jsonl")
    assert list(store.read()) == [] and store.last() is None and store.tail(5) == []


# --- seals: a chain rebuilt without the writer's key ----------------------------------------------------


def forge(records: list[AuditRecord], seq: int, **fields: object) -> list[AuditRecord]:
    """What someone who can write the store (not the key) does: edit a record, then rehash every link after it."""
    forged, head = [], GENESIS
    for record in records:
        draft = record.model_copy(update=(fields if record.seq == seq else {}) | {"prev_hash": head})
        draft = draft.model_copy(update={"hash": record_hash(draft)})
        forged.append(draft)
        head = draft.hash
    return forged


def stored(path, records: list[AuditRecord]) -> None:
    """Lines as the forger writes them, keeping the seals the real lines had (they cannot make new ones)."""
    real = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(json.loads(r.model_dump_json()) | {"key_id": old["key_id"],
                                                                           "mac": old["mac"]}) + "\n"
                            for r, old in zip(records, real, strict=True)))


def test_a_chain_rebuilt_without_the_key_is_forged_though_every_hash_links(tmp_path) -> None:
    from kubestack.pipeline.audit import AuditKeys

    path = tmp_path / "audit.jsonl"
    records = chained(5)
    with AuditStore(path) as store:
        store.append(records)
    stored(path, forge(records, 2, actor="mallory"))
    keys = AuditKeys.load(tmp_path / "audit-keys.json")
    assert verify(AuditStore(path).read()) == [], "an unkeyed check sees a perfect chain"
    assert kinds(verify(AuditStore(path).read_sealed(), keys=keys)) == [(Problem.FORGED, 2), (Problem.FORGED, 3),
                                                                        (Problem.FORGED, 4)]
    assert stat.S_IMODE(os.stat(tmp_path / "audit-keys.json").st_mode) == 0o600


def test_stripping_the_seals_does_not_pass_for_an_old_store(tmp_path) -> None:
    from kubestack.pipeline.audit import AuditKeys

    path = tmp_path / "audit.jsonl"
    records = chained(3)
    with AuditStore(path) as store:
        store.append(records)
    path.write_text("".join(r.model_dump_json() + "\n" for r in forge(records, 1, actor="mallory")))
    keys = AuditKeys.load(tmp_path / "audit-keys.json")
    assert kinds(verify(AuditStore(path).read_sealed(), keys=keys)) == [(Problem.UNSEALED, 0), (Problem.UNSEALED, 1),
                                                                        (Problem.UNSEALED, 2)]


def test_records_stored_before_the_key_ring_are_checked_by_hash_and_the_rest_sealed(tmp_path) -> None:
    from kubestack.pipeline.audit import AuditKeys, unsealed_count

    path = tmp_path / "audit.jsonl"
    chain = AuditChain()
    path.write_text("".join(chain.link(entry(n)).model_dump_json() + "\n" for n in range(3)))  # an older writer
    with AuditStore(path) as store:
        store.append([chain.link(entry(n)) for n in range(3, 5)])
    keys = AuditKeys.load(tmp_path / "audit-keys.json")
    assert keys.sealed_from == 3 and unsealed_count(AuditStore(path).read_sealed()) == 3
    assert verify(AuditStore(path).read_sealed(), keys=keys) == []
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:3] + [json.dumps({k: v for k, v in json.loads(lines[3]).items()
                                                       if k not in ("key_id", "mac")})] + lines[4:]) + "\n")
    assert kinds(verify(AuditStore(path).read_sealed(), keys=keys)) == [(Problem.UNSEALED, 3)]


def test_a_rotated_key_seals_what_follows_and_old_keys_still_check_theirs(tmp_path) -> None:
    from kubestack.pipeline.audit import AuditKeys

    path, ring = tmp_path / "audit.jsonl", tmp_path / "audit-keys.json"
    chain = AuditChain()
    with AuditStore(path) as store:
        store.append([chain.link(entry(n)) for n in range(2)])
    keys = AuditKeys.load(ring)
    assert keys.rotate() == "k2"
    keys.save(ring)
    with AuditStore(path) as store:
        store.append([chain.link(entry(n)) for n in range(2, 4)])
    sealed = list(AuditStore(path).read_sealed())
    assert [s.key_id for s in sealed] == ["k1", "k1", "k2", "k2"]
    assert verify(sealed, keys=AuditKeys.load(ring)) == []
    without_k1 = AuditKeys.load(ring)
    del without_k1.keys["k1"]
    problems = verify(sealed, keys=without_k1)
    assert kinds(problems) == [(Problem.FORGED, 0), (Problem.FORGED, 1)]
    assert "does not hold" in problems[0].detail
