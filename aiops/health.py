"""Cluster health: a Popeye-style score plus the tables a cluster owner reads on
Monday morning. Pure functions over a `ClusterState`; no I/O except the small
summary JSON helpers at the bottom.

Each section is a registered "sanitizer" that rates every object of its kind
ok / warn / error with a reason. Section score = 100 * ok / total; the cluster
score is the mean of section scores; grades follow Popeye (A >= 90 ... F).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from aiops.durations import parse_duration
from aiops.model import ClusterState

FORMULA = (
    "Each object is rated ok, warn or error by its section's checks. "
    "Section score = 100 x ok / total; cluster score = mean of the section scores. "
    "Grades: A >= 90, B >= 80, C >= 70, D >= 60, E >= 50, else F (as Popeye grades)."
)
ISSUE_COLUMNS = ["severity", "section", "namespace", "kind", "name", "reason", "detail"]
Rating = tuple[str, str, str, str, str, str]  # level, namespace, kind, name, reason, detail
Sanitizer = Callable[[ClusterState, "Scope"], Iterable[Rating]]
SANITIZERS: dict[str, Sanitizer] = {}

POD_ERROR_REASONS = {
    "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName",
    "ErrImageNeverPull", "CreateContainerConfigError", "CreateContainerError",
    "RunContainerError", "OOMKilled", "Error", "ContainerStatusUnknown", "Evicted",
}


@dataclass(frozen=True)
class Scope:
    """What an assessment covers: namespaces (None = all) and the time window."""

    namespaces: frozenset[str] | None
    since: pd.Timestamp
    now: pd.Timestamp

    def covers(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces


def section(name: str) -> Callable[[Sanitizer], Sanitizer]:
    """Register a sanitizer; adding a section is adding one decorated function."""

    def deco(fn: Sanitizer) -> Sanitizer:
        SANITIZERS[name] = fn
        return fn

    return deco


@dataclass
class HealthReport:
    score: float
    grade: str
    formula: str
    sections: pd.DataFrame
    issues: pd.DataFrame
    nodes: pd.DataFrame
    workloads: pd.DataFrame
    restarts: pd.DataFrame
    restart_trend: pd.DataFrame
    warning_events: pd.DataFrame
    changes: pd.DataFrame | None
    unavailable: dict[str, str]
    captured_at: datetime
    source: str
    window: str = "7d"
    namespaces: list[str] | None = field(default=None)

    def summary(self) -> dict[str, Any]:
        """JSON-able digest, saved beside the report and compared next time."""
        restarts = (self.restarts.groupby(["namespace", "workload"])["restarts"].sum()
                    if not self.restarts.empty else pd.Series(dtype="int64"))
        return {
            "captured_at": self.captured_at.isoformat(),
            "source": self.source,
            "score": round(self.score, 1),
            "grade": self.grade,
            "sections": {r.section: round(float(r.score), 1)
                         for r in self.sections.itertuples()},
            "issues": sorted(_issue_key(r) for r in self.issues.itertuples()),
            "restarts": {f"{ns}/{wl}": int(n) for (ns, wl), n in restarts.items()},
            "warning_events": {r.reason: int(r.events)
                               for r in self.warning_events.itertuples()},
        }


def grade_for(score: float) -> str:
    for letter, floor in (("A", 90), ("B", 80), ("C", 70), ("D", 60), ("E", 50)):
        if score >= floor:
            return letter
    return "F"


def parse_window(window: str) -> pd.Timedelta:
    return parse_duration(window, "time window")


def assess(state: ClusterState, namespaces: list[str] | None = None, window: str = "7d",
           previous: dict[str, Any] | None = None) -> HealthReport:
    """Rate every object, score the cluster and build the report tables."""
    now = pd.Timestamp(state.captured_at)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    ns_set = frozenset(n.strip() for n in namespaces if n.strip()) if namespaces else None
    scope = Scope(ns_set or None, now - parse_window(window), now)

    rows: list[tuple[str, Rating]] = []
    for name, fn in SANITIZERS.items():
        rows.extend((name, r) for r in fn(state, scope))
    ratings = pd.DataFrame(
        [(s, *r) for s, r in rows],
        columns=["section", "level", "namespace", "kind", "name", "reason", "detail"],
    )
    sections = _section_scores(ratings)
    score = float(sections["score"].mean()) if not sections.empty else 100.0
    issues = (ratings[ratings["level"] != "ok"]
              .rename(columns={"level": "severity"})
              .assign(_o=lambda d: d["severity"].map({"error": 0, "warn": 1}))
              .sort_values(["_o", "section", "namespace", "name"])
              .drop(columns="_o")[ISSUE_COLUMNS].reset_index(drop=True))
    report = HealthReport(
        score=score, grade=grade_for(score), formula=FORMULA, sections=sections,
        issues=issues, nodes=node_allocation(state, scope), workloads=workload_table(state, scope),
        restarts=restart_table(state, scope), restart_trend=restart_trend(state, scope),
        warning_events=warning_events(state, scope), changes=None,
        unavailable=dict(state.unavailable), captured_at=state.captured_at,
        source=state.source, window=window, namespaces=sorted(ns_set) if ns_set else None,
    )
    if previous:
        report.changes = compare(previous, report.summary())
    return report


def _section_scores(ratings: pd.DataFrame) -> pd.DataFrame:
    if ratings.empty:
        return pd.DataFrame(columns=["section", "ok", "warn", "error", "total", "score"])
    counts = (ratings.pivot_table(index="section", columns="level", values="name",
                                  aggfunc="count", fill_value=0)
              .reindex(columns=["ok", "warn", "error"], fill_value=0))
    counts["total"] = counts.sum(axis=1)
    counts["score"] = 100.0 * counts["ok"] / counts["total"]
    order = [s for s in SANITIZERS if s in counts.index]
    return counts.loc[order].reset_index().rename_axis(None, axis=1)


def _issue_key(r: Any) -> str:
    return f"{r.kind} {r.namespace}/{r.name}: {r.reason}" if r.namespace else \
        f"{r.kind} {r.name}: {r.reason}"


# -- sanitizers ---------------------------------------------------------------

@section("nodes")
def _nodes(state: ClusterState, scope: Scope) -> Iterable[Rating]:
    for n in state.nodes.itertuples():
        if not n.ready:
            yield ("error", "", "Node", n.name, "NotReady", "kubelet reports Ready!=True")
        elif n.pressure:
            yield ("warn", "", "Node", n.name, "Pressure", f"conditions true: {n.pressure}")
        elif n.unschedulable:
            yield ("warn", "", "Node", n.name, "Cordoned", "spec.unschedulable is true")
        else:
            yield ("ok", "", "Node", n.name, "", "")


@section("pods")
def _pods(state: ClusterState, scope: Scope) -> Iterable[Rating]:
    pending_grace = pd.Timedelta(minutes=5)
    for p in state.pods.itertuples():
        if not scope.covers(p.namespace):
            continue
        status = p.status
        if p.phase == "Succeeded" or status == "Completed":
            yield ("ok", p.namespace, "Pod", p.name, "", "")
        elif status in POD_ERROR_REASONS or p.phase == "Failed":
            yield ("error", p.namespace, "Pod", p.name, status, _pod_detail(state, p))
        elif p.phase == "Pending":
            old = pd.isna(p.created) or scope.now - p.created > pending_grace
            yield ("error" if old else "warn", p.namespace, "Pod", p.name,
                   status if status != "Pending" else "Pending", _pod_detail(state, p))
        elif not p.ready:
            yield ("warn", p.namespace, "Pod", p.name, "NotReady",
                   f"{p.ready_containers}/{p.total_containers} containers ready")
        elif p.restarts >= 3:
            yield ("warn", p.namespace, "Pod", p.name, "Restarts",
                   f"{p.restarts} container restarts")
        else:
            yield ("ok", p.namespace, "Pod", p.name, "", "")


def _pod_detail(state: ClusterState, p: Any) -> str:
    """The most telling message: a waiting/terminated message or the scheduler's."""
    obj = state.get("Pod", p.namespace, p.name) or {}
    st = obj.get("status") or {}
    for c in st.get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            return c.get("message") or c.get("reason") or ""
    for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
        state_d = cs.get("state") or {}
        w = state_d.get("waiting") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        if last.get("reason"):
            return (f"container {cs.get('name')}: last terminated {last.get('reason')} "
                    f"(exit {last.get('exitCode')}), {cs.get('restartCount', 0)} restarts")
        if w.get("message"):
            return f"container {cs.get('name')}: {w['message']}"
    return st.get("message") or ""


