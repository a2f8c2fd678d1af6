"""How text becomes terms, the same way for runbooks and questions, in English and Chinese.

English words are lower-cased and stemmed (``lagging`` and ``lag`` meet); identifiers such as
``redis.no_maxmemory`` or ``mysql_replica_lag_seconds`` count as a whole and by their parts. Chinese has no
spaces, so every run of CJK characters gives its characters and its character bigrams (``主从延迟`` →
``主从 从延 延迟`` ...). A small glossary adds the English term of common on-call Chinese words (``主从`` →
``replication``), so a Chinese question also meets the English body of a runbook.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from nltk.stem import PorterStemmer

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]+|[a-z0-9]+(?:[._][a-z0-9]+)*")
_WORD = re.compile(r"[a-z0-9]+")
_CJK_RUN = re.compile(rf"[{_CJK}]+")

STOPWORDS = frozenset("""
a an and are as at be been but by can do does for from has have how i if in into is it its my of on or our so
that the then there these this to was we what when where which who why will with you your me should about after
before any all get got not no yes up out too very just than via per also keep keeps
""".split())

# Split points inside a run of Chinese: particles and question words that say nothing about the problem.
CJK_STOPWORDS = sorted("的 了 吗 呢 吧 啊 么 我们 怎么办 怎么 怎样 如何 什么 为什么 一直 这个 那个 一下 现在 突然 好像 还是 "
                       "可以 应该 请问 帮忙 看看 一般 是不是 有没有 是否".split(), key=len, reverse=True)
_CJK_SPLIT = re.compile("|".join(map(re.escape, CJK_STOPWORDS)))

# Words that stem apart but mean the same thing in these runbooks.
SAME = {"replica": "replic", "slave": "replic", "secondari": "replic", "latenc": "latenc", "latency": "latenc",
        "db": "databas", "databas": "databas", "pg": "postgresql", "postgr": "postgresql", "mariadb": "mysql",
        "oom": "oom", "connect": "connect", "conn": "connect", "mem": "memori", "ram": "memori"}

# On-call Chinese → the English terms the runbooks use (each side as the analyzer would see it).
GLOSSARY: dict[str, str] = {
    "内存": "memory", "满": "full", "满了": "full", "爆": "full", "打满": "full exhausted", "耗尽": "exhausted",
    "不足": "low insufficient", "淘汰": "evict eviction", "驱逐": "evict eviction", "碎片": "fragmentation",
    "慢": "slow latency", "变慢": "slow latency", "卡": "slow stuck", "卡住": "stuck blocked", "延迟": "latency lag",
    "超时": "timeout", "阻塞": "blocked block", "堵塞": "blocked", "连接": "connection connections",
    "连接数": "connections max_connections", "拒绝": "rejected refused", "客户端": "client clients",
    "主从": "replication replica primary", "复制": "replication replica", "同步": "replication sync",
    "从库": "replica standby", "备库": "standby replica", "主库": "primary", "断开": "down broken link",
    "断了": "down broken", "落后": "lag behind", "滞后": "lag behind", "积压": "lag backlog", "堆积": "lag backlog",
    "消费": "consumer consume", "消费者": "consumer", "消费组": "consumer group", "分区": "partition partitions",
    "副本": "replica replicas isr", "同步副本": "isr in-sync replicas", "离线": "offline", "下线": "offline down",
    "宕机": "down crash", "挂了": "down crash", "挂掉": "down crash", "重启": "restart", "持久化": "persistence",
    "落盘": "persistence save", "磁盘": "disk", "硬盘": "disk", "空间": "space", "写满": "full", "文件": "file files",
    "句柄": "file handles descriptors", "索引节点": "inodes", "锁": "lock locks", "锁等待": "lock wait",
    "死锁": "deadlock", "事务": "transaction", "长事务": "long transaction", "空闲": "idle", "回滚": "rollback",
    "慢查询": "slow query queries", "查询": "query queries", "语句": "statement query", "缓存": "cache",
    "命中率": "hit ratio", "缓冲池": "buffer pool", "交换": "swap", "负载": "load cpu", "高": "high",
    "增长": "growth growing", "暴涨": "growth spike", "膨胀": "bloat growth", "清理": "vacuum cleanup",
    "回卷": "wraparound", "事务号": "xid transaction id", "配置": "config configuration setting", "改了": "changed",
    "参数": "setting parameter", "密码": "password auth", "认证": "auth authentication", "安全": "security exposed",
    "网络": "network", "不可达": "unreachable", "连不上": "unreachable connection refused", "进程": "process",
    "杀": "kill", "只读": "read_only read-only", "写入": "write writes", "失败": "failed failure", "报错": "error",
    "错误": "error", "日志": "log wal", "预写日志": "wal", "归档": "archive archiving", "检查点": "checkpoint",
    "再平衡": "rebalance", "重平衡": "rebalance", "主题": "topic", "生产者": "producer", "数据丢失": "data loss durability",
    "丢数据": "data loss durability", "持久性": "durability", "热点": "hot skew", "倾斜": "skew",
    "大key": "big key", "临时文件": "temp files", "排序": "sort", "队列": "queue", "挂起": "blocked",
}

_stemmer = PorterStemmer()


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    stemmed = _stemmer.stem(word) if word.isalpha() and len(word) > 3 else word
    return SAME.get(stemmed, stemmed)


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def _cjk_terms(run: str) -> list[str]:
    out = []
    for part in _CJK_SPLIT.split(run):
        out += list(part) + [a + b for a, b in zip(part, part[1:], strict=False)]
    return out


def _glossary_terms(text: str) -> list[str]:
    extra = []
    for zh, en in GLOSSARY.items():
        if zh in text:
            extra += en.split()
    return extra


def _english_terms(token: str) -> list[str]:
    parts = _WORD.findall(token)
    terms = [stem(p) for p in parts if p not in STOPWORDS]
    if len(parts) > 1:
        terms.append(token)      # the identifier itself: an exact rule id or metric name weighs more
    return terms


def terms(text: str) -> list[str]:
    """The index terms of ``text`` (repeats kept: counts matter)."""
    text = normalise(text)
    out: list[str] = []
    for token in _TOKEN.findall(text):
        if _CJK_RUN.fullmatch(token):
            out += _cjk_terms(token)
        else:
            out += _english_terms(token)
    for word in _glossary_terms(text):
        out += _english_terms(word)
    return out


def char_ngrams(text: str, n: int = 3) -> list[str]:
    """Character n-grams of each English word (padded with ``#``): ``lagging`` and ``lags`` share ``#la lag``."""
    grams = []
    for word in _WORD.findall(normalise(text)):
        if word in STOPWORDS or word.isdigit():
            continue
        padded = f"#{word}#"
        grams += [padded[i:i + n] for i in range(max(len(padded) - n + 1, 1))]
    return grams
