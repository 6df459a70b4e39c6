"""Column contracts of the shared DataFrames, built from raw API objects.

Pure functions: objects in, frame out. They tolerate missing fields (a pod
without status is a row with NaN/empty values, not an exception) because
snapshots from real clusters are messy. Quantities are floats: CPU in cores,
memory in bytes; times are tz-aware UTC timestamps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from aiops.quantity import to_float

if TYPE_CHECKING:
    from aiops.model import ClusterState

Obj = dict[str, Any]

POD_COLUMNS = [
    "namespace", "name", "uid", "node", "phase", "status", "reason", "ready",
    "ready_containers", "total_containers", "restarts", "qos", "created", "started",
    "workload_kind", "workload", "cpu_request", "cpu_limit", "memory_request",
    "memory_limit", "labels",
]
CONTAINER_COLUMNS = [
    "namespace", "pod", "container", "init", "image", "ready", "restarts", "state",
    "reason", "message", "exit_code", "started_at", "last_reason", "last_exit_code",
    "last_finished", "cpu_request", "cpu_limit", "memory_request", "memory_limit",
    "workload_kind", "workload", "node",
]
NODE_COLUMNS = [
    "name", "ready", "unschedulable", "pressure", "roles", "kubelet_version", "os_image",
    "cpu_capacity", "memory_capacity", "pods_capacity", "cpu_allocatable",
    "memory_allocatable", "pods_allocatable", "created", "taints",
]
EVENT_COLUMNS = [
    "namespace", "type", "reason", "message", "count", "first_time", "last_time",
    "object_kind", "object_name", "field_path", "source",
]
WORKLOAD_COLUMNS = [
    "namespace", "kind", "name", "desired", "ready", "available", "updated",
    "unavailable", "healthy", "condition", "created", "images",
]
SERVICE_COLUMNS = [
    "namespace", "name", "type", "cluster_ip", "selector", "ports", "ready_endpoints",
    "not_ready_endpoints", "matching_pods",
]


def _md(o: Obj) -> Obj:
    return o.get("metadata") or {}


def _ts(values: list[Any]) -> pd.Series:
    # ISO 8601 with or without fractional seconds, mixed in one column
    return pd.to_datetime(pd.Series(values, dtype="object"), utc=True, errors="coerce",
                          format="ISO8601")


def _res(container: Obj, section: str, name: str) -> float:
    return to_float(((container.get("resources") or {}).get(section) or {}).get(name))


def pod_display_status(pod: Obj) -> str:
    """The STATUS column of `kubectl get pods` (its precedence, simplified)."""
    st = pod.get("status") or {}
    if _md(pod).get("deletionTimestamp"):
        return "Terminating"
    reason = st.get("reason") or st.get("phase") or "Unknown"
    for cs in st.get("initContainerStatuses") or []:
        state = cs.get("state") or {}
        term, wait = state.get("terminated"), state.get("waiting")
        if term and term.get("exitCode") == 0:
            continue
        if term:
            return f"Init:{term.get('reason') or 'Error'}"
        if wait and wait.get("reason") not in (None, "PodInitializing"):
            return f"Init:{wait['reason']}"
        return "Init:0/1" if not cs.get("ready") else reason
    for cs in st.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if (wait := state.get("waiting")) and wait.get("reason"):
            reason = wait["reason"]
        elif (term := state.get("terminated")) and term.get("reason"):
            reason = term["reason"]
    return reason


def pods_frame(state: ClusterState) -> pd.DataFrame:
    rows = []
    for p in state.kind("Pod"):
        md, spec, st = _md(p), p.get("spec") or {}, p.get("status") or {}
        statuses = st.get("containerStatuses") or []
        containers = spec.get("containers") or []
        wk, wn = state.top_owner(p)
        rows.append((
            md.get("namespace") or "", md.get("name") or "", md.get("uid") or "",
            spec.get("nodeName") or "", st.get("phase") or "Unknown", pod_display_status(p),
            st.get("reason") or "",
            any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in st.get("conditions") or []),
            sum(1 for c in statuses if c.get("ready")), len(containers),
            sum(int(c.get("restartCount") or 0) for c in statuses),
            st.get("qosClass") or "", md.get("creationTimestamp"), st.get("startTime"),
            wk, wn,
            sum(_zero(_res(c, "requests", "cpu")) for c in containers),
            sum(_res(c, "limits", "cpu") for c in containers),
            sum(_zero(_res(c, "requests", "memory")) for c in containers),
            sum(_res(c, "limits", "memory") for c in containers),
            md.get("labels") or {},
        ))
    df = pd.DataFrame.from_records(rows, columns=POD_COLUMNS)
    df["created"] = _ts(df["created"].tolist())
    df["started"] = _ts(df["started"].tolist())
    return df


def _zero(x: float) -> float:
    return 0.0 if x != x else x  # a missing request counts as zero when summed


def containers_frame(state: ClusterState) -> pd.DataFrame:
    rows = []
    for p in state.kind("Pod"):
        md, spec, st = _md(p), p.get("spec") or {}, p.get("status") or {}
        ns, pod = md.get("namespace") or "", md.get("name") or ""
        wk, wn = state.top_owner(p)
        for init, specs, statuses in (
            (True, spec.get("initContainers") or [], st.get("initContainerStatuses") or []),
            (False, spec.get("containers") or [], st.get("containerStatuses") or []),
        ):
            by_name = {s.get("name"): s for s in statuses}
            for c in specs:
                s = by_name.get(c.get("name")) or {}
                state_d = s.get("state") or {}
                key = next(iter(state_d), "")
                cur = state_d.get(key) or {}
                last = (s.get("lastState") or {}).get("terminated") or {}
                rows.append((
                    ns, pod, c.get("name") or "", init, c.get("image") or "",
                    bool(s.get("ready")), int(s.get("restartCount") or 0), key,
                    cur.get("reason") or "", cur.get("message") or "",
                    cur.get("exitCode"), cur.get("startedAt"),
                    last.get("reason") or "", last.get("exitCode"), last.get("finishedAt"),
                    _res(c, "requests", "cpu"), _res(c, "limits", "cpu"),
                    _res(c, "requests", "memory"), _res(c, "limits", "memory"),
                    wk, wn, spec.get("nodeName") or "",
                ))
    df = pd.DataFrame.from_records(rows, columns=CONTAINER_COLUMNS)
    for col in ("exit_code", "last_exit_code"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    df["started_at"] = _ts(df["started_at"].tolist())
    df["last_finished"] = _ts(df["last_finished"].tolist())
    return df


def nodes_frame(state: ClusterState) -> pd.DataFrame:
    rows = []
    for n in state.kind("Node"):
        md, spec, st = _md(n), n.get("spec") or {}, n.get("status") or {}
        conds = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
        cap, alloc = st.get("capacity") or {}, st.get("allocatable") or {}
        info = st.get("nodeInfo") or {}
        roles = sorted(
            k.split("/", 1)[1] for k in (md.get("labels") or {})
            if k.startswith("node-role.kubernetes.io/")
        )
        pressure = [t for t, v in conds.items() if t != "Ready" and v == "True"]
        rows.append((
            md.get("name") or "", conds.get("Ready") == "True", bool(spec.get("unschedulable")),
            ",".join(sorted(pressure)), ",".join(roles) or "<none>",
            info.get("kubeletVersion") or "", info.get("osImage") or "",
            to_float(cap.get("cpu")), to_float(cap.get("memory")), to_float(cap.get("pods")),
            to_float(alloc.get("cpu")), to_float(alloc.get("memory")),
            to_float(alloc.get("pods")), md.get("creationTimestamp"),
            ",".join(f"{t.get('key')}:{t.get('effect')}" for t in spec.get("taints") or []),
        ))
    df = pd.DataFrame.from_records(rows, columns=NODE_COLUMNS)
    df["created"] = _ts(df["created"].tolist())
    return df


def events_frame(state: ClusterState) -> pd.DataFrame:
    """core/v1 and events.k8s.io/v1 events in one shape (count from series when set)."""
    rows = []
    for e in state.kind("Event"):
        io = e.get("involvedObject") or e.get("regarding") or {}
        series = e.get("series") or {}
        src = e.get("source") or {}
        first = e.get("firstTimestamp") or e.get("eventTime") or _md(e).get("creationTimestamp")
        last = (e.get("lastTimestamp") or series.get("lastObservedTime")
                or e.get("eventTime") or first)
        rows.append((
            _md(e).get("namespace") or io.get("namespace") or "", e.get("type") or "",
            e.get("reason") or "", e.get("message") or e.get("note") or "",
            int(e.get("count") or series.get("count") or 1), first, last,
            io.get("kind") or "", io.get("name") or "", io.get("fieldPath") or "",
            src.get("component") or e.get("reportingComponent")
            or e.get("reportingController") or "",
        ))
    df = pd.DataFrame.from_records(rows, columns=EVENT_COLUMNS)
    df["first_time"] = _ts(df["first_time"].tolist())
    df["last_time"] = _ts(df["last_time"].tolist())
    return df


WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")


def _workload_row(kind: str, o: Obj) -> tuple:
    md, spec, st = _md(o), o.get("spec") or {}, o.get("status") or {}
    conds = st.get("conditions") or []
    bad = [c for c in conds
           if (c.get("type") in ("Progressing", "Available") and c.get("status") == "False")
           or (c.get("type") in ("ReplicaFailure", "Failed") and c.get("status") == "True")]
    condition = "; ".join(
        f"{c.get('type')}={c.get('status')} ({c.get('reason') or ''})" for c in bad)
    template = spec.get("template") or (
        ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {})
    images = ",".join(c.get("image") or "" for c in
                      (template.get("spec") or {}).get("containers") or [])
    if kind == "DaemonSet":
        desired = st.get("desiredNumberScheduled") or 0
        ready, available = st.get("numberReady") or 0, st.get("numberAvailable") or 0
        updated = st.get("updatedNumberScheduled") or 0
    elif kind == "Job":
        desired = spec.get("completions") or 1
        ready = available = st.get("succeeded") or 0
        updated = desired
    elif kind == "CronJob":
        desired = ready = available = updated = len(st.get("active") or [])
    else:
        desired = spec.get("replicas", 1)
        ready, available = st.get("readyReplicas") or 0, st.get("availableReplicas") or 0
        updated = st.get("updatedReplicas") or 0
    unavailable = max(int(desired) - int(available), 0)
    if kind == "Job":
        healthy = not any(c.get("type") == "Failed" and c.get("status") == "True"
                          for c in conds)
        unavailable = 0 if healthy else 1
    elif kind == "CronJob":
        healthy, unavailable = True, 0
    else:
        healthy = unavailable == 0 and not bad
    return (md.get("namespace") or "", kind, md.get("name") or "", int(desired), int(ready),
            int(available), int(updated), unavailable, healthy, condition,
            md.get("creationTimestamp"), images)


def workloads_frame(state: ClusterState) -> pd.DataFrame:
    rows = [_workload_row(k, o) for k in WORKLOAD_KINDS for o in state.kind(k)]
    df = pd.DataFrame.from_records(rows, columns=WORKLOAD_COLUMNS)
    df["created"] = _ts(df["created"].tolist())
    return df


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def services_frame(state: ClusterState) -> pd.DataFrame:
    pods_by_ns: dict[str, list[Obj]] = {}
    for p in state.kind("Pod"):
        pods_by_ns.setdefault(_md(p).get("namespace") or "", []).append(p)
    have_endpoints = "Endpoints" in state.objects
    rows = []
    for s in state.kind("Service"):
        md, spec = _md(s), s.get("spec") or {}
        ns, name = md.get("namespace") or "", md.get("name") or ""
        selector = spec.get("selector") or {}
        matching = (sum(1 for p in pods_by_ns.get(ns, [])
                        if _matches(selector, _md(p).get("labels") or {}))
                    if selector else pd.NA)
        ready = not_ready = pd.NA
        if have_endpoints and (ep := state.get("Endpoints", ns, name)) is not None:
            subsets = ep.get("subsets") or []
            ready = sum(len(ss.get("addresses") or []) for ss in subsets)
            not_ready = sum(len(ss.get("notReadyAddresses") or []) for ss in subsets)
        elif have_endpoints:
            ready = not_ready = 0
        ports = ",".join(f"{p.get('port')}/{p.get('protocol') or 'TCP'}"
                         for p in spec.get("ports") or [])
        rows.append((ns, name, spec.get("type") or "ClusterIP", spec.get("clusterIP") or "",
                     ",".join(f"{k}={v}" for k, v in selector.items()), ports,
                     ready, not_ready, matching))
    df = pd.DataFrame.from_records(rows, columns=SERVICE_COLUMNS)
    for col in ("ready_endpoints", "not_ready_endpoints", "matching_pods"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    return df
