"""Cost: OpenCost-style allocation, idle, aggregation, pricing files, savings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from aiops import cost
from aiops.cost import (
    IDLE,
    UNALLOCATED,
    PriceBook,
    Prices,
    aggregate,
    allocation,
    cost_report,
    load_prices,
    nodes_needed,
    savings,
)
from aiops.errors import ParameterError
from aiops.model import ClusterState

GI = 2**30
MI = 2**20
H = 730.0
CPU, RAM = 0.031611, 0.004237


def _pod(name: str, *, ns: str = "app", node: str = "n1", cpu: str | None = "1",
         mem: str | None = "1Gi", labels: dict[str, str] | None = None,
         phase: str = "Running", claim: str | None = None) -> dict[str, Any]:
    req = {k: v for k, v in (("cpu", cpu), ("memory", mem)) if v}
    spec: dict[str, Any] = {"nodeName": node, "containers": [
        {"name": "app", "resources": {"requests": req} if req else {}}]}
    if claim:
        spec["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": spec, "status": {"phase": phase}}


def _node(name: str = "n1", cpu: str = "4", mem: str = "16Gi",
          labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"kind": "Node", "apiVersion": "v1", "metadata": {"name": name,
                                                             "labels": labels or {}},
            "status": {"capacity": {"cpu": cpu, "memory": mem},
                       "allocatable": {"cpu": cpu, "memory": mem},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def _pvc(name: str, size: str, ns: str = "app") -> dict[str, Any]:
    return {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"resources": {"requests": {"storage": size}}},
            "status": {"phase": "Bound", "capacity": {"storage": size}}}


def _state(*objs: dict[str, Any]) -> ClusterState:
    st = ClusterState(source="test")
    st.add(objs)
    return st


def _usage(pod: str, cpu: float, mem: float, ns: str = "app") -> pd.DataFrame:
    t = pd.date_range("2026-01-01", periods=10, freq="5min", tz="UTC")
    rows = [(x, ns, "Pod", pod, pod, "app", r, v) for x in t
            for r, v in (("cpu", cpu), ("memory", mem))]
    return pd.DataFrame(rows, columns=["time", "namespace", "workload_kind", "workload", "pod",
                                       "container", "resource", "value"])


def test_allocation_is_max_of_request_and_usage() -> None:
    st = _state(_node(), _pod("idle"), _pod("busy"), _pod("done", phase="Succeeded"),
                _pod("pending", node=""))
    hist = pd.concat([_usage("idle", 0.2, 0.5 * GI), _usage("busy", 1.5, 3 * GI)])
    a = allocation(st, hist).set_index("pod")
    assert set(a.index) == {"idle", "busy"}  # terminated and unscheduled pods cost nothing
    assert a.loc["idle", "cpu_allocated"] == 1.0 and a.loc["idle", "memory_allocated"] == GI
    assert a.loc["busy", "cpu_allocated"] == 1.5
    assert a.loc["busy", "memory_allocated"] == 3 * GI
    assert a.loc["idle", "cpu_cost"] == pytest.approx(1.0 * CPU * H)
    assert a.loc["idle", "ram_cost"] == pytest.approx(1.0 * RAM * H)
    assert a.loc["busy", "total_cost"] == pytest.approx(1.5 * CPU * H + 3 * RAM * H)


def test_no_usage_means_requests() -> None:
    st = _state(_node(), _pod("a", cpu="500m", mem=None))
    a = allocation(st, pd.DataFrame(columns=["time", "namespace", "workload_kind", "workload",
                                             "pod", "container", "resource", "value"]))
    assert a.iloc[0]["cpu_allocated"] == 0.5 and a.iloc[0]["memory_allocated"] == 0


def test_node_cost_and_idle() -> None:
    st = _state(_node(cpu="4", mem="16Gi"), _pod("a", cpu="1", mem="4Gi"))
    rep = cost_report(st, pd.DataFrame(columns=["time", "namespace", "workload_kind",
                                                "workload", "pod", "container", "resource",
                                                "value"]))
    n = rep.nodes.iloc[0]
    node_cost = 4 * CPU * H + 16 * RAM * H
    assert n["node_cost"] == pytest.approx(node_cost)
    assert n["allocated_cost"] == pytest.approx(1 * CPU * H + 4 * RAM * H)
    assert n["idle_cost"] == pytest.approx(3 * CPU * H + 12 * RAM * H)
    tot = rep.totals
    assert tot["idle_cost"] + tot["allocated_cost"] == pytest.approx(tot["node_cost"])
    by_ns = rep.by("namespace").set_index("namespace")
    assert by_ns.loc[IDLE, "total_cost"] == pytest.approx(n["idle_cost"])
    assert by_ns["share_pct"].sum() == pytest.approx(100, abs=0.05)


def test_aggregation_by_label_and_workload() -> None:
    st = _state(_node(), _pod("a", labels={"team": "red"}), _pod("b", labels={"team": "red"}),
                _pod("c", labels={"team": "blue"}), _pod("d", ns="other"))
    rep = cost_report(st, None)
    by_team = rep.by("label:team", include_idle=False).set_index("label:team")
    one = CPU * H + RAM * H
    assert by_team.loc["red", "total_cost"] == pytest.approx(2 * one)
    assert by_team.loc["blue", "total_cost"] == pytest.approx(one)
    assert by_team.loc[UNALLOCATED, "total_cost"] == pytest.approx(one)
    by_wl = aggregate(rep, "workload", include_idle=False)
    assert set(by_wl["workload"]) == {"app/Pod/a", "app/Pod/b", "app/Pod/c", "other/Pod/d"}
    with pytest.raises(ParameterError, match="unknown cost dimension"):
        rep.by("colour")


def test_pvc_storage_cost() -> None:
    st = _state(_node(), _pod("db", claim="data"), _pvc("data", "8Gi"), _pvc("orphan", "2Gi"))
    rep = cost_report(st, None)
    pv = rep.pvcs.set_index("pvc")
    assert pv.loc["data", "monthly_cost"] == pytest.approx(8 * 0.04)
    assert pv.loc["orphan", "workload"] == cost.UNMOUNTED
    assert rep.allocations.set_index("pod").loc["db", "pv_cost"] == pytest.approx(0.32)
    by_ns = rep.by("namespace", include_idle=False).set_index("namespace")
    assert by_ns.loc["app", "pv_cost"] == pytest.approx(0.32 + 0.08)
    assert rep.totals["storage_cost"] == pytest.approx(0.40)


def test_pricing_file_json_yaml_and_node_label(tmp_path: Path) -> None:
    doc = {"cpu_core_hour": 0.05, "ram_gib_hour": 0.01, "node_label": "type",
           "nodes": {"big": {"cpu_core_hour": 0.1}}}
    (tmp_path / "p.json").write_text(json.dumps(doc))
    (tmp_path / "p.yaml").write_text(
        "cpu_core_hour: 0.05\nram_gib_hour: 0.01\nnode_label: type\n"
        "nodes:\n  big: {cpu_core_hour: 0.1}\n")
    for name in ("p.json", "p.yaml"):
        book = load_prices(tmp_path / name)
        assert book.default.cpu_core_hour == 0.05
        assert book.default.storage_gib_month == 0.04  # not given: OpenCost default
        assert book.nodes["big"].cpu_core_hour == 0.1
        assert book.nodes["big"].ram_gib_hour == 0.01  # inherited
    st = _state(_node("small", labels={"type": "small"}), _node("big", labels={"type": "big"}),
                _pod("a", node="small"), _pod("b", node="big"))
    a = allocation(st, None, tmp_path / "p.json").set_index("pod")
    assert a.loc["a", "cpu_cost"] == pytest.approx(0.05 * H)
    assert a.loc["b", "cpu_cost"] == pytest.approx(0.1 * H)
    nodes = cost_report(st, None, tmp_path / "p.yaml").nodes.set_index("node")
    assert nodes.loc["big", "price_key"] == "big" and nodes.loc["small", "price_key"] == ""


def test_opencost_format_and_errors(tmp_path: Path) -> None:
    oc = tmp_path / "custom.json"
    oc.write_text(json.dumps({"provider": "custom", "CPU": "0.04", "RAM": "0.005",
                              "storage": "0.0001", "GPU": "0.95"}))
    book = load_prices(oc)
    assert book.default.cpu_core_hour == 0.04 and book.default.ram_gib_hour == 0.005
    assert book.default.storage_gib_month == pytest.approx(0.0001 * H)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"cpu_core_hr": 1}))
    with pytest.raises(ParameterError, match="unknown pricing keys"):
        load_prices(bad)
    bad.write_text(json.dumps({"cpu_core_hour": -1}))
    with pytest.raises(ParameterError, match="non-negative"):
        load_prices(bad)
    bad.write_text("{not json")
    with pytest.raises(ParameterError, match="not valid JSON"):
        load_prices(bad)
    with pytest.raises(ParameterError, match="cannot be read"):
        load_prices(tmp_path / "missing.json")


def test_shipped_default_json_matches_the_code() -> None:
    path = Path(cost.__file__).parent / "pricing" / "default.json"
    book = load_prices(path)
    assert book.default == Prices()
    assert Prices().cpu_core_hour == 0.031611 and Prices().ram_gib_hour == 0.004237
    assert Prices().storage_gib_month == 0.04
    assert cost.HOURS_PER_MONTH == 730


def _recs(rows: list[dict[str, Any]]) -> pd.DataFrame:
    base = {"namespace": "app", "workload_kind": "Deployment", "container": "app",
            "status": "ok", "cpu_request_current": 1.0, "memory_request_current": GI,
            "cpu_mean": 0.0, "memory_mean": 0.0, "replicas": 1.0, "node": "n1",
            "action": None}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_savings_rows_total_and_flag() -> None:
    recs = _recs([
        {"workload": "a", "cpu_request_recommended": 0.25, "memory_request_recommended": GI / 4,
         "replicas": 2.0},
        {"workload": "b", "cpu_request_recommended": 1.0, "memory_request_recommended": GI},
    ])
    rep = savings(recs, PriceBook())
    a = 2 * H * (0.75 * CPU + 0.75 * RAM)
    assert rep.rows["monthly_savings_usd"].tolist() == pytest.approx([a, 0.0])
    assert rep.total_monthly == pytest.approx(a)
    assert rep.current_monthly == pytest.approx(3 * H * (CPU + RAM))
    assert rep.savings_pct == pytest.approx(50.0)
    assert rep.significant
    small = savings(_recs([{"workload": "a", "cpu_request_recommended": 0.9,
                            "memory_request_recommended": GI}]))
    assert not small.significant and "below 20 %" in small.note
    json.dumps(rep.to_dict())


def test_savings_use_usage_when_above_the_new_request() -> None:
    recs = _recs([{"workload": "a", "cpu_request_recommended": 0.1,
                   "memory_request_recommended": GI, "cpu_mean": 0.4}])
    rep = savings(recs)
    assert rep.total_monthly == pytest.approx(H * 0.6 * CPU)


def test_node_count_effect() -> None:
    assert nodes_needed(7.5, 10 * GI, {"cpu": 4, "memory": 16 * GI}) == 2
    assert nodes_needed(0, 0, {"cpu": 4, "memory": 16 * GI}) == 1
    pods = [_pod(f"w-{i}", cpu="2", mem="4Gi") for i in range(4)]
    for p in pods:
        p["metadata"]["ownerReferences"] = [{"kind": "Deployment", "name": "w",
                                             "controller": True}]
    dep = {"kind": "Deployment", "apiVersion": "apps/v1",
           "metadata": {"name": "w", "namespace": "app"}, "spec": {"replicas": 4}}
    st = _state(_node("n1"), _node("n2"), dep, *pods, _pod("huge", cpu="64", node=""))
    recs = _recs([{"workload": "w", "cpu_request_current": 2.0,
                   "memory_request_current": 4 * GI, "cpu_request_recommended": 0.5,
                   "memory_request_recommended": GI, "replicas": 4.0}])
    rep = savings(recs, state=st)
    assert (rep.nodes_before, rep.nodes_after) == (2, 1)
    assert rep.requests["cpu_before"] == 8 and rep.requests["cpu_after"] == 2
    assert rep.unfit == ["app/huge"]
    assert "savings become real once nodes shrink" in rep.note
    assert rep.cluster_monthly == pytest.approx(2 * (4 * CPU + 16 * RAM) * H)


def test_demo_cost_and_savings_at_least_20_percent() -> None:
    from aiops.rightsizing import recommend
    from aiops.sources import open_source

    demo = open_source("demo")
    rep = cost_report(demo, window="14d")
    tot = rep.totals
    assert tot["node_cost"] > 0 and tot["storage_cost"] == pytest.approx(8 * 0.04)
    assert tot["allocated_cost"] + tot["idle_cost"] == pytest.approx(tot["node_cost"])
    assert set(rep.by("namespace")["namespace"]) >= {"todo", "kube-system", IDLE}
    recs = recommend(demo)
    sv = savings(recs, state=demo)
    assert sv.savings_pct >= 20, sv.note
    assert sv.significant
    assert sv.actionable_monthly > 0
    assert sv.nodes_before is not None and sv.nodes_after <= sv.nodes_before
    assert np.isclose(sv.total_monthly, recs["monthly_savings_usd"].sum(), atol=0.01)
