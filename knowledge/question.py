"""What a question in plain language is about: which middleware, which instance, which symptom, and the language
to answer in. English, Chinese or both mixed ("Redis 为什么变慢了?", "why are MySQL queries slow?", "pg 连接数满了").
Pure, given the words that name each middleware: by default every installed plugin's name and the keywords it
declares."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from kubestack.knowledge.language import detect_language
from kubestack.plugins.registry import plugins

SYMPTOM_WORDS: dict[str, tuple[str, ...]] = {
    "slow": ("slow", "latency", "timeout", "hang", "stuck", "慢", "延迟", "卡", "超时"),
    "memory": ("memory", "oom", "evict", "maxmemory", "内存"),
    "connections": ("connection", "clients", "too many", "max_connections", "连接"),
    "locks": ("lock", "deadlock", "blocked", "锁", "阻塞"),
    "replication": ("replica", "replication", "lag", "slave", "standby", "复制", "主从", "同步"),
    "disk": ("disk", "space", "full", "inode", "wal", "磁盘", "空间", "满"),
    "errors": ("error", "fail", "refused", "denied", "down", "crash", "报错", "失败", "挂", "宕"),
}


@dataclass(frozen=True)
class Words:
    """What names a middleware in a question."""

    middleware: dict[str, tuple[str, ...]]
    """Plugin name -> words that name it; ASCII ones must stand as words ("pg", not "upgrade")."""
    generic: frozenset[str]
    """Plugins about what every machine has (the host, the agent): a named product beats them ("redis on a full
    disk" is about redis)."""


@cache
def plugin_words() -> Words:
    """The words of every installed plugin: its name and its declared ``keywords``."""
    installed = plugins()
    return Words(middleware={name: (name, *getattr(p, "keywords", ())) for name, p in installed.items()},
                 generic=frozenset(name for name, p in installed.items() if getattr(p, "always_local", False)))


@dataclass(frozen=True)
class Question:
    text: str
    middleware: str | None      # the plugin / resource kind, None when the question names none
    instances: tuple[str, ...]  # target names the question mentions
    symptoms: tuple[str, ...]   # coarse symptom classes found, for the answer's headline
    language: str = "en"        # what the answer is written in: the question's language (``language.py``)


def understand(text: str, known_instances: dict[str, str] | None = None, words: Words | None = None) -> Question:
    """``known_instances``: target name -> its middleware (from the agent config). An instance named in the
    question also settles the middleware. ``words``: ``plugin_words()`` unless given."""
    words = words or plugin_words()
    lowered = text.lower()
    instances = tuple(name for name in sorted(known_instances or {}, key=len, reverse=True)
                      if name.lower() in lowered)
    middleware = None
    if instances:
        middleware = (known_instances or {})[instances[0]]
    else:
        scores = {kind: sum(_mentions(lowered, w) for w in said) for kind, said in words.middleware.items()}
        named = sorted((kind for kind, score in scores.items() if score), key=lambda k: (-scores[k], k))
        if named:
            middleware = next((k for k in named if k not in words.generic), named[0])
    symptoms = tuple(s for s, said in SYMPTOM_WORDS.items() if any(_mentions(lowered, w) for w in said))
    return Question(text, middleware, instances, symptoms, detect_language(text))


def _mentions(text: str, word: str) -> bool:
    if word.isascii():
        return re.search(rf"(?<![a-z0-9_]){re.escape(word)}(?![a-z0-9_])", text) is not None
    return word in text
