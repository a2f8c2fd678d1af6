"""Signed decisions: a ``RemediationDecision`` proves who made it. The API (and through it the CLI and Slack) signs
each decision with HMAC-SHA256 under the current key of the decision key ring; the worker's remediation stage
checks the signature before a decision moves anything. The agents never hold the ring, so whoever can only write
Kafka cannot approve.

The signature covers the key id, actor, role, tenant, proposal and incident ids, the digest of the proposal as the
person saw it (``proposal_digest``), decision, channel, reason, event id and time. A decision is refused when it is unsigned, signed with a key the ring does not hold or without the
key, older than the stage's ``decision_ttl_s`` (or from the future beyond the clock skew), or names a role that may
not approve (``APPROVERS``).

The ring is JSON in a file of mode 0600 (``remediation.decision_keys``; default ``<home>/keys/decision-keys.json``):
``{"current": "k2", "keys": {"k1": hex, "k2": hex}}``. Rotation adds a key and makes it current; old keys stay
to check decisions signed before.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from pathlib import Path

from kubestack.apisettings import Role
from kubestack.contract.events import RemediationDecision, RemediationProposal
from kubestack.errors import ConfigError
from kubestack.keyring import KeyRing

APPROVERS = frozenset({Role.OPERATOR.value, Role.ADMIN.value})
"""The roles whose decisions the stage takes (the API's operator and up)."""
CLOCK_SKEW_S = 60.0


def default_path(home: Path) -> Path:
    return home / "keys" / "decision-keys.json"


class DecisionKeys(KeyRing):
    """The decision key ring: keys by id and the current one."""

    error = ConfigError
    what = "decision key ring"

    @classmethod
    def load_or_create(cls, path: Path) -> DecisionKeys:
        """The ring at ``path``, made (0600) when there is none yet: what the signing side does on start."""
        if path.exists():
            return cls.load(path)
        ring = cls.create()
        ring.save(path)
        return ring

    def sign(self, decision: RemediationDecision) -> RemediationDecision:
        """``decision`` with the current key's id and its signature."""
        keyed = decision.model_copy(update={"key_id": self.current})
        return keyed.model_copy(update={"signature": self.mac(self.current, signed_text(keyed))})

    def problem(self, decision: RemediationDecision, now: datetime, ttl_s: float) -> str | None:
        """Why the stage must refuse ``decision`` (None: signed by the ring, fresh, by an approving role)."""
        if decision.signature is None or decision.key_id is None:
            return "unsigned: only the API signs decisions"
        if decision.key_id not in self.keys:
            return f"signed with key {decision.key_id!r}, which the decision key ring does not hold"
        if not hmac.compare_digest(self.mac(decision.key_id, signed_text(decision)), decision.signature):
            return f"its signature (key {decision.key_id}) does not match: written without the key, or altered"
        if decision.ts > now + timedelta(seconds=CLOCK_SKEW_S):
            return f"dated {decision.ts.isoformat()}, in the future"
        if now - decision.ts > timedelta(seconds=ttl_s):
            return f"expired: made {(now - decision.ts).total_seconds():.0f}s ago (more than {ttl_s:g}s)"
        if decision.role not in APPROVERS:
            return f"role {decision.role!r} may not decide (only {', '.join(sorted(APPROVERS))})"
        return None


def proposal_digest(proposal: RemediationProposal) -> str:
    """What a person approves: the action, its parameters, the resource and tenant, as the proposal message says."""
    content = {"action": proposal.action, "params": proposal.params, "resource": proposal.resource.key,
               "tenant": proposal.tenant}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                                     default=str).encode()).hexdigest()


def signed_text(decision: RemediationDecision) -> str:
    """The one text the signature covers."""
    fields = {"key_id": decision.key_id, "actor": decision.actor, "role": decision.role, "tenant": decision.tenant,
              "proposal_id": decision.proposal_id, "incident_id": decision.incident_id,
              "proposal_digest": decision.proposal_digest,
              "decision": decision.decision.value, "via": decision.via, "reason": decision.reason,
              "event_id": decision.event_id, "ts": decision.ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)

