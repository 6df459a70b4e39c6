"""New pods against old ones during a Deployment's rolling update: pure functions
over a ClusterState, so a snapshot, the demo and a live poll are judged alike.

The new ReplicaSet is the one whose `deployment.kubernetes.io/revision` is the
Deployment's (the controller stamps both); the others owned by the Deployment
(ownerReferences) are old. Pods belong to a side through their controller
ownerReference, else their `pod-template-hash` label. Error lines come from the
diagnosis's own log scan (`aiops.diagnose.rules.logs.pod_scan`), so the guard
and `aiops diagnose` never disagree on what counts as an error.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from aiops.diagnose.context import Context, Target, parse_time
from aiops.diagnose.rules.logs import pod_scan
from aiops.errors import ParameterError
from aiops.model import ClusterState
from aiops.quantity import parse_quantity

Obj = dict[str, Any]
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
MAX_SAMPLES = 3  # error lines quoted per pod


def _md(o: Obj) -> Obj:
    m = o.get("metadata")
    return m if isinstance(m, dict) else {}


def revision(obj: Obj | None) -> int | None:
    """The revision annotation as a number (None when absent or not a number)."""
    value = (_md(obj or {}).get("annotations") or {}).get(REVISION)
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _owned_by(obj: Obj, owner: Obj) -> bool:
    om = _md(owner)
    for ref in _md(obj).get("ownerReferences") or []:
        if not isinstance(ref, dict) or ref.get("kind") != owner.get("kind"):
            continue
        if (ref.get("uid") and ref.get("uid") == om.get("uid")) or (
                not ref.get("uid") and ref.get("name") == om.get("name")):
            return True
    return False


def replicasets_of(state: ClusterState, deployment: Obj) -> list[Obj]:
    """The Deployment's ReplicaSets (by ownerReferences), newest revision first."""
    ns = _md(deployment).get("namespace") or ""
    rss = [rs for rs in state.in_namespace("ReplicaSet", ns) if _owned_by(rs, deployment)]
    return sorted(rss, key=lambda rs: revision(rs) or 0, reverse=True)


def pods_of(state: ClusterState, replicaset: Obj) -> list[Obj]:
    """Pods controlled by a ReplicaSet (ownerReferences, else its pod-template-hash)."""
    m = _md(replicaset)
    h = (m.get("labels") or {}).get(HASH_LABEL)
    out = []
    for p in state.in_namespace("Pod", m.get("namespace") or ""):
        if _owned_by(p, replicaset) or (
                h and not _md(p).get("ownerReferences")
                and (_md(p).get("labels") or {}).get(HASH_LABEL) == h):
            out.append(p)
    return sorted(out, key=lambda p: _md(p).get("name") or "")


# -- one pod -------------------------------------------------------------------------

@dataclass(frozen=True)
class PodHealth:
    """What one pod shows: the numbers a side is summed from."""

    name: str
    ready: bool
    restarts: int
    waiting: tuple[str, ...]  # reasons of containers waiting now (ImagePullBackOff...)
    terminations: tuple[str, ...]  # "OOMKilled", "Error (exit 1)": current or last runs
    error_lines: int  # log lines the diagnosis classifies as errors
    error_samples: tuple[str, ...]
    warning_events: int  # Warning events about the pod, counted with their `count`
    memory_share: float | None  # max over containers of working set / memory limit
    cpu_share: float | None  # max over containers of usage / CPU limit
    age_seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ready": self.ready, "restarts": self.restarts,
                "waiting": list(self.waiting), "terminations": list(self.terminations),
                "error_lines": self.error_lines, "error_samples": list(self.error_samples),
                "warning_events": self.warning_events,
                "memory_share": _round(self.memory_share), "cpu_share": _round(self.cpu_share),
                "age_seconds": _round(self.age_seconds)}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def _termination(t: Obj) -> str | None:
    """'OOMKilled', 'Error (exit 1)'; None for a clean exit."""
    if not isinstance(t, dict) or not t:
        return None
    code, reason = t.get("exitCode"), t.get("reason") or "Terminated"
    if code == 0 and reason == "Completed":
        return None
    if reason == "OOMKilled" or code is None:
        return str(reason)
    return f"{reason} (exit {code})"


