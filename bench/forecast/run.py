"""Time-to-exhaustion benchmark: our forecaster + notice policy vs the Prometheus ``predict_linear`` rule.

    .venv/bin/python bench/forecast/run.py [--per-scenario 6] [--split dev|holdout|both] [--params JSON]
        [--before GIT_REF]

``--params`` overrides ``ForecastParams`` / ``NoticeParams`` fields (``{"t_min": 5, "confirm": 3}``); choose
them on dev, report holdout. Recorded series (``recorded/``, see record.py) are split by seed: 1 dev, 2 holdout.
``--before`` also replays our forecaster as it was at a commit (a ``git worktree`` of it, its ``models/``
imported in separate worker processes) on the same series in the same run, and prints the premature notices
and the early bound's coverage before and after.
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import fields
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.forecast.evaluate import Outcome, run_ours, run_rule  # noqa: E402
from bench.forecast.scenarios import Series, generate  # noqa: E402
from kubestack.models.forecast import ForecastParams  # noqa: E402
from kubestack.models.notice import NoticeParams  # noqa: E402
from kubestack.models.series import read_series  # noqa: E402

RECORDED = Path(__file__).parent / "recorded"


def recorded(split: str) -> list[Series]:
    meta_path = RECORDED / "meta.json"
    if not meta_path.exists():
        return []
    out = []
    for name, meta in sorted(json.loads(meta_path.read_text()).items()):
        if (meta["seed"] == 1) != (split == "dev") or not (RECORDED / name).exists():
            continue
        points = read_series(RECORDED / name)
        ts = np.array([p.ts for p in points])
        values = np.array([p.value for p in points])
        out.append(Series(name.removesuffix(".csv"), f"rec_{meta['scenario']}", ts, values, meta["capacity"],
                          meta["exhausted_at"]))
    return out


def _split_params(params: dict) -> tuple[ForecastParams, NoticeParams]:
    fnames = {f.name for f in fields(ForecastParams)}
    nnames = {f.name for f in fields(NoticeParams)}
    unknown = set(params) - fnames - nnames
    if unknown:
        raise SystemExit(f"unknown parameters: {', '.join(sorted(unknown))}")
    return (ForecastParams(**{k: v for k, v in params.items() if k in fnames}),
            NoticeParams(**{k: v for k, v in params.items() if k in nnames}))


def _both(job: tuple[Series, dict]) -> tuple[str, Outcome, Outcome]:
    series, params = job
    fparams, nparams = _split_params(params)
    ours = run_ours(series.ts, series.values, series.capacity, series.exhausted_at, fparams, nparams)
    rule = run_rule(series.ts, series.values, series.capacity, series.exhausted_at)
    return series.scenario, ours, rule


def _use_models_from(worktree: str) -> None:
    """Worker initializer: ``kubestack.models`` (and the bench's evaluate, which imports it) from a worktree."""
    import kubestack.models as package

    for name in [n for n in sys.modules if n.startswith("kubestack.models.") or n == "bench.forecast.evaluate"]:
        del sys.modules[name]
    package.__path__[:] = [str(Path(worktree) / "models")]


def _ours_before(job: tuple[Series, dict]) -> Outcome:
    series, params = job
    evaluate = importlib.import_module("bench.forecast.evaluate")
    forecast, notice = importlib.import_module("kubestack.models.forecast"), importlib.import_module(
        "kubestack.models.notice")
    fnames = {f.name for f in fields(forecast.ForecastParams)}
    nnames = {f.name for f in fields(notice.NoticeParams)}
    fparams = forecast.ForecastParams(**{k: v for k, v in params.items() if k in fnames})
    nparams = notice.NoticeParams(**{k: v for k, v in params.items() if k in nnames})
    return evaluate.run_ours(series.ts, series.values, series.capacity, series.exhausted_at, fparams, nparams)


def summary(outcomes: list[Outcome]) -> dict:
    leads = [o.lead_s for o in outcomes if o.lead_s is not None]
    weeks = sum(o.weeks for o in outcomes)
    model_err, naive_err = sum(o.errors[0] for o in outcomes), sum(o.errors[1] for o in outcomes)
    return {"n": len(outcomes), "fills": len(leads),
            "lead_h": statistics.median(leads) / 3600 if leads else None,
            "missed": sum(1 for x in leads if x == 0),
            "false": sum(o.false_notices for o in outcomes),
            "false_per_week": sum(o.false_notices for o in outcomes) / weeks if weeks else 0.0,
            "mase": model_err / naive_err if naive_err else None,
            "premature": sum(o.premature for o in outcomes),
            "coverage": (sum(o.covered[0] for o in outcomes) / sum(o.covered[1] for o in outcomes)
                         if sum(o.covered[1] for o in outcomes) else None)}


def bounds_table(split: str, results: list[tuple[str, Outcome, Outcome]], before: list[Outcome], ref: str) -> str:
    """Premature notices (opened > 36 h before the exhaustion) and the early bound's coverage on the series
    that fill, ours before (at ``ref``) and after, and the rule's premature notices."""
    fills = [(r, b) for r, b in zip(results, before) if r[1].lead_s is not None]
    scenarios = list(dict.fromkeys(r[0] for r, _ in fills))
    lines = [f"### {split}: premature notices and early-bound coverage (before = {ref})", "",
             "| scenario | fills | premature ours before | after | rule | bound coverage before | after |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in [*scenarios, "all"]:
        chosen = [(r, b) for r, b in fills if name in ("all", r[0])]
        after, rule = summary([r[1] for r, _ in chosen]), summary([r[2] for r, _ in chosen])
        old = summary([b for _, b in chosen])
        lines.append(f"| {name} | {after['n']} | {old['premature']} | {after['premature']} | {rule['premature']}"
                     f" | {_cell(old['coverage'], '.1%')} | {_cell(after['coverage'], '.1%')} |")
    return "\n".join(lines)


def worktree(ref: str) -> str:
    root = Path(__file__).resolve().parents[2]
    path = tempfile.mkdtemp(prefix="forecast-before-")
    subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", "-f", path, ref], check=True,
                   capture_output=True)
    return path


def _cell(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def table(split: str, results: list[tuple[str, Outcome, Outcome]]) -> str:
    scenarios = list(dict.fromkeys(s for s, _, _ in results))
    lines = [f"### {split}", "",
             "| scenario | series | fills | lead h ours | lead h rule | missed ours/rule | false ours | false rule "
             "| false/series-week ours | rule | MASE 6h ours | rule |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in [*scenarios, "all"]:
        chosen = [r for r in results if name in ("all", r[0])]
        a, b = summary([r[1] for r in chosen]), summary([r[2] for r in chosen])
        lines.append(f"| {name} | {a['n']} | {a['fills']} | {_cell(a['lead_h'], '.1f')} | {_cell(b['lead_h'], '.1f')}"
                     f" | {a['missed']}/{b['missed']} | {a['false']} | {b['false']} | {a['false_per_week']:.3f}"
                     f" | {b['false_per_week']:.3f} | {_cell(a['mase'], '.2f')} | {_cell(b['mase'], '.2f')} |")
    a, b = summary([r[1] for r in results]), summary([r[2] for r in results])
    if a["lead_h"] and b["lead_h"]:
        lines.append("")
        lines.append(f"median lead ratio ours/rule: {a['lead_h'] / b['lead_h']:.2f}x; false notices "
                     f"{a['false']} vs {b['false']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-scenario", type=int, default=6)
    parser.add_argument("--split", choices=("dev", "holdout", "both"), default="both")
    parser.add_argument("--params", type=json.loads, default={})
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--before", metavar="GIT_REF", help="also replay our forecaster as at this commit")
    args = parser.parse_args()
    _split_params(args.params)
    old = worktree(args.before) if args.before else None
    try:
        for split in ("dev", "holdout") if args.split == "both" else (args.split,):
            series = generate(split, args.per_scenario) + recorded(split)
            jobs = [(s, args.params) for s in series]
            with ProcessPoolExecutor(args.workers) as pool:
                results = list(pool.map(_both, jobs))
            print(table(split, results), flush=True)
            print()
            if old:
                with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("fork"),
                                         initializer=_use_models_from, initargs=(old,)) as pool:
                    before = list(pool.map(_ours_before, jobs))
                print(bounds_table(split, results, before, args.before), flush=True)
                print()
    finally:
        if old:
            subprocess.run(["git", "worktree", "remove", "--force", old], check=False, capture_output=True,
                           cwd=Path(__file__).resolve().parents[2])


if __name__ == "__main__":
    main()
