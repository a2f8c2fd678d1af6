"""Masking the variable parts of a log message before template mining.

One pass of one compiled regex replaces with ``<*>``:

* URLs (``scheme://...``) and absolute paths of two or more components (``/var/lib/mysql``, ``C:\\Temp\\x``),
  digits or not: a path is a parameter even when it reads like words;
* every run of characters between delimiters that holds a digit: numbers, sizes and durations (``12ms``),
  IPv4/IPv6 addresses and ports, hex ids (``0x7f3a``, ``3fa85f64-5717-...``), block and job ids
  (``blk_-1608999687919862906``), host names with numbers (``node-12``), versions.

Delimiters are whitespace and ``= : , ; ( ) [ ] { } < > " ' |``, so ``pid=4242`` becomes ``pid=<*>``,
``[4242]`` becomes ``[<*>]`` and ``10.0.0.1:6379`` becomes ``<*>:<*>``: the key and the punctuation stay in the
template and keep different messages apart. A constant that holds a digit (``ssh2``, ``HTTP/1.1``) is masked
too; it is masked the same way in every line of its template, so grouping does not suffer.
"""

from __future__ import annotations

import re

WILDCARD = "<*>"

_DELIMS = r"\s=:,;()\[\]{}<>\"'|"
_URL = r"(?<![\w+.-])[A-Za-z][\w+.-]*://[^\s\"'<>]+"
_PATH = rf"(?<![^{_DELIMS}])(?:/[\w.@%+~-]+){{2,}}/?"
_WINDOWS_PATH = r"(?<![\w])[A-Za-z]:\\[^\s\"'<>]*"
_WITH_DIGIT = rf"(?<![^{_DELIMS}])[^{_DELIMS}]*?\d[^{_DELIMS}]*"

MASK = re.compile("|".join((_URL, _PATH, _WINDOWS_PATH, _WITH_DIGIT)))
_DIGIT_RUNS = re.compile(_WITH_DIGIT)  # all MASK can do to a token without "/" or "\\"


def mask(content: str) -> str:
    """The message with its variable parts replaced by ``<*>`` (one regex pass; :class:`Masker` is faster)."""
    return MASK.sub(WILDCARD, content)


class Masker:
    """Masks a message token by token, remembering what each token became.

    No pattern crosses whitespace, so masking each whitespace-separated token alone gives the same result as
    :func:`mask` on the whole line; most tokens are constant words seen before, and a dictionary look-up is
    many times cheaper than running the regex. The memory is bounded: it starts afresh when full.
    """

    __slots__ = ("_seen", "_limit")

    def __init__(self, limit: int = 200_000) -> None:
        self._seen: dict[str, str] = {}
        self._limit = limit

    def tokens(self, content: str) -> list[str]:
        """The masked message split on whitespace: what the miner compares position by position."""
        get, learn = self._seen.get, self._learn
        return [get(token) or learn(token) for token in content.split()]

    def _learn(self, token: str) -> str:
        if token.isdigit():
            masked = WILDCARD
        elif "/" in token or "\\" in token:
            masked = MASK.sub(WILDCARD, token)
        else:
            masked = _DIGIT_RUNS.sub(WILDCARD, token)
        if len(self._seen) >= self._limit:
            self._seen.clear()
        self._seen[token] = masked
        return masked
