"""Redaction: catch rate per class on the planted-secret corpus, false redactions on the harmless corpus and on
real logs, and speed, for the product's redaction and a baseline (the module at a git revision, by default the one
before the corpus was planted) side by side in one run.

    .venv/bin/python -m bench.redaction.run                    # baseline: kubestack/redaction.py at 1ded619
    .venv/bin/python -m bench.redaction.run --baseline HEAD~3
    .venv/bin/python -m bench.redaction.run --repeat 5         # best of 5 timings per side

Speed is lines per second of one core: the Loghub-2k lines of every system in ../shared/datasets (14,000 real
log lines, none with a secret; the lines a baseline or the product changes are counted as false redactions), and
the corpus texts (every one with a secret). A case of the ``lines`` kind is one batch for the product
(``redact_lines``); a baseline without ``redact_lines`` redacts each line alone, as the product used to. The
pathological inputs (200 KB each) show that no pattern backtracks without bound.
"""

from __future__ import annotations

import argparse
import subprocess
import time
import types
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from bench.shared import SHARED
from bench.redaction.corpus import HARMLESS, SECRETS, Case, load
from kubestack import redaction

ROOT = Path(__file__).resolve().parents[2]
LOGHUB = SHARED / "datasets" / "loghub" / "loghub_2k_corrected"
DEFAULT_BASELINE = "1ded619"
PATHOLOGICAL = {
    "url-like": "a://b:" * 35_000,
    "keys without values": "password=" * 22_000,
    "BEGIN without END": "-----BEGIN PRIVATE KEY-----" * 7_500,
    "at signs": "a@" * 100_000,
    "JWT-like": "eyJ" + "a" * 200_000,
    "quotes after a key": 'password="' + "x" * 200_000,
    "AUTH lines": "AUTH a b c\n" * 18_000,
}


def baseline_module(revision: str) -> types.ModuleType:
    source = subprocess.run(["git", "show", f"{revision}:kubestack/redaction.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType(f"redaction_{revision}")
    exec(compile(source, f"redaction@{revision}", "exec"), module.__dict__)  # noqa: S102 - our own file at a revision
    return module


def apply(module: types.ModuleType, case: Case) -> str:
    if case.lines_mode:
        lines = case.text.split("\n")
        if hasattr(module, "redact_lines"):
            return "\n".join(module.redact_lines(lines))
        return "\n".join(module.redact(line) for line in lines)
    return module.redact(case.text)


def caught(module: types.ModuleType, case: Case) -> bool:
    out = apply(module, case)
    return not any(secret in out for secret in case.secrets)


def loghub_lines() -> list[str]:
    lines: list[str] = []
    for path in sorted(LOGHUB.glob("*/*_2k.log")):
        lines += path.read_text(encoding="utf-8", errors="replace").splitlines()
    return lines


def best_time(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git revision of the baseline module")
    parser.add_argument("--repeat", type=int, default=3, help="timings per side; the best counts")
    args = parser.parse_args()
    base = baseline_module(args.baseline)
    sides = {"product": redaction, f"baseline {args.baseline}": base}
    secrets, harmless = load(SECRETS), load(HARMLESS)

    print(f"planted secrets: {len(secrets)} cases, {sum(len(c.secrets) for c in secrets)} secrets")
    by_class: dict[str, list[Case]] = defaultdict(list)
    for case in secrets:
        by_class[case.kind].append(case)
    print(f"{'class':<20}{'cases':>6}" + "".join(f"{name:>22}" for name in sides))
    totals = {name: 0 for name in sides}
    for kind, cases in by_class.items():
        row = f"{kind:<20}{len(cases):>6}"
        for name, module in sides.items():
            hits = sum(caught(module, c) for c in cases)
            totals[name] += hits
            row += f"{hits:>12} ({hits / len(cases):>6.1%})"
        print(row)
    print(f"{'all':<20}{len(secrets):>6}" + "".join(f"{totals[n]:>12} ({totals[n] / len(secrets):>6.1%})"
                                                     for n in sides))

    logs = loghub_lines()
    print(f"\nfalse redactions: harmless corpus ({len(harmless)} texts), Loghub-2k ({len(logs)} real lines)")
    for name, module in sides.items():
        wrong = [c.name for c in harmless if apply(module, c) != c.text]
        changed = sum(module.redact(line) != line for line in logs)
        print(f"  {name:<22} harmless changed: {len(wrong):>3} {wrong[:6]}   Loghub lines changed: {changed}")

    texts = [c.text for c in secrets]
    print(f"\nspeed (best of {args.repeat}, one core)")
    speeds = {}
    for name, module in sides.items():
        t_logs = best_time(lambda m=module: [m.redact(line) for line in logs], args.repeat)
        t_texts = best_time(lambda m=module: [m.redact(text) for text in texts], args.repeat)
        speeds[name] = (len(logs) / t_logs, len(texts) / t_texts)
        print(f"  {name:<22} Loghub {speeds[name][0]:>10,.0f} lines/s   corpus texts {speeds[name][1]:>9,.0f} texts/s")
    product, baseline = speeds["product"], speeds[f"baseline {args.baseline}"]
    print(f"  ratio product/baseline  Loghub {product[0] / baseline[0]:.2f}x   corpus texts "
          f"{product[1] / baseline[1]:.2f}x")

    print("\npathological inputs (seconds for one redaction)")
    for label, text in PATHOLOGICAL.items():
        row = f"  {label:<22}{len(text):>8} chars"
        for name, module in sides.items():
            row += f"   {name}: {best_time(lambda m=module, t=text: m.redact(t), 1):.3f}"
        print(row)


if __name__ == "__main__":
    main()
