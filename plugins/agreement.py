"""Settings linked peers must agree on: a plugin declares, as ``PeerAgreements`` on its class (``agreements``),
which settings of a replica must equal its primary's, or be at least its primary's, and the drift stage
(``pipeline/drift.py``) raises a risk when the configurations of two linked peers disagree there.

- ``EQUAL``: both sides hold the same value (an eviction policy; Kafka brokers' ``min.insync.replicas``); also
  checked between members of one service, and between the members one snapshot holds (``members``: Kafka's
  ``broker.<id>.<setting>``);
- ``AT_LEAST``: the replica's value is no lower than its primary's (a replica with less memory than its primary
  runs out first; PostgreSQL stops replaying on a standby with fewer ``max_connections``); only between a
  primary and its replica. A value in ``unlimited`` (Redis ``maxmemory 0``) is above every number.

The risk names its rule (``rule_id``) and carries the drifted settings as evidence (``drifts``: setting, the
replica's value, the primary's); an action that sets one of them answers it with ``align``, which offers the
primary's value to the replica (``plugins/remedy.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

from kubestack.plugins.remedy import Clue, Offer

EQUAL, AT_LEAST = "equal", "at_least"


@dataclass(frozen=True)
class Agreement:
    setting: str
    rule: str = EQUAL
    unlimited: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.rule not in (EQUAL, AT_LEAST):
            raise ValueError(f"agreement on {self.setting}: rule {self.rule!r} is neither {EQUAL!r} nor {AT_LEAST!r}")


@dataclass(frozen=True)
class PeerAgreements:
    rule_id: str
    """The risk's rule id, e.g. ``redis.peer_config_drift`` (declared in the plugin's ``RULES``)."""
    settings: tuple[Agreement, ...]
    members: str | None = None
    """A regular expression with groups ``member`` and ``setting`` when one snapshot holds several members."""

    def setting_names(self) -> frozenset[str]:
        return frozenset(a.setting for a in self.settings)


@runtime_checkable
class AgreementRules(Protocol):
    agreements: ClassVar[PeerAgreements]


def align(param: str, *, name_param: str | None = None, settings: Iterable[str] = ()) -> Callable[[Clue], Iterable[Offer]]:
    """A ``derive`` giving a drifted replica its primary's value of one of ``settings``: ``{param: value}`` (and
    ``{name_param: setting}`` when the action takes the setting's name)."""
    wanted = frozenset(settings)

    def derive(clue: Clue) -> Iterable[Offer]:
        for drift in clue.evidence.get("drifts", []):
            setting, value = drift.get("setting"), drift.get("peer_value")
            if setting not in wanted or value is None or drift.get("side") != "replica":
                continue
            params = {name_param: setting} if name_param else {}
            yield (params | {param: value},
                   f"set {setting} to {value} as on {drift.get('peer', 'its primary')} (it is {drift.get('value')} "
                   f"here): a replica that disagrees with its primary fails first when it takes over or catches up")

    return derive
