"""The language a question is asked in, and an answer's words in it: its headings, and each runbook's title and
fix steps (the runbook's own translation when it has one, its ``## Fix`` section otherwise). English and Chinese;
any other language is answered in English. Pure."""

from __future__ import annotations

import re

from kubestack.knowledge.runbook import Runbook

ENGLISH, CHINESE = "en", "zh"
LANGUAGES = (ENGLISH, CHINESE)

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)?")
_STEP = re.compile(r"^\d+\.\s+(.*)$")
FIX_SECTION = "Fix"

LABELS: dict[str, dict[str, str]] = {
    ENGLISH: {
        "about": "About", "no_middleware": "no middleware named", "symptoms": "symptoms",
        "summary": "Summary ({by}, citing the evidence below)", "checks": "Live checks:",
        "no_checks": "Live checks: no matching target configured", "unreachable": "cannot be checked",
        "healthy": "healthy", "findings": "{n} finding(s)", "evidence_from": "evidence from",
        "incidents": "Recent incidents:", "runbooks": "Runbooks:", "no_runbooks": "Runbooks: none found",
        "steps": "What to do", "note": "Note",
        "no_middleware_note": "the question names no middleware or instance: no live check ran",
        "incidents_not_read": "recent incidents not read",
        "colon": ": ", "semicolon": "; ", "open": " (", "close": ")",
    },
    CHINESE: {
        "about": "问题涉及", "no_middleware": "未指明中间件", "symptoms": "症状",
        "summary": "摘要（{by}，引用下列证据）", "checks": "实时检查：",
        "no_checks": "实时检查：没有配置匹配的目标", "unreachable": "无法检查",
        "healthy": "健康", "findings": "发现 {n} 个问题", "evidence_from": "证据来源",
        "incidents": "近期事件：", "runbooks": "处理手册：", "no_runbooks": "处理手册：未找到",
        "steps": "处理步骤", "note": "说明",
        "no_middleware_note": "问题中没有提到中间件或实例：未做实时检查",
        "incidents_not_read": "未能读取近期事件",
        "colon": "：", "semicolon": "；", "open": "（", "close": "）",
    },
}

SYMPTOM_NAMES = {CHINESE: {"slow": "变慢", "memory": "内存", "connections": "连接", "locks": "锁",
                           "replication": "复制", "disk": "磁盘", "errors": "报错"}}
WHY = {CHINESE: {"matches the question": "与问题匹配", "live check": "实时检查", " fired": " 已触发", "; ": "；",
                 ": ": "："}}


def detect_language(text: str) -> str:
    """``zh`` when the question is written mostly in Chinese (at least as many Han characters as Latin words:
    "Redis 为什么变慢了?", "pg 连接数满了"), else ``en`` ("why is redis slow? 慢" stays English)."""
    han = len(_HAN.findall(text))
    return CHINESE if han and han >= len(_LATIN_WORD.findall(text)) else ENGLISH


def label(language: str, key: str, **values: object) -> str:
    words = LABELS.get(language, LABELS[ENGLISH])
    return words[key].format(**values)


def symptom_name(language: str, symptom: str) -> str:
    return SYMPTOM_NAMES.get(language, {}).get(symptom, symptom)


def why(language: str, text: str) -> str:
    """The reason a runbook is listed ("matches the question; live check: redis.slow_commands fired")."""
    for english, local in WHY.get(language, {}).items():
        text = text.replace(english, local)
    return text


def fix_steps(book: Runbook) -> list[str]:
    """The numbered steps of the ``## Fix`` section, each on one line."""
    steps: list[str] = []
    for heading, text in book.sections():
        if heading != FIX_SECTION:
            continue
        for line in text.splitlines():
            found = _STEP.match(line)
            if found:
                steps.append(found.group(1).strip())
            elif steps and line.startswith(" ") and line.strip():
                steps[-1] += " " + line.strip()
    return steps


def title_in(book: Runbook, language: str) -> str:
    """The runbook's title in ``language``: its translation, else (in Chinese) its first Chinese symptom with the
    English title, else the English title."""
    translated = book.meta.translations.get(language)
    if translated is not None:
        return translated.title
    if language != ENGLISH:
        local = next((s for s in book.meta.symptoms if _HAN.search(s)), None)
        if local is not None:
            return f"{local}（{book.meta.title}）"
    return book.meta.title


def steps_in(book: Runbook, language: str) -> tuple[list[str], str]:
    """(the fix steps in ``language`` if the runbook has them, else in English; the language they are in)."""
    translated = book.meta.translations.get(language)
    if translated is not None and translated.steps:
        return list(translated.steps), language
    return fix_steps(book), ENGLISH
