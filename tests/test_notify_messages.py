"""What each channel gets for each event: Slack Block Kit, PagerDuty Events v2, signed webhooks; all redacted."""

from __future__ import annotations

import json

from kubestack.contract.events import IncidentStatus, PredictionStatus, ResultStatus, Risk, Severity
from kubestack.notifysettings import NotifySettings
from kubestack.pipeline.notify.messages import render
from kubestack.pipeline.notify.notice import ChannelAlert, ChannelState, Context, channel_notice, notice_for
from kubestack.pipeline.notify.webhook import sign_headers, verify_webhook_signature
from tests.notify_events import T0, incident, prediction, proposal, rca, result, signal
from tests.services.receivers import pagerduty_problems, slack_problem

ROUTING_KEY = "k" * 32
SETTINGS = NotifySettings.model_validate({
    "console_url": "https://console.example.com/",
    "slack": {"webhook_url": "https://hooks.slack.com/services/T0/B0/x"},
    "pagerduty": {"routing_key": ROUTING_KEY},
    "webhooks": [{"name": "ops", "url": "https://hooks.example.com/k", "secret": "s3cret"}],
})


def _blocks(payload: dict, kind: str) -> list[dict]:
    return [block for block in payload["blocks"] if block["type"] == kind]


def _all_text(payload: dict) -> str:
    return json.dumps(payload)


def test_slack_incident_has_header_fields_summary_and_console_link() -> None:
    notice = notice_for(incident())
    payload = render(notice, "slack", SETTINGS).payload
    assert slack_problem(payload) is None
    assert payload["blocks"][0]["type"] == "header"
    assert "Redis memory pressure" in payload["blocks"][0]["text"]["text"]
    fields = " ".join(f["text"] for f in _blocks(payload, "section")[0]["fields"])
    assert "*Severity*\nCRITICAL" in fields and "`prod-eu/shop/redis/cache-1`" in fields
    assert "`prod-eu/db-1/mysql/orders`" in fields
    assert "Redis evicts keys after a config change" in _all_text(payload)
    context = _blocks(payload, "context")[0]["elements"][0]["text"]
    assert "<https://console.example.com/#/incidents/inc-1|Open in console>" in context
    assert "`inc-1`" in context
    assert payload["text"] == "[CRITICAL] Redis memory pressure"


def test_slack_incident_carries_the_top_hypothesis_once_the_rca_is_known() -> None:
    payload = render(notice_for(incident(), Context(rca=rca())), "slack", SETTINGS).payload
    text = _all_text(payload)
    assert "*Likely cause* (90%): maxmemory lowered on `prod-eu/shop/redis/cache-1`" in text
    assert "*Runbook*: redis/memory-pressure" in text
    assert "slow queries" not in text  # only the top one on the incident message


def test_slack_rca_report_lists_hypotheses_and_narrative() -> None:
    notice = notice_for(rca(), Context(incident=incident()))
    payload = render(notice, "slack", SETTINGS).payload
    assert slack_problem(payload) is None
    assert notice.kind == "rca" and notice.subject_id == "inc-1" and notice.severity is Severity.CRITICAL
    text = _all_text(payload)
    assert "1. *Likely cause* (90%)" in text and "2. *Likely cause* (30%): slow queries" in text
    assert "evictions rose [e2]" in text


def test_slack_pending_proposal_shows_the_action_and_approve_reject_buttons() -> None:
    notice = notice_for(result(ResultStatus.PENDING), Context(incident=incident(), proposal=proposal()))
    payload = render(notice, "slack", SETTINGS).payload
    assert slack_problem(payload) is None
    assert notice.kind == "approval" and notice.subject_id == "prop-1"
    fields = " ".join(f["text"] for f in _blocks(payload, "section")[0]["fields"])
    for expected in ("`redis.config_set`", "`prod-eu/shop/redis/cache-1`", "MEDIUM", "evictions stop within a minute",
                     "CONFIG SET maxmemory 1gb"):
        assert expected in fields
    (actions,) = _blocks(payload, "actions")
    approve, reject = actions["elements"]
    assert (approve["action_id"], approve["style"], reject["action_id"], reject["style"]) == \
        ("approve", "primary", "reject", "danger")
    assert json.loads(approve["value"]) == json.loads(reject["value"]) == {"proposal_id": "prop-1",
                                                                           "incident_id": "inc-1"}


