"""Grouping accuracy and speed of KubeStack-AI's template miner against plain drain3 defaults, side by side.

    .venv/bin/python -m bench.logs.run                      # dev and holdout splits, 2000 lines per source
    .venv/bin/python -m bench.logs.run --sweep              # tune similarity / path_tokens on the dev split
    .venv/bin/python -m bench.logs.run --real tests/data/logs/real   # the hand-labelled real logs

Each source is mined by its own miner, with its Loghub-style format (lines that do not fit are mined whole),
exactly like ``kubestack logs templates FILE --log-format FORMAT``. Speed is lines per second of one core,
format parsing included, measured for both miners in the same run over the same lines.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from drain3 import TemplateMiner as Drain3Miner
from drain3.template_miner_config import TemplateMinerConfig

from bench.logs.corpus import DEV, FORMATS, HOLDOUT, generate
from kubestack.models.logaccuracy import grouping_accuracy
from kubestack.models.logformat import LogFormat
from kubestack.models.logtemplates import TemplateMiner


def ours(lines: list[str], fmt: str | None, **settings) -> tuple[list[str], float]:
    miner = TemplateMiner(log_format=LogFormat.parse(fmt) if fmt else None, **settings)
    start = time.perf_counter()
    groups = [miner.add_number(line) for line in lines]
    elapsed = time.perf_counter() - start
    groups = [miner.refined(line, group) for line, group in zip(lines, groups)]  # as `kubestack logs templates`
    return [str(g) for g in groups], elapsed


def drain3_defaults(lines: list[str], fmt: str | None) -> tuple[list[str], float]:
    miner, log_format = Drain3Miner(config=TemplateMinerConfig()), LogFormat.parse(fmt) if fmt else None
    start = time.perf_counter()
    groups = []
    for line in lines:
        content = log_format.content(line) if log_format else None
        groups.append(miner.add_log_message(line if content is None else content)["cluster_id"])
    return [str(g) for g in groups], time.perf_counter() - start


def evaluate(cases: list[tuple[str, list[str], list[str], str | None]], **settings) -> None:
    print(f"{'source':<12}{'lines':>7}{'templates':>10}  {'GA ours':>8}{'GA drain3':>10}  "
          f"{'lines/s ours':>13}{'lines/s drain3':>15}{'speed-up':>9}")
    totals = {"ours": [], "drain3": [], "t_ours": 0.0, "t_drain3": 0.0, "n": 0}
    for name, lines, truth, fmt in cases:
        mine, t_ours = ours(lines, fmt, **settings)
        base, t_drain3 = drain3_defaults(lines, fmt)
        ga_ours, ga_drain3 = grouping_accuracy(truth, mine), grouping_accuracy(truth, base)
        totals["ours"].append(ga_ours)
        totals["drain3"].append(ga_drain3)
        totals["t_ours"] += t_ours
        totals["t_drain3"] += t_drain3
        totals["n"] += len(lines)
        print(f"{name:<12}{len(lines):>7}{len(set(truth)):>10}  {ga_ours:>8.3f}{ga_drain3:>10.3f}  "
              f"{len(lines) / t_ours:>13,.0f}{len(lines) / t_drain3:>15,.0f}{t_drain3 / t_ours:>8.1f}x")
    n = totals["n"]
    print(f"{'average':<12}{n:>7}{'':>10}  {sum(totals['ours']) / len(cases):>8.3f}"
          f"{sum(totals['drain3']) / len(cases):>10.3f}  {n / totals['t_ours']:>13,.0f}"
          f"{n / totals['t_drain3']:>15,.0f}{totals['t_drain3'] / totals['t_ours']:>8.1f}x")


def synthetic(sources: tuple[str, ...], lines: int, seed: int) -> list[tuple[str, list[str], list[str], str]]:
    return [(source, *generate(source, lines, seed), FORMATS[source]) for source in sources]


def real(folder: Path) -> list[tuple[str, list[str], list[str], str | None]]:
    """``NAME.log`` + ``NAME.labels.csv`` (line,template_id) + optional ``NAME.format`` per source."""
    cases = []
    for log in sorted(folder.glob("*.log")):
        lines = log.read_text().splitlines()
        with open(log.with_suffix(".labels.csv"), newline="") as labels:
            truth = [row["template_id"] for row in csv.DictReader(labels)]
        fmt_file = log.with_suffix(".format")
        cases.append((log.stem, lines, truth, fmt_file.read_text().strip() if fmt_file.exists() else None))
    return cases


def sweep(lines: int, seed: int) -> None:
    cases = synthetic(DEV, lines, seed)
    print(f"{'similarity':>10}{'path_tokens':>12}{'GA dev':>8}")
    for path_tokens in (0, 1, 2, 3):
        for similarity in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
            scores = [grouping_accuracy(truth, ours(log, fmt, similarity=similarity, path_tokens=path_tokens)[0])
                      for _, log, truth, fmt in cases]
            print(f"{similarity:>10}{path_tokens:>12}{sum(scores) / len(scores):>8.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=2000, help="lines per synthetic source (Loghub uses 2000)")
    parser.add_argument("--sweep", action="store_true", help="tune the miner's settings on the dev split")
    parser.add_argument("--real", type=Path, help="folder of hand-labelled real logs")
    args = parser.parse_args()
    if args.sweep:
        sweep(args.lines, seed=1)
    elif args.real:
        evaluate(real(args.real))
    else:
        print(f"dev split (seed 1): {', '.join(DEV)}")
        evaluate(synthetic(DEV, args.lines, seed=1))
        print(f"\nholdout split (seed 2, sources never used for tuning): {', '.join(HOLDOUT)}")
        evaluate(synthetic(HOLDOUT, args.lines, seed=2))


if __name__ == "__main__":
    main()
