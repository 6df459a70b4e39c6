"""Horizontal scaling advice for workloads whose load varies, and the state of
existing HorizontalPodAutoscalers.

A workload's load L(t) is its CPU summed over all pods and containers at each
sample time. Load is *variable* when its coefficient of variation std(L) /
mean(L) over the window exceeds `cv_threshold` (default 0.5). For those (of the
kinds in `ScalingConfig.kinds`, Deployments by default) the advice follows
Crane's replicas recommender:

    R       = CPU request per pod (the recommended requests when given)
    target  = clamp(p99 of per-pod CPU / R, target_min, target_max)   (30-75 %)
    minReplicas = max(1, ceil(p95(L) / (R x target)))
    maxReplicas = max(minReplicas, ceil(max(peak(L) x peak_headroom,
                                            p95_multiple x p95(L)) / (R x target)))

(peak_headroom 1.2, p95_multiple 3). Every row carries the formula with its
numbers in `formula`.

Existing HPAs (autoscaling/v2 status, or the v1 annotations) are flagged when
pinned: at maxReplicas while the controller wants more (ScalingLimited
TooManyReplicas, or desired >= max), or at minReplicas while it wants fewer
(TooFewReplicas, or desired <= min). The HPA controller's own rule is
desired = ceil(current x metric / target) with a 0.1 tolerance.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aiops.quantity import format_cores
from aiops.rightsizing._groups import group_ids, grouped_quantiles, sum_by, time_ns
from aiops.rightsizing.config import ScalingConfig
from aiops.usage import check_usage

if TYPE_CHECKING:
    from aiops.model import ClusterState

WORKLOAD_KEYS = ["namespace", "workload_kind", "workload"]
V1_CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"
SCALING_COLUMNS = [
    *WORKLOAD_KEYS, "replicas", "variable", "cv", "load_mean", "load_p95", "load_p99",
    "load_peak", "request_per_pod", "pod_p99_utilization", "target_utilization",
    "min_replicas", "max_replicas", "hpa", "hpa_min", "hpa_max", "hpa_current",
    "hpa_desired", "hpa_target_utilization", "hpa_pinned", "formula", "reason",
]


@dataclass(frozen=True)
class HpaInfo:
    """What right-sizing needs to know about one HPA."""

    namespace: str
    name: str
    target_kind: str
    target_name: str
    resources: frozenset[str]  # Resource metrics: every container counts
    container_resources: Mapping[str, frozenset[str]] = field(default_factory=dict)
    min_replicas: int = 1
    max_replicas: int | None = None
    current: int | None = None
    desired: int | None = None
    target_utilization: float | None = None  # cpu averageUtilization, %
    limited: str | None = None  # ScalingLimited reason when True

    def resources_for(self, container: str) -> frozenset[str]:
        return self.resources | self.container_resources.get(container, frozenset())

    @property
    def pinned(self) -> str | None:
        if self.current is None:
            return None
        if self.max_replicas is not None and self.current >= self.max_replicas and (
                self.limited == "TooManyReplicas"
                or (self.desired is not None and self.desired >= self.max_replicas)):
            return "max"
        if self.current <= self.min_replicas and (
                self.limited == "TooFewReplicas"
                or (self.desired is not None and self.desired <= self.min_replicas)):
            return "min"
        return None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _hpa(obj: Mapping[str, Any]) -> HpaInfo | None:
    md = obj.get("metadata") or {}
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    if not isinstance(ref, Mapping) or not ref.get("kind") or not ref.get("name"):
        return None
    resources: set[str] = set()
    per_container: dict[str, set[str]] = {}
    target_util = None
    metrics = spec.get("metrics")
    if "targetCPUUtilizationPercentage" in spec:  # autoscaling/v1
        resources.add("cpu")
        target_util = spec.get("targetCPUUtilizationPercentage")
    elif not metrics:  # v2 without metrics defaults to 80 % CPU
        resources.add("cpu")
        target_util = 80
    for m in metrics or []:
        if not isinstance(m, Mapping):
            continue
        if m.get("type") == "Resource":
            r = m.get("resource") or {}
            if r.get("name"):
                resources.add(str(r["name"]))
                if r.get("name") == "cpu":
                    target_util = (r.get("target") or {}).get("averageUtilization", target_util)
        elif m.get("type") == "ContainerResource":
            r = m.get("containerResource") or {}
            if r.get("name") and r.get("container"):
                per_container.setdefault(str(r["container"]), set()).add(str(r["name"]))
    conds = st.get("conditions")
    if not conds:
        raw = (md.get("annotations") or {}).get(V1_CONDITIONS)
        try:
            conds = json.loads(raw) if isinstance(raw, str) else []
        except ValueError:
            conds = []
    limited = next((c.get("reason") for c in conds or [] if isinstance(c, Mapping)
                    and c.get("type") == "ScalingLimited" and c.get("status") == "True"), None)
    return HpaInfo(
        namespace=md.get("namespace") or "", name=md.get("name") or "",
        target_kind=str(ref["kind"]), target_name=str(ref["name"]),
        resources=frozenset(resources),
        container_resources={k: frozenset(v) for k, v in per_container.items()},
        min_replicas=_int(spec.get("minReplicas")) or 1,
        max_replicas=_int(spec.get("maxReplicas")),
        current=_int(st.get("currentReplicas")), desired=_int(st.get("desiredReplicas")),
        target_utilization=float(target_util) if isinstance(target_util, int | float) else None,
        limited=limited if isinstance(limited, str) else None)


def hpa_index(state: ClusterState) -> dict[tuple[str, str, str], HpaInfo]:
    """HPAs by the (namespace, kind, name) of the workload they scale."""
    out: dict[tuple[str, str, str], HpaInfo] = {}
    for obj in state.kind("HorizontalPodAutoscaler"):
        info = _hpa(obj)
        if info is not None:
            out[(info.namespace, info.target_kind, info.target_name)] = info
    return out


def _requests_per_pod(state: ClusterState, recs: pd.DataFrame | None) -> pd.Series:
    """CPU request per pod of each workload: recommended when given, else current."""
    if recs is not None and len(recs):
        col = recs["cpu_request_recommended"].fillna(recs["cpu_request_current"])
        return col.groupby([recs[k] for k in WORKLOAD_KEYS]).sum(min_count=1)
    c = state.containers
    if c.empty:
        return pd.Series(dtype=float)
    c = c[~c["init"].astype(bool)]
    per = c.groupby([*WORKLOAD_KEYS, "container"])["cpu_request"].max()
    return per.groupby(level=WORKLOAD_KEYS).sum(min_count=1)


def _replicas(state: ClusterState, ns: str, kind: str, name: str) -> int | None:
    obj = state.get(kind, ns, name)
    if obj is None:
        return None
    if kind == "DaemonSet":
        return _int((obj.get("status") or {}).get("desiredNumberScheduled"))
    return _int((obj.get("spec") or {}).get("replicas", 1))


def scaling_recommendations(state: ClusterState, samples: pd.DataFrame,
                            recs: pd.DataFrame | None = None,
                            config: ScalingConfig | None = None) -> pd.DataFrame:
    """One row per workload with variable load or with an HPA (SCALING_COLUMNS)."""
    cfg = config or ScalingConfig()
    hpas = hpa_index(state)
    s = check_usage(samples)
    s = s[s["resource"] == "cpu"]
    kinds = set(cfg.kinds) | {k for _, k, _ in hpas}
    s = s[s["workload_kind"].isin(list(kinds))]
    if s.empty and not hpas:
        return pd.DataFrame(columns=SCALING_COLUMNS)
    lstats, pod_p99 = _load_stats(s)
    req = _requests_per_pod(state, recs)
    keys = set(lstats.index) | set(hpas)
    rows = []
    for ns, kind, name in sorted(keys):
        hpa = hpas.get((ns, kind, name))
        st = lstats.loc[(ns, kind, name)] if (ns, kind, name) in lstats.index else None
        cv = float(st["std"] / st["mean"]) if st is not None and st["mean"] > 0 else math.nan
        variable = bool(cv > cfg.cv_threshold) and kind in cfg.kinds
        if not variable and hpa is None:
            continue
        r = float(req.get((ns, kind, name), math.nan)) if len(req) else math.nan
        row: dict[str, Any] = {
            "namespace": ns, "workload_kind": kind, "workload": name,
            "replicas": _replicas(state, ns, kind, name), "variable": variable, "cv": cv,
            "load_mean": _f(st, "mean"), "load_p95": _f(st, "p95"), "load_p99": _f(st, "p99"),
            "load_peak": _f(st, "peak"), "request_per_pod": r,
            "pod_p99_utilization": math.nan, "target_utilization": math.nan,
            "min_replicas": None, "max_replicas": None, "hpa": hpa.name if hpa else None,
            "hpa_min": hpa.min_replicas if hpa else None,
            "hpa_max": hpa.max_replicas if hpa else None,
            "hpa_current": hpa.current if hpa else None,
            "hpa_desired": hpa.desired if hpa else None,
            "hpa_target_utilization": hpa.target_utilization if hpa else None,
            "hpa_pinned": hpa.pinned if hpa else None, "formula": "", "reason": "",
        }
        notes = []
        if st is None:
            notes.append("no CPU history for this workload")
        elif not (r > 0):
            notes.append("no CPU request to size replicas against")
        else:
            p99u = float(pod_p99.get((ns, kind, name), math.nan)) / r
            target = min(max(p99u, cfg.target_min), cfg.target_max)
            per = r * target
            mn = max(1, math.ceil(st["p95"] / per - 1e-9))
            top = max(st["peak"] * cfg.peak_headroom, cfg.p95_multiple * st["p95"])
            mx = max(mn, math.ceil(top / per - 1e-9))
            row.update(pod_p99_utilization=p99u, target_utilization=target, min_replicas=mn,
                       max_replicas=mx)
            row["formula"] = (
                f"target = clamp(p99 pod CPU / request = {p99u * 100:.0f} %, "
                f"{cfg.target_min * 100:.0f} %, {cfg.target_max * 100:.0f} %) = "
                f"{target * 100:.0f} %; minReplicas = ceil(p95 load {format_cores(st['p95'])}"
                f" / ({format_cores(r)} x {target * 100:.0f} %)) = {mn}; maxReplicas = "
                f"ceil(max(peak {format_cores(st['peak'])} x {cfg.peak_headroom:g}, "
                f"{cfg.p95_multiple:g} x p95) / ({format_cores(r)} x {target * 100:.0f} %))"
                f" = {mx}")
            notes.append(f"load CV {cv:.2f} "
                         + ("> " if variable else "<= ") + f"{cfg.cv_threshold:g}"
                         + ("" if variable else ": load is steady, no HPA needed"))
        if hpa is not None:
            pin = hpa.pinned
            if pin == "max":
                notes.append(f"HPA {hpa.name} pinned at maxReplicas {hpa.max_replicas}: "
                             "it wants more pods; raise maxReplicas (or the capacity per pod)")
            elif pin == "min":
                notes.append(f"HPA {hpa.name} pinned at minReplicas {hpa.min_replicas}: "
                             "the load needs fewer pods; lower minReplicas if availability "
                             "allows")
        row["reason"] = "; ".join(notes)
        rows.append(row)
    return pd.DataFrame(rows, columns=SCALING_COLUMNS)


def _load_stats(s: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Per workload: mean, std, p95, p99, peak of the summed CPU load, and the p99
    of per-pod CPU (containers summed). Vectorised: int keys, bincount, one sort."""
    cols = ["mean", "std", "p95", "p99", "peak"]
    if s.empty:
        idx = pd.MultiIndex.from_tuples([], names=WORKLOAD_KEYS)
        return pd.DataFrame(columns=cols, index=idx), pd.Series(dtype=float, index=idx)
    wid, wkeys = group_ids(s, WORKLOAD_KEYS)
    pid, pkeys = group_ids(s, [*WORKLOAD_KEYS, "pod"])
    tid, times = pd.factorize(time_ns(s["time"]), sort=True)
    n_t, v = len(times), s["value"].to_numpy(float)
    n_w = len(wkeys)
    # workload load L(t)
    keys, load = sum_by(wid * n_t + tid, v)
    lw = keys // n_t
    n = np.bincount(lw, minlength=n_w)
    mean = np.bincount(lw, weights=load, minlength=n_w) / np.maximum(n, 1)
    dev = (load - mean[lw]) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(np.bincount(lw, weights=dev, minlength=n_w) / (n - 1))
    qs = grouped_quantiles(lw, load, (0.95, 0.99, 1.0), n_w)
    idx = pd.MultiIndex.from_frame(wkeys)
    lstats = pd.DataFrame({"mean": mean, "std": std, "p95": qs[:, 0], "p99": qs[:, 1],
                           "peak": qs[:, 2]}, index=idx)
    # per-pod CPU, pooled per workload
    pkeys_w = pd.MultiIndex.from_frame(pkeys[WORKLOAD_KEYS]).map(
        {k: i for i, k in enumerate(idx)}.get)
    pod_w = np.asarray(pkeys_w, dtype=np.int64)
    keys, pod_load = sum_by(pid * n_t + tid, v)
    pw = pod_w[keys // n_t]
    pod_p99 = pd.Series(grouped_quantiles(pw, pod_load, (0.99,), n_w)[:, 0], index=idx)
    return lstats, pod_p99


def _f(st: pd.Series | None, key: str) -> float:
    return float(st[key]) if st is not None else math.nan


def coefficient_of_variation(values: np.ndarray) -> float:
    """std / mean (sample std), NaN for an empty or zero-mean series."""
    v = np.asarray(values, dtype=float)
    if v.size < 2 or not np.nanmean(v) > 0:
        return math.nan
    return float(np.nanstd(v, ddof=1) / np.nanmean(v))
