"""Escalation: send critical findings and failed reports to the webhook, once per
failure episode.

A diagnosis run every few minutes sees the same broken pod every time; paging
on each run would teach people to mute the channel. So each episode (rule +
object + first_seen, see `message.episode_key`) is sent once per `window`,
remembered in a small JSON state file. A send that failed is not remembered,
so the next run tries again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiops.atomic import write_text
from aiops.diagnose.finding import Finding
from aiops.notify import message
from aiops.notify.webhook import Delivery, Notifier, NotifyError

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
DEFAULT_WINDOW = timedelta(hours=24)
ENV_STATE = "AIOPS_NOTIFY_STATE"
ENV_SITE = "AIOPS_REPORTS_URL"


def default_state_file() -> Path:
    """$AIOPS_NOTIFY_STATE, else ~/.cache/aiops/notify-state.json (XDG_CACHE_HOME)."""
    if os.environ.get(ENV_STATE):
        return Path(os.environ[ENV_STATE])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "aiops" / "notify-state.json"


class SentEpisodes:
    """The episodes already sent and when: `{key: {"at": iso, "rule", "object"}}`.

    Entries older than the window are dropped on save, so the file stays small.
    An unreadable file is treated as empty (at worst one duplicate message).
    """

    def __init__(self, path: str | Path, window: timedelta = DEFAULT_WINDOW) -> None:
        self.path = Path(path)
        self.window = window
        self.sent: dict[str, dict[str, str]] = {}
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(doc, dict) and isinstance(doc.get("sent"), dict):
                self.sent = {k: v for k, v in doc["sent"].items() if isinstance(v, dict)}
        except (OSError, ValueError):
            pass

    def recent(self, key: str, now: datetime) -> bool:
        at = _parse((self.sent.get(key) or {}).get("at"))
        return at is not None and now - at < self.window

    def mark(self, key: str, now: datetime, **info: str) -> None:
        self.sent[key] = {"at": now.isoformat(), **info}

    def save(self, now: datetime) -> None:
        keep = {k: v for k, v in self.sent.items()
                if (at := _parse(v.get("at"))) is not None and now - at < self.window}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text(self.path, json.dumps({"version": 1, "sent": dict(sorted(keep.items()))},
                                         indent=1))


def _parse(value: Any) -> datetime | None:
    try:
        t = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@dataclass
class Escalation:
    """What `escalate` did with each finding, by episode key."""

    sent: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # already sent within the window
    below: int = 0  # findings under min_severity
    failed: dict[str, str] = field(default_factory=dict)  # key -> error (masked)

    @property
    def ok(self) -> bool:
        return not self.failed


def _links(rec: Mapping[str, Any], site_url: str | None) -> tuple[str | None, str | None]:
    """(runbook, report) for a finding: absolute when the report site's URL is known."""
    from aiops.runbooks.links import runbook_path

    path = runbook_path(str(rec.get("rule", "")))
    if not site_url:
        return path, None
    base = site_url if site_url.endswith("/") else site_url + "/"
    return (base + path if path else None), base + "index.html"


def build(notifier: Notifier, finding: Finding | Mapping[str, Any], *, source: str = "",
          cluster: str = "", site_url: str | None = None,
          now: datetime | None = None) -> dict[str, Any]:
    """The body for `notifier`'s format."""
    rec = message.finding_record(finding)
    runbook, report = _links(rec, site_url)
    make = message.slack_finding if notifier.format == "slack" else message.json_finding
    return make(rec, source=source, cluster=cluster, runbook=runbook, report=report, now=now)


def escalate(findings: Iterable[Finding | Mapping[str, Any]], notifier: Notifier, *,
             min_severity: str = "critical", state_file: str | Path | None = None,
             window: timedelta = DEFAULT_WINDOW, source: str = "", cluster: str = "",
             site_url: str | None = None, now: datetime | None = None) -> Escalation:
    """Send each finding at or above `min_severity` whose episode was not sent within
    `window`. A failed send is recorded in the result (not raised) and not remembered,
    so one bad message does not stop the others and the next run retries it."""
    if min_severity not in SEVERITY_ORDER:
        from aiops.errors import ParameterError

        raise ParameterError(f"unknown severity {min_severity!r}",
                             f"use one of {', '.join(SEVERITY_ORDER)}")
    now = now or datetime.now(UTC)
    state = SentEpisodes(state_file or default_state_file(), window)
    site_url = site_url if site_url is not None else os.environ.get(ENV_SITE) or None
    res = Escalation()
    limit = SEVERITY_ORDER[min_severity]
    for f in findings:
        rec = message.finding_record(f)
        if SEVERITY_ORDER.get(str(rec.get("severity")), 9) > limit:
            res.below += 1
            continue
        key = message.episode_key(rec)
        if key in res.sent or state.recent(key, now):
            res.duplicates.append(key)
            continue
        body = build(notifier, rec, source=source, cluster=cluster, site_url=site_url, now=now)
        try:
            notifier.send(body)
        except NotifyError as exc:
            res.failed[key] = str(exc)
            continue
        res.sent.append(key)
        state.mark(key, now, rule=str(rec.get("rule")), object=message.object_ref(rec))
    if res.sent or state.sent:
        state.save(now)
    return res


def notify_report_failure(result: Any, notifier: Notifier, *, source: str = "",
                          cluster: str = "", site_url: str | None = None,
                          now: datetime | None = None) -> Delivery | None:
    """Send a failed report run (a ReportResult with ok False); None when it passed.
    Raises NotifyError when the message cannot be delivered."""
    if getattr(result, "ok", True):
        return None
    site_url = site_url if site_url is not None else os.environ.get(ENV_SITE) or None
    report = None
    if site_url:
        report = (site_url if site_url.endswith("/") else site_url + "/") + "index.html"
    make = (message.slack_report_failure if notifier.format == "slack"
            else message.json_report_failure)
    return notifier.send(make(result, source=source, cluster=cluster, report=report, now=now))


__all__ = ["DEFAULT_WINDOW", "Escalation", "SentEpisodes", "build", "default_state_file",
           "escalate", "notify_report_failure"]
