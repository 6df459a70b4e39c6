"""Strategies: the seed plan's p95 + margin, krr-simple, the registry, and the
engine's common floors and rounding."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from aiops.errors import ParameterError
from aiops.rightsizing import RightsizeConfig, get_strategy, load_strategies, recommend
from aiops.rightsizing.strategies import strategy

MI = 2**20


def _ceil_m(x: float) -> float:
    return math.ceil(x * 1000 - 1e-6) / 1000


def _ceil_mi(x: float) -> float:
    return math.ceil(x / MI - 1e-9) * MI


def test_registry_has_both_strategies() -> None:
    names = load_strategies()
    assert {"percentile", "krr-simple"} <= set(names)
    assert get_strategy("percentile").description
    with pytest.raises(ParameterError, match="unknown right-sizing strategy"):
        get_strategy("nope")


def test_registering_a_name_twice_fails() -> None:
    load_strategies()
    with pytest.raises(ValueError, match="twice"):
        strategy("percentile", description="dup")(lambda u, c: u)


def test_percentile_strategy_on_wide_stats() -> None:
    usage = pd.DataFrame({"cpu_p95": [0.2, 0.001], "cpu_p90": [0.1, 0.001],
                          "memory_peak": [200 * MI, 10 * MI]})
    out = get_strategy("percentile")(usage, RightsizeConfig())
    assert out["cpu_request"].tolist() == pytest.approx([0.26, 0.0013])
    assert out["memory_request"].tolist() == pytest.approx([260 * MI, 13 * MI])
    assert out["memory_limit"].tolist() == pytest.approx([260 * MI, 13 * MI])
    assert out["cpu_limit"].isna().all()
    out = get_strategy("percentile")(usage, RightsizeConfig(percentile=0.9, margin=0.5,
                                                            memory_limit_multiple=2))
    assert out["cpu_request"].tolist() == pytest.approx([0.15, 0.0015])
    assert out["memory_limit"].tolist() == pytest.approx([600 * MI, 30 * MI])


def test_krr_simple_strategy() -> None:
    usage = pd.DataFrame({"cpu_p95": [0.2], "memory_peak": [200 * MI]})
    out = get_strategy("krr-simple")(usage, RightsizeConfig())
    assert out["cpu_request"].iloc[0] == pytest.approx(0.2)
    assert out["memory_request"].iloc[0] == pytest.approx(230 * MI)
    assert out["memory_limit"].iloc[0] == out["memory_request"].iloc[0]


def _one(make, cpu, mem, *, req=None, lim=None, config=None, oom=frozenset()):
    st = make.state(make.node(), make.workload(
        "Deployment", "web", containers={"app": (req or {"cpu": "2", "memory": "2Gi"},
                                                 lim or {"memory": "4Gi"})}, oom=oom))
    h = make.history(make.series(cpu, resource="cpu"), make.series(mem, resource="memory"))
    recs = recommend(st, h, config, window=None)
    assert len(recs) == 1
    return recs.iloc[0]


def test_recommend_uses_true_p95_and_peak(make) -> None:
    cpu = make.known(4032, 0.0, 1.0)
    mem = make.known(4032, 100 * MI, 400 * MI, seed=2)
    row = _one(make, cpu, mem)
    p95 = float(np.quantile(cpu, 0.95))
    assert row["cpu_p95"] == pytest.approx(p95)
    assert row["memory_peak"] == pytest.approx(400 * MI)
    assert row["cpu_request_recommended"] == pytest.approx(_ceil_m(p95 * 1.3))
    assert row["memory_request_recommended"] == _ceil_mi(400 * MI * 1.3)
    assert row["memory_limit_recommended"] == row["memory_request_recommended"]
    assert row["status"] == "ok"
    assert "p95" in row["reason"] and "peak" in row["reason"]
    assert row["samples"] == 4032


def test_krr_simple_through_the_engine(make) -> None:
    cpu = make.known(4032, 0.0, 1.0)
    mem = make.known(4032, 100 * MI, 400 * MI, seed=2)
    row = _one(make, cpu, mem, config=RightsizeConfig(strategy="krr-simple"))
    assert row["cpu_request_recommended"] == pytest.approx(_ceil_m(np.quantile(cpu, 0.95)))
    assert row["memory_request_recommended"] == _ceil_mi(400 * MI * 1.15)


def test_minimums_apply(make) -> None:
    row = _one(make, np.full(500, 0.001), np.full(500, 5 * MI))
    assert row["cpu_request_recommended"] == pytest.approx(0.010)
    assert row["memory_request_recommended"] == 100 * MI
    assert row["memory_limit_recommended"] == 100 * MI
    assert "minimum" in row["reason"]


def test_cpu_limit_multiple_and_kept_limit(make) -> None:
    cpu, mem = make.known(600, 0, 0.5), make.known(600, 50 * MI, 200 * MI)
    row = _one(make, cpu, mem, config=RightsizeConfig(cpu_limit_multiple=2.0))
    assert row["cpu_limit_recommended"] == pytest.approx(2 * row["cpu_request_recommended"])
    # None keeps the current CPU limit, raised to the request when it sits below it
    row = _one(make, cpu, mem, lim={"cpu": "100m", "memory": "4Gi"})
    assert row["cpu_limit_current"] == pytest.approx(0.1)
    assert row["cpu_limit_recommended"] == row["cpu_request_recommended"]
    row = _one(make, cpu, mem, lim={"cpu": "4", "memory": "4Gi"})
    assert row["cpu_limit_recommended"] == pytest.approx(4.0)


def test_small_changes_are_not_proposed(make) -> None:
    cpu = np.full(500, 0.1 / 1.3)  # p95 + 30 % = 100m = the current request
    mem = np.full(500, 200 * MI / 1.3)
    row = _one(make, cpu, mem, req={"cpu": "100m", "memory": "200Mi"},
               lim={"memory": "200Mi"})
    assert row["cpu_request_recommended"] == pytest.approx(0.1)
    assert row["memory_request_recommended"] == 200 * MI
    assert row["action"] is None
    assert "no change" in row["reason"]


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        RightsizeConfig(percentile=1.5)
    with pytest.raises(ValueError):
        RightsizeConfig(min_span="soon")
    with pytest.raises(ValueError):
        RightsizeConfig(unknown=1)
    assert RightsizeConfig.model_validate({"margin": 0.2}).margin == 0.2
    assert 0.95 in RightsizeConfig(percentile=0.9).quantiles
