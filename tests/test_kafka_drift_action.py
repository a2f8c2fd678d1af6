"""The action that aligns a drifted Kafka broker: a ``kafka.broker_config_drift`` risk raised by the drift stage
on one snapshot of three brokers becomes a ``kafka.set_broker_config`` proposal for the broker that differs, with
the value the others hold; only the settings a running broker takes as a per-broker override are offered; and the
per-broker overrides the action keeps are read from DescribeConfigs answers without the sensitive ones."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from kubestack.agents.configdiff import digest
from kubestack.contract.base import ResourceRef
from kubestack.contract.events import ConfigSnapshot
from kubestack.pipeline.drift import DriftWatch
from kubestack.pipeline.proposals import supported
from kubestack.pipeline.topology import Topology
from kubestack.plugins.kafka.actions import broker_overrides
from kubestack.plugins.kafka.declaration import ACTIONS, SetBrokerConfig
from tests.factories import SOURCE
from tests.test_drift import signal_of

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


def _risk(config: dict[str, str]):
    cluster = ResourceRef(kind="kafka", name="events", host="kafka-1")
    snapshot = ConfigSnapshot(source=SOURCE, resource=cluster, tenant="acme", ts=NOW, config=config,
                              digest=digest(config))
    return DriftWatch("acme").observe(snapshot, Topology(), SOURCE)


def test_the_broker_that_differs_is_offered_the_value_the_others_hold() -> None:
    [risk] = _risk({"broker.1.min.insync.replicas": "2", "broker.2.min.insync.replicas": "2",
                    "broker.3.min.insync.replicas": "1", "broker.1.default.replication.factor": "3",
                    "broker.2.default.replication.factor": "3", "broker.3.default.replication.factor": "1"})
    offers = [(a.id, p, why) for a, p, why, _ in supported([signal_of(risk)], ACTIONS)]
    assert [(a, p) for a, p, _ in offers] == [
        ("kafka.set_broker_config", {"broker": 3, "setting": "min.insync.replicas", "value": 2})], \
        "default.replication.factor is read-only on a running broker: not offered"
    assert "broker 3 to 2" in offers[0][2] and "it is 1 there" in offers[0][2]


def test_the_parameters_are_typed_and_the_setting_comes_from_the_allow_list() -> None:
    action = next(a for a in ACTIONS if a.id == "kafka.set_broker_config")
    assert action.accepts({"broker": 3, "setting": "min.insync.replicas", "value": 2})
    assert action.accepts({"broker": 3, "setting": "min.insync.replicas"}), "no value: remove the override"
    for wrong in ({"broker": 3, "setting": "log.retention.hours", "value": 2},
                  {"broker": 3, "setting": "min.insync.replicas", "value": 0},
                  {"broker": -1, "setting": "min.insync.replicas", "value": 2},
                  {"broker": True, "setting": "min.insync.replicas", "value": 2}):
        assert not action.accepts(wrong), wrong
        with pytest.raises(ValidationError):
            SetBrokerConfig.model_validate(wrong)


def test_the_overrides_kept_are_the_brokers_own_and_the_sensitive_ones_are_named() -> None:
    answers = [{"resource_name": "3", "error_code": 0, "config_entries": [
        {"name": "min.insync.replicas", "value": "1", "source": 2, "sensitive": False},
        {"name": "log.cleaner.threads", "value": "2", "source": 2, "sensitive": False},
        {"name": "num.io.threads", "value": "8", "source": 4, "sensitive": False},
        {"name": "listener.name.x.ssl.key.password", "value": None, "source": 2, "sensitive": True}]},
        {"resource_name": "2", "error_code": 0, "config_entries": [
            {"name": "min.insync.replicas", "value": "3", "source": 2, "sensitive": False}]}]
    assert broker_overrides(3, answers) == ({"min.insync.replicas": "1", "log.cleaner.threads": "2"},
                                            ["listener.name.x.ssl.key.password"])
    assert broker_overrides(1, answers) == ({}, [])
