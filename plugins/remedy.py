"""What an action answers: a plugin declares, on each ``ActionSpec``, the signals it remedies and how the evidence
of such a signal sets the action's parameters. The proposals stage (``pipeline/proposals.py``) only matches signals
to remedies and checks the parameters against the action's typed model: it knows no plugin, rule or evidence key.

A remedy answers any of:

- **findings**: rule ids (``redis.memory_near_limit``; a config-risk rule too, to answer the risk itself rather
  than undo the change); ``Clue.evidence`` is the signal's evidence;
- **changes**: settings of the plugin whose risky change it undoes (``maxmemory``; ``*`` for any), named by a
  config-risk signal of the same plugin; ``Clue.change`` is that change (``key``, ``old``, ``new``);
- **logs**: regular expressions of log lines (``password authentication failed for user "(?P<name>[^"]+)"``);
  ``Clue.match`` is the match in ``Clue.line``.

``derive`` turns one clue into offers: ``(params, expected effect in words)``, none when the evidence does not
say enough. An offer is proposed only when its params validate against the action's model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubestack.contract.base import ResourceRef

Offer = tuple[dict[str, Any], str]
"""(params, expected effect)"""


@dataclass(frozen=True)
class Clue:
    """What one signal of an incident says, as a remedy reads it."""

    rule: str
    """The rule the signal names (a health or config-risk rule id; a log signal's name)."""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    resource: ResourceRef | None = None
    """The resource the proposal acts on (its labels: the owner of a pod, its address)."""
    change: Mapping[str, Any] = field(default_factory=dict)
    line: str = ""
    match: re.Match[str] | None = None


@dataclass(frozen=True)
class Remedy:
    """One way an action answers signals; see the module docstring."""

    derive: Callable[[Clue], Iterable[Offer]]
    findings: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()
    logs: tuple[str, ...] = ()

    def undoes(self, setting: str) -> bool:
        return setting in self.changes or "*" in self.changes

    def log_match(self, line: str) -> re.Match[str] | None:
        return next((m for m in (re.search(p, line) for p in self.logs) if m), None)


def undo(param: str, *, name_param: str | None = None) -> Callable[[Clue], Iterable[Offer]]:
    """A ``derive`` that restores a changed setting: ``{param: old}`` (and ``{name_param: key}`` when the action
    takes the setting's name too)."""

    def derive(clue: Clue) -> Iterable[Offer]:
        key, old = clue.change.get("key"), clue.change.get("old")
        if key is None or old is None:
            return
        params = {name_param: key} if name_param else {}
        yield params | {param: old}, f"restore {key} to {old} (it was changed to {clue.change.get('new')})"

    return derive
