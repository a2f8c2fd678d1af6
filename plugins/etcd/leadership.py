"""Leader changes seen by one member over the rounds: the leader id and raft term of each status, and the
member's own ``etcd_server_leader_changes_seen_total``. A change is remembered for a window so that a round that
missed it (the change happened between two rounds) still reports it. Pure: the plugin feeds it each round."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from kubestack.plugins.etcd.parse import Status


@dataclass(frozen=True)
class LeaderChange:
    at: float
    """Unix time of the round that saw it."""
    old_leader: str
    new_leader: str
    term: int
    changes_seen: int
    """How many changes the member counted since the round before (its counter's increase)."""

    def evidence(self) -> dict[str, object]:
        return {"at": round(self.at, 3), "old_leader": self.old_leader, "new_leader": self.new_leader,
                "raft_term": self.term, "changes_seen": self.changes_seen}


class LeaderHistory:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._last: tuple[str, int, float] | None = None
        """(leader, term, changes-seen counter) of the round before."""
        self._changes: deque[LeaderChange] = deque(maxlen=100)

    def update(self, status: Status, changes_seen: float | None, now: float) -> list[LeaderChange]:
        """The changes within the window, this round's included."""
        counter = changes_seen if changes_seen is not None else 0.0
        if self._last is not None:
            leader, term, before = self._last
            counted = max(int(counter - before), 0)
            if status.leader != leader or status.raft_term != term or counted:
                self._changes.append(LeaderChange(at=now, old_leader=leader, new_leader=status.leader,
                                                  term=status.raft_term, changes_seen=counted or 1))
        self._last = (status.leader, status.raft_term, counter)
        return [c for c in self._changes if c.at >= now - self.window_s]
