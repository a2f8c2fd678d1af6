"""Which runbooks a root-cause report cites: those whose front matter names the hypothesis' signals (rule ids, metric
names, log patterns), the resource's own middleware first. Exact and cheap; the knowledge base's hybrid search
is for questions in words."""

from __future__ import annotations

from collections.abc import Iterable

from kubestack.knowledge.runbook import Runbook

MAX_RUNBOOKS = 3


class RunbookMatcher:
    def __init__(self, books: Iterable[Runbook]) -> None:
        self.books = [b for b in books if b.meta.kind == "runbook"]
        self._by_name: dict[str, list[Runbook]] = {}
        for book in self.books:
            for name in (*book.meta.signals.rules, *book.meta.signals.metrics):
                self._by_name.setdefault(name, []).append(book)

    def __call__(self, names: list[str], middleware: str) -> list[str]:
        """Runbook ids for ``names`` (most important first), same middleware before others."""
        found: list[Runbook] = []
        for name in names:
            hits = self._by_name.get(name, []) or [b for b in self.books
                                                    if any(p and p in name for p in b.meta.signals.logs)]
            found += sorted(hits, key=lambda b: (b.meta.middleware != middleware, _position(b, name),
                                                 -_overlap(b, name), len(b.meta.signals.rules), b.id))
        ids = list(dict.fromkeys(b.id for b in found))
        return ids[:MAX_RUNBOOKS]


def _position(book: Runbook, name: str) -> int:
    """Where ``name`` comes in the runbook's own list: a runbook names its main signals first."""
    listed = [*book.meta.signals.rules, *book.meta.signals.metrics]
    return listed.index(name) if name in listed else len(listed)


def _overlap(book: Runbook, name: str) -> int:
    """Words the runbook's slug shares with the signal: ``postgresql.lock_wait`` and ``lock-waits``."""
    words = {w.rstrip("s") for w in name.rsplit(".", 1)[-1].split("_") if w}
    return len(words & {w.rstrip("s") for w in book.id.split("/", 1)[-1].split("-")})
