"""What ``kubestack up`` shows in its terminal: the console's address and token, what is watched, one line per
incident as it opens and resolves, and a companion that exits. Everything else (the broker's, Faust's, the API's
and the agent's logs) goes to one file per process under ``<home>/logs`` (``kubestack up --verbose`` shows it)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.markup import escape

from kubestack.contract.events import Incident, IncidentStatus
from kubestack.contract.topics import INCIDENTS
from kubestack.errors import EventDecodeError
from kubestack.settings import KafkaSettings

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def log_dir(home: Path) -> Path:
    """Where ``kubestack up`` writes the logs of its processes."""
    path = home / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_to_file(path: Path, level: str) -> None:
    """This process's logging to ``path`` instead of the terminal (an entry point's choice: ``kubestack up``)."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    logging.captureWarnings(True)  # ResourceWarnings and the like: a detail, not the terminal's
    root.setLevel(level)


def incident_line(incident: Incident) -> str | None:
    """The terminal's line for one incident revision: when it opens and when it resolves (updates are the
    console's). Rich markup, every value escaped."""
    resources = ", ".join(f"{r.kind}/{r.name}" for r in incident.resources[:4]) + (" ..." if len(incident.resources) > 4 else "")
    short = incident.incident_id
    if incident.status is IncidentStatus.OPEN:
        return (f"[bold red]incident opened[/] {escape(short)} {escape(f'[{incident.severity}]')} "
                f"{escape(incident.title)} ({escape(resources)})")
    if incident.status is IncidentStatus.RESOLVED:
        return f"[green]incident resolved[/] {escape(short)} {escape(incident.title)}"
    return None


def watched_line(targets: Iterable[tuple[str, str]]) -> str:
    names = [f"{kind}/{name}" for kind, name in targets]
    return f"watching {len(names)} target(s): {escape(', '.join(names))}" if names else "watching no target"


def echo_lines(stream: IO[str], terminal: Console) -> threading.Thread:
    """Copy a companion's standard output (the API's address and token) to the terminal, line by line."""

    def copy() -> None:
        for line in stream:
            terminal.print(escape(line.rstrip("\n")), highlight=False, soft_wrap=True)

    thread = threading.Thread(target=copy, name="echo-companion", daemon=True)
    thread.start()
    return thread


class IncidentLines:
    """Follows the incidents topic from its end in a thread of its own and prints ``incident_line`` of each
    revision; every second it also checks the companions and says once when one has exited."""

    def __init__(self, kafka: KafkaSettings, terminal: Console, companions: dict[str, tuple[subprocess.Popen, Path]],
                 on_ready: Callable[[], None]) -> None:
        self.kafka = kafka
        self.terminal = terminal
        self.companions = companions
        self.on_ready = on_ready
        self._stop = threading.Event()
        self._reported: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="incident-lines", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            asyncio.run(self._follow())
        except Exception:  # the stack runs on without its incident lines; the log says why
            log.exception("following %s for the terminal failed", INCIDENTS.name)
            self.terminal.print(f"[yellow]incident lines stopped[/] (see the log); the console still shows them")

    async def _follow(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from kubestack.bus import client_options

        topic = INCIDENTS.qualified(self.kafka.topic_prefix)
        consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, auto_offset_reset="latest",
                                    **client_options(self.kafka))
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, p) for p in range(self.kafka.partitions_of(INCIDENTS))])  # as made
            await consumer.seek_to_end()
            for tp in consumer.assignment():
                await consumer.position(tp)  # from here on nothing is missed
            self.on_ready()
            while not self._stop.is_set():
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    for record in records:
                        self._show(record.value)
                self._check_companions()
        finally:
            await consumer.stop()

    def _show(self, raw: bytes | None) -> None:
        try:
            line = incident_line(INCIDENTS.decode(raw))
        except EventDecodeError as exc:
            log.warning("an incident the terminal cannot show: %s", exc)
            return
        if line is not None:
            self.terminal.print(line, highlight=False, soft_wrap=True)

    def _check_companions(self) -> None:
        for name, (process, log_path) in self.companions.items():
            code = process.poll()
            if code is not None and name not in self._reported:
                self._reported.add(name)
                self.terminal.print(f"[red]{name} exited with code {code}[/]; its log: {log_path}", highlight=False)
