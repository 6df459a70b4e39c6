"""Strategy registry: one module per strategy, registered with `@strategy`.

A strategy is a pure function `(usage, config) -> frame` over the wide usage
statistics (one row per workload container; columns `cpu_p95`, `cpu_peak`,
`memory_peak`, ... as `aiops.usage.qcol` names them, prefixed by resource). It
returns, on the same index, `cpu_request`, `cpu_limit`, `memory_request`,
`memory_limit` (cores / bytes; NaN = no opinion, the engine applies the config's
limit rule) and `basis`, a short text saying how the numbers were derived.
Floors, the OOM bump, rounding and change detection are the engine's job, so
every strategy gets them alike.

Adding a strategy = one module here with a decorated function, plus its test.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiops.errors import ParameterError

if TYPE_CHECKING:
    import pandas as pd

    from aiops.rightsizing.config import RightsizeConfig

StrategyFn = Callable[["pd.DataFrame", "RightsizeConfig"], "pd.DataFrame"]
OUTPUT_COLUMNS = ("cpu_request", "cpu_limit", "memory_request", "memory_limit", "basis")


@dataclass(frozen=True)
class Strategy:
    name: str
    description: str
    fn: StrategyFn

    def __call__(self, usage: pd.DataFrame, config: RightsizeConfig) -> pd.DataFrame:
        out = self.fn(usage, config)
        missing = [c for c in OUTPUT_COLUMNS if c not in out.columns]
        if missing:
            raise ParameterError(f"strategy {self.name!r} returned no columns {missing}",
                                 "a strategy must return " + ", ".join(OUTPUT_COLUMNS))
        return out


STRATEGIES: dict[str, Strategy] = {}


def strategy(name: str, *, description: str) -> Callable[[StrategyFn], StrategyFn]:
    """Register `fn` as strategy `name` (names are a public interface)."""

    def deco(fn: StrategyFn) -> StrategyFn:
        if name in STRATEGIES:
            raise ValueError(f"strategy {name!r} registered twice")
        STRATEGIES[name] = Strategy(name, description, fn)
        return fn

    return deco


def load_strategies() -> dict[str, Strategy]:
    """Import every strategy module once so they register themselves."""
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    return STRATEGIES


def get_strategy(name: str) -> Strategy:
    found = load_strategies().get(name)
    if found is None:
        raise ParameterError(f"unknown right-sizing strategy {name!r}",
                             "use one of: " + ", ".join(sorted(STRATEGIES)))
    return found


__all__ = ["STRATEGIES", "Strategy", "get_strategy", "load_strategies", "strategy"]
