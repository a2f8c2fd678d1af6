"""``ApiSettings``: where the API listens, who may use it, and what it may reach.

Tokens are stored as SHA-256 hashes only (``kubestack api token`` makes one and prints the line to add).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class TokenSpec(BaseModel):
    """One API token: who holds it, what it may do, which tenant it sees (None: all)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@:-]+$",
                      description="Who holds the token: the actor of their decisions and audit entries")
    role: Role
    tenant: str | None = Field(default=None, min_length=1, description="Only this tenant's data; None: every tenant")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the token; the token is never stored")


class SlackUser(BaseModel):
    """Who a Slack user is when they press Approve or Reject: the holder of an API token (its role and tenant), or a
    role and the tenants whose proposals they decide. A Slack user not in ``api.slack_users`` decides nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str | None = Field(default=None, description="Name of an api.tokens entry: its role and tenant")
    role: Role | None = Field(default=None, description="Without token: the role (operator or admin to decide)")
    tenants: list[str] | None = Field(default=None, min_length=1, description=(
        "Without token: the tenants whose proposals they decide; None: every tenant"))

    @model_validator(mode="after")
    def _one_source(self) -> SlackUser:
        if (self.token is None) == (self.role is None):
            raise ValueError("give either token (an api.tokens name) or role (with tenants, or none for every tenant)")
        if self.token is not None and self.tenants is not None:
            raise ValueError("tenants come with the token; give them only with role")
        return self


class ApiSettings(BaseModel):
    """The REST API and web console (``kubestack api serve``)."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    tokens: list[TokenSpec] = Field(default_factory=list,
                                    description="Without any, `kubestack api serve` makes an admin token per run")
    slack_signing_secret: SecretStr | None = Field(default=None, description="Verifies Slack button callbacks")
    pagerduty_webhook_secret: SecretStr | None = Field(default=None, description=(
        "Verifies PagerDuty v3 webhooks (X-PagerDuty-Signature); without it the webhook is refused"))
    slack_users: dict[str, SlackUser] = Field(default_factory=dict, description=(
        "Slack user id (U0CA5...) to who they are here; only these may approve or reject with Slack's buttons"))
    console_enabled: bool = True
    agent_config: Path | None = Field(default=None, description="agent.yaml whose targets diagnose can check")
    feed_group: str = Field(default="kubestack-api", min_length=1, description="Consumer group of the read model")
    diagnose_timeout_s: float = Field(default=15.0, gt=0, description="Longest a target's checks may take")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description=(
        "Largest request body taken; a larger one is a 413 before it is read (decisions and Slack callbacks are a "
        "few kilobytes)"))
    metrics_public: bool = Field(default=False, description=(
        "Serve /metrics without a token (for a scraper that cannot send one); by default it needs any role's"))

    @model_validator(mode="after")
    def _unique_token_names(self) -> ApiSettings:
        names = [t.name for t in self.tokens]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"api.tokens: names must be unique, repeated: {', '.join(twice)}")
        unknown = sorted({f"{uid} ({u.token})" for uid, u in self.slack_users.items()
                          if u.token is not None and u.token not in names})
        if unknown:
            raise ValueError(f"api.slack_users name tokens that api.tokens does not have: {', '.join(unknown)}")
        return self
