"""Right-sizing: requests/limits from usage history, back-tested, with the
Actions that apply them; replica advice; memory-leak forecasts.

Public API::

    recommend(state, history=None, config=None, *, window="14d", namespaces=None,
              stats=None, samples=None, prices=None, run_backtest=True) -> Recommendations
    to_json_records(recs, *, extra=False) -> list[dict]
    backtest(samples, recs, *, cpu_burst_factor=2.0, step=None) -> DataFrame
    scaling_recommendations(state, samples, recs=None, config=None) -> DataFrame
    leak_forecast(samples, limits=None, config=None) -> DataFrame
    leak_findings(forecast, state=None, *, now=None) -> list[Finding]
    memory_limits(state) -> DataFrame
    RightsizeConfig, ScalingConfig, LeakConfig; STRATEGIES / strategy / get_strategy
"""

from aiops.rightsizing.backtest import DEFINITIONS as BACKTEST_DEFINITIONS
from aiops.rightsizing.backtest import backtest
from aiops.rightsizing.config import LeakConfig, RightsizeConfig, ScalingConfig
from aiops.rightsizing.engine import (
    EXTRA_COLUMNS,
    REC_FIELDS,
    STATUSES,
    Recommendations,
    recommend,
)
from aiops.rightsizing.leak import leak_findings, leak_forecast, memory_limits
from aiops.rightsizing.output import to_json_records
from aiops.rightsizing.scaling import HpaInfo, hpa_index, scaling_recommendations
from aiops.rightsizing.strategies import STRATEGIES, get_strategy, load_strategies, strategy

__all__ = [
    "BACKTEST_DEFINITIONS", "EXTRA_COLUMNS", "REC_FIELDS", "STATUSES", "STRATEGIES",
    "HpaInfo", "LeakConfig", "Recommendations", "RightsizeConfig", "ScalingConfig",
    "backtest", "get_strategy", "hpa_index", "leak_findings", "leak_forecast",
    "load_strategies", "memory_limits", "recommend", "scaling_recommendations", "strategy",
    "to_json_records",
]
