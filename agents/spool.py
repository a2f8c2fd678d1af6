"""A bounded, ordered, on-disk write-ahead spool: every event the agent emits is appended here first and
removed only once Kafka acknowledged it, so a broker outage or an agent restart loses nothing below the
bound. Past the bound the oldest segments are dropped, and counted.

Layout: ``<dir>/<first-seq:020d>.seg`` segment files of records, ``<dir>/cursor`` (the next sequence number
to send). A record is ``>IIHII`` header (crc32, body length, topic length, key length, value length) followed
by topic, key and value bytes; a torn record at the tail (crash mid-write) is detected by length/CRC and cut.
The folder is 0700 and its files 0600 whatever the umask (and made so when an older agent left them otherwise):
they hold every event waiting for Kafka, logs and configuration included.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">IIHII")
_SUFFIX = ".seg"


def _private(directory: Path) -> None:
    """The folder 0700 and what is in it 0600."""
    directory.chmod(0o700)
    for path in directory.iterdir():
        if path.is_file():
            path.chmod(0o600)


def _append(path: Path):
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")


@dataclass(frozen=True)
class SpooledRecord:
    seq: int
    topic: str
    key: bytes
    value: bytes


@dataclass
class _Segment:
    base: int
    path: Path
    count: int
    size: int


class Spool:
    def __init__(self, directory: Path, max_bytes: int = 256 * 1024 * 1024, segment_bytes: int = 4 * 1024 * 1024):
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = min(segment_bytes, max(4096, max_bytes // 4))
        self.dropped = 0
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        _private(directory)
        self._segments = [self._scan(path) for path in sorted(directory.glob(f"*{_SUFFIX}"))]
        self._cursor = self._read_cursor()
        self._writer = None
        self._reader: tuple[int, object, int] | None = None  # (segment base, file, next seq in it)
        first = self._segments[0].base if self._segments else self._cursor
        if self._cursor < first:  # records before the oldest segment were dropped while we were down
            self._cursor = first

    # --- state ---------------------------------------------------------------------------------

    @property
    def next_seq(self) -> int:
        last = self._segments[-1] if self._segments else None
        return last.base + last.count if last else self._cursor

    @property
    def pending(self) -> int:
        return self.next_seq - self._cursor

    @property
    def size_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    def _read_cursor(self) -> int:
        try:
            return int((self.directory / "cursor").read_text().strip())
        except (FileNotFoundError, ValueError):
            return self._segments[0].base if self._segments else 0

    def _scan(self, path: Path) -> _Segment:
        """Count the intact records of a segment, cutting a torn tail left by a crash."""
        base = int(path.name[: -len(_SUFFIX)])
        count, good = 0, 0
        with path.open("rb") as f:
            while (record := _read_record(f)) is not None:
                count += 1
                good = f.tell()
        if good != path.stat().st_size:
            log.warning("spool segment %s has a torn tail: cut at byte %d", path.name, good)
            os.truncate(path, good)
        return _Segment(base, path, count, good)

    # --- writing -------------------------------------------------------------------------------

    def append(self, records: list[tuple[str, bytes, bytes]]) -> int:
        """Append ``(topic, key, value)`` records in order; returns the sequence number of the last one."""
        for topic, key, value in records:
            segment = self._writable_segment()
            data = _encode(topic, key, value)
            self._writer.write(data)
            segment.count += 1
            segment.size += len(data)
        if self._writer is not None:
            self._writer.flush()  # to the OS: survives a crash of the agent (not of the machine)
        self._enforce_bound()
        return self.next_seq - 1

    def _writable_segment(self) -> _Segment:
        last = self._segments[-1] if self._segments else None
        if last is None or last.size >= self.segment_bytes:
            if self._writer is not None:
                self._writer.close()
            base = self.next_seq
            path = self.directory / f"{base:020d}{_SUFFIX}"
            last = _Segment(base, path, 0, 0)
            self._segments.append(last)
            self._writer = _append(path)
        elif self._writer is None:
            self._writer = _append(last.path)
        return last

    def _enforce_bound(self) -> None:
        while self.size_bytes > self.max_bytes and len(self._segments) > 1:
            oldest = self._segments.pop(0)
            unsent = max(0, oldest.base + oldest.count - max(self._cursor, oldest.base))
            self.dropped += unsent
            oldest.path.unlink(missing_ok=True)
            if self._cursor < self._segments[0].base:
                self._cursor = self._segments[0].base
                self._write_cursor()
            self._close_reader()
            log.warning("spool over %d bytes: dropped %d unsent records (oldest segment)", self.max_bytes, unsent)

    # --- reading -------------------------------------------------------------------------------

    def read(self, limit: int) -> list[SpooledRecord]:
        """Up to ``limit`` unsent records, oldest first (call ``commit`` once they are acknowledged)."""
        out: list[SpooledRecord] = []
        seq = self._cursor if self._reader is None else self._reader[2]
        while len(out) < limit and seq < self.next_seq:
            segment = self._segment_at_or_after(seq)
            if segment.base > seq:  # a gap left by a torn segment: those records are gone
                log.warning("spool records %d..%d were lost to a torn segment", seq, segment.base - 1)
                self.dropped += segment.base - seq
                seq = segment.base
            if self._reader is None or self._reader[0] != segment.base:
                self._open_reader(segment, seq)
            if self._writer is not None:
                self._writer.flush()
            record = _read_record(self._reader[1])
            if record is None:
                break
            topic, key, value = record
            out.append(SpooledRecord(seq, topic, key, value))
            seq += 1
            self._reader = (self._reader[0], self._reader[1], seq)
        return out

    def rewind(self) -> None:
        """Forget the read position: the next ``read`` starts again at the first unacknowledged record."""
        self._close_reader()

    def _segment_at_or_after(self, seq: int) -> _Segment:
        for segment in self._segments:
            if seq < segment.base + segment.count:
                return segment
        raise LookupError(f"sequence {seq} is past the end of the spool")

    def _open_reader(self, segment: _Segment, seq: int) -> None:
        self._close_reader()
        f = segment.path.open("rb")
        for _ in range(seq - segment.base):
            _read_record(f)
        self._reader = (segment.base, f, seq)

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader[1].close()
            self._reader = None

    def commit(self, seq: int) -> None:
        """Records up to and including ``seq`` were acknowledged: never send them again."""
        if seq < self._cursor:
            return
        self._cursor = seq + 1
        self._write_cursor()
        while self._segments and self._segments[0].base + self._segments[0].count <= self._cursor \
                and len(self._segments) > 1:
            done = self._segments.pop(0)
            if self._reader is not None and self._reader[0] == done.base:
                self._close_reader()
            done.path.unlink(missing_ok=True)

    def _write_cursor(self) -> None:
        tmp = self.directory / "cursor.tmp"
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as stream:
            stream.write(str(self._cursor))
        os.replace(tmp, self.directory / "cursor")

    def close(self) -> None:
        self._close_reader()
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _encode(topic: str, key: bytes, value: bytes) -> bytes:
    name = topic.encode()
    body = name + key + value
    return _HEADER.pack(zlib.crc32(body), len(body), len(name), len(key), len(value)) + body


def _read_record(f) -> tuple[str, bytes, bytes] | None:
    header = f.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    crc, length, topic_len, key_len, value_len = _HEADER.unpack(header)
    body = f.read(length)
    if len(body) < length or zlib.crc32(body) != crc or topic_len + key_len + value_len != length:
        return None
    return body[:topic_len].decode(), body[topic_len:topic_len + key_len], body[topic_len + key_len:]
