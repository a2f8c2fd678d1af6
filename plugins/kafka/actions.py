"""Carrying out the Kafka plugin's actions (declared with their typed parameters in ``declaration.py``) through the
admin API: the preconditions read on the cluster (the broker or topic exists, deletes by retention, the partition
count), the state before, the change, and the action that undoes it.

AlterConfigs replaces a resource's whole set of overrides, so a retention change sends every override the topic has
(read just before) with the new values, and a broker change every per-broker override of that broker: nothing else
changes."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from aiokafka.admin.config_resource import ConfigResourceType

from kubestack.errors import ActionError, CommandFailedError, PreconditionFailedError
from kubestack.plugins.base import ActionOutcome, ActionSpec, declared
from kubestack.plugins.kafka.client import KafkaClient
from kubestack.plugins.kafka.parse import (DYNAMIC_BROKER_CONFIG, DYNAMIC_TOPIC_CONFIG, parse_cluster, parse_configs,
                                           parse_partitions)

log = logging.getLogger(__name__)

SET_RETENTION = "kafka.set_topic_retention"
ADD_PARTITIONS = "kafka.add_partitions"
SET_BROKER_CONFIG = "kafka.set_broker_config"
_SETTINGS = {"retention_ms": "retention.ms", "retention_bytes": "retention.bytes"}


async def execute(client: KafkaClient, specs: Sequence[ActionSpec], action_id: str, params: dict[str, Any], *,
                  dry_run: bool = False) -> ActionOutcome:
    checked = declared(specs, action_id, "Kafka").check(params)
    steps = {SET_RETENTION: _set_retention, ADD_PARTITIONS: _add_partitions, SET_BROKER_CONFIG: _set_broker_config}
    if action_id not in steps:
        raise ActionError(f"{action_id} is a step for people (its runbook says how): the Kafka plugin carries out "
                          f"only {', '.join(sorted(steps))}")
    outcome = await steps[action_id](client, checked, dry_run)
    log.info("%s %s: %s", action_id, "dry run" if dry_run else "done", outcome.output)
    return outcome


def retention_problems(topic: str, effective: dict[str, str] | None, new: dict[str, str]) -> list[str]:
    """Why the retention of ``topic`` cannot be set to ``new`` (its effective configs ``effective``; None: no
    such topic)."""
    if effective is None:
        return [f"no topic named {topic}"]
    problems = []
    if "delete" not in effective.get("cleanup.policy", "delete").split(","):
        problems.append(f"{topic} has cleanup.policy={effective.get('cleanup.policy')}: retention deletes nothing")
    if not new:
        problems.append("give retention_ms or retention_bytes")
    return problems


@contextlib.contextmanager
def _refused(action: str, request: str, target: str) -> Iterator[None]:
    """A request Kafka refuses is the action's error, saying which request on what and Kafka's reason."""
    try:
        yield
    except CommandFailedError as exc:
        raise ActionError(f"{action}: Kafka refused {request} on {target}: {exc.stderr.strip()}") from exc

async def _set_retention(client: KafkaClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    topic = params["topic"]
    new = {_SETTINGS[k]: str(v) for k, v in params.items() if k in _SETTINGS}
    answers = await client.configs(ConfigResourceType.TOPIC, [topic])
    effective = parse_configs(a for a in answers if not a.get("error_code")).get(topic)
    if problems := retention_problems(topic, effective, new):
        raise PreconditionFailedError(SET_RETENTION, problems)
    overrides = parse_configs(answers, only_source=DYNAMIC_TOPIC_CONFIG).get(topic, {})
    before = {name: effective.get(name, "") for name in new}
    undo_params = {"topic": topic} | {k: int(before[name]) for k, name in _SETTINGS.items()
                                      if name in new and before[name].lstrip("-").isdigit()}
    change = ", ".join(f"{name} {before[name] or 'unset'} → {value}" for name, value in new.items())
    if not dry_run:
        with _refused(SET_RETENTION, "AlterConfigs", topic):
            await client.alter_topic_configs(topic, overrides | new)
    return ActionOutcome(action=SET_RETENTION, params=params, dry_run=dry_run,
                         output=f"{'would set' if dry_run else 'set'} {change} on topic {topic} (other overrides "
                                f"kept: {', '.join(sorted(set(overrides) - set(new))) or 'none'})",
                         before={"topic": topic, **before, "overrides": overrides},
                         undo=(SET_RETENTION, undo_params) if len(undo_params) > 1 else None)


async def _add_partitions(client: KafkaClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    topic, count = params["topic"], params["count"]
    partitions = [p for p in parse_partitions(await client.topics(), include_internal=True) if p.topic == topic]
    if not partitions:
        raise PreconditionFailedError(ADD_PARTITIONS, [f"no topic named {topic}"])
    if partitions[0].internal:
        raise PreconditionFailedError(ADD_PARTITIONS, [f"{topic} is an internal topic"])
    if count <= len(partitions):
        raise PreconditionFailedError(ADD_PARTITIONS, [f"{topic} has {len(partitions)} partitions already; count "
                                                       "must be more"])
    if not dry_run:
        with _refused(ADD_PARTITIONS, "CreatePartitions", topic):
            await client.create_partitions(topic, count)
    return ActionOutcome(action=ADD_PARTITIONS, params=params, dry_run=dry_run,
                         output=f"{'would add' if dry_run else 'added'} {count - len(partitions)} partition(s) to "
                                f"{topic} ({len(partitions)} → {count}); they cannot be removed",
                         before={"topic": topic, "partitions": len(partitions)}, undo=None)


def broker_overrides(broker: int, answers: list[dict[str, Any]]) -> tuple[dict[str, str], list[str]]:
    """The per-broker overrides of ``broker`` in DescribeConfigs ``answers``, and the names of those that are
    sensitive (their value cannot be read back, so AlterConfigs, which replaces them all, would lose them)."""
    entries = [e for a in answers if a["resource_name"] == str(broker) and not a.get("error_code")
               for e in a["config_entries"] if e.get("source") == DYNAMIC_BROKER_CONFIG]
    return ({e["name"]: "" if e["value"] is None else str(e["value"]) for e in entries if not e.get("sensitive")},
            sorted(e["name"] for e in entries if e.get("sensitive")))


async def _set_broker_config(client: KafkaClient, params: dict[str, Any], dry_run: bool) -> ActionOutcome:
    broker, setting, value = params["broker"], params["setting"], params.get("value")
    brokers = [i for i, _ in parse_cluster(await client.cluster()).brokers]
    if broker not in brokers:
        raise PreconditionFailedError(SET_BROKER_CONFIG, [f"no broker {broker} (the cluster has "
                                                          f"{', '.join(map(str, brokers)) or 'none'})"])
    answers = await client.configs(ConfigResourceType.BROKER, [str(broker)])
    overrides, sensitive = broker_overrides(broker, answers)
    if sensitive:
        raise PreconditionFailedError(SET_BROKER_CONFIG, [f"broker {broker} has sensitive per-broker overrides "
                                                          f"({', '.join(sensitive)}) that AlterConfigs would drop"])
    effective = parse_configs(a for a in answers if not a.get("error_code")).get(str(broker), {})
    before, previous = effective.get(setting, "unset"), overrides.get(setting)
    new = {k: v for k, v in overrides.items() if k != setting} | ({setting: str(value)} if value is not None else {})
    after = str(value) if value is not None else "the cluster-wide value"
    if not dry_run:
        with _refused(SET_BROKER_CONFIG, "AlterConfigs", f"broker {broker}"):
            await client.alter_broker_configs(broker, new)
    return ActionOutcome(action=SET_BROKER_CONFIG, params=params, dry_run=dry_run,
                         output=f"{'would set' if dry_run else 'set'} {setting} on broker {broker}: {before} → "
                                f"{after} (other per-broker overrides kept: "
                                f"{', '.join(sorted(set(overrides) - {setting})) or 'none'})",
                         before={"broker": broker, setting: before, "override": previous, "overrides": overrides},
                         undo=(SET_BROKER_CONFIG, {"broker": broker, "setting": setting,
                                                   "value": int(previous) if previous and previous.isdigit() else None}))
