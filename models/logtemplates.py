"""Log template mining for one log source: a Drain parse tree over masked tokens, with state to save and restore.

Drain (He et al., ICWS 2017) keeps a fixed-depth tree: the first layer is the message length in tokens, the
next ``path_tokens`` layers are the first tokens of the message (a masked token, or any token once a node
has ``max_children`` children, goes down the ``<*>`` branch), and each leaf holds a short list of templates.
A message joins the most similar template of its leaf when the similarity reaches ``similarity``; the template
then turns every position where they differ into ``<*>``. Otherwise the message starts a new template.

Two departures from drain3's defaults, both measured in ``bench/logs``: numbers, addresses, ids and paths
are masked first (:mod:`kubestack.models.logmasking`), and the similarity counts only the template's constant
positions (``<*>`` positions neither help nor hurt), so a message full of parameters is not pushed apart from
its template by the parameters themselves.

Template ids (``E1``, ``E2``, ...) are given in order of first appearance and never change: a template only
generalises, it is never merged or split. A memo of masked message -> template skips the tree for messages
seen before; it is emptied whenever a template is created or changes, so results are exactly those of the
plain algorithm, and a miner restored with :meth:`TemplateMiner.from_state` continues exactly where the saved
one stopped.
"""

from __future__ import annotations

from typing import NamedTuple

from kubestack.errors import ConfigError
from kubestack.models.logformat import LogFormat
from kubestack.models.logmasking import WILDCARD, Masker

STATE_VERSION = 1
_MEMO_LIMIT = 100_000


def _key(token: str) -> str:
    """A token's branch in the tree: itself when it is a plain word (``Accepted``, ``InnoDB:``), else ``<*>``.

    Identifiers (``kafka.service``, ``"postgres"``, ``pam_unix(sshd:session):``) are parameters more often
    than not; sending them down the ``<*>`` branch lets the similarity decide instead of the tree.
    """
    return token if token.rstrip(":,.;").isalpha() else WILDCARD


class Mined(NamedTuple):
    template_id: str
    template: str
    is_new: bool


class _Template:
    __slots__ = ("number", "tokens", "constants", "size", "path", "_text")

    def __init__(self, number: int, tokens: list[str], path: tuple[str, ...], size: int = 1) -> None:
        self.number = number
        self.tokens = tokens
        self.path = path
        self.size = size
        self._refresh()

    def _refresh(self) -> None:
        self.constants = [(i, token) for i, token in enumerate(self.tokens) if token != WILDCARD]
        self._text = None

    @property
    def id(self) -> str:
        return f"E{self.number}"

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = " ".join(self.tokens)
        return self._text

    def similarity(self, tokens: list[str]) -> float:
        constants = self.constants
        if not constants:
            return 1.0
        return sum(1 for i, token in constants if tokens[i] == token) / len(constants)

    def absorb(self, tokens: list[str]) -> bool:
        """Generalise to cover ``tokens``; True when the template changed."""
        changed = False
        for i, token in self.constants:
            if tokens[i] != token:
                self.tokens[i] = WILDCARD
                changed = True
        if changed:
            self._refresh()
        return changed


