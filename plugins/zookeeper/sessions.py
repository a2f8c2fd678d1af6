"""Session expiries seen over the rounds: a session that owns ephemeral nodes, has no connection to any member of
the ensemble, and then disappears has expired (a client that closes its session does so over its connection), and
its ephemeral nodes (locks, leader elections, service registrations) went with it. Pure: fed each round."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Expiry:
    at: float
    session: str
    ephemerals: tuple[str, ...]
    disconnected_s: float
    """How long it was seen without a connection before it went."""

    def evidence(self) -> dict[str, object]:
        return {"session": self.session, "ephemerals": list(self.ephemerals[:20]), "at": round(self.at, 3),
                "disconnected_s": round(self.disconnected_s, 1)}


class SessionWatch:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._orphans: dict[str, tuple[tuple[str, ...], float]] = {}
        """Session → (its ephemeral nodes, when it was first seen without a connection)."""
        self._expired: deque[Expiry] = deque(maxlen=200)

    @property
    def orphans(self) -> dict[str, tuple[str, ...]]:
        """Sessions that own ephemeral nodes and have no connection now."""
        return {s: paths for s, (paths, _) in self._orphans.items()}

    def recent(self, now: float) -> list[Expiry]:
        return [e for e in self._expired if e.at >= now - self.window_s]

    def update(self, owners: dict[str, list[str]], connected: set[str] | None, now: float) -> list[Expiry]:
        """``owners``: session → ephemeral nodes (``dump``); ``connected``: the sessions connected to any member
        (``cons`` of all of them), None when some member could not be asked (then nothing new is inferred)."""
        for session, (paths, since) in list(self._orphans.items()):
            if session not in owners:
                self._expired.append(Expiry(at=now, session=session, ephemerals=paths, disconnected_s=now - since))
                del self._orphans[session]
            elif connected is not None and session in connected:
                del self._orphans[session]  # it reconnected
        if connected is not None:
            for session, paths in owners.items():
                if session not in connected and session not in self._orphans:
                    self._orphans[session] = (tuple(paths), now)
        return self.recent(now)
