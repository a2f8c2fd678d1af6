"""The tamper-evident audit chain: linking audit entries into hash-chained records, and checking a chain. Pure.

A record's ``hash`` is SHA-256 over its ``prev_hash`` followed by the canonical JSON of every other field
(sorted keys, no whitespace, datetimes as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``), so editing a record breaks its own
hash, and removing or re-hashing one breaks the next record's link. What a chain alone cannot show: the loss
of its *last* records (nothing comes after them to break). The copy on the ``audit`` topic, or a count or
head hash kept elsewhere, anchors the end; ``compare`` checks a store against the topic.

A topic truncated by retention starts at a later seq: that is not tampering, and ``verify`` accepts it when
told so (``start_seq=None``, or the seq and hash of the last record known to be good).

An unkeyed hash chain proves nothing to whoever can write the store: they can rebuild every hash. So the writer
also *seals* each record it stores: ``mac`` = HMAC-SHA256 under a key of its ``AuditKeys`` ring (named by
``key_id``) of the record's seq and hash, which already cover its content and its link. A chain rebuilt without
the key carries seals that do not match (``forged``); stripping the seals does not help either, since the ring
remembers the seq from which every record is sealed (``unsealed``). Rotation adds a key and makes it current; old
keys stay in the ring to check old records. Records stored before the store had a ring (an older worker) are
checked by hash only, and ``verify`` counts them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum, StrEnum
from typing import Any

from pydantic_core import to_jsonable_python

from kubestack.contract.events import AuditEntry, AuditRecord
from kubestack.errors import AuditError
from kubestack.keyring import KeyRing

GENESIS = "0" * 64
"""The ``prev_hash`` of the record at seq 0."""

REMEMBERED_ENTRIES = 10_000
"""How many recently chained entry ids a chain remembers, to drop entries Kafka delivers twice."""

_UNHASHED = frozenset({"hash", "prev_hash"})


# --- hashing ------------------------------------------------------------------------------------


def _canonical_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, Enum):
        return _canonical_value(value.value)
    if isinstance(value, dict):
        return {str(key): _canonical_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical_value(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return to_jsonable_python(value)


def canonical_json(record: AuditRecord) -> str:
    """Every field of ``record`` but ``hash`` and ``prev_hash``, as the one JSON text its hash covers."""
    fields = {name: value for name, value in record.model_dump().items() if name not in _UNHASHED}
    return json.dumps(_canonical_value(fields), sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def record_hash(record: AuditRecord) -> str:
    """The hash ``record`` should carry, whatever its ``hash`` field says."""
    return hashlib.sha256((record.prev_hash + canonical_json(record)).encode()).hexdigest()


def _as_record(entry: AuditEntry, seq: int, prev_hash: str) -> AuditRecord:
    # Details go through their JSON form first, so the record equals what is read back from the store or topic
    # (a datetime in details becomes the string the store holds, a tuple a list, NaN null).
    fields = entry.model_dump(mode="json") | {
        "event_id": f"{entry.event_id}-a{seq}", "seq": seq, "entry_id": entry.event_id,
        "prev_hash": prev_hash, "hash": GENESIS,
    }
    draft = AuditRecord.model_validate(fields)
    return draft.model_copy(update={"hash": record_hash(draft)})


# --- sealing ------------------------------------------------------------------------------------



@dataclass(frozen=True)
class Sealed:
    """A stored record with the seal its writer put on it (``key_id`` and ``mac`` None: stored unsealed)."""

    record: AuditRecord
    key_id: str | None
    mac: str | None


class AuditKeys(KeyRing):
    """The writer's key ring: keys by id, the current one, and the seq from which every record is sealed.

    Kept as JSON in a file of mode 0600 (``load``, ``create``, ``rotate``, ``save``); whoever verifies needs it too."""

    error = AuditError
    what = "audit key ring"

    def __init__(self, keys: dict[str, bytes], current: str, sealed_from: int | None = None) -> None:
        super().__init__(keys, current)
        self.sealed_from = sealed_from

    @classmethod
    def _extra_from(cls, data: dict) -> dict:
        return {"sealed_from": data.get("sealed_from")}

    def extra(self) -> dict:
        return {"sealed_from": self.sealed_from}

    def seal(self, record: AuditRecord) -> Sealed:
        return Sealed(record, self.current, self.mac(self.current, _sealed_text(self.current, record)))

    def check(self, item: Sealed) -> str | None:
        """Why ``item``'s seal is wrong (None when it is right)."""
        if item.key_id is None or item.mac is None:
            return "unsealed"
        if item.key_id not in self.keys:
            return f"sealed with key {item.key_id!r}, which the ring does not hold"
        if not hmac.compare_digest(self.mac(item.key_id, _sealed_text(item.key_id, item.record)), item.mac):
            return f"its seal (key {item.key_id}) does not match: written without the key"
        return None


