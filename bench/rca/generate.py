"""Synthetic root-cause cases: a random call graph of services, each with latency, error rate, CPU, memory and
request rate; one fault injected at one service and propagated up the call chain with delays and damping, as
latency and errors travel from callee to caller. Deterministic per seed. Dev and holdout splits by seed.

Fault kinds: cpu (CPU up, latency up), memory (memory climbs, latency later), latency (latency only),
errors (error rate up), traffic_drop (requests down; callers see errors), disk (a DB-like service's latency
and CPU iowait-like rise). The incident names its symptom as an alert would: the front end (svc0, which reaches
every service) and its latency or its error rate.

    python -m bench.rca.generate OUT_DIR [--count 60] [--split dev|holdout]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

import numpy as np

KINDS = ("cpu", "memory", "latency", "errors", "traffic_drop", "disk")
METRICS = ("latency", "error_rate", "cpu", "memory", "requests")
ROWS = 240          # one row per 15 s: an hour
SYMPTOM = {"cpu": "latency", "memory": "latency", "latency": "latency", "errors": "error_rate",
           "traffic_drop": "error_rate", "disk": "latency"}   # the front end's alert each fault raises
FAULT_AT = (120, 180)


def call_graph(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """A layered DAG: a front end calls services that call stores."""
    names = [f"svc{i}" for i in range(n)]
    edges = []
    for i in range(1, n):
        for parent in rng.sample(range(i), k=min(i, rng.choice((1, 1, 2)))):
            edges.append((names[parent], names[i]))
    return edges


def simulate(seed: int) -> tuple[dict, list[tuple[str, str]], str, str, int]:
    rng = random.Random(seed)
    gen = np.random.default_rng(seed)
    n = rng.randint(5, 12)
    edges = call_graph(rng, n)
    names = [f"svc{i}" for i in range(n)]
    root = rng.choice(names[1:])
    kind = rng.choice(KINDS)
    start = rng.randint(*FAULT_AT)
    t = np.arange(ROWS)
    base = {name: {"latency": rng.uniform(5, 50), "error_rate": rng.uniform(0.0, 0.01), "cpu": rng.uniform(0.1, 0.5),
                   "memory": rng.uniform(0.2, 0.6), "requests": rng.uniform(50, 500)} for name in names}
    effect = {name: {m: np.zeros(ROWS) for m in METRICS} for name in names}
    ramp = np.clip((t - start) / rng.uniform(1, 8), 0, 1)
    size = rng.uniform(2.0, 6.0)
    own = effect[root]
    if kind == "cpu":
        own["cpu"] += 0.4 * ramp
        own["latency"] += size * ramp
    elif kind == "memory":
        own["memory"] += 0.3 * np.clip((t - start) / 40, 0, 1)
        own["latency"] += size * np.clip((t - start - 20) / 10, 0, 1)
    elif kind == "latency":
        own["latency"] += size * ramp
    elif kind == "errors":
        own["error_rate"] += rng.uniform(0.05, 0.3) * ramp
    elif kind == "traffic_drop":
        own["requests"] -= 0.7 * ramp
        own["error_rate"] += 0.05 * ramp
    elif kind == "disk":
        own["latency"] += size * 1.5 * ramp
        own["cpu"] += 0.15 * ramp
    callers: dict[str, list[str]] = {}
    for source, target in edges:
        callers.setdefault(target, []).append(source)
    frontier, seen = [(root, 0)], {root}
    while frontier:  # latency and errors travel up the call chain, a little later and damped
        node, depth = frontier.pop(0)
        for parent in callers.get(node, ()):
            if parent in seen:
                continue
            seen.add(parent)
            lag = rng.randint(1, 3) * (depth + 1)
            damp = rng.uniform(0.5, 0.9)
            shifted = lambda a: np.concatenate([np.zeros(lag), a[:-lag]])  # noqa: E731
            effect[parent]["latency"] += damp * shifted(effect[node]["latency"]) * base[node]["latency"] / \
                base[parent]["latency"]
            effect[parent]["error_rate"] += damp * shifted(effect[node]["error_rate"])
            if kind in ("cpu", "disk", "latency", "memory"):
                effect[parent]["requests"] -= 0.1 * damp * shifted(ramp)
            frontier.append((parent, depth + 1))
    data = {}
    for name in names:
        b = base[name]
        data[(name, "latency")] = b["latency"] * (1 + effect[name]["latency"]) * gen.lognormal(0, 0.08, ROWS)
        data[(name, "error_rate")] = np.clip(b["error_rate"] + effect[name]["error_rate"]
                                             + gen.normal(0, 0.003, ROWS), 0, 1)
        data[(name, "cpu")] = np.clip(b["cpu"] + effect[name]["cpu"] + gen.normal(0, 0.03, ROWS), 0, 1)
        data[(name, "memory")] = np.clip(b["memory"] + effect[name]["memory"] + gen.normal(0, 0.01, ROWS), 0, 1)
        daily = 1 + 0.1 * np.sin(2 * np.pi * t / ROWS)
        data[(name, "requests")] = b["requests"] * daily * (1 + effect[name]["requests"]) * gen.normal(1, 0.05, ROWS)
    return data, edges, root, kind, start


def write_case(folder: Path, seed: int, with_start: bool) -> dict:
    data, edges, root, kind, start = simulate(seed)
    folder.mkdir(parents=True, exist_ok=True)
    t0 = 1_700_000_000 + seed * 10_000
    columns = sorted(data)
    with (folder / "metrics.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["timestamp"] + [f"{c}|{m}" for c, m in columns])
        for i in range(ROWS):
            out.writerow([t0 + 15 * i] + [f"{data[c][i]:.6g}" for c in columns])
    with (folder / "graph.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["source", "target"])
        out.writerows(edges)
    symptom = {"component": "svc0", "metric": SYMPTOM[kind]}
    if with_start:
        (folder / "incident.json").write_text(json.dumps({"start": t0 + 15 * start, "symptom": symptom}))
    label = {"root": root, "kind": kind, "start": t0 + 15 * start, "symptom": symptom}
    (folder / "label.json").write_text(json.dumps(label))
    return label


def seeds(split: str, count: int) -> range:
    return range(0, count) if split == "dev" else range(100_000, 100_000 + count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--split", choices=("dev", "holdout"), default="dev")
    args = parser.parse_args()
    for seed in seeds(args.split, args.count):
        write_case(args.out / f"case-{seed:06d}", seed, with_start=seed % 2 == 0)


if __name__ == "__main__":
    main()