def test_a_forbidden_proposal_gets_no_buttons() -> None:
    notice = notice_for(result(ResultStatus.PENDING), Context(proposal=proposal(risk=Risk.FORBIDDEN)))
    payload = render(notice, "slack", SETTINGS).payload
    assert _blocks(payload, "actions") == []
    assert "*forbidden* by policy" in _all_text(payload)


def test_slack_result_and_prediction_messages() -> None:
    done = render(notice_for(result(ResultStatus.FAILED, output="ERR connection refused"),
                             Context(proposal=proposal())), "slack", SETTINGS).payload
    assert slack_problem(done) is None
    assert "Remediation failed: redis.config_set on prod-eu/shop/redis/cache-1" in done["blocks"][0]["text"]["text"]
    assert "```ERR connection refused```" in _all_text(done)
    forecast = notice_for(prediction(hours=6))
    assert forecast.title == "disk_used_bytes on orders runs out in ~6 h"
    payload = render(forecast, "slack", SETTINGS).payload
    assert slack_problem(payload) is None
    assert "2025-03-01 16:00 UTC" in _all_text(payload)  # the earliest exhaustion
    assert "https://console.example.com/#/predictions" in _all_text(payload)


def test_slack_stays_within_block_kit_limits_for_huge_content() -> None:
    huge = incident(title="T" * 253, summary="x" * 9000,
                    signals=[signal(f"s{i}", minutes=i, summary="y" * 500) for i in range(40)])
    payload = render(notice_for(huge), "slack", SETTINGS).payload
    assert slack_problem(payload) is None
    assert len(payload["blocks"][0]["text"]["text"]) == 150
    output = render(notice_for(result(ResultStatus.EXECUTED, output="z" * 50_000)), "slack", SETTINGS).payload
    assert slack_problem(output) is None


def test_pagerduty_triggers_an_incident_with_its_id_as_dedup_key() -> None:
    notice = notice_for(incident(summary="s" * 5000), Context(rca=rca()))
    event = render(notice, "pagerduty", SETTINGS).payload
    assert pagerduty_problems(event) == []
    assert event["routing_key"] == ROUTING_KEY
    assert (event["event_action"], event["dedup_key"]) == ("trigger", "inc-1")
    payload = event["payload"]
    assert len(payload["summary"]) <= 1024
    assert payload["summary"].startswith("[CRITICAL] Redis memory pressure - likely cause: maxmemory lowered")
    assert (payload["source"], payload["severity"], payload["component"], payload["group"], payload["class"]) == \
        ("prod-eu/shop/redis/cache-1", "critical", "redis/cache-1", "checkout", "redis.maxmemory_lowered")
    details = payload["custom_details"]
    assert details["signals"][0]["name"] == "redis.maxmemory_lowered"
    assert details["rca"]["hypotheses"][0]["cause"] == "maxmemory lowered"
    assert event["links"][0]["href"] == "https://console.example.com/#/incidents/inc-1"


def test_pagerduty_severity_mapping_resolve_and_what_does_not_page() -> None:
    warning = render(notice_for(incident(severity=Severity.WARNING)), "pagerduty", SETTINGS).payload
    assert warning["payload"]["severity"] == "warning"
    resolved = render(notice_for(incident(status=IncidentStatus.RESOLVED)), "pagerduty", SETTINGS).payload
    assert resolved == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "inc-1"}
    assert render(notice_for(result(ResultStatus.PENDING)), "pagerduty", SETTINGS) is None
    assert render(notice_for(rca()), "pagerduty", SETTINGS) is None  # no incident known: nothing to update
    update = render(notice_for(rca(), Context(incident=incident())), "pagerduty", SETTINGS).payload
    assert (update["event_action"], update["dedup_key"]) == ("trigger", "inc-1")
    withdrawn = render(notice_for(prediction(status=PredictionStatus.WITHDRAWN)), "pagerduty", SETTINGS).payload
    assert (withdrawn["event_action"], withdrawn["dedup_key"]) == ("resolve", "pred-1")
    down = channel_notice(ChannelAlert("slack", ChannelState.DOWN, 3, "HTTP 500", T0))
    page = render(down, "pagerduty", SETTINGS).payload
    assert pagerduty_problems(page) == [] and page["payload"]["severity"] == "error"


