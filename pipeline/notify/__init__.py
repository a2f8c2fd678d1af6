"""Notifications: people hear about incidents, root causes, proposals waiting for approval, remediation results
and exhaustion forecasts in Slack, PagerDuty and signed webhooks.

    event ─► notice (notice.py) ─► routes, de-dup, rate limit (routing.py) ─► payload per channel, redacted
    (messages.py: slack.py, pagerduty.py, webhook.py) ─► delivery with retries (send.py) ─► Notification + AuditEntry

``Notifier`` (notifier.py) ties them together for the stage's agent.
"""