def _sealed_text(key_id: str, record: AuditRecord) -> str:
    return f"{key_id}|{record.seq}|{record.hash}"


# --- chaining -----------------------------------------------------------------------------------


class AuditChain:
    """The head of one chain: the next seq, the last hash, and the entry ids chained lately."""

    def __init__(self, seq: int = 0, head: str = GENESIS, remember: int = REMEMBERED_ENTRIES) -> None:
        self.seq = seq
        self.head = head
        self._remember = remember
        self._recent: OrderedDict[str, None] = OrderedDict()

    @classmethod
    def resume(cls, last: AuditRecord | None, recent: Iterable[AuditRecord] = (),
               remember: int = REMEMBERED_ENTRIES) -> AuditChain:
        """Continue after ``last`` (a fresh chain for None); ``recent`` records' entries are not chained again."""
        chain = cls() if last is None else cls(last.seq + 1, last.hash, remember)
        for record in recent:
            chain._seen(record.entry_id)
        if last is not None:
            chain._seen(last.entry_id)
        return chain

    def _seen(self, entry_id: str) -> None:
        self._recent[entry_id] = None
        self._recent.move_to_end(entry_id)
        while len(self._recent) > self._remember:
            self._recent.popitem(last=False)

    def link(self, entry: AuditEntry) -> AuditRecord | None:
        """The next record, chaining ``entry``; None when the entry was chained lately (a replay)."""
        if entry.event_id in self._recent:
            return None
        record = _as_record(entry, self.seq, self.head)
        self._seen(entry.event_id)
        self.seq, self.head = record.seq + 1, record.hash
        return record


# --- checking -----------------------------------------------------------------------------------


class Problem(StrEnum):
    EDITED = "edited"              # the record's hash is not the hash of its content
    MISSING = "missing"            # a seq is absent: its record was removed
    BROKEN_LINK = "broken-link"    # prev_hash is not the hash of the record before (removed, replaced)
    OUT_OF_ORDER = "out-of-order"  # a seq comes after a higher one: records were reordered
    DUPLICATE = "duplicate"        # two different records carry one seq
    GENESIS = "genesis"            # the first record does not start the chain where it should
    MALFORMED = "malformed"        # a line or message that is not an audit record
    FORGED = "forged"              # the seal does not match: a record (or chain) rebuilt without the writer's key
    UNSEALED = "unsealed"          # a record without a seal where every record is sealed
    NO_KEYS = "no-key-ring"        # sealed records, but no key ring to check them with
    DIFFERS = "differs"            # store and topic hold different records for one seq
    NOT_IN_STORE = "not-in-store"  # the topic has a record the store lacks
    NOT_ON_TOPIC = "not-on-topic"  # the store has a record the topic lacks


@dataclass(frozen=True)
class Unreadable:
    """A stored line (or topic message) that is not an audit record; ``where`` is its line number or offset."""

    where: int
    reason: str


@dataclass(frozen=True)
class ChainProblem:
    kind: Problem
    seq: int | None
    detail: str
    where: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "seq": self.seq, "detail": self.detail, "where": self.where}


def verify(records: Iterable[AuditRecord | Sealed | Unreadable], *, start_seq: int | None = 0,
           start_hash: str | None = None, keys: AuditKeys | None = None) -> list[ChainProblem]:
    """Everything wrong with a chain given in stored order, by seq; empty when it is intact.

    ``keys``: the writer's ring; each record (``Sealed``, as a store gives them) must carry a seal it made from the
    ring's ``sealed_from`` seq on (a record before it, from an older writer, is checked by hash only).

    ``start_seq``: the seq the chain must start at (0 for a whole chain; None to accept whatever the first record
    says, e.g. a topic truncated by retention). ``start_hash``: the ``prev_hash`` that record must carry (by
    default GENESIS at seq 0, unchecked later). Records lost at the end cannot be seen here: see ``compare``.
    A problem's ``where`` is the record's position in ``records`` (its line in a store), from 1.
    """
    problems: list[ChainProblem] = []
    links: dict[int, _Link] = {}
    top: int | None = None
    for position, item in enumerate(records, start=1):
        if isinstance(item, Unreadable):
            problems.append(ChainProblem(Problem.MALFORMED, None, item.reason, item.where))
            continue
        if keys is not None:
            problems += _seal_problems(item, keys, position)
        item = item.record if isinstance(item, Sealed) else item
        link = _Link(item.prev_hash, item.hash, record_hash(item))
        if link.content != item.hash:
            problems.append(ChainProblem(Problem.EDITED, item.seq, f"seq {item.seq}: hash does not match the "
                                         "content (edited)", position))
        if item.seq in links:
            same = links[item.seq] == link
            problems.append(ChainProblem(Problem.DUPLICATE, item.seq, f"seq {item.seq} appears twice"
                                         + (" (same record)" if same else " (different records)"), position))
            continue
        if top is not None and item.seq < top:
            problems.append(ChainProblem(Problem.OUT_OF_ORDER, item.seq, f"seq {item.seq} comes after seq {top} "
                                         "(reordered)", position))
        links[item.seq] = link
        top = item.seq if top is None else max(top, item.seq)
    if links:
        problems += _structure(links, start_seq, start_hash)
    return sorted(problems, key=lambda p: -1 if p.seq is None else p.seq)


