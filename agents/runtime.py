"""The agent process: builds a collector per target, runs them concurrently, publishes through the spooling
Kafka publisher, serves its own metrics, and stops cleanly (flushing what it can, spooling the rest)."""

from __future__ import annotations

import asyncio
import logging
import socket
from functools import partial
from typing import TYPE_CHECKING

from kubestack.agents.collector import TargetCollector
from kubestack.agents.config import AgentConfig, TargetConfig
from kubestack.agents.metrics import AgentMetrics
from kubestack.agents.publisher import Publisher
from kubestack.agents.schedule import every
from kubestack.agents.sender import SpoolingPublisher
from kubestack.agents.spool import Spool
from kubestack.agents.state import StateStore
from kubestack.agents.targets import open_target, resource_of
from kubestack.contract.base import Source
from kubestack.contract.topics import METRICS
from kubestack.errors import KubestackError

if TYPE_CHECKING:  # the agent process reads the lean AgentSettings; a test or the CLI may pass the full Settings
    from kubestack.agents.settings import AgentSettings
    from kubestack.settings import Settings

log = logging.getLogger(__name__)


def build_collector(target: TargetConfig, config: AgentConfig, publisher: Publisher, state: StateStore,
                    metrics: AgentMetrics) -> TargetCollector:
    """Validate a target against its plugin's config model and build its collector (``ConfigError`` if wrong)."""
    opened = open_target(target)
    identity = config.agent
    return TargetCollector(
        name=target.name,
        plugin=opened.plugin,
        runner=opened.runner,
        resource=resource_of(target, identity, opened.config),
        source=Source(agent=f"agent/{identity.name}", host=socket.gethostname(), cluster=identity.cluster),
        tenant=identity.tenant,
        publisher=publisher,
        state=state,
        metrics=metrics,
        interval=target.interval,
        health_interval=target.health_interval,
        config_interval=target.config_interval,
        extra_logs=target.logs,
    )


async def poll_prometheus(source, publisher: Publisher, metrics: AgentMetrics) -> None:
    """One poll: every batch to the metrics topic; an unreachable Prometheus is logged and counted, the next
    poll is the retry."""
    name = source.config.url
    try:
        batches = await source.poll()
    except KubestackError as exc:
        metrics.collect_errors.labels(name, type(exc).__name__).inc()
        log.warning("Prometheus %s: %s", name, exc)
        return
    metrics.samples.labels(name).inc(sum(len(b.samples) for b in batches))
    if batches:
        await publisher.publish_many([(METRICS, batch) for batch in batches])


class Agent:
    def __init__(self, config: AgentConfig, settings: AgentSettings | Settings,
                 metrics: AgentMetrics | None = None) -> None:
        self.config = config
        self.settings = settings
        self.metrics = metrics or AgentMetrics()
        base = settings.home / "agent" / config.agent.name
        self.spool_dir = config.agent.spool_dir or base / "spool"
        self.state = StateStore(config.agent.state_dir or base / "state")
        self.publisher = SpoolingPublisher(settings.kafka, Spool(self.spool_dir, config.agent.spool_max_bytes),
                                           self.metrics)
        self.collectors = [build_collector(t, config, self.publisher, self.state, self.metrics)
                           for t in config.targets]
        source = Source(agent=f"agent/{config.agent.name}", host=socket.gethostname(), cluster=config.agent.cluster)
        self.prometheus = []
        if config.prometheus:  # requests and its friends cost memory: only when asked for
            from kubestack.agents.prometheus_source import PrometheusSource

            self.prometheus = [PrometheusSource(p, source=source, tenant=config.agent.tenant)
                               for p in config.prometheus]
        self._source = source
        self._running: dict[str, asyncio.Task] = {}

    def _start(self, collector: TargetCollector) -> None:
        self._running[collector.name] = asyncio.create_task(collector.run(self.config.agent.log_poll_interval),
                                                            name=f"target-{collector.name}")

    def add_target(self, target: TargetConfig) -> None:
        """Watch one more target from now on (``ConfigError`` if it does not fit its plugin)."""
        collector = build_collector(target, self.config, self.publisher, self.state, self.metrics)
        self.config.targets.append(target)
        self.collectors.append(collector)
        self._start(collector)

    async def drop_target(self, target: TargetConfig) -> None:
        """Stop watching ``target``: its collector ends and its plugin closes."""
        self.config.targets = [t for t in self.config.targets if (t.type, t.name) != (target.type, target.name)]
        gone = [c for c in self.collectors if (c.resource.kind, c.name) == (target.type, target.name)]
        self.collectors = [c for c in self.collectors if c not in gone]
        for collector in gone:
            task = self._running.pop(collector.name, None)
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await _close(collector)

    def _background(self) -> list[asyncio.Task]:
        for collector in self.collectors:
            self._start(collector)
        tasks = []
        if self.config.agent.rediscover_interval:
            from kubestack.agents.discovery import finds_targets

            if finds_targets(self.config.targets):
                tasks.append(asyncio.create_task(_rediscover(self, self.config.agent.rediscover_interval),
                                                 name="rediscover"))
        tasks += [asyncio.create_task(every(p.config.interval, partial(poll_prometheus, p, self.publisher,
                                                                        self.metrics)), name=f"prometheus-{i}")
                  for i, p in enumerate(self.prometheus)]
        receiver = self.config.alertmanager
        if receiver is not None:
            from kubestack.agents.alertmanager import run_receiver

            host, _, port = receiver.listen.rpartition(":")
            token = receiver.token.resolve() if receiver.token else None
            tasks.append(asyncio.create_task(run_receiver(host, int(port), self.publisher, token=token,
                                                          source=self._source, tenant=self.config.agent.tenant),
                                             name="alertmanager-receiver"))
        return tasks

    async def run(self, stop: asyncio.Event, flush_timeout_s: float = 10.0) -> None:
        listen = self.config.agent.metrics_listen
        if listen:
            host, _, port = listen.rpartition(":")
            self.metrics.serve(host or "127.0.0.1", int(port))
        self.publisher.start()
        tasks = self._background()
        log.info("agent %s watching %d target(s): %s", self.config.agent.name, len(self.collectors),
                 ", ".join(f"{c.resource.kind}/{c.name}" for c in self.collectors))
        try:
            await stop.wait()
        finally:
            tasks += self._running.values()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for collector in self.collectors:
                await _close(collector)
            for prometheus in self.prometheus:
                await prometheus.close()
            await self.publisher.stop(flush_timeout_s)
            log.info("agent stopped; %d event(s) left in the spool", self.publisher.spool.pending)


async def _close(collector: TargetCollector) -> None:
    await collector.plugin.close()
    if collector.runner is not None:
        await collector.runner.close()


async def _rediscover(agent: Agent, interval: float) -> None:
    """Look again every ``interval`` (the first look was at start)."""
    from kubestack.agents.rediscovery import look_again

    await asyncio.sleep(interval)
    await every(interval, partial(look_again, agent))
