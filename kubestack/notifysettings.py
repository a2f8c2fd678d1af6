"""Settings of the notification stage: channels, routes, de-duplication, rate limits, retries.

A channel is configured when its secret is: Slack by ``slack.webhook_url``, PagerDuty by
``pagerduty.routing_key``, each webhook by its entry in ``webhooks``, Microsoft Teams by ``teams.webhook_url``,
Opsgenie by ``opsgenie.api_key``, e-mail by ``email.host``, Feishu/Lark, DingTalk and WeCom by their
``webhook_url``. Channel names, as routes and ``Notification.channel`` spell them: ``slack``, ``pagerduty``,
``webhook:<name>``, ``teams``, ``opsgenie``, ``email``, ``feishu``, ``dingtalk``, ``wecom``.

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
OPSGENIE_API_URLS = {"us": "https://api.opsgenie.com", "eu": "https://api.eu.opsgenie.com"}
VENDOR_CHANNELS = ("teams", "opsgenie", "email", "feishu", "dingtalk", "wecom")


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


class TeamsSettings(_Section):
    """Microsoft Teams through a Workflows (Power Automate) webhook: "Post to a channel when a webhook request is
    received". Approve/reject buttons open the API's decision page (Action.OpenUrl), where a token decides."""

    webhook_url: SecretStr | None = Field(default=None, description="The workflow's HTTP trigger URL (its sig= "
                                                                    "query parameter is a credential)")
    rate_limit: RateLimitSettings = Field(default_factory=lambda: RateLimitSettings(burst=4, per_minute=60),
                                          description="Teams throttles a channel at about 4 messages a second")


class OpsgenieSettings(_Section):
    """Opsgenie alerts API v2: an alert per incident (alias = incident id) created, acknowledged, closed."""

    api_key: SecretStr | None = Field(default=None, description="Key of an API integration (GenieKey ...)")
    region: Literal["us", "eu"] = Field(default="us", description="us: api.opsgenie.com, eu: api.eu.opsgenie.com")
    api_url: str | None = Field(default=None, pattern=r"^https?://",
                                description="Overrides the region's base URL (a proxy, a test receiver)")
    responders: list[dict[str, str]] = Field(default_factory=list,
                                             description='e.g. [{"type": "team", "name": "SRE"}]')
    tags: list[str] = Field(default_factory=lambda: ["kubestack"], max_length=20)
    rate_limit: RateLimitSettings = Field(default_factory=lambda: RateLimitSettings(burst=20, per_minute=120))

    @property
    def base_url(self) -> str:
        return (self.api_url or OPSGENIE_API_URLS[self.region]).rstrip("/")


class EmailSettings(_Section):
    """E-mail over SMTP: STARTTLS on the submission port (or implicit TLS with ``tls: "implicit"``), then AUTH."""

    host: str | None = Field(default=None, description="SMTP server; the channel is on when this is set")
    port: int = Field(default=587, ge=1, le=65535)
    tls: Literal["starttls", "implicit"] = Field(default="starttls",
                                                 description="starttls (port 587) or implicit TLS (port 465); never "
                                                             "plain text")
    ca_file: str | None = Field(default=None, description="CA bundle to verify the server with (default: system)")
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(default="kubestack@localhost", pattern=r"^[^@\s]+@[^@\s]+$", description="From address")
    recipients: list[str] = Field(default_factory=list, description="To addresses")
    subject_prefix: str = Field(default="[KubeStack]", max_length=40)
    rate_limit: RateLimitSettings = Field(default_factory=lambda: RateLimitSettings(burst=10, per_minute=20))

    @model_validator(mode="after")
    def _complete(self) -> EmailSettings:
        if self.host is None:
            return self
        if not self.recipients:
            raise ValueError("email.recipients must name at least one address when email.host is set")
        bad = [r for r in self.recipients if "@" not in r or any(c.isspace() for c in r)]
        if bad:
            raise ValueError(f"email.recipients are not addresses: {bad}")
        if (self.username is None) != (self.password is None):
            raise ValueError("email.username and email.password go together")
        return self


class SignedWebhookSettings(_Section):
    webhook_url: SecretStr | None = Field(default=None, description="The bot's webhook URL (it is a credential)")
    secret: SecretStr | None = Field(default=None, description="The bot's signing secret (signature check on)")
    rate_limit: RateLimitSettings = Field(default_factory=lambda: RateLimitSettings(burst=5, per_minute=15),
                                          description="DingTalk takes 20 messages a minute per robot: a burst of 5 "
                                                      "and 15 a minute never send more in any minute")


class FeishuSettings(SignedWebhookSettings):
    """Feishu / Lark custom bot (open.feishu.cn or open.larksuite.com /open-apis/bot/v2/hook/<token>)."""

    rate_limit: RateLimitSettings = Field(default_factory=lambda: RateLimitSettings(burst=5, per_minute=60),
                                          description="Feishu takes 100 messages a minute and 5 a second per bot")


class DingTalkSettings(SignedWebhookSettings):
    """DingTalk custom robot (oapi.dingtalk.com/robot/send?access_token=...), signed ("加签") when secret is set."""


class WeComSettings(_Section):
    """WeCom (WeChat Work) group robot (qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...): the key is the secret."""

    webhook_url: SecretStr | None = Field(default=None, description="The robot's webhook URL with its key")
    rate_limit: RateLimitSettings = Field(default_factory=lambda: RateLimitSettings(burst=5, per_minute=15),
                                          description="WeCom takes 20 messages a minute per robot: a burst of 5 "
                                                      "and 15 a minute never send more in any minute")


class RouteSettings(_Section):
    """Which notices go to which channels. Empty lists match everything."""

    name: str = ""
    min_severity: Severity = Severity.INFO
    services: list[str] = Field(default_factory=list,
                                description="Globs over resource kinds, resource keys and 'service' labels")
    tenants: list[str] = Field(default_factory=list, description="Globs over tenant names")
    kinds: list[NoticeKind] = Field(default_factory=list, description="incident, rca, approval, result, prediction")
    channels: list[str] = Field(min_length=1, description="Channel names or globs: slack, pagerduty, webhook:*, teams, "
                                                                   "opsgenie, email, feishu, dingtalk, wecom")


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
    teams: TeamsSettings = Field(default_factory=TeamsSettings)
    opsgenie: OpsgenieSettings = Field(default_factory=OpsgenieSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    feishu: FeishuSettings = Field(default_factory=FeishuSettings)
    dingtalk: DingTalkSettings = Field(default_factory=DingTalkSettings)
    wecom: WeComSettings = Field(default_factory=WeComSettings)
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
        names += [f"webhook:{hook.name}" for hook in self.webhooks]
        return names + [name for name in VENDOR_CHANNELS if self._vendor_configured(name)]

    def _vendor_configured(self, name: str) -> bool:
        section = getattr(self, name)
        if name == "opsgenie":
            return section.api_key is not None
        if name == "email":
            return section.host is not None
        return section.webhook_url is not None

    def rate_limit(self, channel: str) -> RateLimitSettings:
        if channel == "slack":
            return self.slack.rate_limit
        if channel == "pagerduty":
            return self.pagerduty.rate_limit
        if channel in VENDOR_CHANNELS:
            return getattr(self, channel).rate_limit
        return self.webhook(channel).rate_limit

    def webhook(self, channel: str) -> WebhookSettings:
        name = channel.removeprefix("webhook:")
        for hook in self.webhooks:
            if hook.name == name:
                return hook
        raise ConfigError(f"no webhook named {name!r} in notify.webhooks")

