"""The template miner on the Loghub development systems and the project's real logs, side by side with the miner
of another revision (default ``HEAD``, today's committed miner) in the same run.

    .venv/bin/python -m bench.logs.loghub                     # working tree against HEAD
    .venv/bin/python -m bench.logs.loghub --against 76e3765   # against any revision
    .venv/bin/python -m bench.logs.loghub --repeat 5          # more timing rounds (the best round counts)

Each system's ``<System>_2k.log`` is mined with its Loghub format by a fresh miner, as ``kubestack logs templates
LOG --log-format FORMAT`` does, and scored on ``<System>_2k.log_structured_corrected.csv``: GA (lines grouped by
their template string, as ``../shared/eval/eval_loghub.py`` groups them) and PA (normalised template strings).
Speed is lines per CPU second (``time.process_time``: one core, whatever else the machine runs) on what the
stream runs per line (``TemplateMiner.add``, format parsing
included), a fresh miner per system: "cold" over the first half of the file (every template and most tokens
new), "warm" over the second half (as in a running stream), each miner over the same lines, best of
``--repeat`` rounds. The real logs (``tests/data/logs/real``, labelled by
``label_real.py``) are scored by GA on their labels.

The other revision's ``models/log*.py`` are read with ``git show`` and imported as a package of their own, so
the two miners run in one process on the same machine state. The Loghub data is read in place
(``../shared/datasets/loghub``); nothing here depends on the held-out systems.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from bench.shared import SHARED
from kubestack.models import logformat, logtemplates
from kubestack.models.logaccuracy import grouping_accuracy, parsing_accuracy

ROOT = Path(__file__).resolve().parents[2]
LOGHUB = SHARED / "datasets" / "loghub" / "loghub_2k_corrected"
REAL = ROOT / "tests" / "data" / "logs" / "real"
# logparser's benchmark formats (logpai/logparser, Drain/benchmark.py) for the seven development systems
FORMATS = {
    "HDFS": r"<Date> <Time> <Pid> <Level> <Component>: <Content>",
    "Spark": r"<Date> <Time> <Level> <Component>: <Content>",
    "BGL": r"<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> <Content>",
    "Thunderbird": r"<Label> <Timestamp> <Date> <User> <Month> <Day> <Time> <Location> <Component>(\[<PID>\])?: "
                   r"<Content>",
    "Apache": r"\[<Time>\] \[<Level>\] <Content>",
    "OpenSSH": r"<Date> <Day> <Time> <Component> sshd\[<Pid>\]: <Content>",
    "HealthApp": r"<Time>\|<Component>\|<Pid>\|<Content>",
}


def loghub_system(system: str, base: Path = LOGHUB) -> tuple[list[str], list[str]]:
    """The lines of ``<System>_2k.log`` (split on ``\\n`` only, as the CLI reads them) and their true templates."""
    folder = base / system
    raw = (folder / f"{system}_2k.log").read_bytes().decode("utf-8", "replace")
    lines = [line.rstrip("\r") for line in raw.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    with open(folder / f"{system}_2k.log_structured_corrected.csv", newline="", encoding="utf-8") as fh:
        truth = [row["EventTemplate"] for row in csv.DictReader(fh)]
    return lines, truth


def revision_miner(rev: str, into: Path) -> ModuleType:
    """``models/logtemplates.py`` of revision ``rev`` (with its masking and format modules), imported apart."""
    package = f"_logminer_{rev.replace('~', '_').replace('^', '_').replace('/', '_')}"
    folder = into / package
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    names = subprocess.run(["git", "ls-tree", "--name-only", rev, "models/"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    for name in names:
        module = Path(name).name
        if module.startswith("log") and module.endswith(".py"):
            text = subprocess.run(["git", "show", f"{rev}:{name}"], cwd=ROOT, check=True, capture_output=True,
                                  text=True).stdout
            (folder / module).write_text(text.replace("kubestack.models.log", f"{package}.log"))
    sys.path.insert(0, str(into))
    return importlib.import_module(f"{package}.logtemplates")


class Side:
    """One miner implementation: mines a system's lines into one template string per line."""

    def __init__(self, name: str, templates_module: ModuleType) -> None:
        self.name = name
        self.module = templates_module

    def mine(self, lines: list[str], fmt: str | None) -> tuple[list[str], float, float]:
        """One template per line, and the seconds spent on the first and on the second half of the lines (the
        second half runs on a warm miner: its templates and most of its tokens known, as in a running stream)."""
        miner = self.module.TemplateMiner(log_format=logformat.LogFormat.parse(fmt) if fmt else None)
        half = len(lines) // 2
        start = time.process_time()
        numbers = [int(miner.add(line).template_id[1:]) for line in lines[:half]]
        middle = time.process_time()
        numbers += [int(miner.add(line).template_id[1:]) for line in lines[half:]]
        end = time.process_time()
        if hasattr(miner, "refined"):  # what `kubestack logs templates` reports for each line
            numbers = [miner.refined(line, number) for line, number in zip(lines, numbers)]
        return [miner.template(number) for number in numbers], middle - start, end - middle


