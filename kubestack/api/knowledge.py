"""The runbooks and the knowledge index as the API uses them: loaded once, on the first question (the index is
built then if there is none: a few seconds, once), searched in a worker thread. Only runbooks are answered from
the index: the incident memories it also holds may be another tenant's."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

from typing import TYPE_CHECKING

from kubestack.errors import IndexNotFoundError
from kubestack.knowledge.runbook import Runbook, load_runbooks
from kubestack.settings import Settings

if TYPE_CHECKING:
    from kubestack.knowledge.retrieve import Hit, KnowledgeBase

log = logging.getLogger(__name__)

RUNBOOK = "runbook"
KNOWLEDGE_DIR = "knowledge"
"""As ``kubestack.knowledge.index.default_folder`` (not imported here: it loads llama-index)."""


class Knowledge:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._base: KnowledgeBase | None = None
        self._books: dict[str, Runbook] | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, settings: Settings) -> Knowledge:
        return cls(settings.home / KNOWLEDGE_DIR)

    def _open(self) -> KnowledgeBase:
        # llama-index and faiss take seconds to import: only when the first question comes
        from kubestack.knowledge.index import build
        from kubestack.knowledge.retrieve import KnowledgeBase

        with self._lock:
            if self._base is None:
                try:
                    self._base = KnowledgeBase.open(self.folder)
                except IndexNotFoundError:
                    log.info("building the knowledge index in %s (once)", self.folder)
                    build(self.folder)
                    self._base = KnowledgeBase.open(self.folder)
            return self._base

    @property
    def books(self) -> dict[str, Runbook]:
        if self._books is None:
            self._books = {book.id: book for book in load_runbooks()}
        return self._books

    def search_now(self, text: str, middleware: str | None, k: int = 8) -> list[Hit]:
        """Runbooks only, best first (blocking: call it in a thread)."""
        base = self._open()
        with self._lock:  # the index's retriever is not made for threads at once
            hits = base.search(text, middleware=middleware, k=k * 3)
        return [h for h in hits if h.kind == RUNBOOK][:k]

    async def search(self, text: str, middleware: str | None, k: int = 8) -> list[Hit]:
        return await asyncio.to_thread(self.search_now, text, middleware, k)
