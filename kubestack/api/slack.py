"""Slack interactivity: verifying a request's signature and reading a button press. Pure.

Slack signs ``v0:{X-Slack-Request-Timestamp}:{raw body}`` with the app's signing secret (HMAC-SHA256, hex,
prefixed ``v0=``) in ``X-Slack-Signature``; a timestamp more than five minutes away is refused (replay).
The buttons the notifier sends carry action_id ``approve`` / ``reject`` and value
``{"proposal_id": ..., "incident_id": ...}``, or, on a root-cause report's cause, ``cause_right`` / ``cause_wrong``
and value ``{"incident_id": ..., "component": ..., "cause": ...}`` (an operator's verdict, ``pipeline.feedback``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from urllib.parse import parse_qs

from kubestack.api.errors import BadRequestError, UnauthorizedError
from kubestack.apisettings import ApiSettings, Role
from kubestack.contract.events import Decision

TOLERANCE_S = 300
VERSION = "v0"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    base = f"{VERSION}:{timestamp}:".encode() + body
    return f"{VERSION}=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float,
           tolerance_s: int = TOLERANCE_S) -> None:
    """``UnauthorizedError`` saying why, unless the request is Slack's and fresh."""
    if not timestamp or not signature:
        raise UnauthorizedError("missing X-Slack-Request-Timestamp or X-Slack-Signature")
    try:
        sent = int(timestamp)
    except ValueError:
        raise UnauthorizedError(f"X-Slack-Request-Timestamp {timestamp[:20]!r} is not a Unix time") from None
    if abs(now - sent) > tolerance_s:
        raise UnauthorizedError(f"stale Slack request: timestamp is {abs(now - sent):.0f}s away "
                                f"(more than {tolerance_s}s)", "stale_timestamp")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        raise UnauthorizedError("X-Slack-Signature does not match the request", "bad_signature")


@dataclass(frozen=True)
class ButtonPress:
    decision: Decision
    proposal_id: str
    incident_id: str
    user_id: str
    username: str | None

    @property
    def actor(self) -> str:
        return f"slack:{self.user_id}"

    @property
    def reason(self) -> str:
        return f"{self.decision.value} button in Slack" + (f" by {self.username}" if self.username else "")


@dataclass(frozen=True)
class CausePress:
    """A press of ``cause_right`` / ``cause_wrong`` on a ranked cause."""

    right: bool
    incident_id: str
    component: str
    cause: str
    user_id: str
    username: str | None

    @property
    def actor(self) -> str:
        return f"slack:{self.user_id}"

    @property
    def comment(self) -> str:
        return f"marked {'right' if self.right else 'wrong'} in Slack" + (f" by {self.username}" if self.username
                                                                          else "")


CAUSE_ACTIONS = {"cause_right": True, "cause_wrong": False}


@dataclass(frozen=True)
class SlackApprover:
    """A mapped Slack user: their role and the tenants whose proposals they decide (None: every tenant)."""

    role: Role
    tenants: frozenset[str] | None

    def sees(self, tenant: str) -> bool:
        return self.tenants is None or tenant in self.tenants


def approver(api: ApiSettings, user_id: str) -> SlackApprover | None:
    """Who ``user_id`` is here (``api.slack_users``, through their token when they name one); None: unmapped."""
    user = api.slack_users.get(user_id)
    if user is None:
        return None
    if user.token is not None:
        token = next(t for t in api.tokens if t.name == user.token)
        return SlackApprover(token.role, None if token.tenant is None else frozenset({token.tenant}))
    return SlackApprover(Role(user.role), None if user.tenants is None else frozenset(user.tenants))


def _callback(body: bytes) -> tuple[dict, dict, dict]:
    """(payload, its first action, its user) of a ``block_actions`` callback (form field ``payload``)."""
    fields = parse_qs(body.decode("utf-8", errors="replace"))
    if "payload" not in fields:
        raise BadRequestError("the form has no 'payload' field (Slack interactivity sends one)")
    try:
        payload = json.loads(fields["payload"][0])
    except json.JSONDecodeError as exc:
        raise BadRequestError(f"payload is not JSON: {exc}") from None
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        kind = payload.get("type") if isinstance(payload, dict) else type(payload).__name__
        raise BadRequestError(f"only block_actions callbacks are handled, not {kind!r}")
    actions = payload.get("actions") or []
    action = actions[0] if actions and isinstance(actions[0], dict) else {}
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    return payload, action, user


def _user_id(user: dict) -> str:
    if not user.get("id"):
        raise BadRequestError("the callback names no user.id")
    return str(user["id"])


def press(body: bytes) -> ButtonPress | CausePress:
    """The button pressed in a ``block_actions`` callback: a decision on a proposal or a verdict on a cause;
    ``BadRequestError`` naming what is missing otherwise."""
    _, action, user = _callback(body)
    if action.get("action_id") not in CAUSE_ACTIONS:
        return button_press(body)
    try:
        value = json.loads(action.get("value") or "")
        incident_id, component, cause = str(value["incident_id"]), str(value["component"]), str(value["cause"])
    except (json.JSONDecodeError, TypeError, KeyError):
        raise BadRequestError("the cause button's value must be JSON with incident_id, component and cause") from None
    return CausePress(CAUSE_ACTIONS[action["action_id"]], incident_id, component, cause, _user_id(user),
                      user.get("username") or user.get("name"))


def button_press(body: bytes) -> ButtonPress:
    """The approve/reject press in a ``block_actions`` callback (form field ``payload``); ``BadRequestError``
    naming what is missing otherwise."""
    _, action, user = _callback(body)
    try:
        decision = Decision(action.get("action_id"))
    except ValueError:
        raise BadRequestError(f"action_id must be approve or reject (or cause_right, cause_wrong on a cause), "
                              f"not {action.get('action_id')!r}") from None
    try:
        value = json.loads(action.get("value") or "")
        proposal_id, incident_id = str(value["proposal_id"]), str(value["incident_id"])
    except (json.JSONDecodeError, TypeError, KeyError):
        raise BadRequestError("the button's value must be JSON with proposal_id and incident_id") from None
    return ButtonPress(decision, proposal_id, incident_id, _user_id(user), user.get("username") or user.get("name"))
