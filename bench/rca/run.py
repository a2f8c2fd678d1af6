"""Top-1 / top-3 accuracy of the root-cause ranking on the synthetic cases (``generate.py``), with and without
the symptom, the call graph and the given onset, by fault kind, plus the time per case.

    python -m bench.rca.run [--count 60] [--split dev|holdout]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.rca.generate import seeds, write_case
from kubestack.models.rootcause_case import rank_case, read_case

VARIANTS = {"as given": lambda c: c, "no symptom": lambda c: dataclasses.replace(c, symptom=None),
            "no graph": lambda c: dataclasses.replace(c, edges=[]),
            "no onset given": lambda c: dataclasses.replace(c, start=None),
            "none of them": lambda c: dataclasses.replace(c, edges=[], start=None, symptom=None)}


def evaluate(split: str, count: int) -> None:
    hits: dict[str, dict[str, list[int]]] = {v: defaultdict(list) for v in VARIANTS}
    elapsed = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds(split, count):
            folder = Path(tmp) / f"case-{seed}"
            label = write_case(folder, seed, with_start=True)
            case = read_case(folder)
            for name, variant in VARIANTS.items():
                started = time.perf_counter()
                ranking = rank_case(variant(case))
                elapsed.append(time.perf_counter() - started)
                names = [c.component for c in ranking.causes]
                position = names.index(label["root"]) if label["root"] in names else 99
                hits[name][label["kind"]].append(position)
                hits[name]["all"].append(position)
    kinds = ["all"] + sorted(k for k in hits["as given"] if k != "all")
    print(f"{split}: {count} cases; ms per case: median {sorted(elapsed)[len(elapsed) // 2] * 1000:.1f}")
    print(f"{'variant':<16}" + "".join(f"{k:>16}" for k in kinds))
    for name in VARIANTS:
        cells = []
        for kind in kinds:
            positions = hits[name][kind]
            top1 = sum(p == 0 for p in positions) / len(positions)
            top3 = sum(p < 3 for p in positions) / len(positions)
            cells.append(f"{top1:.2f}/{top3:.2f} n{len(positions):<3}")
        print(f"{name:<16}" + "".join(f"{c:>16}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--split", choices=("dev", "holdout"), default="dev")
    args = parser.parse_args()
    evaluate(args.split, args.count)


if __name__ == "__main__":
    main()
