"""One document of the knowledge base: a runbook written by this project, or the memory of a past incident.

A document is markdown with YAML front matter between ``---`` lines::

    ---
    id: redis/memory-full
    middleware: redis
    title: Redis memory full ...
    symptoms: ["OOM command not allowed when used memory > 'maxmemory'", "redis 内存满了, 写入报错"]
    signals: {rules: [redis.noeviction_memory_high], metrics: [redis_memory_used_ratio], logs: ["OOM command"]}
    actions: [redis.set_maxmemory]
    related: [host/memory-pressure]
    ---

Runbooks ship with their plugin: a ``runbooks/`` folder next to the module that defines the plugin class
(``plugins/redis/runbooks/memory-full.md``), id ``<plugin>/<slug>``, middleware ``<plugin>``.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kubestack.errors import RunbookFormatError, validation_problems
from kubestack.plugins.registry import plugins

log = logging.getLogger(__name__)

RUNBOOKS = "runbooks"
_ID = r"^[a-z0-9][a-z0-9_-]*/[a-z0-9][a-z0-9_.-]*$"


class Signals(BaseModel):
    """What points at the document: health and config-risk rule ids, metric names, log line patterns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[str] = Field(default_factory=list)
    metrics: list[str] = Field(default_factory=list)
    logs: list[str] = Field(default_factory=list)


class Translation(BaseModel):
    """The runbook in another language, for answers in the asker's language: its title and its fix steps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1)
    steps: list[str] = Field(default_factory=list, description="The '## Fix' steps, in order")


class RunbookMeta(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID, description="<middleware>/<slug> for runbooks, incident/<incident id> for memories")
    middleware: str = Field(min_length=1, description="redis, mysql, postgresql, kafka, host; or a resource kind")
    kind: Literal["runbook", "incident"] = "runbook"
    title: str = Field(min_length=1)
    symptoms: list[str] = Field(min_length=1, description="How on-call people describe it, in English and Chinese")
    signals: Signals = Field(default_factory=Signals)
    actions: list[str] = Field(default_factory=list, description="Plugin action ids (ActionSpec.id)")
    related: list[str] = Field(default_factory=list, description="Ids of runbooks to read next")
    translations: dict[str, Translation] = Field(default_factory=dict, description="Language code (zh) -> the "
                                                 "title and fix steps in that language")


class Runbook(BaseModel):
    model_config = ConfigDict(frozen=True)

    meta: RunbookMeta
    body: str

    @property
    def id(self) -> str:
        return self.meta.id

    def sections(self) -> list[tuple[str, str]]:
        """``(heading, text)`` for each ``## `` section of the body (text before the first one under '')."""
        out: list[tuple[str, list[str]]] = [("", [])]
        for line in self.body.splitlines():
            if line.startswith("## "):
                out.append((line[3:].strip(), []))
            else:
                out[-1][1].append(line)
        return [(head, "\n".join(lines).strip()) for head, lines in out if "\n".join(lines).strip()]

    def to_markdown(self) -> str:
        front = yaml.safe_dump(self.meta.model_dump(exclude_defaults=False), allow_unicode=True, sort_keys=False,
                               width=120)
        return f"---\n{front}---\n\n{self.body.strip()}\n"


def parse_runbook(text: str, where: str = "<text>") -> Runbook:
    """Front matter and body of one document; ``RunbookFormatError`` names ``where`` and what is wrong."""
    if not text.startswith("---\n"):
        raise RunbookFormatError(f"{where}: no front matter (the file must start with a '---' line)")
    end = text.find("\n---\n", 4)
    if end < 0:
        raise RunbookFormatError(f"{where}: front matter is not closed by a '---' line")
    try:
        data = yaml.safe_load(text[4:end])
    except yaml.YAMLError as exc:
        raise RunbookFormatError(f"{where}: front matter is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RunbookFormatError(f"{where}: front matter must be a mapping")
    try:
        meta = RunbookMeta.model_validate(data)
    except ValidationError as exc:
        raise RunbookFormatError(f"{where}: {validation_problems(exc)}") from exc
    return Runbook(meta=meta, body=text[end + 5:].strip())


def runbook_dirs() -> dict[str, Path]:
    """Plugin name -> its ``runbooks/`` folder, for every installed plugin that has one."""
    found = {name: Path(inspect.getfile(plugin)).parent / RUNBOOKS for name, plugin in plugins().items()}
    return {name: folder for name, folder in found.items() if folder.is_dir()}


def load_dir(root: Path, middleware: str | None = None) -> list[Runbook]:
    """Every ``*.md`` below ``root`` (sorted). A runbook's id must match its path: ``<middleware>/<slug>`` for
    ``root/<slug>.md`` when ``middleware`` is given (a plugin's folder), else for ``root/<middleware>/<slug>.md``."""
    books = []
    for path in sorted(root.rglob("*.md")):
        if path.name.lower() == "readme.md":
            continue
        book = parse_runbook(path.read_text(encoding="utf-8"), str(path))
        if book.meta.kind == "runbook":
            relative = path.relative_to(root).with_suffix("").as_posix()
            expected = f"{middleware}/{relative}" if middleware else relative
            if book.id != expected or book.meta.middleware != expected.split("/")[0]:
                raise RunbookFormatError(f"{path}: id {book.id!r} and middleware {book.meta.middleware!r} must match "
                                         f"the path ({expected!r})")
        books.append(book)
    return books


def load_runbooks(dirs: dict[str, Path] | None = None) -> list[Runbook]:
    """The runbooks of the installed plugins (``dirs``: plugin name -> folder, default ``runbook_dirs()``); ids
    are unique and ``related`` ids exist."""
    dirs = runbook_dirs() if dirs is None else dirs
    books = [book for name, folder in sorted(dirs.items()) for book in load_dir(folder, name)]
    ids = [b.id for b in books]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise RunbookFormatError(f"duplicate runbook ids {', '.join(duplicates)}")
    known = set(ids)
    for book in books:
        missing = [r for r in book.meta.related if r not in known]
        if missing:
            raise RunbookFormatError(f"{book.id}: related runbooks {', '.join(missing)} do not exist")
    log.debug("%d runbooks loaded from %d plugins", len(books), len(dirs))
    return books