@section("workloads")
def _workloads(state: ClusterState, scope: Scope) -> Iterable[Rating]:
    for w in state.workloads.itertuples():
        if w.kind in ("Job", "CronJob") or not scope.covers(w.namespace):
            continue
        if w.desired > 0 and w.available == 0:
            yield ("error", w.namespace, w.kind, w.name, "Unavailable",
                   f"0/{w.desired} available {w.condition}".strip())
        elif "ProgressDeadlineExceeded" in w.condition:
            yield ("error", w.namespace, w.kind, w.name, "RolloutStuck", w.condition)
        elif not w.healthy:
            yield ("warn", w.namespace, w.kind, w.name, "Degraded",
                   f"{w.available}/{w.desired} available {w.condition}".strip())
        else:
            yield ("ok", w.namespace, w.kind, w.name, "", "")


@section("jobs")
def _jobs(state: ClusterState, scope: Scope) -> Iterable[Rating]:
    for j in state.kind("Job"):
        md = j.get("metadata") or {}
        ns = md.get("namespace") or ""
        if not scope.covers(ns):
            continue
        failed = next((c for c in (j.get("status") or {}).get("conditions") or []
                       if c.get("type") == "Failed" and c.get("status") == "True"), None)
        if failed:
            yield ("error", ns, "Job", md.get("name", ""), failed.get("reason") or "Failed",
                   failed.get("message") or "")
        else:
            yield ("ok", ns, "Job", md.get("name", ""), "", "")
    for cj in state.kind("CronJob"):
        md, st = cj.get("metadata") or {}, cj.get("status") or {}
        ns = md.get("namespace") or ""
        if not scope.covers(ns):
            continue
        last, ok_at = st.get("lastScheduleTime"), st.get("lastSuccessfulTime")
        if last and (not ok_at or ok_at < last):
            yield ("warn", ns, "CronJob", md.get("name", ""), "LastRunFailed",
                   f"last scheduled {last}, last success {ok_at or 'never'}")
        else:
            yield ("ok", ns, "CronJob", md.get("name", ""), "", "")