class TemplateMiner:
    """Mines the templates of one log source, one line at a time.

    ``log_format`` (optional) cuts each line to its ``<Content>``; a line that does not fit is mined whole and
    counted in ``unmatched``. Not thread-safe: one miner per source, fed in order.
    """

    def __init__(self, *, similarity: float = 0.5, path_tokens: int = 2, max_children: int = 100,
                 log_format: LogFormat | None = None) -> None:
        if not 0.0 < similarity <= 1.0:
            raise ConfigError(f"similarity must be in (0, 1], not {similarity}")
        if path_tokens < 0 or max_children < 1:
            raise ConfigError("path_tokens must be >= 0 and max_children >= 1")
        self.similarity = similarity
        self.path_tokens = path_tokens
        self.max_children = max_children
        self.log_format = log_format
        self.lines = 0
        self.unmatched = 0
        self._templates: list[_Template] = []
        self._root: dict = {}
        self._masker = Masker()
        self._memo: dict[str, _Template] = {}

    def add(self, line: str) -> Mined:
        """Mine one line: its template id, the template as it stands now, and whether the template is new."""
        template, is_new = self._assign(line)
        return Mined(template.id, template.text, is_new)

    def add_number(self, line: str) -> int:
        """Mine one line and return only its template number (the ``n`` of ``En``): the cheap path for replays."""
        return self._assign(line)[0].number

    def template(self, number: int) -> str:
        return self._templates[number - 1].text

    def templates(self) -> list[tuple[str, str, int]]:
        """``(template_id, template, lines)`` for every template, in order of first appearance."""
        return [(t.id, t.text, t.size) for t in self._templates]

    def content(self, line: str) -> str:
        if self.log_format is None:
            return line
        content = self.log_format.content(line)
        if content is None:
            self.unmatched += 1
            return line
        return content

    def _assign(self, line: str) -> tuple[_Template, bool]:
        self.lines += 1
        tokens = self._masker.tokens(self.content(line))
        key = " ".join(tokens)
        template = self._memo.get(key)
        if template is not None:
            template.size += 1
            return template, False
        leaf = self._leaf(tokens)
        template = None if leaf is None else self._best(leaf, tokens)
        is_new = template is None
        if is_new:
            template = self._create(tokens)
            self._memo.clear()
        else:
            template.size += 1
            if template.absorb(tokens):
                self._memo.clear()
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = template
        return template, is_new

    def _best(self, leaf: list[_Template], tokens: list[str]) -> _Template | None:
        best, best_score = None, -1.0
        for template in leaf:
            score = template.similarity(tokens)
            if score > best_score:
                best, best_score = template, score
        return best if best_score >= self.similarity else None

    def _path(self, tokens: list[str]) -> tuple[str, ...]:
        return (str(len(tokens)),) + tuple(_key(token) for token in tokens[: self.path_tokens])

    def _leaf(self, tokens: list[str]) -> list[_Template] | None:
        node = self._root
        for key in self._path(tokens):
            child = node.get(key)
            if child is None:
                child = node.get(WILDCARD)
                if child is None:
                    return None
            node = child
        return node

    def _create(self, tokens: list[str], size: int = 1, path: tuple[str, ...] | None = None) -> _Template:
        leaf, walked = self._walk(self._path(tokens) if path is None else path)
        template = _Template(len(self._templates) + 1, tokens, walked, size)
        leaf.append(template)
        self._templates.append(template)
        return template

    def _walk(self, path: tuple[str, ...]) -> tuple[list[_Template], tuple[str, ...]]:
        """The leaf for a new template (creating nodes as Drain does) and the path as walked: a key that finds
        its node full (``max_children``) goes down the ``<*>`` branch instead."""
        node, walked, last = self._root, [], len(path) - 1
        for depth, key in enumerate(path):
            if key not in node and depth > 0 and len(node) >= self.max_children:
                key = WILDCARD
            if key not in node:
                node[key] = [] if depth == last else {}
            walked.append(key)
            node = node[key]
        return node, tuple(walked)

    def to_state(self) -> dict:
        """A compact, JSON-ready snapshot: settings, counters and each template with its tree path."""
        return {
            "version": STATE_VERSION,
            "similarity": self.similarity, "path_tokens": self.path_tokens, "max_children": self.max_children,
            "log_format": None if self.log_format is None else self.log_format.text,
            "lines": self.lines, "unmatched": self.unmatched,
            "templates": [[t.text, t.size, list(t.path)] for t in self._templates],
        }

    @classmethod
    def from_state(cls, state: dict) -> TemplateMiner:
        """A miner that continues exactly where the one that wrote ``state`` stopped."""
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ConfigError(f"not a template miner state of version {STATE_VERSION}")
        try:
            fmt = state["log_format"]
            miner = cls(similarity=state["similarity"], path_tokens=state["path_tokens"],
                        max_children=state["max_children"], log_format=None if fmt is None else LogFormat.parse(fmt))
            miner.lines, miner.unmatched = int(state["lines"]), int(state["unmatched"])
            for text, size, path in state["templates"]:
                miner._create(text.split(), size=int(size), path=tuple(path))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"template miner state is damaged: {exc!r}") from None
        return miner
