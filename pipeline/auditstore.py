"""The local append-only audit store: one ``AuditRecord`` per line of a JSON Lines file.

Created with mode 0600 (its folder 0700), written only through an ``O_APPEND`` descriptor, flushed and fsync'd
for every batch it is handed, and locked with ``flock`` so that two writers on one host cannot fork the chain.
Reading needs no lock: ``read`` yields every line, as a record or as ``Unreadable`` for ``verify`` to report.

The writer seals every record it appends (``AuditKeys``, see ``audit``): a line is the record's JSON with its
``key_id`` and ``mac`` added (readers of the record ignore them). The key ring is ``audit-keys.json`` beside the
store (0600), made on the first open; ``read_sealed`` gives the lines with their seals, for ``verify``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from pydantic import ValidationError

from kubestack.contract.events import AuditRecord
from kubestack.errors import AuditError, AuditStoreLockedError, validation_problems
from kubestack.pipeline.audit import AuditKeys, Sealed, Unreadable

log = logging.getLogger(__name__)

_BLOCK = 64 * 1024


def default_path(home: Path) -> Path:
    """Where the audit stage keeps the chain: ``<settings.home>/audit/audit.jsonl``."""
    return home / "audit" / "audit.jsonl"


def keys_path(store: Path) -> Path:
    """The key ring of the store at ``store``: ``audit-keys.json`` in its folder."""
    return store.with_name("audit-keys.json")


def parse_sealed(text: str, line: int) -> Sealed | Unreadable:
    """One stored line as a record with its seal (None, None for a line stored unsealed), or ``Unreadable``."""
    record = parse_line(text, line)
    if isinstance(record, Unreadable):
        return record
    try:
        seal = json.loads(text)
    except ValueError:
        seal = {}
    key_id, mac = seal.get("key_id"), seal.get("mac")
    return Sealed(record, key_id if isinstance(key_id, str) else None, mac if isinstance(mac, str) else None)


def parse_line(text: str, line: int) -> AuditRecord | Unreadable:
    """One stored line as a record, or ``Unreadable`` saying why not (``line`` 0 when the number is unknown)."""
    try:
        return AuditRecord.model_validate_json(text)
    except ValidationError as exc:
        where = f"line {line}" if line else "a line"
        return Unreadable(line, f"{where} is not an audit record: {validation_problems(exc, limit=3)}")


class AuditStore:
    """One store file. ``open`` (or ``with``) takes the writer's lock; reading works without it."""

    def __init__(self, path: Path, keys: Path | None = None) -> None:
        self.path = path
        self.keys_path = keys or keys_path(path)
        self.keys: AuditKeys | None = None
        self._fd: int | None = None

    def __enter__(self) -> AuditStore:
        self.open()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Create the file if needed and take the writer's lock (another writer: ``AuditStoreLockedError``)."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AuditStoreLockedError(f"the audit store {self.path} is held by another writer (is another worker "
                                 "running on this host?)") from None
        self._fd = fd
        self._drop_torn_tail(fd)
        self.keys = self._key_ring()

    def _key_ring(self) -> AuditKeys:
        """The writer's ring, made (0600) on the first open of a store."""
        if self.keys_path.exists():
            return AuditKeys.load(self.keys_path)
        ring = AuditKeys.create()
        ring.save(self.keys_path)
        log.info("audit store %s: new key ring %s (key %s)", self.path, self.keys_path, ring.current)
        return ring

    def _drop_torn_tail(self, fd: int) -> None:
        """A crash in the middle of a write leaves a last line without its newline: that record was never
        acknowledged (nothing after the fsync ran), so it is cut off rather than glued to the next one."""
        size = os.fstat(fd).st_size
        if size == 0:
            return
        with self.path.open("rb") as stream:
            stream.seek(size - 1)
            if stream.read(1) == b"\n":
                return
            start = self._last_newline(stream, size) + 1
            stream.seek(start)
            torn = stream.read(size - start)
        log.warning("audit store %s: dropping an unterminated last line (%d bytes, a write cut short): %.200s",
                    self.path, len(torn), torn.decode(errors="replace"))
        os.ftruncate(fd, start)
        os.fsync(fd)

    @staticmethod
    def _last_newline(stream: BinaryIO, end: int) -> int:
        """Offset of the last newline before ``end``, or -1."""
        position = end
        while position > 0:
            step = min(_BLOCK, position)
            position -= step
            stream.seek(position)
            found = stream.read(step).rfind(b"\n")
            if found >= 0:
                return position + found
        return -1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None

    def append(self, records: AuditRecord | Iterable[AuditRecord]) -> int:
        """Write ``records`` (one or a batch) and fsync them; how many were written."""
        if self._fd is None:
            raise AuditError(f"the audit store {self.path} is not open for writing")
        batch = [records] if isinstance(records, AuditRecord) else list(records)
        if not batch:
            return 0
        if self.keys.sealed_from is None:  # from here on every record must carry a seal
            self.keys.sealed_from = batch[0].seq
            self.keys.save(self.keys_path)
        data = "".join(_sealed_line(self.keys.seal(record)) for record in batch).encode()
        written = 0
        while written < len(data):
            written += os.write(self._fd, data[written:])
        os.fsync(self._fd)
        return len(batch)

    def read(self) -> Iterator[AuditRecord | Unreadable]:
        """Every line in order: a record, or ``Unreadable`` naming the line. Nothing if there is no store yet."""
        if not self.path.exists():
            return
        with self.path.open("rb") as stream:
            for number, raw in enumerate(stream, start=1):
                yield parse_line(raw.decode(errors="replace").rstrip("\n"), number)

    def read_sealed(self) -> Iterator[Sealed | Unreadable]:
        """Every line in order with its seal, or ``Unreadable``; nothing if there is no store yet."""
        if not self.path.exists():
            return
        with self.path.open("rb") as stream:
            for number, raw in enumerate(stream, start=1):
                yield parse_sealed(raw.decode(errors="replace").rstrip("\n"), number)

    def _tail_lines(self, count: int) -> list[str]:
        """The last ``count`` lines, oldest first, read from the end (a year of audit need not be read whole)."""
        if count <= 0 or not self.path.exists():
            return []
        with self.path.open("rb") as stream:
            position = stream.seek(0, os.SEEK_END)
            chunks, newlines = [], 0
            while position > 0 and newlines <= count:
                step = min(_BLOCK, position)
                position -= step
                stream.seek(position)
                chunks.append(stream.read(step))
                newlines += chunks[-1].count(b"\n")
        return b"".join(reversed(chunks)).decode(errors="replace").splitlines()[-count:]

    def tail(self, count: int) -> list[AuditRecord]:
        """The last ``count`` records, oldest first (to resume a chain's memory, or to list); damaged lines are
        left to ``verify``."""
        records = []
        for text in self._tail_lines(count):
            parsed = parse_line(text, 0)
            if isinstance(parsed, AuditRecord):
                records.append(parsed)
            else:
                log.warning("audit store %s: skipping a damaged line near the end: %s", self.path, parsed.reason)
        return records

    def last(self) -> AuditRecord | None:
        """The last record, to resume the chain from; None for an empty store. A last line that is not a record
        is refused: chaining on past it would hide the damage."""
        lines = self._tail_lines(1)
        if not lines:
            return None
        found = parse_line(lines[0], 0)
        if isinstance(found, Unreadable):
            raise AuditError(f"the audit store {self.path} ends with a damaged line ({found.reason}); "
                                 "run `kubestack audit verify` before chaining on")
        return found


def _sealed_line(sealed: Sealed) -> str:
    return sealed.record.model_dump_json()[:-1] + f',"key_id":{json.dumps(sealed.key_id)},"mac":"{sealed.mac}"}}\n'
