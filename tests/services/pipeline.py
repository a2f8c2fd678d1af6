"""The whole pipeline for one plugin's fault test: a real worker on its own topics (one per session, shared by every
test module that asks for ``pipeline``), a ``TopicWatch`` on its output, and an in-process agent per module on that
module's own targets. A fault cycle injects, waits for an incident naming the resource, for a root-cause report
ranking it first with the expected cause and for a proposal, then restores::

    async with pipeline.agent([{"type": "memcached", "name": "sessions", **RHYTHM, "config": {...}}]) as resources:
        run = await pipeline.fault(resources["sessions"], inject, restore, causes=("memcached.evictions",),
                                   action="memcached.raise_memory_limit")
        assert run.incident and run.ranked_first and run.proposals, pipeline.diagnosis()

Modules run one after another, so the incidents of one module's fault never absorb another's: each cycle starts
by waiting until the worker has no open incident that could take its signals (``settle``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import secrets
import signal
import subprocess
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kubestack.agents.config import AgentConfig
from kubestack.agents.runtime import Agent
from kubestack.bus import ensure_topics
from kubestack.contract.base import ResourceRef
from kubestack.contract.events import Incident, IncidentStatus, RcaReport, RemediationProposal
from kubestack.settings import KafkaSettings, Settings
from tests.cli import cli_env, start, wait_for_line
from tests.fault_watch import Seen, TopicWatch

WINDOW_S = 20.0
"""The correlation window of the test worker."""
LOG_WINDOW_S, WARMUP_WINDOWS = 20.0, 5
"""The log stage's rate windows, shorter than the default minute: warm after 100 s instead of 5 min."""
REOPEN_S = 3.0
WORKER_ENV = {"KUBESTACK_WORKER__CORRELATION_WINDOW_S": f"{WINDOW_S:g}", "KUBESTACK_WORKER__INCIDENT_QUIET_S": "15",
              "KUBESTACK_WORKER__INCIDENT_REOPEN_S": f"{REOPEN_S:g}",
              "KUBESTACK_WORKER__LOG_WINDOW_S": f"{LOG_WINDOW_S:g}",
              "KUBESTACK_WORKER__LOG_WARMUP_WINDOWS": str(WARMUP_WINDOWS)}
"""Metric detection runs at the stream's defaults: the clean runs must stay quiet with it on."""
RHYTHM = {"interval": 1, "health_interval": 1, "config_interval": 2}
"""Collection rounds of the fault tests' targets (seconds)."""


def since(moment: datetime) -> float:
    return (datetime.now(timezone.utc) - moment).total_seconds()


def naming(seen: Seen, key: str, since_ts: datetime) -> Incident | None:
    """The first open or updated incident since ``since_ts`` with ``key`` among its resources."""
    return next((i for i in seen.incidents_since(since_ts)
                 if i.status != IncidentStatus.RESOLVED and key in {r.key for r in i.resources}), None)


@contextlib.contextmanager
def running_worker(kafka: KafkaSettings, app_id: str, home: Path,
                   env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen, deque]]:
    """``kubestack worker`` on ``kafka``'s topics until the block ends (SIGINT, then SIGKILL after a minute); its
    output is kept (the last 400 lines) and written to ``home/worker.log``."""
    env = cli_env(KUBESTACK_KAFKA__BOOTSTRAP=kafka.bootstrap, KUBESTACK_KAFKA__TOPIC_PREFIX=kafka.topic_prefix,
                  KUBESTACK_WORKER__APP_ID=app_id, KUBESTACK_HOME=str(home), **(WORKER_ENV if env is None else env))
    home.mkdir(parents=True, exist_ok=True)
    proc = start("worker", env=env)
    lines: list[str] = []
    output: deque = deque(maxlen=400)
    try:
        assert wait_for_line(proc, "Worker ready", lines), "".join(lines)
        output.extend(lines)

        def drain() -> None:  # a full pipe would stall the worker
            with (home / "worker.log").open("a") as log:
                log.writelines(lines)
                for line in proc.stdout:
                    output.append(line)
                    log.write(line)

        threading.Thread(target=drain, name="worker-output", daemon=True).start()
        yield proc, output
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class FaultRun:
    """What one fault cycle produced."""

    incident: Incident | None = None
    """The first incident naming the resource after the injection."""
    report: RcaReport | None = None
    """The report ranking the resource first with an expected cause, else the incident's last report."""
    ranked_first: bool = False
    proposals: list[RemediationProposal] = field(default_factory=list)
    """Proposals for the incident (of ``action`` when one was asked for)."""
    detect_s: float | None = None
    """From the injection to the incident."""

    @property
    def first_cause(self) -> str:
        return self.report.hypotheses[0].cause if self.report and self.report.hypotheses else ""


async def _call(step: Callable[[], object]) -> None:
    result = step()
    if inspect.isawaitable(result):
        await result


