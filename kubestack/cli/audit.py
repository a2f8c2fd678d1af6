"""``kubestack audit``: check the tamper-evident audit chain, and show its last records."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from kubestack.contract.events import AuditRecord
from kubestack.contract.topics import AUDIT
from kubestack.errors import EventDecodeError, KafkaError, KafkaUnavailableError, KubestackError
from kubestack.pipeline.audit import (
    AuditKeys,
    ChainProblem,
    Problem,
    Sealed,
    Unreadable,
    compare,
    unsealed_count,
    verify,
)
from kubestack.pipeline.auditstore import AuditStore, default_path

if TYPE_CHECKING:
    from kubestack.settings import KafkaSettings, Settings

app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
out = Console()

SHOWN_PROBLEMS = 20
StoreOption = Annotated[Path | None,
                        typer.Option("--store", help="Audit store file (default: <home>/audit/audit.jsonl)")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output")]
KeysOption = Annotated[Path | None, typer.Option("--keys", help="The writer's key ring (default: audit-keys.json "
                                                                "beside the store)")]


def _store(ctx: typer.Context, path: Path | None, keys: Path | None = None) -> AuditStore:
    settings: Settings = ctx.obj
    return AuditStore(path or default_path(settings.home), keys)


async def read_topic(kafka: KafkaSettings, timeout_s: float = 30.0) -> list[AuditRecord | Unreadable]:
    """Every message on the ``audit`` topic now, from its first retained offset to its end."""
    from aiokafka import AIOKafkaConsumer  # the Kafka client only for --topic
    from aiokafka.errors import KafkaError as AIOKafkaError
    from aiokafka.structs import TopicPartition

    from kubestack.bus import client_options

    name = AUDIT.qualified(kafka.topic_prefix)
    consumer = AIOKafkaConsumer(**client_options(kafka), enable_auto_commit=False)
    try:
        await asyncio.wait_for(consumer.start(), timeout_s)
        if name not in await consumer.topics():
            raise KafkaError(f"no topic {name} on {kafka.bootstrap}: is this the cluster the worker writes to?")
        partitions = [TopicPartition(name, p) for p in range(AUDIT.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[AuditRecord | Unreadable] = []
        deadline = asyncio.get_running_loop().time() + timeout_s
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            if asyncio.get_running_loop().time() > deadline:
                raise KafkaUnavailableError(f"reading {name} took longer than {timeout_s:.0f}s")
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                found.extend(_decoded(message.value, message.offset) for message in messages)
    except (AIOKafkaError, OSError, asyncio.TimeoutError) as exc:
        raise KafkaUnavailableError(f"cannot read {name} from {kafka.bootstrap}: {exc!r}") from exc
    finally:
        await consumer.stop()
    return found


def _decoded(raw: bytes | None, offset: int) -> AuditRecord | Unreadable:
    try:
        return AUDIT.decode(raw)
    except EventDecodeError as exc:
        return Unreadable(offset, f"offset {offset}: {exc.reason}")


def _republished_once(items: list[AuditRecord | Unreadable]) -> list[AuditRecord | Unreadable]:
    """The topic without the exact copies a republish leaves (same seq, same hash): they are not tampering."""
    seen: set[tuple[int, str]] = set()
    kept = []
    for item in items:
        if isinstance(item, AuditRecord):
            if (item.seq, item.hash) in seen:
                continue
            seen.add((item.seq, item.hash))
        kept.append(item)
    return kept


def _records(items: Iterable[AuditRecord | Sealed | Unreadable]) -> Iterator[AuditRecord]:
    for item in items:
        if isinstance(item, Sealed):
            yield item.record
        elif isinstance(item, AuditRecord):
            yield item


def _span(records: Iterable[AuditRecord]) -> dict:
    """How many records, their lowest and highest seq, and the hash of the highest."""
    count, first, last = 0, None, None
    for record in records:
        count += 1
        first = record if first is None or record.seq < first.seq else first
        last = record if last is None or record.seq > last.seq else last
    return {"records": count, "first_seq": first.seq if first else None,
            "last_seq": last.seq if last else None, "head": last.hash if last else None}


@app.command("verify")
def verify_(
    ctx: typer.Context,
    store: StoreOption = None,
    keys: KeysOption = None,
    topic: Annotated[bool, typer.Option("--topic", help="Also read the audit topic and check it agrees")] = False,
    as_json: JsonOption = False,
) -> None:
    """Check the chain: exit 0 when intact, 1 naming the first problems (edited, removed, reordered, forged or
    unsealed records). Seals are checked with the writer's key ring; records stored before it existed are checked
    by hash only, and counted."""
    settings: Settings = ctx.obj
    audit = _store(ctx, store, keys)
    if not audit.path.exists():
        raise KubestackError(f"no audit store at {audit.path} (pass --store, or is this the worker's home?)")
    ring = AuditKeys.load(audit.keys_path) if audit.keys_path.exists() else None
    # The store is read as a stream (a few times): a year of audit need not fit in memory.
    unsealed = unsealed_count(audit.read_sealed())
    report: dict = {"store": str(audit.path), **_span(_records(audit.read_sealed())), "topic": None,
                    "keys": None if ring is None else {"ring": str(audit.keys_path), "current": ring.current,
                                                       "ids": sorted(ring.keys), "sealed_from": ring.sealed_from},
                    "unsealed": unsealed}
    problems: list[tuple[str, ChainProblem]] = [("store", p) for p in verify(audit.read_sealed(), keys=ring)]
    if ring is None and unsealed < report["records"]:
        problems.append(("store", ChainProblem(Problem.NO_KEYS, None, f"the records are sealed but there is no key "
                                               f"ring at {audit.keys_path} to check them (pass --keys)")))
    if topic:
        published = _republished_once(asyncio.run(read_topic(settings.kafka)))
        on_topic = list(_records(published))
        report["topic"] = {"name": AUDIT.qualified(settings.kafka.topic_prefix), **_span(on_topic)}
        # The topic may have lost its oldest records to retention: it starts wherever its first record says.
        problems += [("topic", p) for p in verify(published, start_seq=None)]
        problems += [("store-vs-topic", p) for p in compare(_records(audit.read_sealed()), on_topic)]
    report["intact"] = not problems
    report["problems"] = [{"in": origin} | problem.as_dict() for origin, problem in problems]
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print_verdict(report, problems)
    if problems:
        raise typer.Exit(1)


@app.command("rotate-key")
def rotate_key(ctx: typer.Context, store: StoreOption = None, keys: KeysOption = None) -> None:
    """Add a key to the writer's ring and make it current (the worker seals with it once it reopens the store);
    the old keys stay, to check the records they sealed."""
    audit = _store(ctx, store, keys)
    ring = AuditKeys.load(audit.keys_path) if audit.keys_path.exists() else AuditKeys.create()
    kid = ring.rotate()
    ring.save(audit.keys_path)
    out.print(f"key ring {audit.keys_path}: current key {kid} (keys {', '.join(sorted(ring.keys))}); restart the "
              "worker to seal with it", highlight=False, soft_wrap=True)


def _print_verdict(report: dict, problems: list[tuple[str, ChainProblem]]) -> None:
    span = f"{report['records']} records" + (f", seq {report['first_seq']}..{report['last_seq']}, head "
                                             f"{report['head'][:16]}" if report["records"] else "")
    if report["topic"] is not None:
        topic = report["topic"]
        span += f"; topic {topic['name']}: {topic['records']} records"
    if report["keys"] is not None:
        span += f"; sealed with keys {', '.join(report['keys']['ids'])}"
    if report["unsealed"]:
        span += f"; {report['unsealed']} unsealed (stored before the key ring, checked by hash only)"
    if not problems:
        out.print(f"[green]intact[/]: {report['store']} ({span})", highlight=False, soft_wrap=True)
        return
    out.print(f"[red]NOT intact[/]: {report['store']} ({span}), {len(problems)} problem(s):", highlight=False,
              soft_wrap=True)
    for origin, problem in problems[:SHOWN_PROBLEMS]:
        where = f" (line {problem.where})" if origin == "store" and problem.where else ""
        out.print(f"  {origin}: {problem.kind.value}: {problem.detail}{where}", highlight=False, soft_wrap=True)
    if len(problems) > SHOWN_PROBLEMS:
        out.print(f"  ... and {len(problems) - SHOWN_PROBLEMS} more (--json lists them all)", soft_wrap=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    store: StoreOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many of the last records")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The last records of the chain: seq, time, actor, action, subject."""
    records = _store(ctx, store).tail(limit)
    rows = [{"seq": r.seq, "ts": r.ts.isoformat(), "actor": r.actor, "action": r.action,
             "subject_id": r.subject_id, "tenant": r.tenant} for r in records]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"audit: last {len(rows)} record(s)")
    for column in ("seq", "ts", "actor", "action", "subject_id", "tenant"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(str(row[column]) for column in ("seq", "ts", "actor", "action", "subject_id", "tenant")))
    out.print(table)