def test_webhook_envelope_is_signed_and_a_tampered_body_does_not_verify() -> None:
    out = render(notice_for(incident()), "webhook:ops", SETTINGS)
    body = out.body()
    envelope = json.loads(body)
    assert envelope["type"] == "incident.open" and envelope["event"]["incident_id"] == "inc-1"
    headers = out.headers(body, timestamp=1_700_000_000)
    assert headers["X-KubeStack-Signature"].startswith("v1=")
    args = ("s3cret", body, headers["X-KubeStack-Timestamp"], headers["X-KubeStack-Signature"])
    assert verify_webhook_signature(*args, now=1_700_000_100)
    assert not verify_webhook_signature("s3cret", body.replace(b"inc-1", b"inc-2"), *args[2:], now=1_700_000_100)
    assert not verify_webhook_signature("other", *args[1:], now=1_700_000_100)
    assert not verify_webhook_signature(*args, now=1_700_000_000 + 301)  # a replay, too late
    assert not verify_webhook_signature("s3cret", body, None, args[3])
    rotated = f"v1={'0' * 64}, {args[3]}"
    assert verify_webhook_signature("s3cret", body, args[2], rotated, now=1_700_000_000)
    assert sign_headers("s3cret", body, 1_700_000_000) == headers


def test_every_channel_gets_the_summary_redacted() -> None:
    secret = incident(summary="login failed: password=hunter2 for admin@example.com via redis://:s3cr3t@cache:6379",
                      signals=[signal(summary="AUTH requirepass hunter2")])
    notice = notice_for(secret, Context(rca=rca()))
    for channel in ("slack", "pagerduty", "webhook:ops"):
        text = render(notice, channel, SETTINGS).body().decode()
        assert "hunter2" not in text and "s3cr3t" not in text and "admin@example.com" not in text, channel
        assert ("&lt;redacted&gt;" if channel == "slack" else "<redacted>") in text, channel


def test_fingerprint_ignores_refreshes_and_sees_new_content() -> None:
    first = notice_for(incident(revision=1))
    refresh = notice_for(incident(revision=2, signals=[signal(minutes=5)]))
    assert first.fingerprint == refresh.fingerprint
    more = notice_for(incident(revision=3, signals=[signal(), signal("mysql.slow_queries", minutes=6)]))
    assert more.fingerprint != first.fingerprint
    assert notice_for(incident(), Context(rca=rca())).fingerprint != first.fingerprint
    assert notice_for(proposal()) is None


def test_slack_escapes_event_text_so_it_cannot_ping_or_fake_links() -> None:
    sneaky = incident(summary="<!channel> see <http://evil.example|the console> & token=abc123xyz")
    payload = render(notice_for(sneaky), "slack", SETTINGS).payload
    text = _all_text(payload)
    assert "<!channel>" not in text and "<http://evil.example" not in text
    assert "&lt;!channel&gt;" in text and "&amp;" in text
    assert "abc123xyz" not in text and "token=&lt;redacted&gt;" in text


def test_the_slack_safety_net_catches_text_a_renderer_let_through() -> None:
    from kubestack.pipeline.notify.messages import _recheck_slack

    checked = _recheck_slack({"blocks": [{"text": "ok &lt;redacted&gt; <http://x/#/y|link>"},
                                         {"text": "oops password=hunter2 <http://x|link>"}]}, False)
    assert checked["blocks"][0]["text"] == "ok &lt;redacted&gt; <http://x/#/y|link>"
    assert checked["blocks"][1]["text"] == "oops password=&lt;redacted&gt; &lt;http://x|link&gt;"
