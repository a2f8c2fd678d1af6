"""The dependency graph of one tenant, learned from what its resources observe: the peers of their health reports.

A resource R reporting a peer is linked to each resource O the peer names:

- a ``client`` at host X: O runs on X (its host, or the host of its ``address`` label);
- a ``primary``, ``replica`` or ``server`` at ``host:port``: O's ``address`` label is that listener (O without the
  label: O of R's kind on that host); at a bare host (a replica seen by its connection only): O of R's kind on
  that host (``server``: of any kind);
- a ``consumer_group`` G: O's ``consumer_group`` label (a comma-separated list) names G.

Hosts are read within the reporter's cluster, and a loopback address (``127.x``, ``::1``, ``localhost``) is the
reporter's own host. Links are direct: A and B are neighbours when either observed the other, never through a
third resource (one busy cache must not glue everything together). A peer not seen for ``max_age`` is forgotten;
the graph is bounded (``MAX_RESOURCES`` resources, ``MAX_PEERS`` peers each, the least recently seen dropped
first). Pure, and its state is a JSON-able dict.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import timedelta

from kubestack.contract.base import ResourceRef
from kubestack.contract.events import HealthReport, Peer, PeerRole

ADDRESS_LABEL = "address"
GROUP_LABEL = "consumer_group"
MAX_RESOURCES = 2000
MAX_PEERS = 64
_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})
_LISTENERS = frozenset({PeerRole.PRIMARY, PeerRole.REPLICA, PeerRole.SERVER})


def split_address(address: str) -> tuple[str, str | None]:
    """``host:port``, ``[v6]:port``, or a bare host / IPv6 address → (lower-case host, port or None)."""
    address = address.strip().lower()
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, (rest[1:] or None) if rest.startswith(":") else None
    if address.count(":") == 1:
        host, _, port = address.partition(":")
        return host, port or None
    return address, None


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _place(host: str, ref: ResourceRef) -> str | None:
    """``cluster/host`` of an address seen by (or belonging to) ``ref``; loopback is ``ref``'s own host."""
    if _is_loopback(host):
        if not ref.host:
            return None
        host = ref.host.lower()
    return f"{ref.cluster or '-'}/{host}"


@dataclass(frozen=True)
class Endpoint:
    """What a peer can be matched against: where a resource runs and listens, and the groups it consumes as."""

    key: str
    kind: str
    hosts: frozenset[str]
    listen: str | None
    groups: frozenset[str]

    @classmethod
    def of(cls, ref: ResourceRef) -> Endpoint:
        hosts, listen = set(), None
        if ref.host:
            hosts.add(f"{ref.cluster or '-'}/{ref.host.lower()}")
        if ref.labels.get(ADDRESS_LABEL):
            host, port = split_address(ref.labels[ADDRESS_LABEL])
            place = _place(host, ref)
            if place:
                hosts.add(place)
                listen = f"{place}:{port}" if port else None
        groups = frozenset(g.strip() for g in ref.labels.get(GROUP_LABEL, "").split(",") if g.strip())
        return cls(ref.key, ref.kind, frozenset(hosts), listen, groups)


def observation(peer: Peer, reporter: ResourceRef) -> list | None:
    """A peer as stored: ``[role, cluster/host, port, name]``, its address read from the reporter's side."""
    if peer.role == PeerRole.CONSUMER_GROUP:
        return [peer.role.value, None, None, peer.name or peer.address]
    host, port = split_address(peer.address)
    place = _place(host, reporter)
    return None if place is None else [peer.role.value, place, port, peer.name]


def matches(seen: list, reporter_kind: str, other: Endpoint) -> bool:
    """Whether one stored observation of a ``reporter_kind`` resource names ``other``."""
    role, place, port, name = PeerRole(seen[0]), seen[1], seen[2], seen[3]
    if role == PeerRole.CONSUMER_GROUP:
        return name in other.groups
    if role not in _LISTENERS:
        return place in other.hosts
    if port is not None and other.listen is not None:
        return f"{place}:{port}" == other.listen
    return place in other.hosts and (role == PeerRole.SERVER or other.kind == reporter_kind)


