"""Log line formats in the Loghub ``<Field>`` convention, e.g. ``'<Date> <Time> <Pid> <Level> <Component>: <Content>'``.

A format is literal text with ``<Field>`` placeholders. Fields are separated by the literal text between them;
whitespace in the format matches one or more spaces (or tabs). Two bits of syntax make the formats published
with Loghub work unchanged: ``\\c`` is the literal character ``c`` (``\\[<Pid>\\]``), and ``( ... )?`` is an
optional part (``<Component>(\\[<PID>\\])?: <Content>``). Any other character, an unescaped ``[`` or a
parenthesis not closed by ``)?`` included, is literal. Fields match as little as possible, like Loghub's
``(?P<Field>.*?)``, except a trailing field, which takes the rest of the line.

Templates are mined from ``<Content>``; :meth:`LogFormat.content` returns ``None`` for a line that does not fit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kubestack.errors import ConfigError

CONTENT = "Content"
_FIELD = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>")


@dataclass(frozen=True)
class LogFormat:
    """A compiled format. ``fields`` are the placeholder names in order; ``Content`` is always one of them."""

    text: str
    fields: tuple[str, ...]
    regex: re.Pattern = field(repr=False, compare=False)
    required: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def parse(cls, text: str) -> LogFormat:
        """Compile a format string; :class:`ConfigError` says what is wrong with a bad one."""
        if not text.strip():
            raise ConfigError("empty log format: give fields like '<Date> <Time> <Level> <Content>'")
        pieces, fields, required = _translate(text)
        if CONTENT not in fields:
            raise ConfigError(f"log format {text!r} has no <Content> field: templates are mined from it")
        duplicates = sorted({name for name in fields if fields.count(name) > 1})
        if duplicates:
            raise ConfigError(f"log format {text!r} repeats field <{duplicates[0]}>: each name may appear once")
        try:
            regex = re.compile("^" + "".join(pieces) + "$")
        except re.error as exc:
            raise ConfigError(f"log format {text!r} does not compile: {exc}") from None
        return cls(text=text, fields=tuple(fields), regex=regex, required=tuple(required))

    def match(self, line: str) -> dict[str, str] | None:
        """Every field of a line (stripped first, as Loghub does), or ``None`` when it does not fit."""
        found = self._search(line)
        return None if found is None else {name: value or "" for name, value in found.groupdict().items()}

    def content(self, line: str) -> str | None:
        found = self._search(line)
        return None if found is None else found.group(CONTENT)

    def _search(self, line: str) -> re.Match | None:
        # a line without the format's fixed text cannot match: say so before the regex backtracks through it
        for text in self.required:
            if text not in line:
                return None
        return self.regex.match(line.strip())


def _translate(text: str) -> tuple[list[str], list[str], list[str]]:
    """Regex pieces, field names, and the runs of literal text every matching line holds."""
    optional_open, optional_close = _optional_groups(text)
    pieces: list[str] = []
    fields: list[str] = []
    required: list[str] = [""]
    depth = 0
    i = 0
    while i < len(text):
        char = text[i]
        placeholder = _FIELD.match(text, i) if char == "<" else None
        literal = None
        if placeholder:
            fields.append(placeholder.group(1))
            pieces.append(f"(?P<{placeholder.group(1)}>.*?)")
            i = placeholder.end()
        elif char == "\\" and i + 1 < len(text):
            literal = text[i + 1]
            i += 2
        elif char.isspace():
            while i < len(text) and text[i].isspace():
                i += 1
            pieces.append(r"\s+")
        elif i in optional_open:
            pieces.append("(?:")
            depth += 1
            i += 1
        elif i in optional_close:
            pieces.append(")?")
            depth -= 1
            i += 2
        else:
            literal = char
            i += 1
        if literal is None:
            required.append("")
        else:
            pieces.append(re.escape(literal))
            if depth == 0:
                required[-1] += literal
    if pieces and pieces[-1].endswith(".*?)"):
        pieces[-1] = pieces[-1][:-3] + "*)"  # a trailing field takes the rest of the line, without backtracking
    return pieces, fields, [run for run in required if run]


def _optional_groups(text: str) -> tuple[set[int], set[int]]:
    """Positions of each ``(`` whose matching ``)`` is followed by ``?``, and of those ``)``."""
    opens: set[int] = set()
    closes: set[int] = set()
    stack: list[int] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        placeholder = _FIELD.match(text, i) if char == "<" else None
        if placeholder:
            i = placeholder.end()
            continue
        if char == "(":
            stack.append(i)
        elif char == ")" and stack:
            start = stack.pop()
            if text.startswith("?", i + 1):
                opens.add(start)
                closes.add(i)
        i += 1
    return opens, closes
