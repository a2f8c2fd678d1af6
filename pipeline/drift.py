"""Configuration drift along the topology: linked peers whose settings disagree where their plugin says they must
agree (``plugins/agreement.py``) raise a config risk, evidence for root cause, with the primary's values as the
proposal (the remedies of the plugin's set-config actions answer its rule).

- ``compare`` (pure): the drifts between a primary's and a replica's settings, or between two members of one
  service (``EQUAL`` settings only); ``member_drifts``: between the members one snapshot holds (Kafka brokers).
- ``DriftWatch`` (per tenant, its state a JSON-able dict): keeps each resource's latest agreed-on settings (only
  the declared ones: no secret is kept), and on a snapshot or a health report of a resource compares it with the
  stored resources the learned topology links to it (a primary/replica role when either side observed one, else
  the same ``service`` label). A drift is raised once per state of the pair (the same settings and values are
  not raised again; a change of either side's values raises it anew).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import Anomaly, ConfigSnapshot, PeerRole, Severity
from kubestack.pipeline.topology import Topology
from kubestack.plugins.agreement import AT_LEAST, EQUAL, AgreementRules, PeerAgreements
from kubestack.plugins.registry import plugins

DETECTOR = "config-risk"   # a drift is a configuration risk: weighed and answered like one
SERVICE_LABEL = "service"
MAX_RESOURCES = 2000
SCORE = 0.8


@dataclass(frozen=True)
class Drift:
    setting: str
    rule: str
    value: str        # this side's (the replica's, or the member that differs)
    peer_value: str   # the primary's (or what the other members hold)
    side: str         # "replica" (align it to the primary) or "member"

    def as_evidence(self, peer: str) -> dict:
        return {"setting": self.setting, "rule": self.rule, "value": self.value, "peer_value": self.peer_value,
                "side": self.side, "peer": peer}


def _number(value: str, unlimited: tuple[str, ...]) -> float | None:
    text = value.strip().lower()
    if text in unlimited:
        return math.inf
    try:
        return float(text)
    except ValueError:
        return None


def compare(rules: PeerAgreements, primary: dict[str, str], replica: dict[str, str],
            directed: bool = True) -> list[Drift]:
    """What ``replica`` gets wrong against ``primary``: an ``EQUAL`` setting with another value, an ``AT_LEAST``
    one lower (numbers; a value in ``unlimited`` is above all). ``directed`` False: two members of one service,
    ``EQUAL`` settings only. A setting either side lacks is not compared."""
    out = []
    for agreement in rules.settings:
        mine, theirs = replica.get(agreement.setting), primary.get(agreement.setting)
        if mine is None or theirs is None:
            continue
        if agreement.rule == EQUAL and mine.strip().lower() != theirs.strip().lower():
            out.append(Drift(agreement.setting, EQUAL, mine, theirs, "replica" if directed else "member"))
        elif agreement.rule == AT_LEAST and directed:
            a, b = _number(mine, agreement.unlimited), _number(theirs, agreement.unlimited)
            if a is not None and b is not None and a < b:
                out.append(Drift(agreement.setting, AT_LEAST, mine, theirs, "replica"))
    return out


def member_drifts(rules: PeerAgreements, config: dict[str, str]) -> list[tuple[str, Drift]]:
    """(member, drift) for the members of one snapshot (``rules.members``) whose ``EQUAL`` settings differ from
    what most members hold (ties: the lowest member id's value)."""
    if not rules.members:
        return []
    pattern, wanted = re.compile(rules.members), rules.setting_names()
    by_setting: dict[str, dict[str, str]] = {}
    for key, value in config.items():
        match = pattern.match(key)
        if match and match.group("setting") in wanted:
            by_setting.setdefault(match.group("setting"), {})[match.group("member")] = value
    out = []
    for agreement in rules.settings:
        members = by_setting.get(agreement.setting, {})
        if agreement.rule != EQUAL or len(set(members.values())) < 2:
            continue
        ordered = sorted(members.items(), key=lambda item: (len(item[0]), item[0]))
        counts = Counter(v for _, v in ordered)
        common = max(counts, key=lambda v: (counts[v], -[x for _, x in ordered].index(v)))
        out += [(member, Drift(agreement.setting, EQUAL, value, common, "member"))
                for member, value in ordered if value != common]
    return out


def agreements_of(kind: str) -> PeerAgreements | None:
    plugin = plugins().get(kind)
    return plugin.agreements if plugin is not None and isinstance(plugin, AgreementRules) else None


class DriftWatch:
    def __init__(self, tenant: str, state: dict | None = None) -> None:
        self.tenant = tenant
        state = state or {}
        self.configs: dict[str, dict] = state.get("configs", {})   # key -> {"ref": json, "config": {...}}
        self.raised: dict[str, str] = state.get("raised", {})      # pair id -> digest of the drifts raised

    def to_state(self) -> dict:
        return {"configs": self.configs, "raised": self.raised}

    def observe(self, snapshot: ConfigSnapshot, topology: Topology, source: Source) -> list[Anomaly]:
        """Keep the snapshot's agreed-on settings; the drifts it shows within itself and against linked peers."""
        rules = agreements_of(snapshot.resource.kind)
        if rules is None:
            return []
        wanted = rules.setting_names()
        kept = {k: v for k, v in snapshot.config.items() if k in wanted}
        if rules.members:
            pattern = re.compile(rules.members)
            kept |= {k: v for k, v in snapshot.config.items()
                     if (m := pattern.match(k)) is not None and m.group("setting") in wanted}
        self.configs[snapshot.resource.key] = {"ref": snapshot.resource.model_dump(mode="json", exclude_none=True),
                                               "config": kept}
        if len(self.configs) > MAX_RESOURCES:
            self.configs.pop(next(iter(self.configs)))
        out = self._members(snapshot.resource, rules, kept, snapshot.ts, source)
        return out + self.check(snapshot.resource.key, topology, snapshot.ts, source)

    def check(self, key: str, topology: Topology, now: datetime, source: Source) -> list[Anomaly]:
        """The drifts between ``key`` and every stored resource of its kind the topology links to it."""
        entry = self.configs.get(key)
        if entry is None:
            return []
        me = ResourceRef.model_validate(entry["ref"])
        rules = agreements_of(me.kind)
        if rules is None:
            return []
        out = []
        for other_key, other in self.configs.items():
            if other_key == key:
                continue
            peer = ResourceRef.model_validate(other["ref"])
            if peer.kind != me.kind:
                continue
            pair = _pair(me, peer, topology)
            if pair is None:
                continue
            primary, replica, directed = pair
            configs = {me.key: entry["config"], peer.key: other["config"]}
            drifts = compare(rules, configs[primary.key], configs[replica.key], directed)
            out += self._raise(rules, replica, primary, drifts, now, source)
        return out

    def _members(self, resource: ResourceRef, rules: PeerAgreements, config: dict[str, str], now: datetime,
                 source: Source) -> list[Anomaly]:
        found = member_drifts(rules, config)
        if not found:
            self.raised.pop(f"{resource.key}|members", None)
            return []
        drifts = [d.as_evidence(f"member {m} of {resource.name}") | {"member": m} for m, d in found]
        members = sorted({m for m, _ in found})
        message = (f"{resource.kind} {resource.name}: member(s) {', '.join(members)} disagree with the others on "
                   + ", ".join(sorted({f'{d.setting} ({d.value} vs {d.peer_value})' for _, d in found})))
        return self._emit(f"{resource.key}|members", rules.rule_id, resource, None, drifts, message, now, source)

    def _raise(self, rules: PeerAgreements, replica: ResourceRef, primary: ResourceRef, drifts: list[Drift],
               now: datetime, source: Source) -> list[Anomaly]:
        pair_id = f"{primary.key}|{replica.key}"
        if not drifts:
            self.raised.pop(pair_id, None)
            return []
        evidence = [d.as_evidence(primary.name) for d in drifts]
        side = "replica" if drifts[0].side == "replica" else "member of the same service"
        what = ", ".join(f"{d.setting} {d.value} ({'must be at least' if d.rule == AT_LEAST else 'unlike'} "
                         f"{d.peer_value})" for d in drifts)
        message = f"{replica.kind} {side} {replica.name} disagrees with {primary.name}: {what}"
        return self._emit(pair_id, rules.rule_id, replica, primary, evidence, message, now, source)

    def _emit(self, pair_id: str, rule_id: str, resource: ResourceRef, peer: ResourceRef | None, drifts: list[dict],
              message: str, now: datetime, source: Source) -> list[Anomaly]:
        digest = hashlib.sha256(repr(sorted(sorted(d.items()) for d in drifts)).encode()).hexdigest()[:16]
        if self.raised.get(pair_id) == digest:
            return []
        self.raised[pair_id] = digest
        evidence = {"drifts": drifts, "peer": peer.key if peer else None}
        return [Anomaly(source=source, resource=resource, tenant=self.tenant, ts=now,
                        detector=DETECTOR, signal=rule_id, score=SCORE, severity=Severity.WARNING,
                        window_start=now, window_end=now,
                        details={"message": message, "evidence": evidence})]


def _pair(me: ResourceRef, peer: ResourceRef, topology: Topology) -> tuple[ResourceRef, ResourceRef, bool] | None:
    """(primary, replica, directed) when the two are linked: by a primary/replica role either side observed, else
    as members of one service (both carry the same ``service`` label and are linked or share it)."""
    for reporter, other in ((me, peer), (peer, me)):
        role = topology.observed_role(reporter, other)
        if role == PeerRole.PRIMARY:
            return other, reporter, True
        if role == PeerRole.REPLICA:
            return reporter, other, True
    service = me.labels.get(SERVICE_LABEL)
    if service and service == peer.labels.get(SERVICE_LABEL):
        first, second = sorted((me, peer), key=lambda r: r.key)
        return first, second, False
    return None
