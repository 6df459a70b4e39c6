"""Escalation through a generic webhook (Slack-compatible or plain JSON)."""

from aiops.notify.escalate import Escalation, escalate, notify_report_failure
from aiops.notify.message import episode_key, json_finding, scrub, slack_finding
from aiops.notify.webhook import Delivery, Notifier, NotifyError, mask_url

__all__ = ["Delivery", "Escalation", "Notifier", "NotifyError", "episode_key", "escalate",
           "json_finding", "mask_url", "notify_report_failure", "scrub", "slack_finding"]
