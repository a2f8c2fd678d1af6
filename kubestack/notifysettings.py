"""Settings of the notification stage: channels, routes, de-duplication, rate limits, retries.

A channel is configured when its secret is: Slack by ``slack.webhook_url``, PagerDuty by
``pagerduty.routing_key``, each webhook by its entry in ``webhooks``. Channel names, as routes and
``Notification.channel`` spell them: ``slack``, ``pagerduty``, ``webhook:<name>``.

With no ``routes`` every configured channel hears about everything; otherwise a notice goes to the channels of
every route it matches (a route's channels are globs: ``webhook:*``, ``*``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from kubestack.contract.events import Severity
from kubestack.errors import ConfigError

NoticeKind = Literal["incident", "rca", "approval", "result", "prediction"]
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RateLimitSettings(_Section):
    """A token bucket per channel: ``burst`` notices at once, refilled at ``per_minute``."""

    burst: int = Field(default=10, ge=1)
    per_minute: float = Field(default=30.0, gt=0)


class SlackSettings(_Section):
    webhook_url: SecretStr | None = Field(default=None, description="Incoming webhook URL (it is a credential)")
    signing_secret: SecretStr | None = Field(default=None,
                                             description="Verifies Slack's interactivity callbacks (buttons)")
    rate_limit: RateLimitSettings = Field(default_factory=lambda: RateLimitSettings(burst=5, per_minute=60),
                                          description="Slack accepts about one message per second per webhook")


class PagerDutySettings(_Section):
    events_url: str = Field(default=PAGERDUTY_EVENTS_URL, description="Events API v2 endpoint")
    routing_key: SecretStr | None = Field(default=None, description="Integration key of the service (32 chars)")
    rate_limit: RateLimitSettings = Field(default_factory=lambda: RateLimitSettings(burst=20, per_minute=120))

    @model_validator(mode="after")
    def _key_shape(self) -> PagerDutySettings:
        if self.routing_key is not None and len(self.routing_key.get_secret_value()) != 32:
            raise ValueError("pagerduty.routing_key must be the 32-character integration key of a service")
        return self


class WebhookSettings(_Section):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Channel name is webhook:<name>")
    url: str = Field(pattern=r"^https?://", description="Where the signed JSON envelope is POSTed")
    secret: SecretStr = Field(description="HMAC-SHA256 key of the X-KubeStack-Signature header")
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)


class RouteSettings(_Section):
    """Which notices go to which channels. Empty lists match everything."""

    name: str = ""
    min_severity: Severity = Severity.INFO
    services: list[str] = Field(default_factory=list,
                                description="Globs over resource kinds, resource keys and 'service' labels")
    tenants: list[str] = Field(default_factory=list, description="Globs over tenant names")
    kinds: list[NoticeKind] = Field(default_factory=list, description="incident, rca, approval, result, prediction")
    channels: list[str] = Field(min_length=1, description="Channel names or globs: slack, pagerduty, webhook:*")


class RetrySettings(_Section):
    max_attempts: int = Field(default=4, ge=1, description="Per notice and channel, the first try included")
    backoff_base_s: float = Field(default=1.0, gt=0, description="Delay before the 2nd attempt, doubling after")
    backoff_max_s: float = Field(default=30.0, gt=0)
    retry_after_max_s: float = Field(default=120.0, ge=0,
                                     description="A 429 asking to wait longer than this is given up on")
    timeout_s: float = Field(default=10.0, gt=0, description="Per HTTP attempt")


class NotifySettings(_Section):
    """The notification stage (``settings.notify``)."""

    console_url: str = Field(default="http://127.0.0.1:8080",
                             description="Base URL of the console for links (<base>/#/incidents/<id>); with "
                                         "redact_ips use a host name, not an IP")
    slack: SlackSettings = Field(default_factory=SlackSettings)
    pagerduty: PagerDutySettings = Field(default_factory=PagerDutySettings)
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    routes: list[RouteSettings] = Field(default_factory=list)
    dedup_window_s: float = Field(default=3600.0, ge=0,
                                  description="The same content about the same subject is not sent again this soon; "
                                              "a status change always goes")
    retry: RetrySettings = Field(default_factory=RetrySettings)
    failing_after: int = Field(default=3, ge=1,
                               description="Consecutive failed notices before the other channels hear a channel is "
                                           "down (once per outage)")
    max_deferred: int = Field(default=100, ge=0, description="Rate-limited notices kept per channel for later")
    redact_ips: bool = Field(default=False, description="Also replace IP addresses in what is sent")

    @model_validator(mode="after")
    def _consistent(self) -> NotifySettings:
        names = [hook.name for hook in self.webhooks]
        if len(names) != len(set(names)):
            raise ValueError(f"webhook names must be unique, got {names}")
        configured = self.channel_names()
        for route in self.routes:
            for pattern in route.channels:
                literal = not any(c in pattern for c in "*?[")
                if literal and pattern not in configured:
                    raise ValueError(f"route {route.name or route.channels} names channel {pattern!r}, which is not "
                                     f"configured (configured: {', '.join(configured) or 'none'})")
        return self

    def channel_names(self) -> list[str]:
        """The configured channels, in a stable order."""
        names = ["slack"] if self.slack.webhook_url is not None else []
        names += ["pagerduty"] if self.pagerduty.routing_key is not None else []
        return names + [f"webhook:{hook.name}" for hook in self.webhooks]

    def rate_limit(self, channel: str) -> RateLimitSettings:
        if channel == "slack":
            return self.slack.rate_limit
        if channel == "pagerduty":
            return self.pagerduty.rate_limit
        return self.webhook(channel).rate_limit

    def webhook(self, channel: str) -> WebhookSettings:
        name = channel.removeprefix("webhook:")
        for hook in self.webhooks:
            if hook.name == name:
                return hook
        raise ConfigError(f"no webhook named {name!r} in notify.webhooks")

