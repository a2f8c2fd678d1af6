"""What the data-loss and fill tests share: the real worker at a compressed time scale, and a watch on what it
publishes (predictions, incidents, proposals) that notes when each event arrived."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path

from kubestack.bus import client_options, ensure_topics
from kubestack.contract.events import Incident, Prediction, PredictionStatus, RemediationProposal
from kubestack.contract.topics import INCIDENTS, PREDICTIONS, REMEDIATION_PROPOSALS
from kubestack.settings import KafkaSettings, Settings
from tests.cli import Followed, cli_env, follow

TIME_SCALE = 1 / 3600
"""One real second stands for an hour: the 24 h warning horizon is 24 s, the day of history the forecaster needs
before its first forecast 24 s."""
COLLECT_S = 0.5
"""The agents' collection interval: half an hour at scale."""


def at_scale(seconds: float) -> str:
    return f"{seconds / TIME_SCALE / 3600:.1f} h"


def hours(h: float) -> float:
    """Real seconds that stand for ``h`` hours at ``TIME_SCALE``."""
    return h * 3600 * TIME_SCALE


async def until(done, bound_s: float, step_s: float = 0.25) -> bool:
    """Polls ``done()`` until it is true (True) or ``bound_s`` has passed (False)."""
    deadline = time.monotonic() + bound_s
    while not done():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(step_s)
    return True


class Watch:
    """Predictions, incidents and proposals as they arrive (a background consumer), each with its arrival time."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka
        self.started_at = datetime.now(timezone.utc)   # the worker's start
        self.ready_at: datetime | None = None          # ... and when it said it was ready
        self.predictions: list[tuple[datetime, Prediction]] = []
        self.incidents: list[Incident] = []
        self.proposals: list[RemediationProposal] = []

    async def run(self) -> None:
        from aiokafka import AIOKafkaConsumer

        specs = {spec.qualified(self.kafka.topic_prefix): spec for spec in (PREDICTIONS, INCIDENTS,
                                                                               REMEDIATION_PROPOSALS)}
        consumer = AIOKafkaConsumer(*specs, **client_options(self.kafka), auto_offset_reset="earliest",
                                    group_id=f"dataloss-watch-{secrets.token_hex(4)}")
        await consumer.start()
        try:
            async for record in consumer:
                event = specs[record.topic].decode(record.value)
                if isinstance(event, Prediction):
                    self.predictions.append((datetime.now(timezone.utc), event))
                elif isinstance(event, Incident):
                    self.incidents.append(event)
                else:
                    self.proposals.append(event)
        finally:
            await consumer.stop()

    def notices(self, fragment: str) -> list[tuple[datetime, Prediction]]:
        return [(at, p) for at, p in self.predictions
                if fragment in p.signal and p.status != PredictionStatus.WITHDRAWN]

    def told(self, summary: str, action: str) -> bool:
        """An incident whose summary has ``summary`` and a proposal of ``action`` have arrived."""
        return any(summary in i.summary for i in self.incidents) and any(p.action == action for p in self.proposals)

    def timeline(self, **moments: datetime | None) -> str:
        """'worker ready +8.1 s, notice +30.2 s, lost +52.0 s' (after the worker's start)."""
        return ", ".join(f"{name} +{(at - self.started_at).total_seconds():.1f} s" if at else f"{name} never"
                         for name, at in {"worker ready": self.ready_at, **moments}.items())

    def said(self) -> str:
        return "\n".join(f"{at:%H:%M:%S} {p.status.value} {p.signal} {p.outcome!r} at {p.exhaustion_at}"
                         for at, p in self.predictions)


@contextlib.asynccontextmanager
async def worker_and_watch(kafka: KafkaSettings, home: Path):
    """The real worker (forecasts at ``TIME_SCALE``, metric anomalies off) on its own topics, and a watch on them.
    Both start at once and the test's agent need not wait for the worker to be ready: the worker reads its topics
    from the start, and the forecaster's clock is the samples' time, so the history it needs accrues while it
    starts. The fault itself waits for the worker (``calm_before_the_fault``), so that a slow start never eats the
    warning's lead."""
    unique = secrets.token_hex(5)
    settings = Settings(home=home / "home", kafka=kafka.model_copy(update={"topic_prefix": f"loss.{unique}."}))
    await ensure_topics(settings.kafka)
    env = cli_env(KUBESTACK_KAFKA__BOOTSTRAP=kafka.bootstrap, KUBESTACK_KAFKA__TOPIC_PREFIX=settings.kafka.topic_prefix,
                  KUBESTACK_WORKER__APP_ID=f"loss-worker-{unique}", KUBESTACK_HOME=str(home / "worker"),
                  KUBESTACK_WORKER__FORECAST_TIME_SCALE=repr(TIME_SCALE),
                  KUBESTACK_WORKER__ANOMALY_THRESHOLD="1", KUBESTACK_WORKER__METRIC_ALONE_SCORE="1",
                  KUBESTACK_WORKER__CORRELATION_WINDOW_S="30")
    watch = Watch(settings.kafka)
    worker: Followed = follow("worker", env=env)
    try:
        tasks = [asyncio.create_task(watch.run()), asyncio.create_task(_note_ready(worker, watch))]
        try:
            yield settings, watch, worker
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks)
    finally:
        worker.stop()


async def calm_before_the_fault(watch: Watch, worker: Followed, calm_s: float, since: datetime | None = None) -> None:
    """Returns once the worker is ready and at least ``calm_s`` has passed ``since`` (default: the worker's start):
    the agent collects the calm series meanwhile, and the fault starts then."""
    started = await until(lambda: watch.ready_at is not None or worker.proc.poll() is not None, 180)
    assert started and watch.ready_at is not None, f"the worker did not start\n{worker.output[-3000:]}"
    calm = (datetime.now(timezone.utc) - (since or watch.started_at)).total_seconds()
    await asyncio.sleep(max(0.0, calm_s - calm))


async def _note_ready(worker: Followed, watch: Watch) -> None:
    if await asyncio.to_thread(worker.wait_for, "Worker ready", 300):
        watch.ready_at = datetime.now(timezone.utc)
