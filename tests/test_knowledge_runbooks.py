"""The packaged runbooks: valid front matter, unique ids, and every rule, metric and action they name exists in
the plugins; every health and config-risk rule of the plugins has a runbook."""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from kubestack.errors import RunbookFormatError
from kubestack.knowledge.runbook import load_dir, load_runbooks, parse_runbook, runbook_dirs
from kubestack.contract.events import Risk
from kubestack.plugins.registry import action_specs, plugins

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [*sorted((ROOT / "plugins").rglob("*.py")), ROOT / "agents" / "collector.py"]
SECTIONS = ("Symptoms", "Likely causes", "Confirm", "Fix", "Across middleware")
BOOKS = load_runbooks()


def _source() -> str:
    return "\n".join(p.read_text() for p in SOURCES)


def action_ids() -> set[str]:
    """Every ActionSpec id of the installed plugins (each plugin module's ACTIONS)."""
    return {spec.id for cls in plugins().values() for spec in getattr(sys.modules[cls.__module__], "ACTIONS", ())}


def rule_ids() -> set[str]:
    """The rules the plugins declare (``rules``), and the agent's own (``agent.<rule>`` literals of its collector)."""
    declared = {rule for cls in plugins().values() for rule in cls.rules}
    own = set(re.findall(r'"(agent\.[a-z_]+)"', (ROOT / "agents" / "collector.py").read_text()))
    return declared | own


def metric_known(name: str, source: str) -> bool:
    """Named literally in a plugin, or produced by one of its f-string names (``f"host_load{n}"``)."""
    if f'"{name}"' in source:
        return True
    templates = re.findall(r'f"([a-z_]+\{[^}"]+\}[a-z_]*)"', source)
    return any(re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[a-z0-9_]+", re.escape(t)).replace(r"\{", "{"), name)
               or re.fullmatch(re.sub(r"\{[^}]+\}", "[a-z0-9_]+", t), name) for t in templates)


def test_runbooks_cover_every_middleware_with_enough_depth() -> None:
    """Every plugin with runbooks has at least 4 (one per health rule at least, see below); the first six, 8."""
    counts = Counter(b.meta.middleware for b in BOOKS)
    first = {"redis", "mysql", "postgresql", "kafka", "host", "kubernetes"}
    assert set(counts) == set(runbook_dirs()) >= first
    assert all(n >= (8 if middleware in first else 4) for middleware, n in counts.items()), counts


def test_ids_are_unique_and_match_their_paths() -> None:
    ids = [b.id for b in BOOKS]
    assert len(ids) == len(set(ids))
    for book in BOOKS:
        middleware, slug = book.id.split("/")
        assert (runbook_dirs()[middleware] / f"{slug}.md").is_file()
        assert book.meta.kind == "runbook"


@pytest.mark.parametrize("book", BOOKS, ids=lambda b: b.id)
def test_each_runbook_has_every_section_and_bilingual_symptoms(book) -> None:
    headings = [h for h, _ in book.sections()]
    assert [s for s in SECTIONS if s not in headings] == []
    assert any(re.search(r"[\u4e00-\u9fff]", s) for s in book.meta.symptoms), "no Chinese symptom"
    assert any(re.search(r"[a-zA-Z]{4}", s) for s in book.meta.symptoms)
    assert "```" in book.body, "Confirm needs exact commands or queries"
    assert "risk" in book.body.lower()


def test_every_action_named_exists_among_the_plugins_actions() -> None:
    known = action_ids()
    assert "redis.set_maxmemory" in known and "kafka.reset_offsets" in known
    named = {(b.id, a) for b in BOOKS for a in b.meta.actions}
    assert [pair for pair in sorted(named) if pair[1] not in known] == []
    forbidden = {spec.id for name in plugins() for spec in action_specs(name) if spec.risk == Risk.FORBIDDEN}
    assert "redis.flushall" in forbidden
    assert sorted(known - forbidden - {a for _, a in named}) == []    # every action that may run is documented


def test_every_rule_named_exists_and_every_rule_has_a_runbook() -> None:
    rules = rule_ids()
    assert {"redis.no_maxmemory", "postgresql.xid_age_high", "kafka.offline_partitions", "host.inodes_low",
            "mysql.durability_lowered", "agent.target_down"} <= rules
    named = {r for b in BOOKS for r in b.meta.signals.rules}
    assert sorted(named - rules) == []
    assert sorted(rules - named) == []


def test_every_metric_named_is_produced_by_a_plugin() -> None:
    source = _source()
    assert metric_known("host_load5", source) and not metric_known("redis_made_up_bytes", source)
    named = {(b.id, m) for b in BOOKS for m in b.meta.signals.metrics}
    assert [pair for pair in sorted(named) if not metric_known(pair[1], source)] == []


def test_related_runbooks_cross_middleware() -> None:
    crossing = [b.id for b in BOOKS if any(r.split("/")[0] != b.meta.middleware for r in b.meta.related)]
    assert len(crossing) >= len(BOOKS) // 2


def test_front_matter_errors_name_the_file_and_the_field(tmp_path: Path) -> None:
    with pytest.raises(RunbookFormatError, match="x.md: no front matter"):
        parse_runbook("# title\n", "x.md")
    with pytest.raises(RunbookFormatError, match="not closed"):
        parse_runbook("---\nid: redis/a\n", "x.md")
    with pytest.raises(RunbookFormatError, match="symptoms"):
        parse_runbook("---\nid: redis/a\nmiddleware: redis\ntitle: t\nsymptoms: []\n---\nbody", "x.md")
    with pytest.raises(RunbookFormatError, match="bogus"):
        parse_runbook("---\nid: redis/a\nmiddleware: redis\ntitle: t\nsymptoms: [s]\nbogus: 1\n---\nb", "x.md")
    (tmp_path / "redis").mkdir()
    (tmp_path / "redis" / "b.md").write_text("---\nid: redis/a\nmiddleware: redis\ntitle: t\nsymptoms: [s]\n---\nb")
    with pytest.raises(RunbookFormatError, match="must match the path"):
        load_dir(tmp_path)


def test_markdown_round_trip() -> None:
    book = BOOKS[0]
    again = parse_runbook(book.to_markdown(), "round-trip")
    assert again.meta == book.meta and again.body == book.body