def _usage_shares(state: ClusterState, pod: Obj) -> tuple[float | None, float | None]:
    """Max working set / memory limit and usage / CPU limit over the pod's containers."""
    m = _md(pod)
    metrics = state.get("PodMetrics", m.get("namespace"), m.get("name") or "")
    if metrics is None:
        return None, None
    limits = {c.get("name"): ((c.get("resources") or {}).get("limits") or {})
              for c in (pod.get("spec") or {}).get("containers") or []}
    mem: list[float] = []
    cpu: list[float] = []
    for c in metrics.get("containers") or []:
        usage, lim = c.get("usage") or {}, limits.get(c.get("name")) or {}
        for res, into in (("memory", mem), ("cpu", cpu)):
            try:
                if usage.get(res) and lim.get(res) and float(parse_quantity(lim[res])) > 0:
                    into.append(float(parse_quantity(usage[res])) / float(parse_quantity(lim[res])))
            except (ValueError, TypeError, ArithmeticError):
                continue
    return (max(mem) if mem else None), (max(cpu) if cpu else None)


def pod_health(state: ClusterState, ctx: Context, pod: Obj, now: datetime) -> PodHealth:
    m = _md(pod)
    ns, name = m.get("namespace") or "", m.get("name") or ""
    status = pod.get("status") or {}
    statuses = [s for s in status.get("containerStatuses") or [] if isinstance(s, dict)]
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or [] if isinstance(c, dict))
    waiting, terms = [], []
    for s in statuses + [s for s in status.get("initContainerStatuses") or []
                         if isinstance(s, dict)]:
        st, last = s.get("state") or {}, s.get("lastState") or {}
        if (st.get("waiting") or {}).get("reason"):
            waiting.append(str(st["waiting"]["reason"]))
        for t in (st.get("terminated"), last.get("terminated")):
            if (what := _termination(t or {})) is not None:
                terms.append(what)
    scan = pod_scan(ctx, pod)
    lines: dict[tuple[str, bool, int], str] = {}
    if scan is not None:
        for hits in scan.hits.values():
            for h in hits:
                lines.setdefault((h.container, h.previous, h.line_no), h.line)
    warnings = sum(int(e.get("count") or 1) for e in
                   state.events_by_object.get(("Pod", ns, name), [])
                   if e.get("type") == "Warning")
    started = parse_time(m.get("creationTimestamp"))
    age = (now - started).total_seconds() if started else None
    mem, cpu = _usage_shares(state, pod)
    return PodHealth(name, ready, sum(int(s.get("restartCount") or 0) for s in statuses),
                     tuple(waiting), tuple(terms), len(lines),
                     tuple(v[:300] for _, v in sorted(lines.items())[:MAX_SAMPLES]),
                     warnings, mem, cpu, age)


# -- one side ------------------------------------------------------------------------