@section("services")
def _services(state: ClusterState, scope: Scope) -> Iterable[Rating]:
    if not state.is_available("Endpoints") and "Endpoints" not in state.objects:
        return
    for s in state.services.itertuples():
        if not scope.covers(s.namespace):
            continue
        if not s.selector:
            yield ("ok", s.namespace, "Service", s.name, "", "")
        elif pd.notna(s.matching_pods) and s.matching_pods == 0:
            yield ("error", s.namespace, "Service", s.name, "SelectorMatchesNothing",
                   f"selector {s.selector} matches no pod")
        elif pd.notna(s.ready_endpoints) and s.ready_endpoints == 0:
            yield ("error", s.namespace, "Service", s.name, "NoReadyEndpoints",
                   f"{s.matching_pods} pods match {s.selector} but none is ready")
        else:
            yield ("ok", s.namespace, "Service", s.name, "", "")


@section("storage")
def _storage(state: ClusterState, scope: Scope) -> Iterable[Rating]:
    for pvc in state.kind("PersistentVolumeClaim"):
        md = pvc.get("metadata") or {}
        ns = md.get("namespace") or ""
        if not scope.covers(ns):
            continue
        phase = (pvc.get("status") or {}).get("phase") or "Unknown"
        level = "ok" if phase == "Bound" else "error"
        yield (level, ns, "PersistentVolumeClaim", md.get("name", ""),
               "" if level == "ok" else phase, "" if level == "ok" else f"phase {phase}")


