"""What a rule sees: the loaded cluster, narrowed to the target, with O(1)
look-ups (events by object, pods by namespace, logs by container).

Rules never fetch anything; everything comes from the `ClusterState`. The
indexes live on the state, so diagnosing one pod after another reuses them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiops.diagnose.finding import Evidence, Finding, Remediation
from aiops.diagnose.registry import RULES
from aiops.model import ClusterState
from aiops.redact import mask_text

Obj = dict[str, Any]
LOG_LINE_LIMIT = 2000  # only the tail of a huge log is searched


def md(o: Obj) -> Obj:
    m = o.get("metadata")
    return m if isinstance(m, dict) else {}


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 text -> aware datetime; anything else -> None (never raises)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def earliest(*times: datetime | None) -> datetime | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None


@dataclass(frozen=True)
class Target:
    namespace: str | None = None
    pod: str | None = None
    workload: tuple[str, str] | None = None  # (kind, name)


@dataclass(frozen=True)
class ContainerEntry:
    """A container's spec and status side by side."""

    name: str
    spec: Obj
    status: Obj
    init: bool
    index: int  # position in spec.containers / spec.initContainers

    @property
    def state(self) -> Obj:
        s = self.status.get("state")
        return s if isinstance(s, dict) else {}

    @property
    def waiting(self) -> Obj:
        w = self.state.get("waiting")
        return w if isinstance(w, dict) else {}

    @property
    def terminated(self) -> Obj:
        t = self.state.get("terminated")
        return t if isinstance(t, dict) else {}

    @property
    def last_terminated(self) -> Obj:
        last = self.status.get("lastState")
        t = last.get("terminated") if isinstance(last, dict) else None
        return t if isinstance(t, dict) else {}

    @property
    def restarts(self) -> int:
        try:
            return int(self.status.get("restartCount") or 0)
        except (TypeError, ValueError):
            return 0

    @property
    def path(self) -> str:
        kind = "initContainerStatuses" if self.init else "containerStatuses"
        return f"status.{kind}[{self.name}]"


class _Index:
    """Per-state look-up tables, built once and cached on the state."""

    def __init__(self, state: ClusterState) -> None:
        self.by_ns: dict[tuple[str, str], list[Obj]] = defaultdict(list)
        for kind, objs in state.objects.items():
            for o in objs:
                self.by_ns[(kind, md(o).get("namespace") or "")].append(o)
        self.log_lines: dict[tuple[str, str, str, bool], list[str]] = {}


def _index(state: ClusterState) -> _Index:
    idx = state.__dict__.get("_diagnose_index")
    if idx is None:
        idx = state.__dict__["_diagnose_index"] = _Index(state)
    return idx


