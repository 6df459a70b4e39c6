"""Memory-leak forecast: steady growth is found and timed; flat, spiky and
restarted containers are not mistaken for leaks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aiops.diagnose.finding import FINDING_FIELDS
from aiops.rightsizing import LeakConfig, leak_findings, leak_forecast, memory_limits
from aiops.rightsizing.leak import t975

MI = 2**20
PER_DAY = 288  # 5-minute samples


def _limits(limit: float, workload: str = "web") -> pd.DataFrame:
    return pd.DataFrame({"namespace": ["app"], "workload_kind": ["Deployment"],
                         "workload": [workload], "container": ["app"],
                         "memory_limit": [limit]})


def _leaky(days: int = 14, start: float = 500 * MI, per_day: float = 60 * MI,
           noise: float = 5 * MI, seed: int = 0) -> np.ndarray:
    n = days * PER_DAY
    t = np.arange(n) / PER_DAY
    rng = np.random.default_rng(seed)
    diurnal = 20 * MI * np.sin(2 * np.pi * t)
    return start + per_day * t + diurnal + rng.normal(0, noise, n)


def test_linear_leak_is_found_and_timed(make) -> None:
    mem = _leaky()
    h = make.history(make.series(mem, resource="memory"))
    limit = 2048 * MI
    f = leak_forecast(h, _limits(limit))
    row = f.iloc[0]
    assert row["leak"]
    assert row["slope_bytes_per_day"] == pytest.approx(60 * MI, rel=0.05)
    assert row["r2"] > 0.99
    # fitted level now ~ 500 + 60 x 14 (+ diurnal peak 20) MiB; time to the limit
    level = row["current_bytes"]
    assert level == pytest.approx((500 + 60 * 14 + 20) * MI, rel=0.03)
    assert row["days_to_limit"] == pytest.approx((limit - level) / row["slope_bytes_per_day"])
    assert row["days_to_limit_low"] <= row["days_to_limit"] <= row["days_to_limit_high"]
    assert row["eta_earliest"] <= row["eta"] <= row["eta_latest"]
    assert row["days_to_limit"] == pytest.approx((2048 - 1360) / 60, rel=0.05)
    assert row["severity"] == "warning"  # between 3 and 14 days


def test_severity_follows_time_to_limit(make) -> None:
    h = make.history(make.series(_leaky(), resource="memory"))
    crit = leak_forecast(h, _limits(1450 * MI)).iloc[0]
    assert crit["leak"] and crit["severity"] == "critical"
    far = leak_forecast(h, _limits(4096 * MI)).iloc[0]
    assert far["severity"] == "info"
    none = leak_forecast(h).iloc[0]
    assert none["leak"] and np.isnan(none["days_to_limit"]) and none["severity"] == "warning"


@pytest.mark.parametrize("kind", ["flat", "spiky", "weekly", "sawtooth"])
def test_non_leaks(make, kind) -> None:
    n = 14 * PER_DAY
    rng = np.random.default_rng(1)
    t = np.arange(n) / PER_DAY
    base = 200 * MI + 10 * MI * np.sin(2 * np.pi * t) + rng.normal(0, 3 * MI, n)
    if kind == "spiky":  # a batch every third day pushes to the limit (the demo worker)
        base[(np.floor(t) % 3 == 2) & (t % 1 > 0.5) & (t % 1 < 0.55)] = 256 * MI
    elif kind == "weekly":  # weekend dips
        base = base - 20 * MI * ((np.floor(t) % 7) >= 5)
    elif kind == "sawtooth":  # grows fast, OOM-killed daily at the limit
        base = 100 * MI + 200 * MI * (t % 1)
    h = make.history(make.series(base, resource="memory"))
    row = leak_forecast(h, _limits(300 * MI)).iloc[0]
    assert not row["leak"], row["reason"]
    assert row["reason"].startswith("no leak")
    assert leak_findings(leak_forecast(h, _limits(300 * MI))) == []


def test_fit_starts_after_a_restart(make) -> None:
    mem = _leaky(days=14)
    mem[5 * PER_DAY:] = _leaky(days=9, start=300 * MI, per_day=40 * MI, seed=4)
    h = make.history(make.series(mem, resource="memory"))
    row = leak_forecast(h, _limits(2048 * MI)).iloc[0]
    assert row["leak"]
    assert row["days"] <= 9
    assert row["slope_bytes_per_day"] == pytest.approx(40 * MI, rel=0.08)


def test_short_history_is_not_a_leak(make) -> None:
    h = make.history(make.series(_leaky(days=3), resource="memory"))
    row = leak_forecast(h, _limits(2048 * MI)).iloc[0]
    assert not row["leak"] and "usable days" in row["reason"]


def test_partial_days_are_ignored(make) -> None:
    mem = _leaky(days=10)
    start = make.START + pd.Timedelta(hours=20)  # the first day has 4 hours only
    h = make.history(make.series(mem, resource="memory", start=start))
    row = leak_forecast(h, _limits(4096 * MI), LeakConfig(day_coverage=0.5)).iloc[0]
    assert row["leak"]
    assert row["segment_start"] > start.floor("D")


def test_worst_pod_is_reported(make) -> None:
    slow = _leaky(per_day=20 * MI, seed=1)
    fast = _leaky(per_day=80 * MI, seed=2)
    h = make.history(make.series(slow, resource="memory", pod="web-a"),
                     make.series(fast, resource="memory", pod="web-b"))
    row = leak_forecast(h, _limits(4096 * MI)).iloc[0]
    assert row["pods"] == 2 and row["pods_leaking"] == 2 and row["pod"] == "web-b"


def test_findings(make) -> None:
    h = make.history(make.series(_leaky(), resource="memory"))
    st = make.state(make.node(), make.workload(
        "Deployment", "web", containers={"app": ({"memory": "512Mi"}, {"memory": "1450Mi"})}))
    f = leak_forecast(h, memory_limits(st))
    [finding] = leak_findings(f, st)
    d = finding.to_dict()
    assert tuple(d) == FINDING_FIELDS
    assert d["rule"] == "memory-leak" and d["severity"] == "critical"
    assert d["kind"] == "Deployment" and d["name"] == "web" and d["owner"] == "Deployment/web"
    assert "limit" in d["summary"] and "/day" in d["summary"]
    assert d["evidence"][0]["source"] == "metrics"
    action = d["remediation"]["action"]
    assert action["kind"] == "rollout-restart" and action["tier"] == "low"


def test_t_quantiles() -> None:
    assert t975(1) == pytest.approx(12.706)
    assert t975(12) == pytest.approx(2.179)
    assert 1.96 < t975(200) < 1.98


def test_demo_backend_leak_is_forecast(demo) -> None:
    f = leak_forecast(demo.history, memory_limits(demo))
    leaking = f[f["leak"]]
    assert leaking["workload"].tolist() == ["todo-backend"]
    row = leaking.iloc[0]
    assert row["limit_bytes"] == 1536 * MI
    assert 0.5 < row["days_to_limit"] < 7
    assert row["slope_bytes_per_day"] > 30 * MI
    findings = leak_findings(f, demo)
    assert [x.name for x in findings] == ["todo-backend"]
    assert findings[0].severity == "critical"