@section("autoscaling")
def _hpas(state: ClusterState, scope: Scope) -> Iterable[Rating]:
    for h in state.kind("HorizontalPodAutoscaler"):
        md, spec, st = h.get("metadata") or {}, h.get("spec") or {}, h.get("status") or {}
        ns = md.get("namespace") or ""
        if not scope.covers(ns):
            continue
        conds = {c.get("type"): c for c in st.get("conditions") or []}
        active = conds.get("ScalingActive") or {}
        if active.get("status") == "False":
            yield ("error", ns, "HorizontalPodAutoscaler", md.get("name", ""),
                   active.get("reason") or "ScalingInactive", active.get("message") or "")
        elif st.get("currentReplicas", 0) >= spec.get("maxReplicas", math.inf):
            yield ("warn", ns, "HorizontalPodAutoscaler", md.get("name", ""), "AtMaxReplicas",
                   f"{st.get('currentReplicas')} replicas = maxReplicas")
        else:
            yield ("ok", ns, "HorizontalPodAutoscaler", md.get("name", ""), "", "")


# -- tables -------------------------------------------------------------------

def node_allocation(state: ClusterState, scope: Scope) -> pd.DataFrame:
    """Capacity vs requests per node (requests of pods that still hold resources)."""
    pods = state.pods
    live = pods[~pods["phase"].isin(["Succeeded", "Failed"]) & (pods["node"] != "")]
    req = live.groupby("node").agg(cpu_requested=("cpu_request", "sum"),
                                   memory_requested=("memory_request", "sum"),
                                   pods=("name", "count"))
    n = state.nodes.set_index("name")
    out = pd.DataFrame({
        "ready": n["ready"], "pressure": n["pressure"],
        "cpu_allocatable": n["cpu_allocatable"], "memory_allocatable": n["memory_allocatable"],
        "pods_allocatable": n["pods_allocatable"],
    }).join(req, how="left").fillna({"cpu_requested": 0.0, "memory_requested": 0.0, "pods": 0})
    out["cpu_pct"] = 100 * out["cpu_requested"] / out["cpu_allocatable"]
    out["memory_pct"] = 100 * out["memory_requested"] / out["memory_allocatable"]
    out["pods"] = out["pods"].astype(int)
    cols = ["ready", "pressure", "cpu_allocatable", "cpu_requested", "cpu_pct",
            "memory_allocatable", "memory_requested", "memory_pct", "pods", "pods_allocatable"]
    return out[cols].rename_axis("name").reset_index()


def workload_table(state: ClusterState, scope: Scope) -> pd.DataFrame:
    w = state.workloads
    w = w[w["namespace"].map(scope.covers)] if scope.namespaces else w
    cols = ["namespace", "kind", "name", "desired", "ready", "available", "healthy", "condition"]
    return w[cols].sort_values(["healthy", "namespace", "name"]).reset_index(drop=True)


def restart_table(state: ClusterState, scope: Scope) -> pd.DataFrame:
    c = state.containers
    c = c[(c["restarts"] > 0) & c["namespace"].map(scope.covers)]
    out = c.assign(workload=c["workload_kind"] + "/" + c["workload"]).rename(
        columns={"container": "container"})
    cols = ["namespace", "pod", "container", "workload", "restarts", "last_reason",
            "last_exit_code", "last_finished"]
    return out[cols].sort_values("restarts", ascending=False).reset_index(drop=True)


_RESTART_REASONS = {"BackOff", "Started", "Killing"}


