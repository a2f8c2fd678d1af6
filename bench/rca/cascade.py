"""Cascading faults, scored: each demo fault (``kubestack.demo.faults``) injected ``--runs`` times into the demo shop
under steady load on real servers, watched by a real agent and worker (the same cycle as ``tests/test_cascade.py``);
reports per fault the rank of the true cause in the incident holding it and a symptom, top-1 and top-3, whether the
fault split into several incidents, and the signals per incident.

    python -m bench.rca.cascade [--runs 3] [--faults pg-row-lock,redis-stall] [--clean-s 600] [--out cascade.json]

Targets (issue 14): top-1 >= 0.9 and top-3 = 1.0 over three runs of each fault, and no incident in a 10-minute
clean run under the same load first. It starts its own broker for the
pipeline, the worker and the demo's servers (a few minutes before the first fault), and stops them all at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import tempfile
from dataclasses import asdict
from pathlib import Path

from kubestack.bus import ensure_topics
from kubestack.demo.faults import FAULTS
from kubestack.deploy.kafka.launcher import LocalKafka
from kubestack.settings import KafkaSettings, LocalKafkaSettings, Settings
from tests.fault_watch import TopicWatch
from tests.services.demo_app import (
    HOST_TARGET,
    CascadeOutcome,
    DemoStack,
    cascade_cycle,
    running_demo,
    wait_serving,
)
from tests.services.pipeline import Pipeline, running_worker
from tests.services.process import free_port


def summary(outcomes: list[CascadeOutcome]) -> dict:
    ranked = [o.rank for o in outcomes]
    n = len(outcomes) or 1
    per_fault: dict[str, dict] = {}
    for o in outcomes:
        row = per_fault.setdefault(o.fault, {"runs": 0, "top1": 0, "top3": 0, "split": 0, "signals": []})
        row["runs"] += 1
        row["top1"] += o.rank == 1
        row["top3"] += o.rank is not None and o.rank <= 3
        row["split"] += bool(o.split_into)
        row["signals"].append(len(o.signals))
    return {"top1": sum(r == 1 for r in ranked) / n, "top3": sum(r is not None and r <= 3 for r in ranked) / n,
            "faults": per_fault}


async def clean_run(pipeline: Pipeline, watched: dict, seconds: float) -> list[str]:
    """The incidents opened on the demo's resources during ``seconds`` of steady load and no fault."""
    from datetime import datetime, timezone

    keys = {r.key for r in watched.values()}
    if not await pipeline.settle(list(watched.values()), timeout_s=300):
        raise AssertionError("not quiet before the clean run" + pipeline.diagnosis())
    started = datetime.now(timezone.utc)
    await asyncio.sleep(seconds)
    return sorted({f"{i.incident_id} {i.title}" for i in pipeline.watch.seen.incidents_since(started)
                   if {r.key for r in i.resources} & keys})


async def bench(base: Path, stack: DemoStack, faults: list[str], runs: int,
                clean_s: float = 0.0) -> tuple[list[CascadeOutcome], list[str]]:
    local = LocalKafkaSettings(port=free_port(), controller_port=free_port())
    broker = LocalKafka(local, base / "pipeline-kafka")
    await asyncio.to_thread(broker.up)
    outcomes: list[CascadeOutcome] = []
    opened: list[str] = []
    try:
        kafka = KafkaSettings(bootstrap=local.bootstrap, request_timeout_s=15,
                              topic_prefix=f"cascade.{secrets.token_hex(4)}.")
        settings = Settings(home=base / "home", kafka=kafka)
        await ensure_topics(kafka)
        watch = TopicWatch(kafka)
        await watch.start()
        try:
            with running_worker(kafka, f"cascade-{secrets.token_hex(4)}", base / "worker") as (worker, output):
                pipeline = Pipeline(settings, watch, worker, output)
                await asyncio.to_thread(wait_serving, stack)
                async with pipeline.agent([*stack.targets(), HOST_TARGET], warm_s=120) as watched:
                    if clean_s > 0:
                        opened = await clean_run(pipeline, watched, clean_s)
                        print(f"clean run of {clean_s:.0f}s: {len(opened)} incident(s) {opened}", flush=True)
                    for run in range(runs):
                        for name in faults:
                            outcome = await cascade_cycle(pipeline, watched, stack, name)
                            outcomes.append(outcome)
                            print(f"run {run + 1} {outcome.row()}", flush=True)
        finally:
            await watch.stop()
    finally:
        await asyncio.to_thread(broker.stop)
    return outcomes, opened


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated; default: all")
    parser.add_argument("--clean-s", type=float, default=600.0,
                        help="seconds of load without a fault first, which must open no incident (0: none)")
    parser.add_argument("--out", type=Path, help="write the outcomes (with incidents and reports) as JSON")
    args = parser.parse_args()
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        parser.error(f"unknown faults {unknown}; known: {', '.join(FAULTS)}")
    base = Path(tempfile.mkdtemp(prefix="kubestack-cascade-"))
    with running_demo(base / "demo") as stack:  # outside the loop: its broker's launcher runs one of its own
        outcomes, opened = asyncio.run(bench(base, stack, faults, args.runs, args.clean_s))
    result = summary(outcomes) | {"clean_s": args.clean_s, "clean_incidents": opened}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps({"summary": result, "outcomes": [asdict(o) for o in outcomes]}, indent=2))


if __name__ == "__main__":
    main()
