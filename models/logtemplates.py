"""Log template mining for one log source: a Drain parse tree over masked tokens, with state to save and restore.

Drain (He et al., ICWS 2017) keeps a fixed-depth tree: the first layer is the message length in tokens, the
next ``path_tokens`` layers are the first tokens of the message (a masked token, or any token once a node
has ``max_children`` children, goes down the ``<*>`` branch), and each leaf holds a short list of templates.
A message joins the most similar template of its leaf when the similarity reaches ``similarity``; the template
then generalises every position where they differ (``(root)`` and ``(bob)`` become ``(<*>)``). Otherwise the
message starts a new template.

Departures from drain3's defaults, measured on the Loghub development systems and the project's real logs
(``bench/logs``):

* numbers, addresses, ids, paths and key values are masked first (:mod:`kubestack.models.logmasking`);
* the similarity is the share of positions that agree, a masked value agreeing with a parameter; a word where
  the template has a parameter does not agree, so a template of generalised words does not take in every
  message of its length. A message that repeats none of the template's fixed tokens, or whose words differ from
  the template's in two positions in a row (``Bye Bye [preauth]`` against ``disconnected by user``), is another
  message;
* fixed words (protocols, status words): where a template generalised one word into a parameter, the words seen
  there are counted (up to :data:`FIXED_WORDS` of them). A position that keeps to a few words, each seen at
  least :data:`FIXED_WORD_REPEATS` times and taking turns (not one word giving way to the next for good, as
  the month of a timestamp does), is not a parameter: the template keeps its most frequent word and each
  other word moves to a template of its own (``Block <*> stored as bytes ...`` and ``... as values ...``). A
  position that shows a masked value or more words than that is a parameter for good (user names), and the
  templates split from one another hold at most :data:`FIXED_WORDS` words there together, so a parameter with
  a small vocabulary is never split word by word over a long stream. The unit after a value (``KB``), the
  value of a key (``user=app``) and a hyphenated name (``orders-consumer``) are never fixed words.

Template ids (``E1``, ``E2``, ...) are given in order of first appearance and never change meaning: templates
are never merged, and a refinement only moves the lines of a fixed word to a new id (a line whose template was
refined after it was mined finds its final template with :meth:`TemplateMiner.refined`). A line moved by a
refinement is not a new template (``Mined.is_new`` is False): its message was known before. A memo of masked
message -> template skips the tree for messages seen before; it is emptied whenever a template is created or
changes, so results are exactly those of the plain algorithm, and a miner restored with
:meth:`TemplateMiner.from_state` continues exactly where the saved one stopped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from operator import itemgetter
from typing import NamedTuple

from kubestack.errors import ConfigError
from kubestack.models.logformat import LogFormat
from kubestack.models.logmasking import WILDCARD, Masker

STATE_VERSION = 2
FIXED_WORDS = 3
FIXED_WORD_REPEATS = 2
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


def _merge(template_token: str, token: str) -> str:
    """The generalisation of a template token that also covers ``token``: ``<*>`` with the punctuation and key
    both share kept around it (``(root)`` and ``(bob)`` give ``(<*>)``, ``name=a`` and ``name=b`` give
    ``name=<*>``, ``10.0.0.1,`` masked and ``LOCAL(0),`` give ``<*>,``)."""
    if template_token == WILDCARD or token == WILDCARD:
        return WILDCARD
    n, i = min(len(template_token), len(token)), 0
    while i < n and template_token[i] == token[i]:
        i += 1
    head = template_token[:i]
    cut = max(head.rfind(char) for char in _OPENERS) + 1
    head = head[:cut]
    j = 0
    while j < n - cut and template_token[-1 - j] == token[-1 - j]:
        j += 1
    tail = template_token[len(template_token) - j:] if j else ""
    starts = [tail.find(char) for char in _CLOSERS if char in tail]
    tail = tail[min(starts):] if starts else ""
    return head + WILDCARD + tail


_OPENERS = "=:([{\"'"
_CLOSERS = ")]}\"',;:."


def _picker(indices: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    """The tokens at ``indices`` as a tuple, picked in one call."""
    if not indices:
        return lambda tokens: ()
    if len(indices) == 1:
        index = indices[0]
        return lambda tokens: (tokens[index],)
    return itemgetter(*indices)


def _is_word(token: str) -> bool:
    return "<*>" not in token


class _Words:
    """The words seen at one generalised position: how often each, and how often the word changed from one line
    to the next (fixed words of different messages interleave; a word that gave way to another for good, a month
    name in a timestamp, changed once)."""

    __slots__ = ("counts", "last", "changes")

    def __init__(self, counts: dict[str, int], last: str, changes: int = 0) -> None:
        self.counts, self.last, self.changes = counts, last, changes

    def add(self, word: str) -> None:
        self.counts[word] = self.counts.get(word, 0) + 1
        if word != self.last:
            self.changes += 1
            self.last = word

    def fixed(self) -> bool:
        """A few words, each seen at least FIXED_WORD_REPEATS times, that took turns."""
        counts = self.counts
        return len(counts) > 1 and min(counts.values()) >= FIXED_WORD_REPEATS and self.changes >= len(counts)

    def to_state(self) -> list:
        return [self.counts, self.last, self.changes]

    @classmethod
    def from_state(cls, state: list) -> _Words:
        counts, last, changes = state
        return cls({str(w): int(n) for w, n in counts.items()}, str(last), int(changes))


def _unit(word: str) -> bool:
    """A short word after a value (``<*>``, ``(<*>``) is its unit (``KB``, ``MB``, ``ms``), which changes with the
    value's size."""
    word = word.strip("()[]{},;:.'\"")
    return len(word) <= 3 and word.isalpha()


def _fixed_word_candidate(token: str, other: str) -> bool:
    """Two words that may be fixed words of two messages. The value of a key (``user=app``) is a parameter, and so
    is a hyphenated name (``orders-consumer``, ``web-frontend``): groups, services, hosts and pods are named so."""
    return not (_NAME(token) or _NAME(other))


_NAME = re.compile(r"<\*>|=|[A-Za-z0-9]-[A-Za-z]").search


class _Template:
    __slots__ = ("number", "tokens", "opened", "fixed", "marked", "size", "path", "words", "moved", "known",
                 "_text", "_pick_fixed", "_fixed_values", "_pick_wild")

    def __init__(self, number: int, tokens: list[str], path: tuple[str, ...], size: int = 1,
                 opened: set[int] | None = None, words: dict[int, _Words] | None = None,
                 known: dict[int, int] | None = None) -> None:
        self.number = number
        self.tokens = tokens
        self.path = path
        self.size = size
        self.opened = opened or set()
        # position -> the words seen at a generalised word position, until it proves a parameter
        self.words = words or {}
        # position -> {word: template}: fixed words moved to templates of their own by a refinement
        self.moved: dict[int, dict[str, _Template]] = {}
        # position -> fixed words its family (the template it was split from, and their splits) holds there
        self.known = known or {}
        self._refresh()

    def _refresh(self) -> None:
        """``fixed``: the positions a message must repeat; the others are parameters, ``<*>`` or ``marked`` (a
        generalised token with its punctuation: ``(<*>)``)."""
        self.fixed = [(i, token) for i, token in enumerate(self.tokens)
                      if token != WILDCARD and i not in self.opened]
        self.marked = [(i, token) for i, token in enumerate(self.tokens) if token != WILDCARD and i in self.opened]
        self._pick_fixed = _picker([i for i, _ in self.fixed])
        self._fixed_values = tuple(token for _, token in self.fixed)
        self._pick_wild = _picker([i for i, token in enumerate(self.tokens) if token == WILDCARD])
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
        """The share of positions that agree (see the module docstring); -1 for another message."""
        hits = len(self.fixed)
        if self._pick_fixed(tokens) != self._fixed_values:
            differ = [i for i, token in self.fixed if tokens[i] != token]
            if len(differ) == len(self.fixed):
                return -1.0
            last = -2
            for i in differ:
                if i == last + 1 and _is_word(tokens[i]) and _is_word(tokens[last]) and _is_word(self.tokens[i]) \
                        and _is_word(self.tokens[last]):
                    return -1.0
                last = i
            hits -= len(differ)
        hits += self._pick_wild(tokens).count(WILDCARD)
        hits += sum(1 for i, token in self.marked if tokens[i] == WILDCARD or tokens[i] == token)
        return hits / len(tokens) if tokens else 1.0

    def absorb(self, tokens: list[str]) -> bool:
        """Generalise to cover ``tokens``, counting the words of generalised word positions; True when the template
        changed."""
        changed = False
        for i, token in self.fixed:
            other = tokens[i]
            if other != token:
                self.tokens[i] = _merge(token, other)
                self.opened.add(i)
                if (_fixed_word_candidate(token, other) and self.known.get(i, 1) < FIXED_WORDS
                        and not (i and self.tokens[i - 1].endswith(WILDCARD) and _unit(token) and _unit(other))):
                    self.words[i] = _Words({token: self.size - 1}, token)
                changed = True
        for i, token in self.marked:
            other = tokens[i]
            if other != token:
                merged = _merge(token, other)
                if merged != token:
                    self.tokens[i] = merged
                    changed = True
        if changed:
            self._refresh()
        self.count(tokens)
        return changed

    def count(self, tokens: list[str]) -> None:
        """Count the words of the generalised word positions; a masked value or too many words: a parameter."""
        for i in list(self.words):
            seen, word = self.words[i], tokens[i]
            room = FIXED_WORDS - self.known.get(i, 1)
            if not _is_word(word) or (word not in seen.counts and len(seen.counts) > room):
                del self.words[i]
            else:
                seen.add(word)

    def fixed_words(self) -> tuple[int, dict[str, int]] | None:
        """A position whose few words are fixed words (the first such position) and their lines, or None."""
        for i, seen in self.words.items():
            if seen.fixed():
                return i, seen.counts
        return None

    def resolve(self, tokens: list[str]) -> _Template:
        """The template that holds ``tokens`` now: this one, or one its fixed words moved to."""
        template = self
        while template.moved:
            for i, words in template.moved.items():
                child = words.get(tokens[i])
                if child is not None:
                    template = child
                    break
            else:
                return template
        return template


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

    @property
    def refinements(self) -> int:
        """How many fixed words were moved to templates of their own so far."""
        return sum(len(words) for t in self._templates for words in t.moved.values())

    def refined(self, line: str, number: int) -> int:
        """The number of the template that holds ``line`` now, for a line mined earlier into template ``number``:
        ``number`` itself unless a refinement moved the line's fixed word to a template of its own since."""
        template = self._templates[number - 1]
        if not template.moved:
            return number
        content = line if self.log_format is None else self.log_format.content(line)
        return template.resolve(self._masker.tokens(line if content is None else content)).number

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
            if template.words:
                template.count(tokens)
                template = self._refine(template, tokens)
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
            if template.words:
                template = self._refine(template, tokens)
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = template
        return template, is_new

    def _refine(self, template: _Template, tokens: list[str]) -> _Template:
        """Move the fixed words of ``template`` (if it has some now) to templates of their own; the template
        that holds ``tokens`` afterwards."""
        found = template.fixed_words()
        if found is None:
            return template
        i, seen = found
        keep = max(seen, key=lambda word: (seen[word], word == template.tokens[i]))
        moved = template.moved.setdefault(i, {})
        leaf = self._walk(template.path)[0]
        known = template.known.get(i, 1) + len(seen) - 1
        for word, lines in seen.items():
            if word == keep:
                continue
            tokens_of = list(template.tokens)
            tokens_of[i] = word
            child = _Template(len(self._templates) + 1, tokens_of, template.path, lines,
                              set(template.opened) - {i}, known=dict(template.known))
            leaf.append(child)
            self._templates.append(child)
            moved[word] = child
            template.size -= lines
        for member in (template, *moved.values()):
            member.known[i] = known
        template.tokens[i] = keep
        template.opened.discard(i)
        del template.words[i]
        template._refresh()
        self._memo.clear()
        return template.resolve(tokens)

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
        """A compact, JSON-ready snapshot: settings, counters and each template with its tree path, its
        generalised positions, the words counted there and the fixed words it moved to other templates."""
        return {
            "version": STATE_VERSION,
            "similarity": self.similarity, "path_tokens": self.path_tokens, "max_children": self.max_children,
            "log_format": None if self.log_format is None else self.log_format.text,
            "lines": self.lines, "unmatched": self.unmatched,
            "templates": [[t.text, t.size, list(t.path), sorted(t.opened),
                           [[i, seen.to_state()] for i, seen in t.words.items()],
                           [[i, {word: child.number for word, child in words.items()}]
                            for i, words in t.moved.items()],
                           [[i, n] for i, n in t.known.items()]]
                          for t in self._templates],
        }

    @classmethod
    def from_state(cls, state: dict) -> TemplateMiner:
        """A miner that continues exactly where the one that wrote ``state`` stopped. A state of version 1
        (before generalised positions were kept) is read too: its templates go on with the ids they had."""
        if not isinstance(state, dict) or state.get("version") not in (1, STATE_VERSION):
            raise ConfigError(f"not a template miner state of version {STATE_VERSION}")
        try:
            fmt = state["log_format"]
            miner = cls(similarity=state["similarity"], path_tokens=state["path_tokens"],
                        max_children=state["max_children"], log_format=None if fmt is None else LogFormat.parse(fmt))
            miner.lines, miner.unmatched = int(state["lines"]), int(state["unmatched"])
            moves = []
            for text, size, path, *refined in state["templates"]:
                opened, words, moved, known = refined or ([], [], [], [])
                template = miner._create(text.split(), size=int(size), path=tuple(path))
                template.opened = {int(i) for i in opened}
                template.words = {int(i): _Words.from_state(seen) for i, seen in words}
                template.known = {int(i): int(n) for i, n in known}
                template._refresh()
                moves.append(moved)
            for template, moved in zip(miner._templates, moves):
                template.moved = {int(i): {str(w): miner._templates[int(n) - 1] for w, n in words.items()}
                                  for i, words in moved}
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise ConfigError(f"template miner state is damaged: {exc!r}") from None
        return miner
