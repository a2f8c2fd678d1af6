"""Routes, de-duplication, token buckets and channel health: pure, the time passed in."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kubestack.contract.events import IncidentStatus, ResultStatus, Severity
from kubestack.notifysettings import NotifySettings, RateLimitSettings
from kubestack.pipeline.notify.notice import ChannelState, Context, notice_for
from kubestack.pipeline.notify.routing import ChannelHealth, Deduplicator, TokenBucket, route
from tests.notify_events import incident, prediction, proposal, result, signal

CHANNELS = {
    "slack": {"webhook_url": "https://hooks.slack.com/services/T0/B0/x"},
    "pagerduty": {"routing_key": "k" * 32},
    "webhooks": [{"name": "ops", "url": "https://ops.example.com/hook", "secret": "a"},
                 {"name": "audit", "url": "https://audit.example.com/hook", "secret": "b"}],
}


def settings(**extra: object) -> NotifySettings:
    return NotifySettings.model_validate(CHANNELS | extra)


def test_without_routes_every_configured_channel_hears_everything() -> None:
    assert route(notice_for(incident(severity=Severity.INFO)), settings()) == \
        ["slack", "pagerduty", "webhook:ops", "webhook:audit"]
    assert route(notice_for(incident()), NotifySettings()) == []  # nothing configured


def test_routes_match_severity_services_tenants_and_kinds_and_add_up() -> None:
    config = settings(routes=[
        {"name": "page", "min_severity": "critical", "kinds": ["incident"], "channels": ["pagerduty"]},
        {"name": "databases", "services": ["mysql", "postgresql"], "channels": ["slack"]},
        {"name": "checkout", "services": ["checkout"], "tenants": ["acme"], "channels": ["webhook:*"]},
        {"name": "prod", "services": ["prod-eu/shop/*"], "min_severity": "warning", "channels": ["slack"]},
    ])
    critical = notice_for(incident(severity=Severity.CRITICAL))  # redis in shop (service checkout) and mysql
    assert route(critical, config) == ["slack", "pagerduty", "webhook:ops", "webhook:audit"]
    other_tenant = notice_for(incident(severity=Severity.WARNING, tenant="globex"))
    assert route(other_tenant, config) == ["slack"]  # databases (mysql among its resources) and prod
    approval = notice_for(result(ResultStatus.PENDING, tenant="globex"), Context(proposal=proposal()))
    assert approval.severity is Severity.WARNING
    assert route(approval, config) == ["slack"]  # not paged: kinds of "page" is incident only
    forecast = notice_for(prediction())  # mysql on a host, warning
    assert route(forecast, config) == ["slack"]
    quiet = settings(routes=[{"min_severity": "critical", "channels": ["slack"]}])
    assert route(notice_for(incident(severity=Severity.WARNING)), quiet) == []


def test_settings_refuse_routes_to_unconfigured_channels_and_bad_keys() -> None:
    with pytest.raises(ValidationError, match="names channel 'pagerduty', which is not configured"):
        NotifySettings.model_validate({"slack": CHANNELS["slack"], "routes": [{"channels": ["pagerduty"]}]})
    with pytest.raises(ValidationError, match="32-character"):
        NotifySettings.model_validate({"pagerduty": {"routing_key": "short"}})
    with pytest.raises(ValidationError, match="unique"):
        NotifySettings.model_validate({"webhooks": [CHANNELS["webhooks"][0], CHANNELS["webhooks"][0]]})
    with pytest.raises(ValidationError, match="extra"):
        NotifySettings.model_validate({"slak": {}})
    assert settings(routes=[{"channels": ["webhook:*", "slack"]}]).routes[0].channels == \
        ["webhook:*", "slack"]


def test_dedup_drops_the_same_content_within_the_window_but_never_a_status_change() -> None:
    dedup = Deduplicator(window_s=600)
    first = notice_for(incident(revision=1))
    assert not dedup.is_repeat("slack", first, now=0)
    dedup.delivered("slack", first, now=0)
    refresh = notice_for(incident(revision=2, signals=[signal(minutes=3)]))
    assert dedup.is_repeat("slack", refresh, now=60)
    assert not dedup.is_repeat("pagerduty", refresh, now=60)  # each channel on its own
    assert not dedup.is_repeat("slack", refresh, now=601)  # the window has passed: a reminder
    changed = notice_for(incident(revision=3, signals=[signal(), signal("mysql.slow_queries", minutes=4)]))
    assert not dedup.is_repeat("slack", changed, now=61)
    resolved = notice_for(incident(revision=4, status=IncidentStatus.RESOLVED))
    dedup.delivered("slack", resolved, now=62)
    reopened = notice_for(incident(revision=5))  # same content as the first, status changed back
    assert not dedup.is_repeat("slack", reopened, now=63)


def test_dedup_keeps_subjects_apart_and_stays_bounded() -> None:
    dedup = Deduplicator(window_s=600, max_remembered=2)
    for number in range(3):
        dedup.delivered("slack", notice_for(incident(incident_id=f"inc-{number}")), now=number)
    assert not dedup.is_repeat("slack", notice_for(incident(incident_id="inc-0")), now=5)  # forgotten
    assert dedup.is_repeat("slack", notice_for(incident(incident_id="inc-2")), now=5)
    pending = notice_for(result(ResultStatus.PENDING))
    dedup.delivered("slack", pending, now=5)
    assert not dedup.is_repeat("slack", notice_for(result(ResultStatus.APPROVED)), now=6)


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(RateLimitSettings(burst=3, per_minute=6), now=100.0)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_s(100.0) == pytest.approx(10.0)
    assert not bucket.take(105.0)
    assert bucket.take(110.0)
    assert not bucket.take(110.0)
    assert [bucket.take(1000.0) for _ in range(4)] == [True, True, True, False]  # refilled only up to the burst


def test_channel_health_says_down_once_per_outage_and_restored_once() -> None:
    health = ChannelHealth(failing_after=3)
    assert health.failed("slack", "HTTP 500", now=1) is None
    assert health.delivered("slack", now=2) is None  # a success before the threshold just resets
    assert [health.failed("slack", "HTTP 500", now=t) for t in (3, 4)] == [None, None]
    down = health.failed("slack", "HTTP 503", now=5)
    assert (down.channel, down.state, down.failures, down.error, down.since) == \
        ("slack", ChannelState.DOWN, 3, "HTTP 503", 3)
    assert health.is_down("slack") and not health.is_down("pagerduty")
    assert [health.failed("slack", "HTTP 500", now=t) for t in range(6, 20)] == [None] * 14
    restored = health.delivered("slack", now=30)
    assert (restored.state, restored.failures, restored.since) == (ChannelState.RESTORED, 17, 30)
    assert not health.is_down("slack") and health.delivered("slack", now=31) is None
