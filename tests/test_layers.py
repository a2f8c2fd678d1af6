"""No import cycle between the top-level folders: each concept has one home below all its users, and a folder never
imports one that imports it back. Every import counts, also one deferred into a function (it is the same
dependency, paid later)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"kubestack.pipeline": "pipeline", "kubestack.agents": "agents", "kubestack.models": "models",
           "kubestack.plugins": "plugins", "kubestack.knowledge": "knowledge", "kubestack.deploy": "deploy"}
APPS = {"kubestack.cli": "cli", "kubestack.__main__": "cli", "kubestack.api": "api", "kubestack.mcp": "mcp",
        "kubestack.demo": "demo"}
"""The command line (also ``python -m kubestack``), the API, the MCP server and the demo application (which starts
its own servers through ``deploy``) sit above every folder, and nothing below imports them."""


def unit_of(module: str) -> str | None:
    """The folder a ``kubestack.*`` module belongs to (``core``: the contract, settings, errors, LLM client...)."""
    for prefix, unit in (FOLDERS | APPS).items():
        if module == prefix or module.startswith(prefix + "."):
            return unit
    return "core" if module == "kubestack" or module.startswith("kubestack.") else None


def module_name(path: Path) -> str:
    folder = path.relative_to(ROOT).parts[0]
    package = next((p for p, f in FOLDERS.items() if f == folder), "kubestack")
    parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
    return ".".join([package, *(parts[:-1] if parts[-1] == "__init__" else parts)])


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def edges() -> dict[tuple[str, str], str]:
    """(importing folder, imported folder) -> one place where it happens."""
    out: dict[tuple[str, str], str] = {}
    for folder in [*FOLDERS.values(), "kubestack"]:
        for path in sorted((ROOT / folder).rglob("*.py")):
            source = unit_of(module_name(path))
            for imported in imports(path):
                target = unit_of(imported)
                if target is not None and target != source:
                    out.setdefault((source, target), f"{path.relative_to(ROOT)} imports {imported}")
    return out


def cycle(graph: dict[tuple[str, str], str]) -> list[str] | None:
    """One cycle of folders (first folder repeated at the end), or None."""
    after: dict[str, set[str]] = {}
    for source, target in graph:
        after.setdefault(source, set()).add(target)
    state: dict[str, str] = {}

    def visit(unit: str, path: list[str]) -> list[str] | None:
        state[unit] = "open"
        for nxt in sorted(after.get(unit, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt] if nxt in path else [unit, nxt]
            if nxt not in state and (found := visit(nxt, path + [nxt])):
                return found
        state[unit] = "done"
        return None

    for unit in sorted(after):
        if unit not in state and (found := visit(unit, [unit])):
            return found
    return None


def test_the_finder_sees_a_cycle() -> None:
    assert cycle({("a", "b"): "", ("b", "c"): "", ("c", "a"): ""}) == ["a", "b", "c", "a"]
    assert cycle({("a", "b"): "", ("b", "c"): "", ("a", "c"): ""}) is None
    assert unit_of("kubestack.plugins.redis.plugin") == "plugins" and unit_of("kubestack.llm") == "core"
    assert unit_of("kubestack.api.app") == "api" and unit_of("redis") is None


def test_no_import_cycle_between_top_level_folders() -> None:
    graph = edges()
    assert ("pipeline", "plugins") in graph and ("knowledge", "core") in graph, "the walk sees the imports"
    found = cycle(graph)
    where = [graph[(a, b)] for a, b in zip(found, found[1:])] if found else []
    assert found is None, f"import cycle {' -> '.join(found)}: {'; '.join(where)}"


def test_nothing_below_imports_the_command_line_or_the_api() -> None:
    above = {(a, b): where for (a, b), where in edges().items() if b in APPS.values() and a not in APPS.values()}
    assert above == {}
