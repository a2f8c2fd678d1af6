"""Faust agents: thin glue between topics and the pure functions of the stages.

    metrics ─► intake+detect ─► anomalies ──────────┐
           └─► forecast (capacity series) ─► predictions ┤
    logs ─► templates + rates ─► anomalies ──────────┤
    config-changes ─► config risk ─► anomalies ──────┤
    (alertmanager receiver) ─► anomalies ────────────┤
    health ──────────────────────────────────────────┴─► route (re-key by tenant) ─► signals ─► correlate ─► incidents
    incidents ─► root cause ─► rca-reports, remediation-proposals ─► remediate, notify, audit (``loopstages``)

Each agent decodes at the edge, dead-letters what it cannot process (with the reason) and goes on. Per-resource
state (inventory, detectors, forecasters) and per-tenant state (open incidents, the dependency graph) live in
changelog-backed tables.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import faust
from faust.types import EventT
from aiokafka.admin import NewTopic

from kubestack.bus import create_topics, partition_counts
from kubestack.contract.base import Event, Source
from kubestack.contract.events import ConfigSnapshot, IncidentStatus, PredictionStatus
from kubestack.contract.topics import (
    ANOMALIES,
    AUDIT,
    CONFIG_CHANGES,
    CONFIG_SNAPSHOTS,
    DEAD_LETTER,
    HEALTH,
    INCIDENTS,
    LOGS,
    METRICS,
    PREDICTIONS,
    RCA_REPORTS,
    REMEDIATION_DECISIONS,
    REMEDIATION_PROPOSALS,
    TopicSpec,
    topic,
)
from kubestack.errors import ConfigError, EventDecodeError
from kubestack.models.registry import DETECTORS
from kubestack.pipeline import loopstages, recall
from kubestack.pipeline.app import contract_topic
from kubestack.pipeline.capacity import capacities_of
from kubestack.pipeline.configrisk import assess
from kubestack.pipeline.correlation import (
    Correlator,
    incident_key,
    is_index_key,
    load_state,
    signals_from_anomaly,
    signals_from_health,
    signals_from_prediction,
    state_records,
)
from kubestack.pipeline.detection import ResourceDetectors
from kubestack.pipeline.drift import DriftWatch
from kubestack.pipeline.edge import dead_letter
from kubestack.pipeline.inventory import ResourceSeen, observe
from kubestack.pipeline.logstage import ResourceLogs
from kubestack.pipeline.prediction import Horizons, ResourceForecasts
from kubestack.pipeline.rootcause import rank_incident_causes
from kubestack.pipeline.runbookmatch import RunbookMatcher
from kubestack.pipeline.silencefeed import SilenceFeed
from kubestack.pipeline.silences import SilenceBook, mark
from kubestack.plugins.registry import actions_for_kind
from kubestack.settings import Settings

log = logging.getLogger(__name__)

ORIGIN_HEADER = "kubestack-topic"
TICK = "tick"  # a timer's request, through the stream, to resolve a tenant's quiet incidents
Handler = Callable[[EventT], Awaitable[None]]


def signals_topic(settings: Settings) -> str:
    return f"{settings.worker.app_id}-signals"


def signal_partitions(settings: Settings) -> int:
    """Partitions of the signals topic and of the tables keyed like it (correlation, drift)."""
    return max(settings.worker.signal_partitions, settings.kafka.min_partitions)


async def create_internal_topics(app: faust.App, settings: Settings) -> None:
    """Topics the stages use between themselves (the signals topic, every table's changelog), created before
    the worker subscribes: Faust's own lazy creation races its first partition assignment, and the worker then
    never reads them or refuses to write its tables."""
    new = [NewTopic(signals_topic(settings), signal_partitions(settings), 1)]
    for table in app.tables.values():
        new.append(NewTopic(table.changelog_topic.get_topic_name(), table.partitions or app.conf.topic_partitions, 1,
                            topic_configs={"cleanup.policy": "compact"}))
    await create_topics(settings.kafka, new)
    expected = {topic.name: topic.num_partitions for topic in new}
    for spec in (METRICS, LOGS, INCIDENTS, REMEDIATION_PROPOSALS, REMEDIATION_DECISIONS, AUDIT):  # tables' sources
        expected[spec.qualified(settings.kafka.topic_prefix)] = settings.kafka.partitions_of(spec)
    check_partitions(expected, await partition_counts(settings.kafka, list(expected)))


def check_partitions(expected: dict[str, int], actual: dict[str, int]) -> None:
    """``ConfigError`` when a topic a table is keyed on, or a table's changelog, has other partitions than the
    settings give it: the worker's tables would be split otherwise than their input (Faust stops the worker on that
    at its first event, with a message that does not say what to change)."""
    wrong = {name: (actual[name], want) for name, want in expected.items() if name in actual and actual[name] != want}
    if wrong:
        listed = "; ".join(f"{name} has {have}, the settings give it {want}"
                           for name, (have, want) in sorted(wrong.items()))
        raise ConfigError(f"partitions differ from the settings: {listed}. Kafka does not change a topic's partitions "
                          f"by itself: set kafka.partitions (or kafka.min_partitions, worker.signal_partitions) to "
                          f"what the cluster has, or add partitions with kafka-topics --alter (keys move) and start "
                          f"the worker under a new worker.app_id (its tables relearn)")


def private_folder(path: Path) -> None:
    """The worker's data (table stores, their checkpoints) under a folder only its user may enter, whatever the
    umask, and made so when it already existed."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


