"""Replica advice for variable load, and HPAs pinned at their bounds."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from aiops.rightsizing import ScalingConfig, hpa_index, scaling_recommendations
from aiops.rightsizing.scaling import coefficient_of_variation


def _diurnal(n: int = 2016, base: float = 0.2, amp: float = 0.18) -> np.ndarray:
    t = np.arange(n)
    return base + amp * np.sin(2 * np.pi * t / 288)


def test_variable_load_gets_min_max_and_target(make) -> None:
    load = _diurnal()
    # two pods sharing the load evenly
    h = make.history(make.series(load / 2, pod="web-0"), make.series(load / 2, pod="web-1"))
    st = make.state(make.node(), make.workload(
        "Deployment", "web", replicas=2, containers={"app": ({"cpu": "100m"}, None)}))
    out = scaling_recommendations(st, h)
    assert len(out) == 1
    row = out.iloc[0]
    assert row["variable"] and row["cv"] == pytest.approx(coefficient_of_variation(load))
    p95, peak = np.quantile(load, 0.95), load.max()
    pod_p99 = np.quantile(load / 2, 0.99)
    target = min(max(pod_p99 / 0.1, 0.30), 0.75)
    assert row["target_utilization"] == pytest.approx(target)
    assert row["min_replicas"] == max(1, math.ceil(p95 / (0.1 * target)))
    assert row["max_replicas"] == math.ceil(max(peak * 1.2, 3 * p95) / (0.1 * target))
    assert "minReplicas = ceil(p95 load" in row["formula"]
    assert row["hpa"] is None and row["hpa_pinned"] is None


def test_target_clamped_to_the_low_bound(make) -> None:
    load = _diurnal(base=0.02, amp=0.018)
    h = make.history(make.series(load))
    st = make.state(make.node(), make.workload(
        "Deployment", "web", containers={"app": ({"cpu": "2"}, None)}))
    row = scaling_recommendations(st, h).iloc[0]
    assert row["target_utilization"] == pytest.approx(0.30)
    assert row["min_replicas"] == 1


def test_steady_load_without_hpa_gives_no_row(make) -> None:
    h = make.history(make.series(np.full(500, 0.2) + np.random.default_rng(0).normal(0, 0.01,
                                                                                      500)))
    st = make.state(make.node(), make.workload("Deployment", "web"))
    assert scaling_recommendations(st, h).empty
    # a lower threshold makes it variable
    out = scaling_recommendations(st, h, config=ScalingConfig(cv_threshold=0.01))
    assert out.iloc[0]["variable"]


def test_statefulsets_are_not_advised_by_default(make) -> None:
    h = make.history(make.series(_diurnal(), kind="StatefulSet", workload="db"))
    st = make.state(make.node(), make.workload("StatefulSet", "db"))
    assert scaling_recommendations(st, h).empty
    out = scaling_recommendations(st, h, config=ScalingConfig(kinds=("StatefulSet",)))
    assert len(out) == 1


def test_recommended_requests_are_used(make) -> None:
    import pandas as pd

    load = _diurnal()
    h = make.history(make.series(load))
    st = make.state(make.node(), make.workload("Deployment", "web"))
    recs = pd.DataFrame({"namespace": ["app"], "workload_kind": ["Deployment"],
                         "workload": ["web"], "container": ["app"],
                         "cpu_request_current": [0.5], "cpu_request_recommended": [0.25]})
    row = scaling_recommendations(st, h, recs).iloc[0]
    assert row["request_per_pod"] == pytest.approx(0.25)


@pytest.mark.parametrize(("current", "desired", "limited", "pinned"), [
    (5, 7, "TooManyReplicas", "max"),
    (5, 6, None, "max"),
    (2, 1, "TooFewReplicas", "min"),
    (2, 2, None, "min"),
    (3, 3, None, None),
])
def test_hpa_pinned(make, current, desired, limited, pinned) -> None:
    st = make.state(make.node(), make.workload("Deployment", "web", replicas=current),
                    make.hpa("web", "app", "Deployment", "web", min_replicas=2, max_replicas=5,
                             current=current, desired=desired, limited=limited))
    h = make.history(make.series(np.full(300, 0.2)))
    out = scaling_recommendations(st, h)
    assert len(out) == 1  # HPA rows are kept even for steady load
    row = out.iloc[0]
    assert row["hpa"] == "web" and row["hpa_pinned"] == pinned
    if pinned:
        assert f"pinned at {pinned}Replicas" in row["reason"]


def test_hpa_index_reads_v1_v2_and_container_metrics(make) -> None:
    v1 = {"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v1",
          "metadata": {"name": "a", "namespace": "app", "annotations": {
              "autoscaling.alpha.kubernetes.io/conditions": json.dumps(
                  [{"type": "ScalingLimited", "status": "True",
                    "reason": "TooManyReplicas"}])}},
          "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "a"}, "maxReplicas": 3,
                   "targetCPUUtilizationPercentage": 60},
          "status": {"currentReplicas": 3, "desiredReplicas": 3}}
    v2 = make.hpa("b", "app", "Deployment", "b", resources=("memory",))
    v2["spec"]["metrics"].append({"type": "ContainerResource", "containerResource": {
        "name": "cpu", "container": "side", "target": {"type": "Utilization"}}})
    idx = hpa_index(make.state(v1, v2))
    a, b = idx[("app", "Deployment", "a")], idx[("app", "Deployment", "b")]
    assert a.resources == {"cpu"} and a.target_utilization == 60 and a.pinned == "max"
    assert b.resources_for("app") == {"memory"}
    assert b.resources_for("side") == {"memory", "cpu"}


def test_demo_backend_hpa_pinned_at_min(demo, demo_recs) -> None:
    out = scaling_recommendations(demo, demo.history, demo_recs)
    backend = out[out["workload"] == "todo-backend"].iloc[0]
    assert backend["hpa"] == "todo-backend" and backend["hpa_pinned"] == "min"
    assert backend["min_replicas"] >= 1 and backend["max_replicas"] >= backend["min_replicas"]
    # the StatefulSet database is not advised to scale horizontally
    assert "todo-postgres" not in set(out["workload"])


def test_coefficient_of_variation() -> None:
    assert math.isnan(coefficient_of_variation(np.zeros(5)))
    assert coefficient_of_variation(np.array([1.0, 3.0])) == pytest.approx(np.sqrt(2) / 2)
