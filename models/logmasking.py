"""Masking the variable parts of a log message before template mining.

A message is masked token by token (tokens are whitespace-separated); ``<*>`` replaces:

* URLs (``scheme://...``) and absolute paths of two or more components (``/var/lib/mysql``, ``C:\\Temp\\x``),
  digits or not: a path is a parameter even when it reads like words;
* inside a token, every part between delimiters that holds a value: numbers, sizes and durations (``12ms``),
  addresses, hex and UUID ids (``0x7f3a``, ``3fa85f64-5717-...``, a long run of hex letters), block and job ids
  (``blk_-1608999687919862906``, ``job_201706092018_0024``), host names with numbers (``node-12``), versions,
  and the literals ``true``, ``false`` and ``null``;
* MAC and IPv6 addresses;
* then a run of masked parts joined only by ``.`` or ``:`` (an address with its port, a time of day, a
  version) becomes one ``<*>``, and so does a masked part after a lone ``/`` (``/10.0.0.1:50010``) or between
  single ``#`` (``#28#``; ``12##7`` stays ``<*>##<*>``).

Delimiters are ``= : , ; ( ) [ ] { } < > " ' | . / #``, so ``pid=4242`` becomes ``pid=<*>``, ``[4242]`` becomes
``[<*>]``, ``core.2275`` becomes ``core.<*>``, ``HTTP/1.1`` becomes ``HTTP/<*>`` and ``10.0.0.1:6379`` becomes
``<*>``: keys and punctuation stay in the template and keep different messages apart.

A part that starts with a letter and holds only letters, digits and underscores, with at most two runs of at
most three digits, each right after a letter, is a word, not a value: ``ssh2``, ``eth0``, ``jk2_init``, ``PSR0``,
``L3`` (but ``rdd_2_3`` is a value). Such a word is a constant when it is one (a protocol, an interface, a
register name) and is generalised by the miner when it varies.
"""

from __future__ import annotations

import re

WILDCARD = "<*>"

_DELIMS = r"\s=:,;()\[\]{}<>\"'|"
_URL = r"(?<![\w+.-])[A-Za-z][\w+.-]*://[^\s\"'<>]+"
_PATH = rf"(?<![^{_DELIMS}])(?:/[\w.@%+~-]+){{2,}}/?"
_WINDOWS_PATH = r"(?<![\w])[A-Za-z]:\\[^\s\"'<>]*"
_PATHS = re.compile("|".join((_URL, _PATH, _WINDOWS_PATH)))
_CHAR = rf"[^{_DELIMS}./#]"  # a character of a part
_START, _END = rf"(?<!{_CHAR})", rf"(?!{_CHAR})"
_LETTERS = r"[A-Za-z](?:[A-Za-z_]*[A-Za-z])?"
_WORD = rf"{_LETTERS}(?:\d{{1,3}}(?:_*{_LETTERS})?){{0,2}}{_END}"  # ssh2, jk2_init, PSR0; not rdd_2_3
_VALUE = re.compile(
    rf"{_START}(?:[0-9A-Fa-f]{{8,}}{_END}"  # hex, digits or not
    rf"|(?:true|false|null|True|False|Null|TRUE|FALSE|NULL){_END}"
    rf"|(?!{_WORD})(?={_CHAR}*\d){_CHAR}+)")  # a part with a digit that is not a word
_ONE_PART = re.compile(rf"{_CHAR}+").fullmatch
_NUMERIC = re.compile(rf"{_CHAR}*\d{_CHAR}*")
_ADDRESS = re.compile(r"(?<![\w:])(?=[0-9A-Fa-f:]*\d)[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_MAY_MASK = re.compile(r"[\d/\\]|[0-9A-Fa-f]{8}|true|false|null|True|False|Null|TRUE|FALSE|NULL").search
_MARKED = re.compile(r"(?<!#)#<\*>#(?!#)")  # a value between markers: "#28#"
_JOINED = re.compile(rf"(?:(?<![^{_DELIMS}])(?<!\*>)/)?<\*>(?:[.:]<\*>)*")


def mask_token(token: str) -> str:
    """One whitespace-free token with its values replaced by ``<*>``."""
    if _ONE_PART(token) is not None:  # no delimiter at all (blk_-1608999687919862906, an14, Accepted)
        return WILDCARD if _VALUE.fullmatch(token) is not None else token
    if token.count("/") > 1 or "\\" in token:  # a path or URL needs two slashes (or a backslash)
        token = _PATHS.sub(WILDCARD, token)
    elif token.upper() == token.lower() and token.count(":") < 2:
        # no letter, no path, no address (``10.0.0.1:50010``, ``(4242)``): every part with a digit is a value
        return _finish(_NUMERIC.sub(WILDCARD, token))
    if token.count(":") >= 2:  # MAC, IPv6, a time of day
        token = _ADDRESS.sub(WILDCARD, token)
    return _finish(_VALUE.sub(WILDCARD, token))


def _finish(masked: str) -> str:
    """Masked parts joined by ``.`` or ``:``, after a lone ``/`` or between single ``#`` become one ``<*>``."""
    if "<*>." in masked or "<*>:" in masked or "/<*>" in masked:
        masked = _JOINED.sub(WILDCARD, masked)
    if "#<*>#" in masked:
        masked = _MARKED.sub(WILDCARD, masked)
    return masked


def mask(content: str) -> str:
    """The message with its variable parts replaced by ``<*>`` and its whitespace runs by one space."""
    return " ".join(mask_token(token) for token in content.split())


class Masker:
    """Masks a message token by token, remembering what each token became.

    Most tokens are constant words seen before, and a dictionary look-up is many times cheaper than the
    regexes. The memory is bounded: it starts afresh when full.
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
        elif _ONE_PART(token) is not None:  # one word or one value: the most common new tokens
            masked = WILDCARD if _VALUE.fullmatch(token) is not None else token
        elif _MAY_MASK(token) is None:  # no digit, path, hex or literal: words and punctuation
            masked = token
        else:
            masked = mask_token(token)
        if len(self._seen) >= self._limit:
            self._seen.clear()
        self._seen[token] = masked
        return masked
