"""Silences through the real API server on the real broker: created and ended by operators of their own tenant,
listed by anyone of it, bad input refused with the reason, each published on the silences topic and audited."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from kubestack.contract.base import utcnow
from kubestack.contract.events import AuditEntry, Silence
from kubestack.contract.topics import AUDIT_ENTRIES, SILENCES
from tests.kafka_io import consume_all
from tests.services.kubestack_api import ApiServer

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio(loop_scope="session")]


async def on_topic(server: ApiServer, spec, model, **match):
    records = await consume_all(server.kafka, server.topic(spec), f"test-read-{uuid.uuid4().hex[:8]}")
    events = [model.model_validate_json(r.value) for r in records]
    return [e for e in events if all(getattr(e, k) == v for k, v in match.items())]


async def test_operator_silences_a_service_and_ends_it(api_server: ApiServer) -> None:
    body = {"services": ["checkout"], "for_s": 3600, "comment": "redis upgrade CHG-42"}
    async with api_server.client("otto") as client:
        created = await client.post("/api/v1/silences", json=body)
        assert created.status_code == 201, created.text
        view = created.json()
        silence_id = view["silence"]["silence_id"]
        assert view["in_force"] is True and view["over"] is False
        assert view["silence"]["created_by"] == "otto" and view["silence"]["tenant"] == "default"
    async with api_server.client("vera") as client:
        listed = (await client.get("/api/v1/silences", params={"state": "in_force"})).json()["items"]
        assert silence_id in [v["silence"]["silence_id"] for v in listed]
        ended_by_viewer = await client.delete(f"/api/v1/silences/{silence_id}")
        assert ended_by_viewer.status_code == 403 and "operator" in ended_by_viewer.json()["detail"]
    async with api_server.client("otto") as client:
        ended = await client.delete(f"/api/v1/silences/{silence_id}")
        assert ended.status_code == 200, ended.text
        assert ended.json()["over"] is True and ended.json()["silence"]["ended_by"] == "otto"
        again = await client.delete(f"/api/v1/silences/{silence_id}")
        assert again.status_code == 409 and "over already" in again.json()["detail"]
        assert (await client.get("/api/v1/silences/nope")).status_code == 404
    states = await on_topic(api_server, SILENCES, Silence, silence_id=silence_id)
    assert [s.ended_at is not None for s in states] == [False, True]
    audited = await on_topic(api_server, AUDIT_ENTRIES, AuditEntry, subject_id=silence_id)
    assert [(e.action, e.actor) for e in audited] == [("silence.created", "otto"), ("silence.ended", "otto")]
    assert audited[0].details["comment"] == "redis upgrade CHG-42" and audited[0].details["services"] == ["checkout"]


async def test_recurring_window_is_kept_with_its_zone(api_server: ApiServer) -> None:
    body = {"resources": ["cache-1"], "schedule": "Sun 02:00-04:00", "timezone": "Europe/Berlin",
            "comment": "weekly patching"}
    async with api_server.client("ada") as client:
        created = await client.post("/api/v1/silences", json=body)
    assert created.status_code == 201, created.text
    silence = created.json()["silence"]
    assert silence["schedule"] == "Sun 02:00-04:00" and silence["ends_at"] is None
    assert silence["timezone"] == "Europe/Berlin"


async def test_tenants_are_kept_apart(api_server: ApiServer) -> None:
    async with api_server.client("acme-op") as client:
        other = await client.post("/api/v1/silences", json={"for_s": 60, "comment": "x", "tenant": "default"})
        assert other.status_code == 403 and "tenant acme" in other.json()["detail"]
        own = await client.post("/api/v1/silences", json={"for_s": 600, "comment": "acme db move"})
        assert own.status_code == 201 and own.json()["silence"]["tenant"] == "acme"
        acme_id = own.json()["silence"]["silence_id"]
    async with api_server.client("otto") as client:
        default = await client.post("/api/v1/silences", json={"resources": ["db-default-work"], "for_s": 600,
                                                               "comment": "default work"})
        default_id = default.json()["silence"]["silence_id"]
    async with api_server.client("acme-viewer") as client:
        seen = [v["silence"]["silence_id"] for v in (await client.get("/api/v1/silences")).json()["items"]]
        assert acme_id in seen and default_id not in seen
        assert (await client.get(f"/api/v1/silences/{default_id}")).status_code == 404
    async with api_server.client("acme-op") as client:
        assert (await client.delete(f"/api/v1/silences/{default_id}")).status_code == 404
    denied = await on_topic(api_server, AUDIT_ENTRIES, AuditEntry, action="api.denied", actor="acme-op")
    assert any(e.details.get("asked_tenant") == "default" for e in denied)


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"schedule": "Sun 25:00-04:00", "comment": "x"}, 422, "not a time of day"),
    ({"schedule": "0 2 * * 0", "comment": "x"}, 422, "needs duration_s"),
    ({"schedule": "Sun 02:00-04:00", "timezone": "Mars/Base", "comment": "x"}, 422, "unknown time zone"),
    ({"comment": "x"}, 422, "needs ends_at"),
    ({"for_s": 60, "comment": "   "}, 422, "comment must not be blank"),
    ({"for_s": 60, "comment": "x", "service": ["typo"]}, 422, "service"),
    ({"for_s": 60, "ends_at": "2030-01-01T00:00:00Z", "comment": "x"}, 400, "not both"),
    ({"ends_at": (utcnow() - timedelta(hours=1)).isoformat(), "starts_at": (utcnow() - timedelta(hours=2))
      .isoformat(), "comment": "x"}, 422, "in the past"),
])
async def test_bad_silences_get_a_clear_4xx(api_server: ApiServer, body: dict, status: int, words: str) -> None:
    async with api_server.client("otto") as client:
        response = await client.post("/api/v1/silences", json=body)
    assert response.status_code == status, response.text
    assert words in str(response.json()["detail"])


async def test_cli_adds_lists_and_ends_a_window(api_server: ApiServer) -> None:
    from tests.test_cli_remote import kubestack

    code, text, err = await kubestack(api_server, "silence", "add", "--resource", "orders-db", "--label", "env=prod",
                                      "--schedule", "0 1 * * 6", "--duration", "3h", "--tz", "Asia/Shanghai",
                                      "--comment", "weekly vacuum")
    assert code == 0, err
    silence_id = text.split()[1]
    assert "orders-db, env=prod" in text and "0 1 * * 6 for 10800s (Asia/Shanghai)" in text
    code, text, err = await kubestack(api_server, "silence", "list")
    assert code == 0 and silence_id in text and "weekly vacuum" in text
    code, text, err = await kubestack(api_server, "silence", "end", silence_id, "--reason", "done early")
    assert code == 0 and f"silence {silence_id} ended" in text and "by otto" in text
    code, _, err = await kubestack(api_server, "silence", "end", silence_id)
    assert code != 0 and "409" in err and "over already" in err
    code, _, err = await kubestack(api_server, "silence", "add", "--for", "2x", "--comment", "x")
    assert code != 0 and "not a duration" in err
    code, _, err = await kubestack(api_server, "silence", "add", "--for", "1h", "--comment", "x", token="vera")
    assert code != 0 and "403" in err and "operator" in err
