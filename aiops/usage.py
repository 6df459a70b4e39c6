"""Usage history: the tidy frame every source produces, and the per-container
statistics right-sizing reads.

Sources (the demo's bundled history, the local metrics store, Prometheus) all
implement `UsageHistory`. A source that can push the statistics down (PromQL
`quantile_over_time`) overrides `stats`; the rest inherit the pandas version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd

from aiops.durations import parse_duration
from aiops.errors import ParameterError

USAGE_COLUMNS = ["time", "namespace", "workload_kind", "workload", "pod", "container",
                 "resource", "value"]
STAT_KEYS = ["namespace", "workload_kind", "workload", "container", "resource"]
DEFAULT_QUANTILES = (0.5, 0.9, 0.95, 0.99)


def qcol(q: float) -> str:
    """Column name of a quantile: 0.95 -> 'p95', 0.995 -> 'p99.5'."""
    return f"p{q * 100:g}"


def stats_columns(quantiles: Sequence[float] = DEFAULT_QUANTILES) -> list[str]:
    return [*STAT_KEYS, "samples", "pods", "first", "last", "mean", "peak",
            *(qcol(q) for q in quantiles)]


def check_usage(df: pd.DataFrame, where: str = "usage history") -> pd.DataFrame:
    """Validate the tidy frame's columns; NaN values are dropped (gaps are allowed)."""
    missing = [c for c in USAGE_COLUMNS if c not in df.columns]
    if missing:
        raise ParameterError(f"{where} lacks columns {missing}",
                             f"provide the columns {USAGE_COLUMNS}")
    return df[df["value"].notna()]


def window_delta(window: str | None) -> pd.Timedelta | None:
    return parse_duration(window, "history window") if window else None


def container_stats(df: pd.DataFrame,
                    quantiles: Sequence[float] = DEFAULT_QUANTILES) -> pd.DataFrame:
    """Per workload container and resource: sample count, span, mean, peak, quantiles.

    The distribution pools the samples of every pod of the workload, because a
    request applies to each pod.
    """
    df = check_usage(df)
    cols = stats_columns(quantiles)
    if df.empty:
        return pd.DataFrame(columns=cols)
    # one implementation with the rest of right-sizing (imported here: the
    # rightsizing package imports this module)
    from aiops.rightsizing._groups import grouped_stats

    out = grouped_stats(df, STAT_KEYS, list(quantiles))
    out = out.astype({k: str for k in STAT_KEYS})
    for c in ("first", "last"):
        out[c] = _as_time(out[c].to_numpy(np.int64), df["time"].dtype)
    out = out.rename(columns={f"q{i}": qcol(q) for i, q in enumerate(quantiles)})
    return out[cols]


def _as_time(ns: np.ndarray, dtype: object) -> pd.Series:
    """Nanoseconds since the epoch back in the input's datetime dtype."""
    t = pd.Series(pd.to_datetime(ns, unit="ns", utc=True))
    if isinstance(dtype, pd.DatetimeTZDtype):
        return t.dt.tz_convert(dtype.tz).astype(dtype)
    if isinstance(dtype, np.dtype) and dtype.kind == "M":
        return t.dt.tz_localize(None).astype(dtype)
    return t


class UsageHistory(Protocol):
    """What right-sizing and the reports need from a history source."""

    name: str

    def samples(self, *, window: str | None = None,
                namespaces: Sequence[str] | None = None) -> pd.DataFrame:
        """Tidy samples (USAGE_COLUMNS); may be down-sampled for charts."""
        ...

    def stats(self, *, window: str | None = None, namespaces: Sequence[str] | None = None,
              quantiles: Sequence[float] = DEFAULT_QUANTILES) -> pd.DataFrame:
        """container_stats() of the window, possibly computed at the source."""
        ...


class FrameHistory:
    """A history held in memory (the demo's bundled parquet, a test frame)."""

    def __init__(self, df: pd.DataFrame, name: str = "frame") -> None:
        self.df = check_usage(df)
        self.name = name

    def samples(self, *, window: str | None = None,
                namespaces: Sequence[str] | None = None) -> pd.DataFrame:
        df = self.df
        if namespaces:
            df = df[df["namespace"].astype(str).isin(list(namespaces))]
        if (td := window_delta(window)) is not None and not df.empty:
            df = df[df["time"] >= df["time"].max() - td]
        return df

    def stats(self, *, window: str | None = None, namespaces: Sequence[str] | None = None,
              quantiles: Sequence[float] = DEFAULT_QUANTILES) -> pd.DataFrame:
        return container_stats(self.samples(window=window, namespaces=namespaces), quantiles)


def open_history(state, *, prometheus: str | None = None, token_file=None,
                 headers: dict[str, str] | None = None, store=None) -> UsageHistory:
    """The usage history to use: Prometheus, a local store, or the source's own.

    One choice for the CLI and the report notebooks, so both read the same data.
    """
    from pathlib import Path

    if prometheus:
        from aiops.sources.prometheus import PrometheusHistory

        return PrometheusHistory(prometheus, token_file=token_file, headers=headers or {},
                                 state=state)
    if store:
        from aiops.sources.metrics_store import MetricsStore

        if not Path(store).is_dir():
            raise ParameterError(f"metrics store {store} does not exist",
                                 "create it with `aiops metrics sample --store DIR`")
        return MetricsStore(store).history()
    if state.history is None:
        raise ParameterError(
            f"source {state.source} has no usage history",
            "pass --prometheus URL, or --store DIR filled by `aiops metrics sample`")
    return FrameHistory(state.history, name=state.source)
