"""Frames for the investigation notebook: a target's timeline, the log lines
around each quoted line, and usage against limits. Pure functions."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from aiops.diagnose.engine import Diagnosis
from aiops.model import ClusterState
from aiops.redact import mask_text

TIMELINE_COLUMNS = ["time", "end", "pod", "container", "what", "detail", "kind"]


def target_pods(state: ClusterState, namespace: str | None, pod: str | None = None,
                workload: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    pods = [p for p in state.kind("Pod")
            if namespace in (None, (p.get("metadata") or {}).get("namespace"))]
    if pod:
        return [p for p in pods if p["metadata"].get("name") == pod]
    if workload:
        return [p for p in pods if state.top_owner(p) == workload]
    return pods


def timeline(state: ClusterState, pods: list[dict[str, Any]]) -> pd.DataFrame:
    """Events, container starts and terminations of the given pods, oldest first."""
    rows: list[tuple] = []
    for p in pods:
        md = p.get("metadata") or {}
        ns, name = md.get("namespace") or "", md.get("name") or ""
        rows.append((md.get("creationTimestamp"), None, name, "", "created", "pod created",
                     "lifecycle"))
        for e in state.events_by_object.get(("Pod", ns, name), []):
            fp = (e.get("involvedObject") or {}).get("fieldPath") or ""
            m = re.search(r"\{(.+?)\}", fp)
            rows.append((e.get("firstTimestamp") or e.get("eventTime"),
                         e.get("lastTimestamp") or e.get("eventTime"), name,
                         m.group(1) if m else "",
                         f"{e.get('reason')} x{e.get('count') or 1}",
                         mask_text(e.get("message") or ""),
                         "warning" if e.get("type") == "Warning" else "event"))
        st = p.get("status") or {}
        for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
            c = cs.get("name") or ""
            last = (cs.get("lastState") or {}).get("terminated") or {}
            if last:
                rows.append((last.get("startedAt"), last.get("finishedAt"), name, c,
                             f"terminated: {last.get('reason')} (exit {last.get('exitCode')})",
                             f"restart count now {cs.get('restartCount', 0)}", "termination"))
            cur = cs.get("state") or {}
            if run := cur.get("running"):
                rows.append((run.get("startedAt"), None, name, c, "running", "", "lifecycle"))
            if term := cur.get("terminated"):
                rows.append((term.get("startedAt"), term.get("finishedAt"), name, c,
                             f"terminated: {term.get('reason')} (exit {term.get('exitCode')})",
                             "", "termination"))
    df = pd.DataFrame(rows, columns=TIMELINE_COLUMNS)
    df["time"] = pd.to_datetime(df["time"], utc=True, errors="coerce")
    df["end"] = pd.to_datetime(df["end"], utc=True, errors="coerce")
    return df.dropna(subset=["time"]).sort_values("time").reset_index(drop=True)


_LINE_REF = re.compile(r"^(previous log|log) of (\S+), line (\d+)$")


def log_excerpts(state: ClusterState, diag: Diagnosis, context: int = 3) -> list[dict]:
    """For each quoted log line: the lines around it, numbered, secrets masked."""
    out: list[dict] = []
    seen: set[tuple] = set()
    for f in diag.findings:
        pods = f.pods or ([f.name] if f.kind == "Pod" else [])
        for ev in f.evidence:
            m = _LINE_REF.match(ev.ref)
            if not m or ev.source != "log":
                continue
            previous, container, line_no = m.group(1) == "previous log", m.group(2), \
                int(m.group(3))
            for pod in pods:
                key = (f.namespace, pod, container, previous, line_no)
                text = (state.previous_logs if previous else state.logs).get(
                    (f.namespace, pod, container))
                if key in seen or not text:
                    continue
                lines = text.splitlines()
                if line_no > len(lines) or ev.text[:40] not in mask_text(lines[line_no - 1]):
                    continue
                seen.add(key)
                lo, hi = max(line_no - context, 1), min(line_no + context, len(lines))
                out.append({"rule": f.rule, "pod": pod, "container": container,
                            "previous": previous, "line": line_no,
                            "excerpt": "\n".join(
                                f"{'>' if i == line_no else ' '} {i:>5} | "
                                f"{mask_text(lines[i - 1])[:300]}"
                                for i in range(lo, hi + 1))})
                break
    return out


def usage_vs_limits(state: ClusterState, pods: list[dict[str, Any]]) -> pd.DataFrame | None:
    """The usage history of the target's containers with their request and limit."""
    hist = state.history
    if hist is None or hist.empty or not pods:
        return None
    names = {(p["metadata"].get("namespace"), p["metadata"].get("name")) for p in pods}
    h = hist[[(ns, pod) in names for ns, pod in zip(hist["namespace"], hist["pod"],
                                                     strict=True)]]
    if h.empty:
        return None
    c = state.containers[["namespace", "pod", "container", "cpu_request", "cpu_limit",
                          "memory_request", "memory_limit"]]
    h = h.merge(c, on=["namespace", "pod", "container"], how="left")
    cpu = h["resource"] == "cpu"
    h["request"] = h["memory_request"].where(~cpu, h["cpu_request"])
    h["limit"] = h["memory_limit"].where(~cpu, h["cpu_limit"])
    return h[["time", "namespace", "pod", "container", "resource", "value", "request",
              "limit"]].astype({"namespace": str, "pod": str, "container": str,
                                "resource": str})


def findings_table(diag: Diagnosis, evidence_items: int = 2) -> pd.DataFrame:
    """One row per finding, for reports: what, where, why (quoted), what to do."""
    rows = []
    for f in diag.findings:
        ev = "; ".join(f"{e.text} [{e.ref}]" for e in f.evidence[:evidence_items])
        fix = f.remediation.summary
        if f.remediation.action and f.remediation.action.kind != "manual":
            a = f.remediation.action
            fix += f" (Action: {a.kind} {a.target['kind']}/{a.target['name']}, tier {a.tier})"
        rows.append({"severity": f.severity, "rule": f.rule,
                     "object": f"{f.kind} {f.namespace}/{f.name}".replace(" /", " "),
                     "owner": f.owner, "summary": f.summary, "evidence": mask_text(ev),
                     "remediation": mask_text(fix),
                     "first_seen": f.first_seen.strftime("%Y-%m-%d %H:%M")
                     if f.first_seen else ""})
    return pd.DataFrame(rows, columns=["severity", "rule", "object", "owner", "summary",
                                       "evidence", "remediation", "first_seen"])
