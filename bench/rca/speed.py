"""How long ``kubestack rca replay DIR`` takes on the PetShop development issues, and how long the CLI takes to
start, side by side with another revision.

    .venv/bin/python -m bench.rca.speed [--against REV] [--runs 3] [--no-graph]

Each of the 20 issues becomes a replay DIR as ``../shared/eval/eval_petshop.py`` builds it (its own functions:
the variant's normal history prepended, ``incident.json`` with the symptom, ``graph.csv`` unless ``--no-graph``).
Timed, as separate processes started the same way (``bench/agent/source_tree.py``): ``kubestack --help``,
``kubestack rca replay --help`` (the CLI's start-up up to the command: typer, pydantic; not the engine's numpy) and
``kubestack rca replay DIR --json`` per issue; wall and CPU (user + system of the child) seconds, the median
over every run. With ``--against REV`` the same commands of that git revision (exported to a temporary folder)
run interleaved with this tree's, one after the other, so both see the same load on a shared machine; the
rankings of the two are compared (the same JSON, or the issues where they differ are named). Also the time of
reading and ranking in this process (the replay less its start-up). One JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.shared import SHARED

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "bench" / "agent" / "source_tree.py"
VARIANTS = ("low_traffic", "high_traffic", "temporal_traffic1", "temporal_traffic2")


def build_cases(into: Path, with_graph: bool) -> list[Path]:
    """The development issues as replay DIRs, laid out by the scorer's own code."""
    sys.path.insert(0, str(SHARED / "eval"))
    import eval_petshop as petshop

    data = SHARED / "datasets" / "rca" / "petshop" / "dataset"
    cases = []
    for variant in VARIANTS:
        noissue = data / variant / "noissue" / "metrics.csv"
        history = petshop.read_petshop_metrics(str(noissue)) if noissue.is_file() else None
        edges = petshop.read_graph_edges(str(data / variant / "graph.csv")) if with_graph else None
        train = data / variant / "train"
        for issue in sorted(train.iterdir(), key=lambda p: (len(p.name), p.name)):
            if (issue / "target.json").is_file():
                folder = into / variant / issue.name
                petshop.build_dir(str(folder), str(issue), history, edges, with_incident=True)
                cases.append(folder)
    return cases


def run(argv: list[str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system, from wait4) and stdout of one run of ``argv``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        child = subprocess.Popen(argv, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.monotonic() - started
        code = child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        out.seek(0)
        err.seek(0)
        if code != 0:
            raise SystemExit(f"{' '.join(argv)} exited {code}:\n{err.read().decode()}")
        return wall, usage.ru_utime + usage.ru_stime, out.read().decode()


def export_revision(rev: str, into: Path) -> Path:
    """The project's files at git revision ``rev``, written under ``into``."""
    into.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def in_process(cases: list[Path]) -> tuple[float, float]:
    """Median wall and CPU seconds to read and rank one case in this process (a replay less its start-up)."""
    from kubestack.models.rootcause_case import rank_case, read_case

    rank_case(read_case(cases[0]))  # the first pays the imports
    times = []
    for folder in cases:
        wall, cpu = time.perf_counter(), time.process_time()
        rank_case(read_case(folder))
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def main(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-rca-speed-") as tmp:
        base = Path(tmp)
        cases = build_cases(base / "cases", not args.no_graph)
        trees = {"this": ROOT}
        if args.against:
            trees["baseline"] = export_revision(args.against, base / "baseline-tree")
        commands = {"help": ["--help"], "replay_help": ["rca", "replay", "--help"]}
        commands.update({f"replay {c.parent.name}/{c.name}": ["rca", "replay", str(c), "--json"] for c in cases})
        figures: dict[str, dict[str, list[tuple[float, float]]]] = {label: {} for label in trees}
        outputs: dict[str, dict[str, str]] = {label: {} for label in trees}
        for _ in range(args.runs):
            for name, tail in commands.items():
                for label, tree in trees.items():  # interleaved: both see the same load
                    wall, cpu, out = run([sys.executable, str(LAUNCHER), str(tree), "-m", "kubestack", *tail])
                    figures[label].setdefault(name, []).append((wall, cpu))
                    outputs[label][name] = out
        result = {"issues": len(cases), "graph": not args.no_graph, "runs": args.runs,
                  "load_average": [round(x, 1) for x in os.getloadavg()]}
        for label in trees:
            result[label] = summary(figures[label])
        wall, cpu = in_process(cases)
        result["this"].update(read_and_rank_wall_s=round(wall, 3), read_and_rank_cpu_s=round(cpu, 3))
    if args.against:
        result["baseline"]["rev"] = args.against
        differ = [n for n in commands if n.startswith("replay ") and outputs["this"][n] != outputs["baseline"][n]]
        result["rankings_identical"] = not differ
        if differ:
            result["rankings_differ"] = differ
        this, baseline = result["this"], result["baseline"]
        result["ratio_this_to_baseline"] = {key: round(this[key] / baseline[key], 2)
                                            for key in this if key.endswith("_s") and key in baseline}
    return result


def summary(figures: dict[str, list[tuple[float, float]]]) -> dict:
    replays = [pair for name, pairs in figures.items() if name.startswith("replay ") for pair in pairs]

    def median(pairs: list[tuple[float, float]], k: int) -> float:
        return round(statistics.median(p[k] for p in pairs), 3)

    return {"help_wall_s": median(figures["help"], 0), "help_cpu_s": median(figures["help"], 1),
            "replay_help_wall_s": median(figures["replay_help"], 0),
            "replay_help_cpu_s": median(figures["replay_help"], 1),
            "replay_wall_s": median(replays, 0), "replay_cpu_s": median(replays, 1),
            "replay_wall_max_s": round(max(p[0] for p in replays), 3)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REV", help="also time this git revision, interleaved")
    parser.add_argument("--runs", type=int, default=3, help="runs of every command per tree")
    parser.add_argument("--no-graph", action="store_true", help="replay DIRs without graph.csv")
    print(json.dumps(main(parser.parse_args()), indent=2))
