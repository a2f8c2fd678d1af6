"""One target: metrics every ``interval``, health every ``health_interval``, configuration every
``config_interval``, and its logs. A target that cannot be reached becomes a "target down" health report
with the reason; the collector never stops because of it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from kubestack.agents.configdiff import diff, digest
from kubestack.agents.schedule import every
from kubestack.agents.logtail import GlobTail
from kubestack.agents.metrics import AgentMetrics
from kubestack.agents.publisher import Publisher
from kubestack.agents.state import StateStore
from kubestack.contract.base import ResourceRef, Source, utcnow
from kubestack.contract.events import (
    ConfigChange,
    ConfigSnapshot,
    Finding,
    HealthReport,
    LogBatch,
    LogLine,
    MetricBatch,
    Peer,
    Severity,
)
from kubestack.contract.topics import CONFIG_CHANGES, CONFIG_SNAPSHOTS, HEALTH, LOGS, METRICS
from kubestack.errors import ConfigError, KubestackError, PluginError
from kubestack.plugins.base import CommandRunner, LogSource, PeerDiscovery, Plugin, ResourceWatcher

log = logging.getLogger(__name__)

MAX_SAMPLES_PER_BATCH = 2000
MAX_LINES_PER_BATCH = 1000
TARGET_DOWN = "agent.target_down"
WATCH_RESTART_S = (5.0, 300.0)
"""A failed resource watch is started again after 5 s, doubling up to 5 min while it keeps failing."""


class TargetCollector:
    def __init__(self, *, name: str, plugin: Plugin, runner: CommandRunner | None = None, resource: ResourceRef, source: Source, tenant: str,
                 publisher: Publisher, state: StateStore, metrics: AgentMetrics, interval: float,
                 health_interval: float, config_interval: float, extra_logs: list[LogSource] = ()) -> None:
        self.name = name
        self.plugin = plugin
        self.runner = runner
        self.resource = resource
        self.source = source
        self.tenant = tenant
        self.publisher = publisher
        self.state = state
        self.metrics = metrics
        self.interval = interval
        self.health_interval = health_interval
        self.config_interval = config_interval
        self.down_reason: str | None = None
        self._log_sources = [*plugin.log_sources(), *extra_logs]
        self._tails: list[GlobTail] = []
        self._last_values: dict[str, float] = {}

    def _common(self) -> dict:
        return {"source": self.source, "resource": self.resource, "tenant": self.tenant}

    # --- one round of each kind ----------------------------------------------------------------

    async def collect_metrics(self) -> int:
        started = time.perf_counter()
        samples = await self._reach(self.plugin.collect)
        if samples is None:
            return 0
        self._last_values = {s.name: s.value for s in samples if not s.labels}
        self.metrics.collect_seconds.labels(self.name).observe(time.perf_counter() - started)
        self.metrics.samples.labels(self.name).inc(len(samples))
        batches = [
            (METRICS, MetricBatch.of_samples(samples[i:i + MAX_SAMPLES_PER_BATCH], **self._common(),
                                             interval_s=self.interval))
            for i in range(0, len(samples), MAX_SAMPLES_PER_BATCH)
        ]
        if batches:
            await self.publisher.publish_many(batches)
        return len(samples)

    async def check_health(self) -> HealthReport | None:
        findings = await self._reach(self.plugin.check_health)
        if findings is None:
            return None
        report = HealthReport(**self._common(), findings=findings, peers=await self._peers())
        await self.publisher.publish(HEALTH, report)
        return report

    async def _peers(self) -> list[Peer]:
        """The target's observed connections, when its plugin can see them; a failure costs only the peers of
        this round, never the findings (the worker keeps the edges it learned before)."""
        if not isinstance(self.plugin, PeerDiscovery):
            return []
        try:
            return await self.plugin.peers()
        except (PluginError, ConfigError) as exc:
            log.warning("%s: connections not observed this round: %s", self.name, exc)
            failure = exc
        except Exception as exc:  # a plugin bug must not cost the findings
            log.exception("%s: observing connections failed unexpectedly", self.name)
            failure = exc
        self.metrics.collect_errors.labels(self.name, type(failure).__name__).inc()
        return []

    async def snapshot_config(self) -> ConfigChange | None:
        config = await self._reach(self.plugin.snapshot_config)
        if config is None:
            return None
        key = f"config-{self.resource.kind}-{self.name}"
        previous = self.state.load(key)
        current = digest(config)
        if previous is not None and previous["digest"] == current:
            return None
        events = [(CONFIG_SNAPSHOTS, ConfigSnapshot(**self._common(), config=config, digest=current))]
        change = None
        if previous is not None:
            change = ConfigChange(**self._common(), previous_digest=previous["digest"], digest=current,
                                  changes=diff(previous["config"], config), observed=self._last_values)
            events.append((CONFIG_CHANGES, change))
            log.info("%s: configuration changed: %s", self.name, ", ".join(c.key for c in change.changes))
        await self.publisher.publish_many(events)
        self.state.save(key, {"digest": current, "config": config})
        return change

    async def tail_logs(self) -> int:
        if not self._tails:
            positions = self.state.load(f"logs-{self.resource.kind}-{self.name}", {})
            self._tails = [GlobTail(s.path, positions) for s in self._log_sources if s.path]
        lines = [line for tail in self._tails for line in tail.poll()]
        for i in range(0, len(lines), MAX_LINES_PER_BATCH):
            chunk = lines[i:i + MAX_LINES_PER_BATCH]
            now = utcnow()
            batch = LogBatch(**self._common(), lines=[LogLine(ts=now, line=t.text, path=t.path, offset=t.offset)
                                                      for t in chunk])
            await self.publisher.publish(LOGS, batch)
        if lines:
            self.metrics.log_lines.labels(self.name).inc(len(lines))
            positions = {p: pos for tail in self._tails for p, pos in tail.positions.items()}
            self.state.save(f"logs-{self.resource.kind}-{self.name}", positions)
        return len(lines)

    # --- reaching the target -------------------------------------------------------------------

    async def _reach(self, call: Callable[[], Awaitable]):
        """``call()``'s result, or None after reporting the target down (once per outage, then each health round)."""
        try:
            result = await call()
        except (PluginError, ConfigError) as exc:
            await self._mark_down(exc)
            return None
        except Exception as exc:  # a plugin bug must not stop the agent: report it as the reason
            log.exception("%s: %s failed unexpectedly", self.name, getattr(call, "__name__", call))
            await self._mark_down(exc)
            return None
        if self.down_reason is not None:
            log.info("%s is reachable again", self.name)
            self.down_reason = None
            # speaks for target_down only: the other findings stand until the next health round says otherwise
            await self.publisher.publish(HEALTH, HealthReport(**self._common(), reachable=True,
                                                              rules_checked=[TARGET_DOWN]))
        return result

    async def _mark_down(self, exc: Exception) -> None:
        kind = type(exc).__name__
        reason = str(exc) or kind
        self.metrics.collect_errors.labels(self.name, kind).inc()
        first = self.down_reason is None
        self.down_reason = reason
        if first:
            log.warning("%s is down: %s", self.name, reason)
        finding = Finding(rule_id=TARGET_DOWN, severity=Severity.CRITICAL,
                          message=f"{self.resource.kind} {self.name} cannot be collected: {reason}",
                          evidence={"error": kind, "reason": reason,
                                    "retriable": isinstance(exc, KubestackError) and exc.retriable})
        await self.publisher.publish(HEALTH, HealthReport(**self._common(), reachable=False, findings=[finding],
                                                          rules_checked=[TARGET_DOWN]))

    async def watch_resources(self) -> None:
        """A ``ResourceWatcher`` plugin's watch, published like the target's own events; called again after a
        pause if it fails (its source being away is the rounds' business: the target is reported down)."""
        from kubestack.agents.resources import ResourcePublisher

        sink = ResourcePublisher(target=self.name, source=self.source, tenant=self.tenant, publisher=self.publisher,
                                 state=self.state, metrics=self.metrics)
        pause = WATCH_RESTART_S[0]
        while True:
            started = time.monotonic()
            try:
                await self.plugin.watch(sink)
            except (PluginError, ConfigError) as exc:
                log.warning("%s: watching its resources stopped: %s (again in %.0fs)", self.name, exc, pause)
                failure = exc
            except Exception as exc:  # a plugin bug must not stop the agent
                log.exception("%s: watching its resources failed unexpectedly", self.name)
                failure = exc
            else:
                return
            self.metrics.collect_errors.labels(self.name, type(failure).__name__).inc()
            if time.monotonic() - started > WATCH_RESTART_S[1]:
                pause = WATCH_RESTART_S[0]  # it ran a good while: a new failure, not the same one again
            await asyncio.sleep(pause)
            pause = min(pause * 2, WATCH_RESTART_S[1])

    # --- schedule ------------------------------------------------------------------------------

    async def run(self, log_poll_interval: float = 1.0) -> None:
        loops = [
            every(self.interval, self.collect_metrics),
            every(self.health_interval, self.check_health),
            every(self.config_interval, self.snapshot_config),
        ]
        if any(s.path for s in self._log_sources):
            loops.append(every(log_poll_interval, self.tail_logs))
        if isinstance(self.plugin, ResourceWatcher):
            loops.append(self.watch_resources())
        try:
            await asyncio.gather(*loops)
        finally:
            for tail in self._tails:
                tail.close()