@dataclass(frozen=True)
class Side:
    """The pods of one side (new: the current revision; old: every earlier one)."""

    label: str  # new | old | baseline
    replicasets: tuple[str, ...]
    revisions: tuple[int, ...]
    pods: tuple[PodHealth, ...] = ()
    metrics: bool = False  # PodMetrics were available for its pods

    @property
    def count(self) -> int:
        return len(self.pods)

    @property
    def ready(self) -> int:
        return sum(p.ready for p in self.pods)

    @property
    def ready_share(self) -> float | None:
        return self.ready / self.count if self.pods else None

    @property
    def restarts(self) -> int:
        return sum(p.restarts for p in self.pods)

    @property
    def restarts_per_pod(self) -> float | None:
        return self.restarts / self.count if self.pods else None

    @property
    def error_lines(self) -> int:
        return sum(p.error_lines for p in self.pods)

    @property
    def errors_per_pod(self) -> float | None:
        return self.error_lines / self.count if self.pods else None

    @property
    def warning_events(self) -> int:
        return sum(p.warning_events for p in self.pods)

    @property
    def waiting(self) -> Counter[str]:
        return Counter(r for p in self.pods for r in p.waiting)

    @property
    def terminations(self) -> Counter[str]:
        return Counter(t for p in self.pods for t in p.terminations)

    @property
    def memory_share(self) -> float | None:
        shares = [p.memory_share for p in self.pods if p.memory_share is not None]
        return max(shares) if shares else None

    @property
    def cpu_share(self) -> float | None:
        shares = [p.cpu_share for p in self.pods if p.cpu_share is not None]
        return max(shares) if shares else None

    @property
    def youngest_seconds(self) -> float | None:
        ages = [p.age_seconds for p in self.pods if p.age_seconds is not None]
        return min(ages) if ages else None

    def numbers(self) -> dict[str, Any]:
        """The side in a few numbers (what a recommendation quotes and a chart plots)."""
        return {"pods": self.count, "ready": self.ready, "ready_share": _round(self.ready_share),
                "restarts": self.restarts, "restarts_per_pod": _round(self.restarts_per_pod),
                "error_lines": self.error_lines, "errors_per_pod": _round(self.errors_per_pod),
                "warning_events": self.warning_events, "waiting": dict(self.waiting),
                "terminations": dict(self.terminations),
                "memory_share": _round(self.memory_share), "cpu_share": _round(self.cpu_share),
                "metrics": self.metrics}

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "replicasets": list(self.replicasets),
                "revisions": list(self.revisions), **self.numbers(),
                "pod_details": [p.to_dict() for p in self.pods]}


def side(state: ClusterState, label: str, replicasets: list[Obj], now: datetime) -> Side:
    ctx = Context(state, Target(namespace=_md(replicasets[0]).get("namespace") or "")) \
        if replicasets else None
    pods = [pod_health(state, ctx, p, now) for rs in replicasets for p in pods_of(state, rs)] \
        if ctx else []
    metrics = state.is_available("PodMetrics") and any(
        p.memory_share is not None or p.cpu_share is not None for p in pods)
    return Side(label, tuple(_md(rs).get("name") or "" for rs in replicasets),
                tuple(r for rs in replicasets if (r := revision(rs)) is not None),
                tuple(pods), metrics)


# -- the rollout ---------------------------------------------------------------------

@dataclass(frozen=True)
class Rollout:
    """Where the Deployment's rolling update stands, from its status."""

    deployment: Obj
    new_rs: Obj | None
    old_rs: tuple[Obj, ...]  # newest revision first
    desired: int
    updated: int
    ready: int
    available: int
    total: int  # status.replicas: new and old pods
    observed: bool  # status.observedGeneration >= metadata.generation
    paused: bool
    deadline_exceeded: bool  # Progressing=False, ProgressDeadlineExceeded

    @property
    def namespace(self) -> str:
        return _md(self.deployment).get("namespace") or ""

    @property
    def name(self) -> str:
        return _md(self.deployment).get("name") or ""

    @property
    def revision(self) -> int | None:
        return revision(self.deployment)

    @property
    def previous_rs(self) -> Obj | None:
        """The ReplicaSet an undo returns to: the newest older revision."""
        return self.old_rs[0] if self.old_rs else None

    @property
    def complete(self) -> bool:
        """As `kubectl rollout status` judges it: every replica updated and available,
        no old replica left."""
        return (self.observed and self.updated >= self.desired and self.total <= self.updated
                and self.available >= self.updated)

    @property
    def started_at(self) -> datetime | None:
        return parse_time(_md(self.new_rs).get("creationTimestamp")) if self.new_rs else None

    def to_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "name": self.name, "revision": self.revision,
                "new_replicaset": _md(self.new_rs).get("name") if self.new_rs else None,
                "old_replicasets": [_md(r).get("name") for r in self.old_rs],
                "desired": self.desired, "updated": self.updated, "ready": self.ready,
                "available": self.available, "total": self.total, "observed": self.observed,
                "paused": self.paused, "deadline_exceeded": self.deadline_exceeded,
                "complete": self.complete}