def restart_trend(state: ClusterState, scope: Scope) -> pd.DataFrame:
    """Restart activity per day, estimated from container events.

    An event's `count` is spread evenly over its first..last time. Events expire
    (1 h by default on most clusters), so this shows recent activity; the trend
    across weeks comes from comparing report summaries.
    """
    ev = state.events
    mask = (ev["object_kind"] == "Pod") & ev["reason"].isin(_RESTART_REASONS) \
        & ev["namespace"].map(scope.covers) & (ev["last_time"] >= scope.since)
    ev = ev[mask]
    ev = ev[(ev["reason"] != "BackOff") | ev["message"].str.contains("restarting", na=False)]
    ev = ev[(ev["reason"] != "Killing") | ev["message"].str.contains("restart", na=False)]
    rows: list[tuple[Any, str, float]] = []
    for e in ev.itertuples():
        n = e.count - 1 if e.reason == "Started" else e.count
        if n <= 0 or pd.isna(e.last_time):
            continue
        first = e.first_time if pd.notna(e.first_time) else e.last_time
        first = max(first, scope.since)
        days = pd.date_range(first.normalize(), e.last_time.normalize(), freq="D")
        span = max((e.last_time - first).total_seconds(), 1.0)
        for d in days:
            lo, hi = max(first, d), min(e.last_time, d + pd.Timedelta(days=1))
            share = max((hi - lo).total_seconds(), 0.0) / span if len(days) > 1 else 1.0
            rows.append((d.date(), e.namespace, n * share))
    df = pd.DataFrame(rows, columns=["day", "namespace", "restarts"])
    if df.empty:
        return df
    out = df.groupby(["day", "namespace"], as_index=False)["restarts"].sum()
    out["restarts"] = out["restarts"].round().astype(int)
    return out


def warning_events(state: ClusterState, scope: Scope) -> pd.DataFrame:
    ev = state.events
    ev = ev[(ev["type"] == "Warning") & (ev["last_time"] >= scope.since)
            & ev["namespace"].map(lambda n: scope.covers(n) or n == "")]
    cols = ["reason", "events", "objects", "last_seen", "example"]
    if ev.empty:
        return pd.DataFrame(columns=cols)
    ev = ev.sort_values("last_time")
    g = ev.groupby("reason")
    out = pd.DataFrame({
        "events": g["count"].sum(),
        "objects": g["object_name"].nunique(),
        "last_seen": g["last_time"].max(),
        "example": g["message"].last(),
    }).reset_index()
    return out.sort_values("events", ascending=False)[cols].reset_index(drop=True)


# -- comparison with the previous report ---------------------------------------

def compare(previous: dict[str, Any], current: dict[str, Any]) -> pd.DataFrame:
    """What changed since the previous report: score, issues, restarts, warnings."""
    rows: list[tuple[str, Any, Any, str]] = []
    ps, cs = previous.get("score"), current.get("score")
    if ps is not None and cs is not None:
        rows.append(("score", ps, cs, f"{cs - ps:+.1f}"))
    prev_issues, cur_issues = set(previous.get("issues", [])), set(current.get("issues", []))
    rows += [(f"issue: {i}", "", "present", "new") for i in sorted(cur_issues - prev_issues)]
    rows += [(f"issue: {i}", "present", "", "resolved") for i in sorted(prev_issues - cur_issues)]
    pr, cr = previous.get("restarts", {}), current.get("restarts", {})
    for wl in sorted(set(pr) | set(cr)):
        a, b = pr.get(wl, 0), cr.get(wl, 0)
        if a != b:
            rows.append((f"restarts: {wl}", a, b, f"{b - a:+d}"))
    pw, cw = previous.get("warning_events", {}), current.get("warning_events", {})
    for reason in sorted(set(pw) | set(cw)):
        a, b = pw.get(reason, 0), cw.get(reason, 0)
        if a != b:
            rows.append((f"warning events: {reason}", a, b, f"{b - a:+d}"))
    return pd.DataFrame(rows, columns=["item", "previous", "current", "change"])


def save_summary(report: HealthReport, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(report.summary(), indent=2, sort_keys=True))
    tmp.replace(p)
    return p


def load_previous_summary(reports_dir: str | Path, name: str, before: str) -> dict | None:
    """The newest `<date>/<name>.summary.json` dated on or before `before` (YYYY-MM-DD)."""
    root = Path(reports_dir)
    if not root.is_dir():
        return None
    candidates = sorted(p for p in root.glob(f"*/{name}.summary.json")
                        if p.parent.name <= before)
    for p in reversed(candidates):
        try:
            return json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
    return None