class Context:
    def __init__(self, state: ClusterState, target: Target | None = None) -> None:
        self.state = state
        self.target = target or Target()
        self.now = state.captured_at
        self._idx = _index(state)
        self._scope: dict[str, list[Obj]] | None = None
        self._pods = self._select_pods()
        if self.target.pod or self.target.workload:
            self._scope = self._related(self._pods)

    # -- scope ------------------------------------------------------------------
    def _select_pods(self) -> list[Obj]:
        t = self.target
        if t.pod:
            p = self.state.get("Pod", t.namespace, t.pod)
            return [p] if p else []
        pods = (self._idx.by_ns.get(("Pod", t.namespace), []) if t.namespace
                else self.state.kind("Pod"))
        if t.workload:
            return [p for p in pods if self.state.top_owner(p) == t.workload]
        return list(pods)

    def _related(self, pods: list[Obj]) -> dict[str, list[Obj]]:
        """Objects tied to the target pods: owners, services, claims, nodes, HPAs."""
        found: dict[str, dict[int, Obj]] = defaultdict(dict)

        def add(o: Obj | None) -> None:
            if o is not None:
                found[o.get("kind") or ""][id(o)] = o

        ns = self.target.namespace or ""
        if self.target.workload:
            add(self.state.get(self.target.workload[0], ns, self.target.workload[1]))
        for p in pods:
            add(p)
            cur: Obj | None = p
            for _ in range(4):
                refs = md(cur).get("ownerReferences") or [] if cur else []
                ref = next((r for r in refs if isinstance(r, dict) and r.get("controller")),
                           None)
                cur = self.state.get(ref.get("kind", ""), ns, ref.get("name", "")) if ref \
                    else None
                if cur is None:
                    break
                add(cur)
            labels = md(p).get("labels") or {}
            for s in self._idx.by_ns.get(("Service", ns), []):
                sel = (s.get("spec") or {}).get("selector") or {}
                if sel and all(labels.get(k) == v for k, v in sel.items()):
                    add(s)
                    add(self.state.get("Endpoints", ns, md(s).get("name", "")))
            spec = p.get("spec") or {}
            for v in spec.get("volumes") or []:
                claim = (v.get("persistentVolumeClaim") or {}).get("claimName") \
                    if isinstance(v, dict) else None
                if claim:
                    add(self.state.get("PersistentVolumeClaim", ns, claim))
            if spec.get("nodeName"):
                add(self.state.get("Node", None, spec["nodeName"]))
        owners = {(o.get("kind"), md(o).get("name")) for k in found for o in found[k].values()}
        for h in self._idx.by_ns.get(("HorizontalPodAutoscaler", ns), []):
            ref = (h.get("spec") or {}).get("scaleTargetRef") or {}
            if (ref.get("kind"), ref.get("name")) in owners:
                add(h)
        for q in self._idx.by_ns.get(("ResourceQuota", ns), []):
            add(q)
        return {k: list(v.values()) for k, v in found.items()}

    def pods(self) -> list[Obj]:
        return self._pods

    def objects(self, kind: str) -> list[Obj]:
        """In-scope objects of a kind (a namespace, a workload's world, or all)."""
        if kind == "Pod":
            return self._pods
        if self._scope is not None:
            return self._scope.get(kind, [])
        if self.target.namespace:
            if kind in ("Node", "PersistentVolume", "StorageClass"):
                nodes = {(p.get("spec") or {}).get("nodeName") for p in self._pods}
                return [o for o in self.state.kind(kind)
                        if kind != "Node" or md(o).get("name") in nodes]
            return self._idx.by_ns.get((kind, self.target.namespace), [])
        return self.state.kind(kind)

    def cluster_objects(self, kind: str) -> list[Obj]:
        """Every object of a kind, whatever the target (nodes a Pending pod could use,
        StorageClasses, ClusterRoles)."""
        return self.state.kind(kind)

    # -- look-ups --------------------------------------------------------------
    def get(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        return self.state.get(kind, namespace, name)

    def in_namespace(self, kind: str, namespace: str) -> list[Obj]:
        """All objects of a kind in a namespace, whatever the target."""
        return self._idx.by_ns.get((kind, namespace or ""), [])

    def events(self, obj: Obj, *, reason: str | None = None,
               type: str | None = None) -> list[Obj]:
        """Events about one object, oldest first by last time."""
        key = (obj.get("kind") or "", md(obj).get("namespace") or "", md(obj).get("name") or "")
        evs = self.state.events_by_object.get(key, [])
        if reason:
            evs = [e for e in evs if e.get("reason") == reason]
        if type:
            evs = [e for e in evs if e.get("type") == type]
        return sorted(evs, key=lambda e: str(_last(e) or ""))

    def log_lines(self, namespace: str, pod: str, container: str,
                  previous: bool = False) -> list[str]:
        """A container's log as lines (the last LOG_LINE_LIMIT of a huge one)."""
        key = (namespace, pod, container, previous)
        cache = self._idx.log_lines
        if key not in cache:
            src = self.state.previous_logs if previous else self.state.logs
            text = src.get((namespace, pod, container)) or ""
            lines = text.splitlines() if isinstance(text, str) else []
            cache[key] = lines[-LOG_LINE_LIMIT:]
        return cache[key]

    def log_offset(self, namespace: str, pod: str, container: str, previous: bool) -> int:
        """Line number (1-based) of the first line `log_lines` returns."""
        src = self.state.previous_logs if previous else self.state.logs
        text = src.get((namespace, pod, container)) or ""
        total = len(text.splitlines()) if isinstance(text, str) else 0
        return max(total - LOG_LINE_LIMIT, 0) + 1

    def containers(self, pod: Obj) -> Iterator[ContainerEntry]:
        """Init containers then app containers, each with its status (may be {})."""
        spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
        status = pod.get("status") if isinstance(pod.get("status"), dict) else {}
        for init, skey, stkey in ((True, "initContainers", "initContainerStatuses"),
                                  (False, "containers", "containerStatuses")):
            raw = status.get(stkey)
            statuses = {s.get("name"): s for s in (raw if isinstance(raw, list) else [])
                        if isinstance(s, dict) and isinstance(s.get("name"), str)}
            specs = spec.get(skey)
            for i, c in enumerate(specs if isinstance(specs, list) else []):
                if isinstance(c, dict):
                    name = c.get("name") if isinstance(c.get("name"), str) else ""
                    yield ContainerEntry(name, c, statuses.get(name) or {}, init, i)

    def owner(self, obj: Obj) -> tuple[str, str]:
        return self.state.top_owner(obj)

    def owner_object(self, obj: Obj) -> Obj | None:
        kind, name = self.owner(obj)
        found = self.get(kind, md(obj).get("namespace"), name)
        return found if found is not obj else None

    def pods_matching(self, namespace: str, selector: dict[str, str]) -> list[Obj]:
        pods = self._idx.by_ns.get(("Pod", namespace or ""), [])
        out = []
        for p in pods:
            labels = md(p).get("labels")
            labels = labels if isinstance(labels, dict) else {}
            if all(labels.get(k) == v for k, v in selector.items()):
                out.append(p)
        return out

    # -- building findings -------------------------------------------------------
    def finding(self, rule_id: str, obj: Obj, summary: str, evidence: list[Evidence],
                remediation: Remediation, *, confidence: float = 0.9,
                first_seen: datetime | None = None, severity: str | None = None) -> Finding:
        """A Finding about `obj`, with owner, docs and rank filled from the registry."""
        r = RULES[rule_id]
        m = md(obj)
        kind, name = self.owner(obj)
        return Finding(
            rule=rule_id, severity=severity or r.severity, namespace=m.get("namespace") or "",
            kind=obj.get("kind") or "", name=m.get("name") or "", owner=f"{kind}/{name}",
            summary=summary, evidence=evidence, confidence=confidence,
            first_seen=first_seen, remediation=remediation, docs=r.docs, rank=r.rank,
            pods=[m.get("name") or ""] if obj.get("kind") == "Pod" else [],
        )


def _last(e: Obj) -> Any:
    series = e.get("series") if isinstance(e.get("series"), dict) else {}
    return e.get("lastTimestamp") or series.get("lastObservedTime") or e.get("eventTime") \
        or md(e).get("creationTimestamp")


# -- evidence builders ------------------------------------------------------------

def event_evidence(e: Obj) -> Evidence:
    """Quote an event with its count, last time and reporting component."""
    series = e.get("series") if isinstance(e.get("series"), dict) else {}
    count = e.get("count") or series.get("count") or 1
    src = (e.get("source") or {}).get("component") if isinstance(e.get("source"), dict) else None
    src = src or e.get("reportingComponent") or e.get("reportingController") or "?"
    last = _last(e)
    msg = e.get("message") or e.get("note") or ""
    return Evidence("event", mask_text(f"{e.get('reason', '')}: {msg}".strip()),
                    f"event {e.get('reason', '')} x{count}, last {last} ({src})",
                    parse_time(last))


def event_first_seen(events: list[Obj]) -> datetime | None:
    return earliest(*(parse_time(e.get("firstTimestamp") or e.get("eventTime") or _last(e))
                      for e in events))


def status_evidence(path: str, value: Any, time: datetime | None = None) -> Evidence:
    return Evidence("status", f"{path.rsplit('.', 1)[-1]}: {value}", path, time)


def log_evidence(container: str, line_no: int, line: str, previous: bool) -> Evidence:
    which = "previous log" if previous else "log"
    return Evidence("log", mask_text(line.strip()[:500]), f"{which} of {container}, line {line_no}")
