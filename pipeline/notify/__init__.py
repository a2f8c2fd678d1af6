"""Notifications: people hear about incidents, root causes, proposals waiting for approval, remediation results
and exhaustion forecasts in Slack, PagerDuty, signed webhooks, Microsoft Teams, Opsgenie, e-mail, Feishu / Lark,
DingTalk and WeCom.

    event ─► notice (notice.py) ─► routes, de-dup, rate limit (routing.py) ─► payload per channel, redacted
    (channels.py: messages.py for slack.py, pagerduty.py, webhook.py; digest.py for teams.py, opsgenie.py, email.py,
    cn_webhooks.py) ─► delivery with retries (send.py, outgoing.py) ─► Notification + AuditEntry

``Notifier`` (notifier.py) ties them together for the stage's agent.
"""