def find_rollout(state: ClusterState, namespace: str, name: str) -> Rollout:
    dep = state.get("Deployment", namespace, name)
    if dep is None:
        names = sorted(_md(d).get("name") or "" for d in state.in_namespace("Deployment",
                                                                            namespace))
        raise ParameterError(f"no Deployment {name!r} in namespace {namespace!r}",
                             f"Deployments there: {', '.join(names[:8]) or 'none'}")
    rss = replicasets_of(state, dep)
    rev = revision(dep)
    new = next((rs for rs in rss if rev is not None and revision(rs) == rev), None)
    if new is None and rss:  # no annotation yet: the newest one is being rolled out
        new = rss[0]
    old = tuple(rs for rs in rss if rs is not new)
    spec, st, m = dep.get("spec") or {}, dep.get("status") or {}, _md(dep)
    exceeded = any(c.get("type") == "Progressing" and c.get("status") == "False"
                   and c.get("reason") == "ProgressDeadlineExceeded"
                   for c in st.get("conditions") or [] if isinstance(c, dict))

    def n(key: str) -> int:
        try:
            return int(st.get(key) or 0)
        except (TypeError, ValueError):
            return 0

    return Rollout(dep, new, old, int(spec.get("replicas", 1) or 0), n("updatedReplicas"),
                   n("readyReplicas"), n("availableReplicas"), n("replicas"),
                   n("observedGeneration") >= int(m.get("generation") or 0),
                   bool(spec.get("paused")), exceeded)


@dataclass(frozen=True)
class Comparison:
    """New pods against old ones at one moment."""

    rollout: Rollout
    new: Side
    old: Side  # the old pods now, or the baseline kept from an earlier poll
    at: datetime
    notes: tuple[str, ...] = field(default=())

    def table(self) -> pd.DataFrame:
        """One row per measure, a column per side: what the notebook and CLI print."""
        rows = []
        for key, label in (("pods", "pods"), ("ready", "ready"), ("ready_share", "ready share"),
                           ("restarts_per_pod", "restarts per pod"),
                           ("errors_per_pod", "error log lines per pod"),
                           ("warning_events", "warning events"),
                           ("memory_share", "memory / limit (max)"),
                           ("cpu_share", "CPU / limit (max)")):
            a, b = self.new.numbers()[key], self.old.numbers()[key]
            rows.append({"measure": label, "new": a, "old": b})
        for label, get in (("waiting", lambda s: s.waiting),
                           ("terminations", lambda s: s.terminations)):
            rows.append({"measure": label, "new": _counts(get(self.new)),
                         "old": _counts(get(self.old))})
        df = pd.DataFrame(rows, columns=["measure", "new", "old"])
        return df.astype({"new": object, "old": object})

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "rollout": self.rollout.to_dict(),
                "new": self.new.to_dict(), "old": self.old.to_dict(), "notes": list(self.notes)}


def _counts(c: Counter[str]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in c.most_common()) or "-"


def compare(state: ClusterState, namespace: str, name: str,
            baseline: Side | None = None) -> Comparison:
    """Compare the Deployment's new pods with its old ones in `state`.

    `baseline` (the old side of an earlier poll) stands in once the old pods are
    gone, as they are at the end of every rolling update.
    """
    r = find_rollout(state, namespace, name)
    now = state.captured_at
    new = side(state, "new", [r.new_rs] if r.new_rs else [], now)
    old = side(state, "old", list(r.old_rs), now)
    notes = []
    if not old.pods and baseline is not None and baseline.pods:
        old = Side("baseline", baseline.replicasets, baseline.revisions, baseline.pods,
                   baseline.metrics)
        notes.append("no old pod is left: compared with the old pods of an earlier poll")
    elif not r.old_rs:
        notes.append("no old ReplicaSet: the new pods are judged on their own")
    if not state.is_available("PodMetrics"):
        notes.append(f"no usage metrics ({state.unavailable['PodMetrics']})")
    return Comparison(r, new, old, now, tuple(notes))
