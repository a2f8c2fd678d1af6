"""What the http plugin declares: its rules (both say what the application's clients feel, so a cause found on a
dependency ranks above them) and the words that name it in a question. It offers no action: what fixes a slow
application is on the dependency that slows it."""

from __future__ import annotations

RULES = ("http.error_ratio", "http.slow_responses")
SYMPTOMS = frozenset(RULES)
KEYWORDS = ("application", "service", "endpoint", "应用", "服务")