@dataclass
class Pipeline:
    settings: Settings
    watch: TopicWatch
    worker: subprocess.Popen
    worker_output: deque

    @contextlib.asynccontextmanager
    async def agent(self, targets: list[dict], *, warm_s: float = 60.0) -> AsyncIterator[dict[str, ResourceRef]]:
        """An in-process agent on ``targets`` (``TargetConfig``-shaped dicts) until the block ends; yields each
        target's resource by target name, once every target has reported a reachable health round."""
        name = f"agent-{secrets.token_hex(4)}"
        agent = Agent(AgentConfig.model_validate({"agent": {"name": name, "metrics_listen": None},
                                                  "targets": targets}), self.settings)
        resources = {c.resource.name: c.resource for c in agent.collectors}
        stop = asyncio.Event()
        running = asyncio.create_task(agent.run(stop), name=name)
        try:
            keys = {r.key for r in resources.values()}
            reported = await self.watch.wait_for(
                lambda s: keys <= {h.resource.key for h in s.health if h.reachable}, warm_s)
            assert reported, f"not every target reported a reachable health round: {self.diagnosis()}"
            yield resources
        finally:
            stop.set()
            await running

    async def settle(self, resources: list[ResourceRef] = (), timeout_s: float = 90.0, calm_s: float = 4.0) -> bool:
        """Wait until ``resources`` are healthy and no open incident can absorb the next fault's signals (none is
        open, or no signal came for a correlation window), held for ``calm_s``."""
        loop = asyncio.get_running_loop()
        deadline, calm_since = loop.time() + timeout_s, None
        while loop.time() < deadline:
            seen = self.watch.seen
            absorbing = seen.open_incidents() and seen.last_signal_age() <= WINDOW_S + 2
            if absorbing or seen.unhealthy(resources):
                calm_since = None
            elif calm_since is None:
                calm_since = loop.time()
            elif loop.time() - calm_since >= calm_s:
                return True
            await asyncio.sleep(0.25)
        return False

    async def fault(self, resource: ResourceRef, inject: Callable[[], object], restore: Callable[[], object], *,
                    causes: tuple[str, ...] | str, action: str | None = None, detect_s: float = 45.0,
                    report_s: float = 30.0, proposal_s: float = 30.0) -> FaultRun:
        """One cycle: settle, ``inject()`` (sync or async), wait for the incident, the report ranking ``resource``
        first with a cause starting with one of ``causes`` and a proposal (of ``action``), then ``restore()``
        (always). The caller asserts on the returned ``FaultRun``."""
        assert await self.settle([resource]), f"not healthy and quiet before the fault: {self.diagnosis()}"
        causes = (causes,) if isinstance(causes, str) else tuple(causes)
        run = FaultRun()
        started = datetime.now(timezone.utc)
        try:
            await _call(inject)
            run.incident = await self.watch.wait_for(lambda s: naming(s, resource.key, started), detect_s)
            if run.incident is None:
                return run
            run.detect_s = (run.incident.ts - started).total_seconds()
            incident_id = run.incident.incident_id

            def right(seen: Seen) -> RcaReport | None:
                return next((r for r in seen.reports if r.incident_id == incident_id and r.hypotheses
                             and r.hypotheses[0].component == resource.key
                             and r.hypotheses[0].cause.startswith(causes)), None)

            report = await self.watch.wait_for(right, report_s)
            run.ranked_first = report is not None
            reports = [r for r in self.watch.seen.reports if r.incident_id == incident_id]
            run.report = report or (reports[-1] if reports else None)

            def proposed(seen: Seen) -> list[RemediationProposal] | None:
                return [p for p in seen.proposals if p.incident_id == incident_id
                        and (action is None or p.action == action)] or None

            run.proposals = await self.watch.wait_for(proposed, proposal_s) or []
            return run
        finally:
            await _call(restore)

    def diagnosis(self) -> str:
        """What the worker saw lately, for assertion messages."""
        seen = self.watch.seen
        latest = {}
        for report in seen.health:
            latest[report.resource.key] = [f.rule_id for f in report.findings]
        incidents = [f"{i.ts:%H:%M:%S} {i.status.value} {i.incident_id} {i.title} [{i.summary[:300]}]"
                     for i in seen.incidents[-15:]]
        reports = [(r.incident_id, [(h.component, h.cause) for h in r.hypotheses[:3]]) for r in seen.reports[-5:]]
        return (f"\nlatest findings: {latest}\nincidents: {incidents}\nreports: {reports}"
                f"\nproposals: {[(p.incident_id, p.action) for p in seen.proposals[-10:]]}"
                f"\nworker: {''.join(self.worker_output)[-3000:]}")


@pytest.fixture(scope="session")
async def pipeline(kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pipeline]:
    """One real worker on its own topics for the whole session (see the module's docstring)."""
    base = tmp_path_factory.mktemp("pipeline")
    unique = secrets.token_hex(5)
    settings = Settings(home=base / "home", kafka=kafka.model_copy(update={"topic_prefix": f"pipeline.{unique}."}))
    await ensure_topics(settings.kafka)
    watch = TopicWatch(settings.kafka)
    await watch.start()
    try:
        with running_worker(settings.kafka, f"pipeline-worker-{unique}", base / "worker") as (worker, output):
            yield Pipeline(settings, watch, worker, output)
    finally:
        await watch.stop()