def compare(sides: list[Side], cases: list[tuple[str, list[str], list[str], str | None]], repeat: int,
            with_pa: bool) -> None:
    heads = "".join(f"{'GA ' + s.name:>12}" + (f"{'PA ' + s.name:>12}" if with_pa else "") for s in sides)
    speeds = "".join(f"{'cold ' + s.name:>14}{'warm ' + s.name:>14}" for s in sides)
    print(f"{'source':<13}{'lines':>6}{heads}{speeds}   (lines/s: first half, second half)")
    totals = {s.name: [0.0, 0.0, 0.0, 0.0, 0] for s in sides}  # GA, PA, cold s, warm s, lines
    for name, lines, truth, fmt in cases:
        row, speed = f"{name:<13}{len(lines):>6}", ""
        half = len(lines) // 2
        for side in sides:
            cold = warm = float("inf")
            for _ in range(repeat):
                predicted, first, second = side.mine(lines, fmt)
                cold, warm = min(cold, first), min(warm, second)
            total = totals[side.name]
            total[0] += grouping_accuracy(truth, predicted)
            row += f"{grouping_accuracy(truth, predicted):>12.3f}"
            if with_pa:
                total[1] += parsing_accuracy(truth, predicted)
                row += f"{parsing_accuracy(truth, predicted):>12.3f}"
            total[2] += cold
            total[3] += warm
            total[4] += len(lines)
            speed += f"{half / cold:>14,.0f}{(len(lines) - half) / warm:>14,.0f}"
        print(row + speed)
    n = len(cases)
    row = f"{'average':<13}{sum(len(c[1]) for c in cases):>6}"
    for side in sides:
        total = totals[side.name]
        row += f"{total[0] / n:>12.3f}" + (f"{total[1] / n:>12.3f}" if with_pa else "")
    print(row + "".join(f"{totals[s.name][4] / 2 / totals[s.name][2]:>14,.0f}"
                        f"{totals[s.name][4] / 2 / totals[s.name][3]:>14,.0f}" for s in sides))


def real_cases(folder: Path = REAL) -> list[tuple[str, list[str], list[str], str | None]]:
    cases = []
    for log in sorted(folder.glob("*.log")):
        with open(log.with_suffix(".labels.csv"), newline="") as labels:
            truth = [row["template_id"] for row in csv.DictReader(labels)]
        fmt = log.with_suffix(".format")
        cases.append((log.stem, log.read_text().splitlines(), truth, fmt.read_text().strip() if fmt.exists() else None))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="HEAD", help="git revision whose miner runs beside the working tree's")
    parser.add_argument("--repeat", type=int, default=3, help="timing rounds per system and miner (best counts)")
    parser.add_argument("--loghub", type=Path, default=LOGHUB, help="folder of the Loghub-2k corrected systems")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sides = [Side("tree", logtemplates), Side(args.against, revision_miner(args.against, Path(tmp)))]
        systems = [s for s in FORMATS if (args.loghub / s).is_dir()]
        print(f"Loghub-2k development systems ({args.loghub}); GA by template string, PA normalised; "
              f"one core, fresh miner per system, best of {args.repeat}")
        compare(sides, [(s, *loghub_system(s, args.loghub), FORMATS[s]) for s in systems], args.repeat, True)
        print(f"\nreal logs ({REAL.relative_to(ROOT)}), GA on the hand-written labels")
        compare(sides, real_cases(), args.repeat, False)


if __name__ == "__main__":
    main()