def _seal_problems(item: AuditRecord | Sealed, keys: AuditKeys, position: int) -> list[ChainProblem]:
    sealed = item if isinstance(item, Sealed) else Sealed(item, None, None)
    seq = sealed.record.seq
    if sealed.key_id is None and (keys.sealed_from is None or seq < keys.sealed_from):
        return []  # stored before the ring existed: checked by hash only
    why = keys.check(sealed)
    if why is None:
        return []
    kind = Problem.UNSEALED if why == "unsealed" else Problem.FORGED
    where = f"every record from seq {keys.sealed_from} on is sealed" if kind is Problem.UNSEALED else why
    return [ChainProblem(kind, seq, f"seq {seq}: {kind.value} ({where})", position)]


def unsealed_count(items: Iterable[AuditRecord | Sealed | Unreadable]) -> int:
    """How many records carry no seal (those of an older writer, or a store without a ring)."""
    return sum(1 for item in items
               if isinstance(item, AuditRecord) or isinstance(item, Sealed) and item.mac is None)


@dataclass(frozen=True)
class _Link:
    prev_hash: str
    hash: str
    content: str  # the hash the record's content gives


def _structure(links: dict[int, _Link], start_seq: int | None, start_hash: str | None) -> list[ChainProblem]:
    """Missing seqs (one problem per run of them), a wrong start and broken links."""
    lowest, first = min(links), min(links) if start_seq is None else start_seq
    problems = []
    seqs = sorted(links)
    previous = first - 1
    for seq in (seq for seq in seqs if seq >= first):
        if seq > previous + 1:
            gap = f"seq {previous + 1} is" if seq == previous + 2 else f"seqs {previous + 1}..{seq - 1} are"
            hint = " (if older records expired, verify from a later start)" if seq == lowest else ""
            problems.append(ChainProblem(Problem.MISSING, previous + 1, f"{gap} missing (removed){hint}"))
        previous = seq
    expected_start = start_hash if start_hash is not None else (GENESIS if first == 0 else None)
    head = links.get(first)
    if head is not None and expected_start is not None and head.prev_hash != expected_start:
        what = "genesis" if expected_start == GENESIS else "the given start hash"
        problems.append(ChainProblem(Problem.GENESIS, first, f"seq {first}: prev_hash is not {what}"))
    for seq in seqs:
        before = links.get(seq - 1)
        if seq > first and before is not None and links[seq].prev_hash != before.hash:
            problems.append(ChainProblem(Problem.BROKEN_LINK, seq, f"seq {seq}: prev_hash is not the hash of seq "
                                         f"{seq - 1} (a record was replaced or removed)"))
    return problems


def compare(store: Iterable[AuditRecord], topic: Iterable[AuditRecord]) -> list[ChainProblem]:
    """Where the local store and the ``audit`` topic disagree. The topic may start later (retention) and may hold
    the same record twice (a republish); a record the other side lacks, or a different one, is a problem."""
    stored = {record.seq: (record.hash, record_hash(record)) for record in store}
    published = {record.seq: (record.hash, record_hash(record)) for record in topic}
    if stored and not published:
        return [ChainProblem(Problem.NOT_ON_TOPIC, min(stored), "the topic holds no audit record; the store holds "
                             f"{len(stored)}")]
    problems, oldest_published = [], min(published)
    for seq in sorted(stored.keys() | published.keys()):
        mine, theirs = stored.get(seq), published.get(seq)
        if mine is not None and theirs is not None:
            if mine != theirs:
                problems.append(ChainProblem(Problem.DIFFERS, seq, f"seq {seq}: the store and the topic hold "
                                             "different records"))
        elif theirs is not None:
            problems.append(ChainProblem(Problem.NOT_IN_STORE, seq, f"seq {seq} is on the topic but not in the "
                                         "store (removed from the store)"))
        elif seq >= oldest_published:
            problems.append(ChainProblem(Problem.NOT_ON_TOPIC, seq, f"seq {seq} is in the store but not on the "
                                         "topic"))
    return problems
