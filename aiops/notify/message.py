"""The bodies a webhook receives: Slack-compatible (text + blocks) or plain JSON.

Everything here leaves the process, so every string of every body passes
`scrub` (aiops/redact.py's `mask_text`, then any word shaped like a credential)
as the last step of building it: a password quoted in a log line or a token in
an env value never reaches a chat channel, whatever the caller put in.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiops.diagnose.finding import Finding
from aiops.redact import REDACTED, credential_shape, mask_text

SOURCE_NAME = "aiops-workbench"
MAX_EVIDENCE = 5  # evidence lines quoted in a Slack message
MAX_LINE = 300  # characters per quoted line
HEADER_MAX = 150  # Slack's limit for a header block
SECTION_MAX = 2900  # Slack's limit is 3000 per section text
_WORD = re.compile(r"[^\s\"'`,;()\[\]{}<>|]{20,}")
_SEV_EMOJI = {"critical": ":red_circle:", "warning": ":large_orange_circle:",
              "info": ":large_blue_circle:"}


def scrub_text(text: str) -> str:
    """Mask credentials in one string: key=value shapes, bearer tokens, known token
    prefixes, URL passwords (mask_text), then any long word shaped like a credential."""
    if not text:
        return text
    text = mask_text(text)
    return _WORD.sub(lambda m: REDACTED if credential_shape(m.group(0)) else m.group(0), text)


def scrub(value: Any) -> Any:
    """A deep copy of a body with every string scrubbed (keys included)."""
    if isinstance(value, Mapping):
        return {scrub_text(str(k)): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


def finding_record(finding: Finding | Mapping[str, Any]) -> dict[str, Any]:
    """The finding as `aiops diagnose --format json` prints it."""
    return finding.to_dict() if isinstance(finding, Finding) else dict(finding)


def object_ref(rec: Mapping[str, Any]) -> str:
    ns = f"{rec.get('namespace')}/" if rec.get("namespace") else ""
    return f"{rec.get('kind', '')}/{ns}{rec.get('name', '')}"


def episode_key(finding: Finding | Mapping[str, Any]) -> str:
    """One failure episode: the rule, the object and when the failure started.
    The same problem seen again by a later run has the same key; a new episode
    (it recovered, then failed again) has a new first_seen and a new key."""
    rec = finding_record(finding)
    raw = "|".join(str(rec.get(k) or "") for k in ("rule", "namespace", "kind", "name",
                                                    "first_seen"))
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def _now(now: datetime | None) -> str:
    t = (now or datetime.now(UTC)).astimezone(UTC)
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


def _clip(text: str, n: int = MAX_LINE) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _cap(text: str, n: int = SECTION_MAX) -> str:
    """Truncate a multi-line text to Slack's section limit, keeping its lines."""
    return text if len(text) <= n else text[: n - 1] + "…"


