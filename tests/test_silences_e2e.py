"""A maintenance window on the real stack: the real API server creates it, the real worker (``kubestack worker``,
every stage) on the real broker forms the fault's incident marked silenced, nothing reaches the Slack, PagerDuty
and webhook receivers, the low-risk fix waits for a person though auto-approval is on; the window is ended with
the incident still open and the notify stage's timer notifies it then."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable

import pytest
import yaml

from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import (
    Finding,
    HealthReport,
    Incident,
    ResultStatus,
    Severity,
)
from kubestack.contract.topics import AUDIT_ENTRIES, HEALTH, INCIDENTS, REMEDIATION_RESULTS
from kubestack.errors import EventDecodeError
from tests.kafka_io import consume_all
from tests.services.kubestack_api import ApiServer
from tests.services.pipeline import WORKER_ENV, running_worker
from tests.services.receivers import Receivers

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio(loop_scope="session")]

TENANT = f"maint-{uuid.uuid4().hex[:6]}"  # its own tenant: other tests' silences on the shared API match nothing here
CACHE = ResourceRef(kind="redis", name=f"cache-sil-{uuid.uuid4().hex[:6]}", host="db-9", labels={"service": "cart"})


def report() -> HealthReport:
    evidence = {"used_memory": 99 << 20, "maxmemory": 100 << 20, "memory_used_ratio": 0.99,
                "maxmemory_policy": "noeviction", "evicted_keys": 0}
    finding = Finding(rule_id="redis.noeviction_memory_high", severity=Severity.CRITICAL, evidence=evidence,
                      message="memory is 99% of maxmemory with policy noeviction", query="INFO memory")
    return HealthReport(source=Source(agent="agent", host="db-9"), resource=CACHE, tenant=TENANT, findings=[finding],
                        rules_checked=["redis.noeviction_memory_high"])


async def until(what: str, probe: Callable, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while True:
        found = await probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen in {timeout_s:.0f}s")
        await asyncio.sleep(0.5)


def about(received: list[dict], incident_id: str) -> list[dict]:
    """What a receiver took about this incident: the receivers are the session's, and other tests' workers may
    still be telling them about theirs."""
    return [payload for payload in received if incident_id in json.dumps(payload)]


async def read(server: ApiServer, spec, keep: Callable) -> list:
    """The events of ``spec``'s topic for which ``keep`` holds. The API server's topics are shared with other
    tests, and one of them puts a malformed incident there on purpose: what the topic's decoder rejects is not ours."""
    records = await consume_all(server.kafka, server.topic(spec), f"test-sil-{uuid.uuid4().hex[:8]}", timeout_s=5)
    events = []
    for record in records:
        try:
            events.append(spec.decode(record.value))
        except EventDecodeError:
            continue
    return [e for e in events if keep(e)]


async def test_fault_in_a_window_is_silenced_then_notified_when_it_ends(
        api_server: ApiServer, receivers: Receivers, tmp_path) -> None:
    config = tmp_path / "kubestack.yaml"
    # the worker reads the shared topics from their start: other tests' incidents are told too, and with the
    # channels' default rate limits ours would wait behind them (CI failed on that); the limits are not the test
    unlimited = {"burst": 1000, "per_minute": 6000}
    notify = receivers.notify_config()
    for channel in ("slack", "pagerduty"):
        notify[channel] |= {"rate_limit": unlimited}
    notify["webhooks"] = [hook | {"rate_limit": unlimited} for hook in notify["webhooks"]]
    config.write_text(yaml.safe_dump({"notify": notify,
                                      "remediation": {"enabled": True, "auto_approve_low": True}}))
    async with api_server.client("otto") as client:
        created = await client.post("/api/v1/silences", json={"resources": [CACHE.name], "for_s": 900,
                                                              "comment": "cache migration CHG-7", "tenant": TENANT})
    assert created.status_code == 201, created.text
    silence_id = created.json()["silence"]["silence_id"]
    env = WORKER_ENV | {"KUBESTACK_CONFIG": str(config), "KUBESTACK_WORKER__CORRELATION_WINDOW_S": "2"}
    with running_worker(api_server.kafka, f"sil-{uuid.uuid4().hex[:6]}", tmp_path / "worker", env) as (_, output):
        await until("the worker's silence book", lambda: _logged(output, "silences: "), 60)
        await api_server.publish(HEALTH, report())

        def ours(e: Incident) -> bool:
            return CACHE.key in {r.key for r in e.resources}

        incidents = await until("the incident", lambda: read(api_server, INCIDENTS, ours), 90)
        incident = incidents[0]
        assert incident.silenced_by == [silence_id], incident
        results = await until("the proposal's result", lambda: read(
            api_server, REMEDIATION_RESULTS, lambda r: r.incident_id == incident.incident_id))
        # one pending result per proposal (a revision of the incident may propose again): none runs alone
        assert {r.status for r in results} == {ResultStatus.PENDING}, results
        assert all(f"silenced by {silence_id}" in r.output for r in results), results
        silenced = await until("notification.silenced", lambda: read(
            api_server, AUDIT_ENTRIES,
            lambda e: e.action == "notification.silenced" and e.subject_id == incident.incident_id))
        assert silenced[0].details["silences"] == [silence_id]
        await asyncio.sleep(2)  # the notify stage's timer runs every second: it must still hold it
        assert incident.incident_id not in receivers.pagerduty.alerts
        assert not about(receivers.slack.received, incident.incident_id), "Slack held back"
        assert not about(receivers.webhook.received, incident.incident_id), "the webhook held back"

        async with api_server.client("otto") as client:
            ended = await client.delete(f"/api/v1/silences/{silence_id}")
        assert ended.status_code == 200, ended.text
        started = time.monotonic()
        await until("the page once the window ended",
                    lambda: _async(incident.incident_id in receivers.pagerduty.alerts), 30)
        print(f"\nnotified {time.monotonic() - started:.1f}s after the window was ended")
        assert receivers.pagerduty.alerts[incident.incident_id]["status"] == "triggered"
        assert about(receivers.slack.received, incident.incident_id) and about(receivers.webhook.received,
                                                                               incident.incident_id)
        released = await until("notification.released", lambda: read(
            api_server, AUDIT_ENTRIES,
            lambda e: e.action == "notification.released" and e.subject_id == incident.incident_id))
        assert released


async def _async(value):
    return value


async def _logged(output, needle: str) -> bool:
    return any(needle in line for line in list(output))
