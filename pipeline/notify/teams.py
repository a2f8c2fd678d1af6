"""A notice as a Microsoft Teams message through a Workflows webhook ("Post to a channel when a webhook request is
received", the successor of Office 365 connectors): ``{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "content": <AdaptiveCard 1.4>}]}``.

The card: a heading coloured by severity, a FactSet, the text, the likely cause, a subtle footer, and
``Action.OpenUrl`` buttons: "Open in console", and on a pending proposal "Approve" / "Reject".

Why OpenUrl for decisions: a card posted by a workflow has no bot behind it, so ``Action.Submit`` reaches nobody,
and ``Action.Http`` only works in Outlook actionable messages, not in workflow-posted Teams cards. The buttons open
the API's decision page (``/api/v1/teams/decide``), where the person enters their operator token: the decision
then goes through the same path as the API's and Slack's (signed, role, tenant, audited, ``via="teams"``).
"""

from __future__ import annotations

from typing import Any

from kubestack.pipeline.notify.digest import Digest, cut

CARD_VERSION = "1.4"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
TEXT_MAX = 4000
FACT_MAX = 500
MAX_FACTS = 12
_COLOURS = {"critical": "Attention", "warning": "Warning", "info": "Accent"}


def _text(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": cut(text, TEXT_MAX), "wrap": True, **extra}


def teams_card(d: Digest) -> dict[str, Any]:
    colour = "Good" if d.cleared else _COLOURS.get(d.severity, "Default")
    body: list[dict[str, Any]] = [
        _text(d.headline, weight="Bolder", size="Medium", color=colour),
        {"type": "FactSet", "facts": [{"title": name, "value": cut(value, FACT_MAX)}
                                      for name, value in d.facts[:MAX_FACTS]]},
        _text(d.text),
    ]
    if d.cause:
        body.append(_text(f"**Likely cause**\n\n{d.cause}"))
    if d.decisions:
        body.append(_text("Approving or rejecting opens the KubeStack decision page: sign in with your operator "
                          "token there.", isSubtle=True, size="Small"))
    body.append(_text(d.footer, isSubtle=True, size="Small"))
    styles = {"Approve": "positive", "Reject": "destructive"}
    actions = [{"type": "Action.OpenUrl", "title": link.label, "url": link.url,
                **({"style": styles[link.label]} if link.label in styles else {})}
               for link in [*d.decisions, *d.links]]
    card: dict[str, Any] = {"type": "AdaptiveCard", "$schema": CARD_SCHEMA, "version": CARD_VERSION,
                            "msteams": {"width": "Full"}, "body": body}
    if actions:
        card["actions"] = actions
    return card


def teams_message(d: Digest) -> dict[str, Any]:
    """The workflow webhook's body."""
    return {"type": "message", "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None,
                                                "content": teams_card(d)}]}
