"""The engine: statuses, OOM bump, HPA handling, Actions and their inverse,
JSON records, and the demo cluster's expected recommendations."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from aiops.diagnose.actions import pod_spec_of
from aiops.errors import ParameterError
from aiops.rightsizing import (
    REC_FIELDS,
    RightsizeConfig,
    leak_findings,
    leak_forecast,
    memory_limits,
    recommend,
    to_json_records,
)
from aiops.usage import FrameHistory, container_stats

MI = 2**20
GI = 2**30


def _usage(make, n=2016, cpu=(0.0, 0.2), mem=(50 * MI, 150 * MI), **kw):
    return [make.series(make.known(n, *cpu), resource="cpu", **kw),
            make.series(make.known(n, *mem, seed=5), resource="memory", **kw)]


def _container(obj, name="app"):
    return next(c for c in pod_spec_of(obj)["containers"] if c["name"] == name)


def test_insufficient_samples_and_span(make) -> None:
    st = make.state(make.node(), make.workload("Deployment", "web"),
                    make.workload("Deployment", "short"),
                    make.workload("Deployment", "none"))
    h = make.history(*_usage(make, n=50),  # 50 samples
                     *_usage(make, n=200, step="1min", workload="short"))  # 200 min only
    recs = recommend(st, h, window=None).set_index("workload")
    assert recs.loc["web", "status"] == "insufficient-data"
    assert "50 samples < 100" in recs.loc["web", "reason"]
    assert recs.loc["short", "status"] == "insufficient-data"
    assert "< 1d" in recs.loc["short", "reason"]
    assert recs.loc["none", "status"] == "insufficient-data"
    assert "no cpu or memory samples" in recs.loc["none", "reason"]
    for w in ("web", "short", "none"):
        assert recs.loc[w, "cpu_request_recommended"] == recs.loc[w, "cpu_request_current"]
        assert recs.loc[w, "action"] is None
        assert recs.loc[w, "monthly_savings_usd"] == 0
    relaxed = recommend(st, h, RightsizeConfig(min_samples=10, min_span="1h"), window=None)
    assert relaxed.set_index("workload").loc["short", "status"] == "ok"


def test_hpa_managed_keeps_the_scaled_resource(make) -> None:
    st = make.state(make.node(), make.workload("Deployment", "web", replicas=2),
                    make.hpa("web", "app", "Deployment", "web", resources=("cpu",),
                             min_replicas=2, current=2, desired=2))
    h = make.history(*_usage(make))
    row = recommend(st, h, window=None).iloc[0]
    assert row["status"] == "hpa-managed"
    assert row["cpu_request_recommended"] == row["cpu_request_current"] == 0.5
    assert row["memory_request_recommended"] < row["memory_request_current"]  # still sized
    assert "HPA web scales on cpu" in row["reason"]
    assert row["action"] is not None
    paths = {op["path"] for op in row["action"].patch}
    assert not any(p.endswith("/cpu") for p in paths)
    # an HPA on both resources: nothing is resized
    st2 = make.state(make.node(), make.workload("Deployment", "web"),
                     make.hpa("web", "app", "Deployment", "web", resources=("cpu", "memory")))
    row2 = recommend(st2, h, window=None).iloc[0]
    assert row2["status"] == "hpa-managed" and row2["action"] is None
    assert row2["memory_request_recommended"] == row2["memory_request_current"]


def test_oom_bump_like_the_vpa(make) -> None:
    mem = make.known(2016, 50 * MI, 250 * MI)
    st = make.state(make.node(), make.workload(
        "Deployment", "web", containers={"app": ({"cpu": "200m", "memory": "128Mi"},
                                                 {"memory": "256Mi"})}, oom={"app"}))
    h = make.history(make.series(make.known(2016, 0, 0.1)),
                     make.series(mem, resource="memory"))
    row = recommend(st, h, window=None).iloc[0]
    bump = max(256 * MI + 100 * MI, 256 * MI * 1.2)  # over the OOM-killed limit
    assert row["memory_limit_recommended"] == math.ceil(bump / MI) * MI
    assert row["memory_limit_recommended"] > row["memory_limit_current"]
    assert row["memory_request_recommended"] >= 256 * MI  # never below the OOM usage
    assert "OOM-killed" in row["reason"]
    # the bump scales with large containers: x1.2 wins over +100Mi
    st2 = make.state(make.node(), make.workload(
        "Deployment", "web", containers={"app": ({"memory": "2Gi"}, {"memory": "2Gi"})},
        oom={"app"}))
    row2 = recommend(st2, h, window=None).iloc[0]
    assert row2["memory_limit_recommended"] == math.ceil(2 * GI * 1.2 / MI) * MI


def test_action_patch_and_inverse_round_trip(make, patcher) -> None:
    st = make.state(make.node(), make.workload(
        "Deployment", "web", containers={"app": ({"cpu": "1", "memory": "1Gi"}, None),
                                         "side": ({"cpu": "10m"}, None)}))
    h = make.history(*_usage(make))
    row = recommend(st, h, window=None).set_index("container").loc["app"]
    action = row["action"]
    assert action.tier == "medium" and action.kind == "patch"
    assert action.target == {"apiVersion": "apps/v1", "kind": "Deployment",
                             "namespace": "app", "name": "web"}
    original = st.get("Deployment", "app", "web")
    patched = patcher(original, action.patch)
    res = _container(patched)["resources"]
    assert res["requests"]["cpu"] == f"{round(row['cpu_request_recommended'] * 1000)}m"
    assert res["requests"]["memory"] == f"{round(row['memory_request_recommended'] / MI)}Mi"
    assert res["limits"]["memory"] == f"{round(row['memory_limit_recommended'] / MI)}Mi"
    assert _container(patched, "side") == _container(original, "side")
    assert patcher(patched, action.inverse) == original
    text = " ".join(action.validate)
    assert "rollout status" in text and "OOMKilled" in text and "24h" in text
    assert action.to_dict()["hash"].startswith("sha256:")


def test_cronjob_and_job_containers_are_included(make, patcher) -> None:
    st = make.state(make.node(), make.workload("CronJob", "backup", pods=1, phase="Succeeded"),
                    make.workload("Job", "once", pods=1, phase="Succeeded"))
    h = make.history(*_usage(make, kind="CronJob", workload="backup", pod="backup-1-0"),
                     *_usage(make, kind="Job", workload="once", pod="once-0"))
    recs = recommend(st, h, window=None).set_index("workload")
    assert recs.loc["backup", "workload_kind"] == "CronJob"
    assert recs.loc["backup", "status"] == "ok"
    action = recs.loc["backup", "action"]
    assert action is not None
    assert action.patch[0]["path"].startswith("/spec/jobTemplate/spec/template/spec/containers/0")
    cron = st.get("CronJob", "app", "backup")
    assert patcher(patcher(cron, action.patch), action.inverse) == cron
    assert recs.loc["once", "action"] is None
    assert "immutable" in recs.loc["once", "reason"]


def test_bare_pods_get_no_action(make) -> None:
    st = make.state(make.node(), make.workload("Pod", "debug"))
    h = make.history(*_usage(make, kind="Pod", workload="debug", pod="debug"))
    row = recommend(st, h, window=None).iloc[0]
    assert row["status"] == "ok" and row["action"] is None
    assert "cannot be patched" in row["reason"]


def test_history_only_workload_from_the_template(make) -> None:
    """A CronJob between runs has no pod now: sized from its template and history."""
    objs = [o for o in make.workload("CronJob", "backup") if o["kind"] == "CronJob"]
    st = make.state(make.node(), objs)
    h = make.history(*_usage(make, kind="CronJob", workload="backup", pod="backup-1-0"))
    row = recommend(st, h, window=None).iloc[0]
    assert row["workload"] == "backup" and row["cpu_request_current"] == 0.5
    assert row["action"] is not None


def test_precomputed_stats_and_namespaces(make) -> None:
    st = make.state(make.node(), make.workload("Deployment", "web"),
                    make.workload("Deployment", "api", ns="other"))
    h = make.history(*_usage(make), *_usage(make, ns="other", workload="api"))
    cfg = RightsizeConfig()
    stats = container_stats(h, cfg.quantiles)
    a = recommend(st, FrameHistory(h), cfg, window=None, stats=stats, samples=h)
    b = recommend(st, h, cfg, window=None)
    pd.testing.assert_series_equal(a["cpu_request_recommended"], b["cpu_request_recommended"])
    only = recommend(st, h, cfg, window=None, namespaces=["other"])
    assert only["namespace"].tolist() == ["other"]
    with pytest.raises(ParameterError, match="quantile"):
        recommend(st, h, cfg, window=None, stats=stats.drop(columns="p95"), samples=h)


def test_no_history_is_a_clear_error(make) -> None:
    with pytest.raises(ParameterError, match="no usage history"):
        recommend(make.state(make.workload("Deployment", "web")))


def test_json_records_field_names(make) -> None:
    st = make.state(make.node(), make.workload("Deployment", "web"))
    recs = recommend(st, make.history(*_usage(make)), window=None)
    records = to_json_records(recs)
    assert list(records[0]) == list(REC_FIELDS)
    assert REC_FIELDS == (
        "namespace", "workload_kind", "workload", "container", "cpu_request_current",
        "cpu_request_recommended", "cpu_limit_current", "cpu_limit_recommended",
        "memory_request_current", "memory_request_recommended", "memory_limit_current",
        "memory_limit_recommended", "cpu_p95", "memory_peak", "samples", "status", "reason",
        "backtest", "monthly_savings_usd", "action")
    text = json.dumps(records)  # JSON-able: NaN -> null, Action -> dict
    assert "NaN" not in text
    assert isinstance(records[0]["backtest"], dict) and records[0]["backtest"]["cpu_samples"]
    assert records[0]["action"]["kind"] == "patch"
    assert records[0]["cpu_limit_current"] is None
    extra = to_json_records(recs, extra=True)[0]
    assert "replicas" in extra and "strategy" in extra
    json.dumps(extra)


def test_savings_follow_the_request_cut(make) -> None:
    st = make.state(make.node(), make.workload("Deployment", "web", replicas=2))
    recs = recommend(st, make.history(*_usage(make)), window=None)
    row = recs.iloc[0]
    assert row["replicas"] == 2
    cpu_cut = 0.5 - row["cpu_request_recommended"]
    mem_cut = (512 * MI - row["memory_request_recommended"]) / GI
    expect = 2 * 730 * (cpu_cut * 0.031611 + mem_cut * 0.004237)
    assert row["monthly_savings_usd"] == pytest.approx(expect, rel=1e-3)


# -- the demo cluster ---------------------------------------------------------------

def _demo_row(recs, workload):
    return recs[recs["workload"] == workload].iloc[0]


def test_demo_over_provisioned_workloads_get_lower_requests(demo_recs) -> None:
    for w in ("todo-frontend", "todo-postgres", "metrics-server"):
        row = _demo_row(demo_recs, w)
        assert row["status"] == "ok", w
        assert row["cpu_request_recommended"] < row["cpu_request_current"], w
        assert row["memory_request_recommended"] < row["memory_request_current"], w
        assert row["monthly_savings_usd"] > 0, w
        assert row["action"] is not None, w
        assert row["backtest"]["memory_over_limit"] == 0, w
        assert row["backtest"]["cpu_over_request_pct"] < 5, w


def test_demo_worker_gets_a_higher_memory_limit(demo_recs) -> None:
    row = _demo_row(demo_recs, "todo-worker")
    assert row["memory_limit_current"] == 256 * MI
    assert row["memory_limit_recommended"] >= 356 * MI
    assert "OOM-killed" in row["reason"]
    assert row["backtest"]["memory_over_limit"] == 0
    ops = {op["path"].rsplit("/", 2)[-2] + "/" + op["path"].rsplit("/", 1)[-1]: op["value"]
           for op in row["action"].patch}
    assert ops["limits/memory"] == f"{round(row['memory_limit_recommended'] / MI)}Mi"


def test_demo_backend_leak_and_hpa(demo, demo_recs) -> None:
    row = _demo_row(demo_recs, "todo-backend")
    assert row["status"] == "hpa-managed"
    assert row["cpu_request_recommended"] == row["cpu_request_current"]
    # the leak keeps memory as is: a larger limit would only postpone the OOM kill
    assert row["memory_limit_recommended"] == row["memory_limit_current"]
    assert "memory leak forecast" in row["reason"]
    assert 0 < row["leak_days_to_limit"] < 7
    findings = leak_findings(leak_forecast(demo.history, memory_limits(demo)), demo)
    assert [f.name for f in findings] == ["todo-backend"]


def test_demo_statuses_and_json(demo_recs) -> None:
    by = demo_recs.set_index("workload")
    assert by.loc["todo-embeddings", "status"] == "insufficient-data"  # pending, no usage
    assert by.loc["todo-db-backup", "workload_kind"] == "CronJob"
    assert set(demo_recs["status"]) <= {"ok", "insufficient-data", "hpa-managed"}
    assert (demo_recs.loc[demo_recs["status"] == "ok", "action"].notna()
            | demo_recs["workload_kind"].eq("Pod")
            | demo_recs["reason"].str.contains("no change")).loc[
                demo_recs["status"] == "ok"].all()
    json.dumps(to_json_records(demo_recs))
    assert np.isfinite(demo_recs["monthly_savings_usd"]).all()
