"""Cascading faults on real servers: the demo shop (``kubestack.demo``) under steady load on its own Redis,
PostgreSQL, MariaDB and Kafka broker, watched by one in-process agent (both parts through the ``http`` plugin, every
server through its own plugin, and the host) feeding the session's real worker. A clean run opens no incident, and
the ``kubestack demo`` commands inject and undo a fault.

Each fault of ``CI_FAULTS``, injected once into a dependency (one demo stack and one worker for all of them), is felt
by the shop or its order-writer and must become ONE incident holding the symptom and the cause, the injected
component among the first three causes. Top-1 and the resources and signals of each incident are printed at the end
of the module (``-s``) and written with the incidents and reports to ``cascade.json`` in the pipeline's temp dir;
repeated runs of every fault are scored by ``bench/rca/cascade.py``. Top-3, not top-1, is asserted: where the shop
holds a transaction open in one database while it waits on the other (mariadb-flood here, pg-row-lock in the bench),
both show lock waits within a second or two and the call graph links both only through the shop, so either may come
first."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import pytest
import redis

from kubestack.contract.base import ResourceRef
from kubestack.demo.config import DemoConfig
from kubestack.demo.faults import FAULTS
from tests.cli import cli_env, run
from tests.services.demo_app import HOST_TARGET, CascadeOutcome, DemoStack, cascade_cycle, wait_serving
from tests.services.pipeline import Pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]  # the demo and its agent take minutes to warm

OUTCOMES: list[CascadeOutcome] = []
CI_FAULTS = ["mariadb-lock", "pg-connections", "redis-stall", "mariadb-flood", "volume-full"]
"""Five of the nine, ordered so that each one's cause differs from the last one's (2 min of calls together on a
2-core machine at load 11-14). Each was one incident with its cause first in all four runs made. Scored by
``bench/rca/cascade.py`` only, until they hold on a loaded machine: cpu-hog (the host's load is already far above
any threshold a test could hold there, and busy processes more did not stand out within 45 s), redis-maxmemory (the
shop's p95 did not always cross its threshold: the cache's own incident opened alone), kafka-pause and pg-row-lock
(ranked first in 3 of 3 and 3 of 4 runs, but each once with a second incident opened on the cause or a symptom)."""
TOP = 3
WAITS = {"detect_s": 45.0, "rank_s": 20.0, "grow_s": 10.0, "settle_s": 120.0}
"""Only as long as detection needs (detected in 4-11 s, cpu-hog up to 40 s, in the bench)."""
CLEAN_S = WAITS["detect_s"]
"""The clean run stays quiet under the same load for as long as a fault is given to show itself; the 10-minute
clean run is ``bench/rca/cascade.py``'s."""


@pytest.fixture(scope="module")
async def watched(pipeline: Pipeline, demo_stack: DemoStack) -> AsyncIterator[dict[str, ResourceRef]]:
    """The demo under load, watched by one agent for the whole module; the fault figures printed at the end."""
    await asyncio.to_thread(wait_serving, demo_stack)
    async with pipeline.agent([*demo_stack.targets(), HOST_TARGET], warm_s=90) as resources:
        yield resources
    print("\ncascade faults: fault, true cause, its rank, detection, incident")
    for outcome in OUTCOMES:
        print(outcome.row())
    (pipeline.settings.home.parent / "cascade.json").write_text(json.dumps([asdict(o) for o in OUTCOMES], indent=2))


async def test_a_clean_run_under_load_opens_no_incident(pipeline: Pipeline, watched: dict[str, ResourceRef],
                                                        demo_stack: DemoStack) -> None:
    keys = {r.key for r in watched.values()}
    assert await pipeline.settle(list(watched.values()), timeout_s=150), pipeline.diagnosis()
    started = datetime.now(timezone.utc)
    before = demo_stack.answered()
    await asyncio.sleep(CLEAN_S)
    opened = [i for i in pipeline.watch.seen.incidents_since(started) if {r.key for r in i.resources} & keys]
    after = demo_stack.answered()
    served = sum(after.get(k, 0) - before.get(k, 0) for k in after if k.startswith("2"))
    assert served >= CLEAN_S * demo_stack.config.rate * 0.8, (before, after)
    assert not opened, [(i.title, [f"{s.resource}:{s.name}" for s in i.signals][:10]) for i in opened]


@pytest.mark.parametrize("name", CI_FAULTS)
async def test_a_fault_in_a_dependency_is_one_incident_with_its_cause_ranked(
        name: str, pipeline: Pipeline, watched: dict[str, ResourceRef], demo_stack: DemoStack) -> None:
    outcome = await cascade_cycle(pipeline, watched, demo_stack, name, **WAITS)
    OUTCOMES.append(outcome)
    assert outcome.incident, f"no incident holds {outcome.cause} and a symptom" + pipeline.diagnosis()
    assert not outcome.split_into, f"the fault split into several incidents: {outcome.split_into}"
    assert len(outcome.resources) >= 2, outcome.row()  # the cause and the symptom; a third, when reached, printed
    assert outcome.rank is not None and outcome.rank <= TOP, outcome.row() + pipeline.diagnosis()


def test_demo_list_names_every_fault_and_its_cause() -> None:
    result = run("demo", "list")
    assert result.returncode == 0, result.stderr
    for name, cls in FAULTS.items():
        assert name in result.stdout and cls(DemoConfig.model_construct()).cause in result.stdout


def test_demo_fault_refuses_an_unknown_fault_and_a_missing_demo(tmp_path: Path) -> None:
    env = cli_env(KUBESTACK_HOME=str(tmp_path))
    unknown = run("demo", "fault", "disk-melt", env=env)
    assert unknown.returncode == 1 and "no fault 'disk-melt'; known: pg-row-lock" in unknown.stderr
    missing = run("demo", "fault", "redis-stall", env=env)
    assert missing.returncode == 1 and "no demo is running" in missing.stderr and "kubestack demo up" in missing.stderr


def test_demo_fault_injects_holds_and_undoes(tmp_path: Path, demo_stack: DemoStack) -> None:
    """The CLI on the running demo: Redis stopped for the fault's time (the shop's cache lookups fail), then back."""
    home = tmp_path / "home"
    demo_stack.config.save(home / "demo" / "demo.json")
    (home / "demo" / "state.json").write_text(json.dumps({"broker_pid": demo_stack.broker.pid()}))
    before = _cache_errors(demo_stack)
    result = run("demo", "fault", "redis-stall", "--for", "6", env=cli_env(KUBESTACK_HOME=str(home)), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "redis-stall undone" in result.stderr
    assert _cache_errors(demo_stack) > before
    with redis.Redis(host=demo_stack.redis.host, port=demo_stack.redis.port, password=demo_stack.redis.password,
                     socket_timeout=5) as client:
        assert client.ping()


def _cache_errors(stack: DemoStack) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in stack.metrics().splitlines()
               if line.startswith('demo_cache_requests_total{result="error"}'))