def _esc(text: str) -> str:
    """Slack mrkdwn: &, < and > are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _first_command(rec: Mapping[str, Any]) -> str | None:
    cmds = (rec.get("remediation") or {}).get("commands") or []
    return str(cmds[0]) if cmds else None


def json_finding(finding: Finding | Mapping[str, Any], *, source: str = "",
                 cluster: str = "", runbook: str | None = None, report: str | None = None,
                 now: datetime | None = None) -> dict[str, Any]:
    """Plain JSON: the finding's fields as `aiops diagnose --format json`, plus the
    event type, source, cluster, time, dedup key and links."""
    rec = finding_record(finding)
    body = {"event": "finding", **rec, "source": source, "cluster": cluster,
            "time": _now(now), "episode": episode_key(rec), "sender": SOURCE_NAME,
            "runbook": runbook, "report": report}
    return scrub(body)


def slack_finding(finding: Finding | Mapping[str, Any], *, source: str = "",
                  cluster: str = "", runbook: str | None = None, report: str | None = None,
                  now: datetime | None = None) -> dict[str, Any]:
    """Slack incoming-webhook body: `text` (the notification line and fallback) and
    `blocks` (header, summary, object/severity fields, evidence, first command, links)."""
    rec = finding_record(finding)
    sev = str(rec.get("severity", ""))
    obj = object_ref(rec)
    where = " · ".join(x for x in (cluster, source) if x)
    text = f"[{sev}] {rec.get('rule')}: {obj}: {rec.get('summary', '')}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                    "text": _clip(f"{sev.upper()} {rec.get('rule')} "
                                                  f"{obj}", HEADER_MAX)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(
            f"{_SEV_EMOJI.get(sev, '')} *{_esc(str(rec.get('summary', '')))}*", SECTION_MAX)}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*Object*\n`{_esc(obj)}`"},
            {"type": "mrkdwn", "text": f"*Severity*\n{_esc(sev)}"},
            {"type": "mrkdwn", "text": f"*Owner*\n{_esc(str(rec.get('owner') or '-'))}"},
            {"type": "mrkdwn", "text": f"*First seen*\n{_esc(str(rec.get('first_seen') or '-'))}"},
        ]},
    ]
    evidence = [e for e in rec.get("evidence") or [] if isinstance(e, Mapping)][:MAX_EVIDENCE]
    if evidence:
        lines = "\n".join(f"• `{_esc(_clip(str(e.get('text', ''))))}` "
                          f"_({_esc(_clip(str(e.get('source', '')), 20))}: "
                          f"{_esc(_clip(str(e.get('ref', '')), 80))})_" for e in evidence)
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": _cap(f"*Evidence*\n{lines}")}})
    rem = rec.get("remediation") or {}
    todo = _esc(_clip(str(rem.get("summary", "")), 1000))
    cmd = _first_command(rec)
    if cmd:
        todo += f"\n```{_esc(_clip(cmd, 1000))}```"
    if todo:
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": _cap(f"*Remediation*\n{todo}")}})
    links = [f"<{u}|{label}>" for u, label in ((runbook, "Runbook"), (report, "Report"),
                                                (rec.get("docs"), "Kubernetes docs"))
             if u and str(u).startswith(("http://", "https://"))]
    links += [f"Runbook: `{_esc(str(runbook))}`"] if runbook and not str(runbook).startswith(
        ("http://", "https://")) else []
    context = [f"{SOURCE_NAME} · {_esc(where)}" if where else SOURCE_NAME, _now(now),
               *links]
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": c}
                                                   for c in context]})
    return scrub({"text": text, "blocks": blocks})


def json_report_failure(result: Any, *, source: str = "", cluster: str = "",
                        report: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """A failed report run (aiops.reports.runner.ReportResult) as plain JSON."""
    err = getattr(result, "error", None)
    failed = getattr(result, "failed_notebook", None)
    body = {"event": "report-failed", "report_name": getattr(result, "name", ""),
            "date": getattr(result, "date", ""), "error": str(err) if err else "",
            "failed_notebook": str(failed) if failed else None,
            "source": source or str((getattr(result, "parameters", None) or {}).get(
                "source", "")),
            "cluster": cluster, "time": _now(now), "sender": SOURCE_NAME, "report": report}
    return scrub(body)


def slack_report_failure(result: Any, *, source: str = "", cluster: str = "",
                         report: str | None = None, now: datetime | None = None
                         ) -> dict[str, Any]:
    """A failed report run as a Slack body."""
    rec = json_report_failure(result, source=source, cluster=cluster, report=report, now=now)
    name = rec["report_name"]
    text = f"[report failed] {name} ({rec['date']}): {_clip(rec['error'], 500)}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                    "text": _clip(f"REPORT FAILED {name} {rec['date']}",
                                                  HEADER_MAX)}},
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": f"*Error*\n{_esc(_clip(rec['error'], 2000))}"}},
    ]
    if rec["failed_notebook"]:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": (
            f"*Executed notebook with the failing cell*\n`{_esc(rec['failed_notebook'])}`")}})
    where = " · ".join(x for x in (cluster, rec["source"]) if x)
    context = [f"{SOURCE_NAME} · {_esc(where)}" if where else SOURCE_NAME, rec["time"]]
    if report and report.startswith(("http://", "https://")):
        context.append(f"<{report}|Reports>")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": c}
                                                   for c in context]})
    return scrub({"text": text, "blocks": blocks})


def sample_finding(now: datetime | None = None) -> Finding:
    """A realistic finding for `aiops notify test` (marked as a test in its summary)."""
    from aiops.diagnose.finding import Evidence, Remediation

    t = (now or datetime.now(UTC)).replace(microsecond=0)
    return Finding(
        rule="oom-killed", severity="critical", namespace="aiops-test", kind="Pod",
        name="notify-test-0", owner="Deployment/notify-test",
        summary="TEST MESSAGE from `aiops notify test`: container app was OOM-killed "
                "(limit 256Mi).",
        evidence=[Evidence("status", "lastState.terminated: OOMKilled (exit code 137)",
                           "status.containerStatuses[app].lastState", t)],
        confidence=1.0, first_seen=t,
        remediation=Remediation(
            "Raise the memory limit above the measured peak.",
            ("kubectl describe pod notify-test-0 -n aiops-test",)),
        docs="https://kubernetes.io/docs/tasks/configure-pod-container/assign-memory-resource/")


__all__ = ["episode_key", "finding_record", "json_finding", "json_report_failure",
           "sample_finding", "scrub", "scrub_text", "slack_finding", "slack_report_failure"]
