"""Builders for small synthetic clusters and usage histories whose true
percentiles and peaks are known."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from jsonpatch import apply_patch

from aiops.model import ClusterState
from aiops.usage import USAGE_COLUMNS

MI = 2**20
START = pd.Timestamp("2026-01-01", tz="UTC")


def _resources(req: dict[str, str] | None, lim: dict[str, str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if req:
        out["requests"] = dict(req)
    if lim:
        out["limits"] = dict(lim)
    return out


def workload(kind: str, name: str, ns: str = "app", *,
             containers: dict[str, tuple[dict | None, dict | None]] | None = None,
             replicas: int = 1, pods: int | None = None, node: str = "n1",
             oom: set[str] | frozenset[str] = frozenset(), phase: str = "Running",
             labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """A workload object and its pods (owner references straight to the workload;
    CronJob pods go through a Job). `containers` maps name -> (requests, limits)."""
    containers = containers or {"app": ({"cpu": "500m", "memory": "512Mi"},
                                        {"memory": "1Gi"})}
    cs = [{"name": c, "image": f"{c}:1", "resources": _resources(r, lim)}
          for c, (r, lim) in containers.items()]
    pod_spec = {"containers": cs}
    md = {"name": name, "namespace": ns, "uid": f"uid-{name}", "labels": labels or {}}
    objs: list[dict[str, Any]] = []
    if kind == "Pod":
        owner = None
    elif kind == "CronJob":
        objs.append({"kind": "CronJob", "apiVersion": "batch/v1", "metadata": md,
                     "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {
                         "template": {"spec": copy.deepcopy(pod_spec)}}}}})
        job = f"{name}-1"
        objs.append({"kind": "Job", "apiVersion": "batch/v1",
                     "metadata": {"name": job, "namespace": ns, "uid": f"uid-{job}",
                                  "ownerReferences": [{"kind": "CronJob", "name": name,
                                                       "controller": True}]},
                     "spec": {"template": {"spec": copy.deepcopy(pod_spec)}}})
        owner = {"kind": "Job", "name": job, "controller": True}
    else:
        api = "apps/v1" if kind != "Job" else "batch/v1"
        spec: dict[str, Any] = {"template": {"metadata": {"labels": labels or {}},
                                             "spec": copy.deepcopy(pod_spec)}}
        if kind in ("Deployment", "StatefulSet", "ReplicaSet"):
            spec["replicas"] = replicas
        objs.append({"kind": kind, "apiVersion": api, "metadata": md, "spec": spec})
        owner = {"kind": kind, "name": name, "controller": True}
    n = replicas if pods is None else pods
    for i in range(1 if kind == "Pod" else n):
        pname = name if kind == "Pod" else f"{name}-{i}"
        statuses = []
        for c in containers:
            st: dict[str, Any] = {"name": c, "ready": c not in oom,
                                  "restartCount": 3 if c in oom else 0,
                                  "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}
            if c in oom:
                st["lastState"] = {"terminated": {"reason": "OOMKilled", "exitCode": 137,
                                                  "finishedAt": "2026-01-10T00:00:00Z"}}
            statuses.append(st)
        pmd: dict[str, Any] = {"name": pname, "namespace": ns, "uid": f"uid-{pname}",
                               "labels": labels or {}}
        if owner:
            pmd["ownerReferences"] = [owner]
        objs.append({"kind": "Pod", "apiVersion": "v1", "metadata": pmd,
                     "spec": {"nodeName": node, **copy.deepcopy(pod_spec)},
                     "status": {"phase": phase, "containerStatuses": statuses}})
    return objs


def hpa(name: str, ns: str, target_kind: str, target: str, *, resources: tuple[str, ...] =
        ("cpu",), min_replicas: int = 1, max_replicas: int = 5, current: int = 1,
        desired: int = 1, limited: str | None = None) -> dict[str, Any]:
    conds = [{"type": "AbleToScale", "status": "True"}]
    if limited:
        conds.append({"type": "ScalingLimited", "status": "True", "reason": limited})
    return {"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v2",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"scaleTargetRef": {"kind": target_kind, "name": target,
                                        "apiVersion": "apps/v1"},
                     "minReplicas": min_replicas, "maxReplicas": max_replicas,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": r, "target": {"type": "Utilization",
                                               "averageUtilization": 70}}}
                                 for r in resources]},
            "status": {"currentReplicas": current, "desiredReplicas": desired,
                       "conditions": conds}}


def node(name: str = "n1", cpu: str = "4", memory: str = "16Gi",
         labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"kind": "Node", "apiVersion": "v1",
            "metadata": {"name": name, "labels": labels or {}},
            "status": {"capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
                       "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def state(*groups: Any) -> ClusterState:
    st = ClusterState(source="test")
    objs: list[dict[str, Any]] = []
    for g in groups:
        objs.extend(g if isinstance(g, list) else [g])
    st.add(objs)
    return st


def series(values: Any, *, ns: str = "app", kind: str = "Deployment", workload: str = "web",
           pod: str | None = None, container: str = "app", resource: str = "cpu",
           start: pd.Timestamp = START, step: str = "5min") -> pd.DataFrame:
    values = np.asarray(values, dtype=float)
    times = pd.date_range(start, periods=len(values), freq=step)
    return pd.DataFrame({"time": times, "namespace": ns, "workload_kind": kind,
                         "workload": workload, "pod": pod or f"{workload}-0",
                         "container": container, "resource": resource, "value": values})


def history(*frames: pd.DataFrame, categorical: bool = True) -> pd.DataFrame:
    df = pd.concat(frames, ignore_index=True)[USAGE_COLUMNS]
    if categorical:
        for c in USAGE_COLUMNS[1:-1]:
            df[c] = df[c].astype("category")
    return df


def known(n: int = 4032, lo: float = 0.0, hi: float = 1.0, seed: int = 1) -> np.ndarray:
    """n values evenly spread over [lo, hi], shuffled: quantiles are exact."""
    return np.random.default_rng(seed).permutation(np.linspace(lo, hi, n))


@pytest.fixture
def make() -> SimpleNamespace:
    return SimpleNamespace(workload=workload, hpa=hpa, node=node, state=state, series=series,
                           history=history, known=known, MI=MI, START=START)



@pytest.fixture
def patcher():
    return apply_patch


@pytest.fixture(scope="session")
def demo():
    from aiops.sources import open_source

    return open_source("demo")


@pytest.fixture(scope="session")
def demo_recs(demo):
    from aiops.rightsizing import recommend

    return recommend(demo)
