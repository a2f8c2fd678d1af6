"""What a question in plain language is about: which middleware, which instance, which symptom. English, Chinese
or both mixed ("Redis 为什么变慢了?", "why are MySQL queries slow?", "pg 连接数满了"). Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

MIDDLEWARE_WORDS: dict[str, tuple[str, ...]] = {
    "redis": ("redis", "缓存"),
    "mysql": ("mysql", "mariadb", "innodb", "binlog"),
    "postgresql": ("postgresql", "postgres", "pg", "psql", "pgbouncer", "vacuum", "wal"),
    "kafka": ("kafka", "consumer group", "consumer lag", "broker", "topic", "partition", "消费", "分区"),
    "host": ("disk", "inode", "cpu", "load average", "swap", "oom", "filesystem", "磁盘", "硬盘", "负载", "服务器",
             "主机", "内核"),
}
"""Words that name a middleware; ASCII ones must stand as words ("pg", not "upgrade")."""

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
class Question:
    text: str
    middleware: str | None      # the plugin / resource kind, None when the question names none
    instances: tuple[str, ...]  # target names the question mentions
    symptoms: tuple[str, ...]   # coarse symptom classes found, for the answer's headline


def understand(text: str, known_instances: dict[str, str] | None = None) -> Question:
    """``known_instances``: target name -> its middleware (from the agent config). An instance named in the
    question also settles the middleware."""
    lowered = text.lower()
    instances = tuple(name for name in sorted(known_instances or {}, key=len, reverse=True)
                      if name.lower() in lowered)
    middleware = None
    if instances:
        middleware = (known_instances or {})[instances[0]]
    else:
        scores = {kind: sum(_mentions(lowered, w) for w in words) for kind, words in MIDDLEWARE_WORDS.items()}
        named = [kind for kind, score in scores.items() if score]
        if named:  # a named product beats a generic word ("redis on a full disk" is about redis)
            middleware = next((k for k in named if k != "host"), named[0])
    symptoms = tuple(s for s, words in SYMPTOM_WORDS.items() if any(_mentions(lowered, w) for w in words))
    return Question(text, middleware, instances, symptoms)


def _mentions(text: str, word: str) -> bool:
    if word.isascii():
        return re.search(rf"(?<![a-z0-9_]){re.escape(word)}(?![a-z0-9_])", text) is not None
    return word in text