class Topology:
    def __init__(self, max_age: timedelta = timedelta(days=1), state: dict | None = None) -> None:
        self.max_age = max_age
        state = state or {}
        # resource key -> {"ref": ResourceRef json, "seen": epoch s,
        #                  "peers": {peer id: [role, cluster/host, port, name, seen epoch s]}}
        self.resources: dict[str, dict] = state.get("resources", {})
        self.now: float = state.get("now", 0.0)
        self.swept_at: float = state.get("swept_at", 0.0)

    def to_state(self) -> dict:
        return {"resources": self.resources, "now": self.now, "swept_at": self.swept_at}

    # --- learning --------------------------------------------------------------------------------

    def learn(self, report: HealthReport) -> None:
        """Remember the reporting resource and refresh the peers it observed; forget what is too old."""
        at = report.ts.timestamp()
        self.now = max(self.now, at)
        ref = report.resource
        entry = self.resources.setdefault(ref.key, {"peers": {}})
        entry["ref"] = ref.model_dump(mode="json", exclude_none=True)
        entry["seen"] = max(entry.get("seen", at), at)
        for peer in sorted(report.peers, key=lambda p: -p.count)[:MAX_PEERS]:
            seen = observation(peer, ref)
            if seen is not None:
                entry["peers"]["|".join(str(part) for part in seen)] = [*seen, at]
        horizon = self.now - self.max_age.total_seconds()
        self._prune(entry, horizon)
        if self.now - self.swept_at >= self.max_age.total_seconds() / 24 or len(self.resources) > MAX_RESOURCES:
            self._sweep(horizon)

    @staticmethod
    def _prune(entry: dict, horizon: float) -> None:
        """Drop one resource's peers older than ``horizon``, then the least recently seen past ``MAX_PEERS``."""
        fresh = [(pid, seen) for pid, seen in entry["peers"].items() if seen[4] >= horizon]
        if len(fresh) != len(entry["peers"]) or len(fresh) > MAX_PEERS:
            entry["peers"] = dict(sorted(fresh, key=lambda item: -item[1][4])[:MAX_PEERS])

    def _sweep(self, horizon: float) -> None:
        """Every resource at once, now and then: old peers out, resources neither seen nor linking anything out,
        then the least recently seen past ``MAX_RESOURCES``."""
        self.swept_at = self.now
        for key in list(self.resources):
            entry = self.resources[key]
            self._prune(entry, horizon)
            if entry["seen"] < horizon and not entry["peers"]:
                del self.resources[key]
        if len(self.resources) > MAX_RESOURCES:
            newest = sorted(self.resources, key=lambda k: -self.resources[k]["seen"])[:MAX_RESOURCES]
            self.resources = {k: self.resources[k] for k in newest}

    # --- questions -------------------------------------------------------------------------------

    def _observed(self, reporter: ResourceRef, other: ResourceRef) -> bool:
        entry = self.resources.get(reporter.key)
        if not entry or not entry["peers"] or reporter.key == other.key:
            return False
        target = Endpoint.of(other)
        return any(matches(seen, reporter.kind, target) for seen in entry["peers"].values())

    def observed_role(self, reporter: ResourceRef, other: ResourceRef) -> PeerRole | None:
        """The role in which ``reporter`` last observed ``other`` (client, primary, ...), if it did."""
        entry = self.resources.get(reporter.key)
        if not entry or not entry["peers"] or reporter.key == other.key:
            return None
        target = Endpoint.of(other)
        return next((PeerRole(seen[0]) for seen in entry["peers"].values()
                     if matches(seen, reporter.kind, target)), None)

    def linked(self, a: ResourceRef, b: ResourceRef) -> bool:
        """True when ``a`` observed ``b`` or ``b`` observed ``a`` (direct neighbours only)."""
        return self._observed(a, b) or self._observed(b, a)

    def neighbours(self, key: str) -> set[str]:
        """Keys of the known resources directly linked to ``key``."""
        entry = self.resources.get(key)
        if entry is None:
            return set()
        ref = ResourceRef.model_validate(entry["ref"])
        return {other for other, e in self.resources.items()
                if other != key and self.linked(ref, ResourceRef.model_validate(e["ref"]))}

    def edges(self) -> set[tuple[str, str]]:
        """Every link between known resources, as sorted key pairs."""
        return {tuple(sorted((key, other))) for key in self.resources for other in self.neighbours(key)}