class LiveState:
    """Detectors and miners kept in memory between batches, checkpointed to their table every ``every_s``
    seconds (not on every batch: a detector's state is a kilobyte per series). A restarted or rebalanced worker
    resumes from the last checkpoint."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._objects: dict[tuple[str, str], object] = {}
        self._saved: dict[tuple[str, str], float] = {}

    def load(self, kind: str, key: str, table, restore: Callable):
        """The live ``kind`` object of ``key``; when not in memory, ``restore(its table checkpoint or None)``."""
        obj = self._objects.get((kind, key))
        return obj if obj is not None else restore(table.get(key))

    def keep(self, kind: str, key: str, obj, table) -> None:
        self._objects[(kind, key)] = obj
        now = time.monotonic()
        if now - self._saved.get((kind, key), float("-inf")) >= self.every_s:
            table[key] = obj.to_state()
            self._saved[(kind, key)] = now

    def clear(self) -> None:
        self._objects.clear()
        self._saved.clear()


class Stages:
    """Registers every stage on a Faust app; holds the topics and tables they share."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.kafka = settings.kafka
        self.prefix = settings.kafka.topic_prefix
        self.source = Source(agent="worker", host=socket.gethostname())
        self.dead_letters = contract_topic(app, DEAD_LETTER, self.kafka)
        self.anomalies = contract_topic(app, ANOMALIES, self.kafka)
        self.incidents = contract_topic(app, INCIDENTS, self.kafka)
        self.predictions = contract_topic(app, PREDICTIONS, self.kafka)
        self.rca_reports = contract_topic(app, RCA_REPORTS, self.kafka)
        self.proposals = contract_topic(app, REMEDIATION_PROPOSALS, self.kafka)
        json_schema = faust.Schema(key_serializer="json", value_serializer="json")
        per_resource = self.kafka.partitions_of(METRICS)
        self.inventory = app.Table("resource-inventory", partitions=per_resource, schema=json_schema)
        self.detectors = app.Table("metric-detectors", partitions=per_resource, schema=json_schema)
        self.forecasters = app.Table("forecasters", partitions=per_resource, schema=json_schema)
        self.log_miners = app.Table("log-miners", partitions=self.kafka.partitions_of(LOGS), schema=json_schema)
        self.correlation = app.Table("correlation", partitions=signal_partitions(settings),
                                     schema=json_schema)
        self.drift = app.Table("config-drift", partitions=signal_partitions(settings), schema=json_schema)
        self.ranked = app.Table("root-causes", partitions=self.kafka.partitions_of(INCIDENTS), schema=json_schema)
        self.memory, self.memory_actions = recall.tables(app, self.kafka)  # similar past incidents (``memory.py``)
        self.signals = app.topic(signals_topic(settings), internal=True,
                                 partitions=signal_partitions(settings), key_serializer="raw",
                                 value_serializer="raw")

        self.live = LiveState(settings.worker.checkpoint_s)
        self.silences = SilenceBook()  # every silence, whatever partitions this worker owns (``silencefeed``)
        app.on_partitions_revoked.connect(self._forget_live)
        private_folder(settings.home / "worker")

    async def _forget_live(self, *args, **kwargs) -> None:
        """Partitions may move to another worker: from now on read the tables again."""
        self.live.clear()

    def register(self) -> None:
        feed = SilenceFeed(self.settings.kafka, self.silences, "worker")

        @self.app.task
        async def follow_silences() -> None:
            await feed.run()

        self._intake()
        self._logs()
        self._config_risk()
        self._route()
        self._correlate()
        self._root_cause()
        loopstages.register(self)

    async def reject(self, event: EventT, error: Exception, stage: str) -> None:
        message = event.message
        letter = dead_letter(topic=message.topic, raw=event.value, key=event.key, partition=message.partition,
                             offset=message.offset, error=error, stage=stage, tenant=self.settings.tenant)
        key, value = DEAD_LETTER.encode(letter)
        await self.dead_letters.send(key=key, value=value)
        log.warning("%s dead-lettered %s[%d]@%d: %s", stage, message.topic, message.partition, message.offset,
                    letter.reason)

    async def emit(self, channel: faust.TopicT, spec: TopicSpec, events: list[Event]) -> None:
        for event in events:
            key, value = spec.encode(event)
            await channel.send(key=key, value=value)

    async def guarded(self, event: EventT, stage: str, handle: Handler) -> None:
        """``handle(event)``; what does not decode, and what fails, is dead-lettered with the reason and the stream
        goes on (the message is kept, the worker stays alive)."""
        try:
            await handle(event)
        except EventDecodeError as exc:
            await self.reject(event, exc, stage)
        except Exception as exc:  # one per long-running loop
            log.exception("%s failed on %s@%d", stage, event.message.topic, event.message.offset)
            await self.reject(event, exc, stage)

    def _agent(self, channel: faust.ChannelT, stage: str, handle: Handler) -> None:
        """A thin agent on ``channel``: each event through ``guarded``."""
        @self.app.agent(channel, name=stage)
        async def agent(stream: faust.StreamT) -> None:
            async for event in stream.events():
                await self.guarded(event, stage, handle)

    # --- metrics: inventory, detection, forecasts ------------------------------------------------

    def _intake(self) -> None:
        worker = self.settings.worker
        threshold = worker.anomaly_threshold
        horizons = Horizons.build(worker.forecast_warning_s, worker.forecast_critical_s, worker.forecast_time_scale)

        async def on_metrics(event: EventT) -> None:
            batch = METRICS.decode(event.value)
            key = batch.resource.key
            previous = self.live.load("inventory", key, self.inventory,
                                      lambda state: ResourceSeen.model_validate(state) if state is not None else None)
            self.live.keep("inventory", key, observe(previous, batch), self.inventory)
            detectors = self.live.load("metrics", key, self.detectors,
                                       lambda state: ResourceDetectors.from_state(
                                           state, threshold, worker.anomaly_detector, worker.metric_alone_score))
            anomalies = detectors.observe(batch, self.source)
            self.live.keep("metrics", key, detectors, self.detectors)
            await self.emit(self.anomalies, ANOMALIES, anomalies)
            if capacities := capacities_of(batch.resource.kind):
                forecasts = self.live.load("forecasts", key, self.forecasters,
                                           lambda state: ResourceForecasts.from_state(state, horizons))
                predictions = forecasts.observe(batch, capacities, self.source)
                self.live.keep("forecasts", key, forecasts, self.forecasters)
                await self.emit(self.predictions, PREDICTIONS, predictions)

        self._agent(contract_topic(self.app, METRICS, self.kafka), "intake", on_metrics)

    # --- logs: templates and their rates ----------------------------------------------------------

    def _logs(self) -> None:
        worker = self.settings.worker

        def restore(state: dict | None) -> ResourceLogs:
            return ResourceLogs.from_state(state, worker.log_anomaly_threshold, worker.log_window_s,
                                           worker.log_warmup_windows)

        async def on_logs(event: EventT) -> None:
            batch = LOGS.decode(event.value)
            key = batch.resource.key
            mining = self.live.load("logs", key, self.log_miners, restore)
            anomalies = mining.observe(batch, self.source)
            self.live.keep("logs", key, mining, self.log_miners)
            await self.emit(self.anomalies, ANOMALIES, anomalies)

        self._agent(contract_topic(self.app, LOGS, self.kafka), "logs", on_logs)

    # --- configuration changes checked against their plugin's rules -----------------------------

    def _config_risk(self) -> None:
        async def on_change(event: EventT) -> None:
            await self.emit(self.anomalies, ANOMALIES, assess(CONFIG_CHANGES.decode(event.value), self.source))

        self._agent(contract_topic(self.app, CONFIG_CHANGES, self.kafka), "config-risk", on_change)

    # --- signals: re-keyed by tenant so one place sees all of a tenant's signals ---------------------

    def _route(self) -> None:
        specs = {spec.qualified(self.prefix): spec for spec in (ANOMALIES, HEALTH, PREDICTIONS, CONFIG_SNAPSHOTS)}

        async def on_signal(event: EventT) -> None:
            spec = specs[event.message.topic]
            decoded = spec.decode(event.value)
            await self.signals.send(key=decoded.tenant.encode(), value=event.value,
                                    headers={ORIGIN_HEADER: spec.short.encode()})

        self._agent(self.app.topic(*specs, key_serializer="raw", value_serializer="raw"), "route", on_signal)

    # --- correlation into incidents -------------------------------------------------------------

    def _correlator(self, tenant: str) -> Correlator:
        worker = self.settings.worker
        return Correlator(tenant, timedelta(seconds=worker.correlation_window_s),
                          timedelta(seconds=worker.incident_quiet_s), load_state(tenant, self.correlation.get),
                          alone_score=worker.metric_alone_score, reopen=timedelta(seconds=worker.incident_reopen_s))

    def _save(self, tenant: str, correlator: Correlator, known: set[str], graph: bool) -> None:
        """Write the records a signal changed (the index, the incidents it touched, the graph when a health report
        taught it something) and delete those of incidents the state no longer holds (``known``: the ids it held
        when loaded)."""
        state = correlator.to_state()
        for key, record in state_records(tenant, state, correlator.touched, graph).items():
            self.correlation[key] = record
        for gone in known - (state["open"].keys() | state["resolved"].keys()):
            self.correlation.pop(incident_key(tenant, gone), None)

    def _correlate(self) -> None:
        async def on_routed(event: EventT) -> None:
            origin = dict(event.headers or {}).get(ORIGIN_HEADER, b"anomalies").decode()
            if origin == TICK:  # table writes must happen inside the stream: the timer only asks
                tenant = event.key.decode()
                correlator = self._correlator(tenant)
                known = correlator.open.keys() | correlator.resolved.keys()
                out = correlator.expire(datetime.now(timezone.utc), self.source)
                if not out:
                    return
            else:
                decoded = topic(origin).decode(event.value)
                tenant = decoded.tenant
                correlator = self._correlator(tenant)
                if origin in (CONFIG_SNAPSHOTS.short, HEALTH.short):   # linked peers' settings, along the graph
                    await self._drift(tenant, correlator, decoded)
                if origin == CONFIG_SNAPSHOTS.short:
                    return
                known = correlator.open.keys() | correlator.resolved.keys()
                out = self._incidents_from(correlator, origin, decoded)
            self._save(tenant, correlator, set(known), graph=origin == HEALTH.short)
            await self.emit(self.incidents, INCIDENTS, mark(out, self.silences, datetime.now(timezone.utc)))

        self._agent(self.signals, "correlate", on_routed)

        @self.app.timer(interval=min(30.0, self.settings.worker.incident_quiet_s / 4))
        async def expire_incidents() -> None:
            for tenant in [key for key in list(self.correlation.keys()) if is_index_key(key)]:
                if self.correlation[tenant].get("open"):
                    await self.signals.send(key=tenant.encode(), value=b"", headers={ORIGIN_HEADER: TICK.encode()})

        @self.app.timer(interval=300.0)
        async def report_compression() -> None:
            for tenant in [key for key in list(self.correlation.keys()) if is_index_key(key)]:
                state = self.correlation[tenant]
                signals, incidents = state.get("signals_in", 0), state.get("incidents_out", 0)
                if incidents:
                    log.info("tenant %s: %d signals became %d incidents (compression %.1f), %d open", tenant,
                             signals, incidents, signals / incidents, len(state.get("open", {})))

    async def _drift(self, tenant: str, correlator: Correlator, decoded: Event) -> None:
        """A snapshot's agreed-on settings kept and compared with its linked peers'; a health report (which may
        link it to a peer just now) compares its resource again. Drifts go out as config-risk anomalies."""
        watch = DriftWatch(tenant, self.drift.get(tenant))
        raised = dict(watch.raised)
        if isinstance(decoded, ConfigSnapshot):
            out = watch.observe(decoded, correlator.topology, self.source)
        elif decoded.resource.key in watch.configs:
            correlator.learn(decoded)   # learning twice is harmless: the links of this very report count
            out = watch.check(decoded.resource.key, correlator.topology, decoded.ts, self.source)
        else:
            return
        if isinstance(decoded, ConfigSnapshot) or watch.raised != raised:
            self.drift[tenant] = watch.to_state()
        await self.emit(self.anomalies, ANOMALIES, out)

    def _incidents_from(self, correlator: Correlator, origin: str, decoded: Event) -> list:
        if origin == HEALTH.short:
            correlator.learn(decoded)  # first: the links this report reveals count for its own findings
            out = [i for s in signals_from_health(decoded) for i in correlator.add(s, self.source)]
            return out + correlator.clear(decoded, self.source)
        if origin == PREDICTIONS.short:
            if decoded.status == PredictionStatus.WITHDRAWN:
                return correlator.withdraw(decoded, self.source)
            return [i for s in signals_from_prediction(decoded) for i in correlator.add(s, self.source)]
        return [i for s in signals_from_anomaly(decoded) for i in correlator.add(s, self.source)]

    # --- root cause of each incident revision, and what to do about it ------------------------------

    def _root_cause(self) -> None:
        from kubestack.knowledge.runbook import load_runbooks

        books = load_runbooks()
        runbooks, titles = RunbookMatcher(books), {b.id: b.meta.title for b in books}
        narrator = None
        if self.settings.llm.provider != "none":  # imports the LLM clients only when one is configured
            from kubestack.llm import build_llm
            from kubestack.pipeline.narrative import narrate

            narrator = build_llm(self.settings.llm)

        async def on_incident(event: EventT) -> None:
            incident = INCIDENTS.decode(event.value)
            if incident.status == IncidentStatus.RESOLVED:
                self.ranked.pop(incident.incident_id, None)
                return
            found = rank_incident_causes(incident, self.source, runbooks, actions_for_kind, datetime.now(timezone.utc),
                                         verdicts=loopstages.verdicts(self, incident.tenant))
            if found is None:
                return
            last = self.ranked.get(incident.incident_id)
            last = last if isinstance(last, dict) else {}
            changed = last.get("cause") != found.top_cause
            report = found.report
            if narrator is not None:  # the LLM writes once per cause (it may take timeout_s)
                narrative, by = (await narrate(report, incident, titles, narrator)) if changed else \
                    (last["narrative"], last["narrator"])
                report = report.model_copy(update={"narrative": narrative, "narrator": by})
            report = recall.recall(self.memory, self.memory_actions, incident, report)
            await self.emit(self.rca_reports, RCA_REPORTS, [report])
            proposed = set(last.get("proposed", []))
            fresh = [p for p in found.proposals if p.proposal_id not in proposed]
            if changed or fresh:  # each proposal once: later evidence (a slowlog entry, a blocker) may add some
                self.ranked[incident.incident_id] = {
                    "cause": found.top_cause, "narrative": report.narrative, "narrator": report.narrator,
                    "proposed": sorted(proposed | {p.proposal_id for p in fresh})}
                await self.emit(self.proposals, REMEDIATION_PROPOSALS, fresh)

        self._agent(contract_topic(self.app, INCIDENTS, self.kafka), "root-cause", on_incident)


def register(app: faust.App, settings: Settings) -> Stages:
    """Every stage that exists so far; ``ConfigError`` for a detector no model provides (checked here, where the
    models are: the settings sit below them)."""
    if settings.worker.anomaly_detector not in DETECTORS:
        raise ConfigError(f"worker.anomaly_detector {settings.worker.anomaly_detector!r} is none of "
                          f"{', '.join(DETECTORS)}")
    stages = Stages(app, settings)
    stages.register()
    return stages
