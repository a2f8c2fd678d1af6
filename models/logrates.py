"""Template rates of one log source: new templates, error-level bursts and rate changes, each scored in [0, 1].

Time is cut into fixed windows. Each template's count per window, and the count of error-level lines, are
compared with an exponentially weighted mean of the previous windows (``alpha``). A count ``c`` against a
mean ``m`` gives ``z = |c - m| / sqrt(m + 1)`` (a Poisson-like spread) and the score
``1 - exp(-(z - 3) / 2)`` above three spreads, 0 below: about 0.4 at z = 4, 0.8 at z = 6, 0.97 at z = 10.

* ``new_template``: at once, once the source has ``warmup`` closed windows behind it: 1.0, or
  ``ROUTINE_NEW_TEMPLATE`` (0.5, under the worker's default threshold) for a line its own level marks as
  informational (PostgreSQL ``LOG:``, MariaDB ``[Note]``, Redis ``*``, ``INFO``): servers print routine lines
  on their own schedule (a checkpoint every ``checkpoint_timeout``), often first long after the warm-up.
  0 before the source is warm: new templates while a source starts are expected.
* ``error_burst``: at the error line that lifts the window's error count to a score of ``burst``, once per
  window (the log stage sets ``burst`` to its own threshold, so the one flag of a window is never dropped).
* ``rate_change``: when a window closes, for each template whose count rose or fell far from its mean. A
  template's mean starts with the first window after the one it appeared in, which holds only part of its
  traffic (the source started, or the template did, somewhere inside it).

Deliberately simple: the anomaly-likelihood machinery of the metric detectors can replace the scoring later.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from kubestack.errors import ConfigError

WINDOW_S = 60.0
WARMUP_WINDOWS = 5
ROUTINE_NEW_TEMPLATE = 0.5

_ERROR = re.compile(r"\b(?:ERROR|FATAL|CRITICAL|CRIT|SEVERE|PANIC|EMERG|ALERT|[Pp]anic|[Ee]rror:)"
                    r"|\w+(?:Exception|Error)\b|\[(?:error|crit|alert|emerg)\]")
_INFORMATIONAL = re.compile(r"\b(?:LOG|DETAIL|HINT|CONTEXT|STATEMENT|NOTICE):"  # PostgreSQL
                            r"|\[(?:Note|Info|info|notice|debug)\]"  # MariaDB/MySQL, nginx
                            r"|\b(?:INFO|DEBUG|TRACE)\b|\blevel=(?:info|debug)\b"  # Java, Kafka, logfmt
                            r"|:\d\d\.\d+ [.*-] ")  # Redis: debug, verbose, notice
_MAX_GAP_WINDOWS = 50


def is_error(line: str) -> bool:
    """Whether a line is error-level: ERROR/FATAL/CRITICAL/SEVERE/panic levels, an Exception or Error type."""
    return _ERROR.search(line) is not None


def is_informational(line: str) -> bool:
    """Whether a line's own level marks it as routine: informational, notice or debug, and not error-level.
    PostgreSQL's DETAIL/HINT/CONTEXT/STATEMENT lines count too: they carry the level of the line they follow."""
    return _INFORMATIONAL.search(line) is not None and not is_error(line)


def surprise(count: float, mean: float) -> float:
    """How far ``count`` is from ``mean``, as a score in [0, 1] (see the module docstring)."""
    z = abs(count - mean) / math.sqrt(mean + 1.0)
    return 0.0 if z <= 3.0 else 1.0 - math.exp(-(z - 3.0) / 2.0)


@dataclass(frozen=True)
class LogSignal:
    kind: str  # "new_template" | "error_burst" | "rate_change"
    template_id: str | None
    score: float
    detail: str


class TemplateRates:
    """Feed every mined line of one source in time order with :meth:`observe`; it returns the signals."""

    def __init__(self, window: float = WINDOW_S, warmup: int = WARMUP_WINDOWS, alpha: float = 0.2,
                 burst: float = 0.5) -> None:
        if window <= 0 or warmup < 0 or not 0 < alpha <= 1 or not 0 < burst <= 1:
            raise ConfigError("rate tracker needs window > 0, warmup >= 0, 0 < alpha <= 1, 0 < burst <= 1")
        self.window, self.warmup, self.alpha, self.burst = window, warmup, alpha, burst
        self.closed = 0
        self._current: int | None = None
        self._counts: dict[str, int] = {}
        self._means: dict[str, float | None] = {}
        self._errors = 0
        self._error_mean = 0.0
        self._burst_flagged = False

    @property
    def warm(self) -> bool:
        return self.closed >= self.warmup

    def observe(self, ts: float, template_id: str, is_new: bool, error: bool,
                informational: bool = False) -> list[LogSignal]:
        """Count one line at ``ts`` (seconds); lines older than the current window count in it. ``informational``:
        the line's level marks it as routine (:func:`is_informational`)."""
        signals = self._advance(int(ts // self.window))
        self._counts[template_id] = self._counts.get(template_id, 0) + 1
        if is_new:
            if not self.warm:
                score = 0.0
            else:
                score = ROUTINE_NEW_TEMPLATE if informational and not error else 1.0
            signals.append(LogSignal("new_template", template_id, score, f"first line of template {template_id}"))
        if error:
            self._errors += 1
            score = surprise(self._errors, self._error_mean) if self.warm and self._errors > self._error_mean else 0.0
            if score >= self.burst and not self._burst_flagged:
                self._burst_flagged = True
                signals.append(LogSignal("error_burst", template_id, score,
                                         f"{self._errors} error lines this window, usually {self._error_mean:.1f}"))
        return signals

    def _advance(self, window: int) -> list[LogSignal]:
        if self._current is None:
            self._current = window
        signals: list[LogSignal] = []
        while self._current < window:
            signals += self._close()
            self._current = window if window - self._current > _MAX_GAP_WINDOWS else self._current + 1
        return signals

    def _close(self) -> list[LogSignal]:
        signals = []
        for template_id in sorted(set(self._means) | set(self._counts)):
            count = self._counts.get(template_id, 0)
            if template_id not in self._means:  # its first window, partly covered: the mean starts with the next
                self._means[template_id] = None
                continue
            mean = self._means[template_id]
            if mean is not None and self.warm:
                score = surprise(count, mean)
                if score > 0.0:
                    signals.append(LogSignal("rate_change", template_id, score,
                                             f"{count} lines this window, usually {mean:.1f}"))
            self._means[template_id] = count if mean is None else mean + self.alpha * (count - mean)
        self._error_mean += self.alpha * (self._errors - self._error_mean)
        self._counts, self._errors, self._burst_flagged = {}, 0, False
        self.closed += 1
        return signals

    def to_state(self) -> dict:
        """Everything needed to resume where this tracker is (JSON-able)."""
        return {"params": [self.window, self.warmup, self.alpha, self.burst], "closed": self.closed,
                "current": self._current, "counts": self._counts, "means": self._means, "errors": self._errors,
                "error_mean": self._error_mean, "burst_flagged": self._burst_flagged}

    @classmethod
    def from_state(cls, state: dict) -> TemplateRates:
        window, warmup, alpha, burst = state["params"]
        rates = cls(window, int(warmup), alpha, burst)
        rates.closed, rates._current = state["closed"], state["current"]
        rates._counts, rates._means = dict(state["counts"]), dict(state["means"])
        rates._errors, rates._error_mean = state["errors"], state["error_mean"]
        rates._burst_flagged = state["burst_flagged"]
        return rates
