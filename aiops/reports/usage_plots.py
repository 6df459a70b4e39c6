"""Figures for the utilization and cost reports, and the small frames they chart.

Pure, like `aiops.reports.plots`: DataFrames in, a `go.Figure` (or a frame) out,
no I/O and no display. Every builder returns a figure with a short "nothing to
show" note for an empty input instead of raising. Display figures with
`aiops.reports.plots.show`.

Inputs are the frames the analysis modules already produce:

- `samples`: the tidy usage frame (`aiops.usage.USAGE_COLUMNS`), any resolution;
- `recs`: `aiops.rightsizing.recommend()` output (current requests/limits per
  workload container, recommendations, back-test dicts, savings);
- `forecast`: `aiops.rightsizing.leak_forecast()` output;
- cost frames: `aiops.cost.aggregate()` and `CostReport.nodes`.

Pages stay light: time series are down-sampled to one point per hour and drawn
on a regular grid (`x0` + `dx`), so a chart carries a start time and binary
value arrays rather than one date string per point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from aiops.cost import IDLE, UNALLOCATED, UNMOUNTED
from aiops.quantity import format_bytes, format_cores
from aiops.reports.plots import ERROR, NEUTRAL, OK, PALETTE, WARN, _base, _empty
from aiops.rightsizing.leak import t975
from aiops.usage import check_usage

KEYS = ["namespace", "workload_kind", "workload", "container"]
WORKLOAD = ["namespace", "workload_kind", "workload"]
HOURLY_COLUMNS = [*WORKLOAD, "resource", "time", "usage", "request", "limit", "pods"]
EFFICIENCY_COLUMNS = [*WORKLOAD, "resource", "day", "usage", "request", "efficiency"]
REQUEST = {"cpu": "cpu_request_current", "memory": "memory_request_current"}
LIMIT = {"cpu": "cpu_limit_current", "memory": "memory_limit_current"}
USAGE_COLOUR, REQUEST_COLOUR, LIMIT_COLOUR = PALETTE[0], OK, ERROR
IDLE_LABEL = "idle (node capacity no pod uses)"
HOUR_MS = 3_600_000


# -- frames -------------------------------------------------------------------------

def _label(df: pd.DataFrame) -> pd.Series:
    return df["namespace"].astype(str) + "/" + df["workload"].astype(str)


def _strings(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Key columns as plain strings (category codes of different sources differ).
    Applied after aggregating, on the small frame."""
    return df.assign(**{k: df[k].astype(str) for k in columns})


def _per_container(recs: pd.DataFrame | None, columns: Mapping[str, str]) -> pd.DataFrame:
    """(workload container, resource) -> the recs' current value of each column kind."""
    if recs is None or recs.empty:
        return pd.DataFrame(columns=[*KEYS, "resource", *columns])
    base = recs[KEYS].astype(str)
    parts = [base.assign(resource=res, **{out: recs[col[res]].astype(float).to_numpy()
                                          for out, col in columns.items()})
             for res in ("cpu", "memory")]
    return pd.concat(parts, ignore_index=True).drop_duplicates([*KEYS, "resource"])


def hourly_usage(samples: pd.DataFrame, recs: pd.DataFrame | None = None,
                 freq: str = "1h") -> pd.DataFrame:
    """Per workload, resource and hour: usage, requests and limits of its pods.

    usage: CPU is the hourly mean, memory the hourly peak working set (a limit
    is hit by peaks), each summed over the workload's pods and containers.
    request / limit: the current per-pod values (from `recs`) summed over the
    pods seen in that hour; NaN when a container of the workload has none.
    """
    if samples is None or samples.empty:
        return pd.DataFrame(columns=HOURLY_COLUMNS)
    s = check_usage(samples)
    if s.empty:
        return pd.DataFrame(columns=HOURLY_COLUMNS)
    s = s.assign(time=s["time"].dt.floor(freq))
    per_pod = (s.groupby([*KEYS, "pod", "resource", "time"], sort=False, observed=True)
               ["value"].agg(["mean", "max"]).reset_index())
    per_pod = _strings(per_pod, [*KEYS, "pod", "resource"])
    per_pod["usage"] = np.where(per_pod["resource"] == "memory", per_pod["max"],
                                per_pod["mean"])
    limits = _per_container(recs, {"request": REQUEST, "limit": LIMIT})
    per_pod = per_pod.merge(limits, on=[*KEYS, "resource"], how="left")
    for col in ("request", "limit"):
        if col not in per_pod:
            per_pod[col] = np.nan
    per_pod["no_request"] = per_pod["request"].isna()
    per_pod["no_limit"] = per_pod["limit"].isna()
    out = per_pod.groupby([*WORKLOAD, "resource", "time"], sort=True).agg(
        usage=("usage", "sum"), request=("request", "sum"), limit=("limit", "sum"),
        no_request=("no_request", "any"), no_limit=("no_limit", "any"),
        pods=("pod", "nunique")).reset_index()
    out.loc[out["no_request"], "request"] = np.nan
    out.loc[out["no_limit"], "limit"] = np.nan
    return out[HOURLY_COLUMNS]


def daily_efficiency(samples: pd.DataFrame, recs: pd.DataFrame | None) -> pd.DataFrame:
    """Per workload, resource and UTC day: usage / request.

    Sums over pod-samples: usage = sum of the samples, request = the container's
    current request once per sample, so efficiency is the average share of the
    requested resources actually used. Containers without a request are left
    out (there is nothing to divide by).
    """
    if samples is None or samples.empty or recs is None or recs.empty:
        return pd.DataFrame(columns=EFFICIENCY_COLUMNS)
    s = check_usage(samples)
    s = s.assign(day=s["time"].dt.floor("1D"))
    per = (s.groupby([*KEYS, "resource", "day"], sort=False, observed=True)["value"]
           .agg(usage="sum", n="count").reset_index())
    per = _strings(per, [*KEYS, "resource"])
    per = per.merge(_per_container(recs, {"request": REQUEST}), on=[*KEYS, "resource"],
                    how="inner")
    per = per[per["request"] > 0]
    if per.empty:
        return pd.DataFrame(columns=EFFICIENCY_COLUMNS)
    per["request"] = per["request"] * per["n"]  # the request, once per sample
    out = per.groupby([*WORKLOAD, "resource", "day"], sort=True).agg(
        usage=("usage", "sum"), request=("request", "sum")).reset_index()
    out["efficiency"] = out["usage"] / out["request"]
    return out[EFFICIENCY_COLUMNS]


def efficiency_totals(eff: pd.DataFrame) -> dict[str, float]:
    """Overall usage / request per resource (NaN when nothing had a request)."""
    out = {"cpu": math.nan, "memory": math.nan}
    if eff is None or eff.empty:
        return out
    sums = eff.groupby("resource")[["usage", "request"]].sum()
    for res in out:
        if res in sums.index and sums.loc[res, "request"] > 0:
            out[res] = float(sums.loc[res, "usage"] / sums.loc[res, "request"])
    return out


def _change(cur: float, new: float, fmt: Any) -> str:
    a, b = (fmt(v) if not pd.isna(v) else "none" for v in (cur, new))
    return a if a == b else f"{a} → {b}"


def _backtest_text(bt: Any) -> str:
    if not isinstance(bt, Mapping) or (not bt.get("cpu_samples")
                                       and not bt.get("memory_samples")):
        return "not run (no samples)"

    def pct(key: str) -> str:
        v = bt.get(key)
        return "–" if v is None else f"{v:g} %"

    oom = int(bt.get("memory_oom_episodes") or 0)
    return (f"CPU > request {pct('cpu_over_request_pct')}, throttling risk "
            f"{pct('cpu_throttle_risk_pct')} · memory > request "
            f"{pct('memory_over_request_pct')}, " + ("no OOM kill" if oom == 0 else
                                                        f"{oom} OOM kill(s)"))


def recommendation_rows(recs: pd.DataFrame) -> pd.DataFrame:
    """One display row per recommendation: current → recommended, the back-test of
    the recommended values on the same history (as a sentence in `backtest`, and
    its key figures as numbers), the monthly savings, the Action; `basis` is the
    engine's reason (how the values were derived, why one was left alone).
    `cpu_request` mentions the CPU limit too when that changes."""
    cols = ["workload", "container", "status", "cpu_request", "cpu_limit", "memory_request",
            "memory_limit", "backtest", "bt_cpu_over_request_pct", "bt_throttle_risk_pct",
            "bt_memory_over_request_pct", "bt_oom_kills", "monthly_savings_usd", "action",
            "basis"]
    if recs is None or recs.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for r in recs.itertuples(index=False):
        bt = r.backtest if isinstance(r.backtest, Mapping) and (
            r.backtest.get("cpu_samples") or r.backtest.get("memory_samples")) else {}
        limit = _change(r.cpu_limit_current, r.cpu_limit_recommended, format_cores)
        cpu_limit_note = f" (limit {limit})" if "→" in limit else ""
        rows.append({
            "workload": f"{r.namespace}/{r.workload} · {r.container}",
            "container": r.container, "status": r.status,
            "cpu_request": _change(r.cpu_request_current, r.cpu_request_recommended,
                                   format_cores) + cpu_limit_note,
            "cpu_limit": _change(r.cpu_limit_current, r.cpu_limit_recommended, format_cores),
            "memory_request": _change(r.memory_request_current, r.memory_request_recommended,
                                      format_bytes),
            "memory_limit": _change(r.memory_limit_current, r.memory_limit_recommended,
                                    format_bytes),
            "backtest": _backtest_text(r.backtest),
            "bt_cpu_over_request_pct": bt.get("cpu_over_request_pct", math.nan),
            "bt_throttle_risk_pct": bt.get("cpu_throttle_risk_pct", math.nan),
            "bt_memory_over_request_pct": bt.get("memory_over_request_pct", math.nan),
            "bt_oom_kills": bt.get("memory_oom_episodes", math.nan),
            "monthly_savings_usd": float(r.monthly_savings_usd),
            "action": "patch ready" if r.action is not None else "–",
            "basis": f"{r.workload_kind}/{r.workload} ({r.container}): {r.reason}",
        })
    out = pd.DataFrame(rows, columns=cols)
    for c in ("bt_cpu_over_request_pct", "bt_throttle_risk_pct", "bt_memory_over_request_pct",
              "bt_oom_kills"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    return out.sort_values(["monthly_savings_usd", "workload"], ascending=[False, True],
                           ignore_index=True)


def scaling_rows(scaling: pd.DataFrame) -> pd.DataFrame:
    """One display row per workload of `scaling_recommendations()`: replicas now,
    the suggested HPA bounds and target, the current HPA, and what to do."""
    cols = ["workload", "replicas", "cv", "suggested", "current_hpa", "advice", "formula"]
    if scaling is None or scaling.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for r in scaling.itertuples(index=False):
        has_hpa = isinstance(r.hpa, str) and bool(r.hpa)
        sized = r.min_replicas is not None and not pd.isna(r.min_replicas)
        suggested = (f"{r.min_replicas:.0f}–{r.max_replicas:.0f} at "
                     f"{100 * r.target_utilization:.0f} %" if sized else "–")
        current = (f"{r.hpa_min:.0f}–{r.hpa_max:.0f} at {r.hpa_target_utilization:.0f} %"
                   if has_hpa else "none")
        if has_hpa:
            advice = r.reason
        elif sized:
            advice = f"variable load: add an HPA, {suggested} CPU; {r.reason}"
        else:
            advice = r.reason
        rows.append({"workload": f"{r.namespace}/{r.workload}", "replicas": r.replicas,
                     "cv": r.cv, "suggested": suggested, "current_hpa": current,
                     "advice": advice, "formula": r.formula})
    return pd.DataFrame(rows, columns=cols)


def leak_daily_maxima(samples: pd.DataFrame, forecast: pd.DataFrame) -> pd.DataFrame:
    """Daily peak working set (and when it was seen) of the pod each leaking
    container's forecast was fitted on: the points of `leak_chart`."""
    cols = [*KEYS, "pod", "day", "t", "max"]
    if samples is None or samples.empty or forecast is None or forecast.empty:
        return pd.DataFrame(columns=cols)
    leaks = forecast[forecast["leak"].astype(bool)]
    if leaks.empty:
        return pd.DataFrame(columns=cols)
    s = check_usage(samples)
    s = s[s["resource"] == "memory"]
    want = set(map(tuple, leaks[[*KEYS, "pod"]].astype(str).to_numpy().tolist()))
    pods = set(p for *_, p in want)
    s = s[s["pod"].astype(str).isin(pods)]
    s = _strings(s, [*KEYS, "pod"])
    s = s[[k in want for k in zip(*(s[c] for c in [*KEYS, "pod"]), strict=True)]]
    if s.empty:
        return pd.DataFrame(columns=cols)
    s = s.assign(day=s["time"].dt.floor("1D"))
    idx = s.groupby([*KEYS, "pod", "day"], sort=True)["value"].idxmax()
    peak = s.loc[idx]
    return pd.DataFrame({**{k: peak[k].to_numpy() for k in [*KEYS, "pod", "day"]},
                         "t": peak["time"].to_numpy(), "max": peak["value"].to_numpy()},
                        columns=cols).reset_index(drop=True)


def leak_rows(forecast: pd.DataFrame) -> pd.DataFrame:
    """One display row per leaking container, soonest at its limit first."""
    cols = ["severity", "workload", "container", "pod", "growth_per_day", "now", "limit",
            "days_to_limit", "band", "eta", "fit"]
    if forecast is None or forecast.empty:
        return pd.DataFrame(columns=cols)
    f = forecast[forecast["leak"].astype(bool)]
    if f.empty:
        return pd.DataFrame(columns=cols)
    f = f.assign(_d=f["days_to_limit"].fillna(np.inf)).sort_values("_d")
    rows = []
    for r in f.itertuples(index=False):
        lo, hi = float(r.days_to_limit_low), float(r.days_to_limit_high)
        rows.append({
            "severity": r.severity, "workload": f"{r.namespace}/{r.workload_kind}/{r.workload}",
            "container": r.container, "pod": r.pod,
            "growth_per_day": f"+{format_bytes(r.slope_bytes_per_day)}/day",
            "now": format_bytes(r.current_bytes), "limit": format_bytes(r.limit_bytes),
            "days_to_limit": float(r.days_to_limit),
            "band": "no limit" if math.isnan(lo) else
                    f"{lo:.1f} – {hi:.1f} days" if np.isfinite(hi) else f"{lo:.1f} days – never",
            "eta": None if r.eta is None or pd.isna(r.eta) else
                   pd.Timestamp(r.eta).strftime("%Y-%m-%d %H:%M UTC"),
            "fit": f"{r.days} days, R² {r.r2:.3f}, {100 * r.steady_share:.0f} % of days up",
        })
    return pd.DataFrame(rows, columns=cols)


def cost_label(key: str, dimension: str) -> str:
    """A readable name for aggregate() keys (`__idle__`, `__unallocated__`, ...)."""
    if key == IDLE:
        return IDLE_LABEL
    if key == UNALLOCATED:
        return f"no {dimension.split(':', 1)[1]} label" if dimension.startswith("label:") \
            else "unallocated"
    if key.endswith("/" + UNMOUNTED):
        return key.replace(UNMOUNTED, "unmounted volumes")
    return key


def cost_rows(by: pd.DataFrame, dimension: str) -> pd.DataFrame:
    """An aggregate() frame with readable keys, for a table."""
    if by is None or by.empty:
        return by
    return by.assign(**{dimension: [cost_label(str(k), dimension) for k in by[dimension]]})


def trend_rows(previous: Mapping[str, Any] | None, current: Mapping[str, Any],
               metrics: Mapping[str, tuple[str, str]]) -> pd.DataFrame:
    """Then vs now for `metrics` ({key: (label, format)}); `previous` None -> empty.

    format is a str.format spec applied to numbers ("{:.0%}", "{:,.2f}").
    """
    cols = ["metric", "previous", "now", "change"]
    if not previous:
        return pd.DataFrame(columns=cols)
    rows = []
    for key, (label, fmt) in metrics.items():
        then, now = previous.get(key), current.get(key)

        def text(v: Any, fmt: str = fmt) -> str:
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return "–"
            return fmt.format(v) if isinstance(v, int | float) else str(v)

        change = "–"
        if isinstance(then, int | float) and isinstance(now, int | float) \
                and not (math.isnan(then) or math.isnan(now)):
            diff = now - then
            change = "no change" if abs(diff) < 1e-9 else \
                ("+" if diff > 0 else "−") + text(abs(diff))
        rows.append({"metric": label, "previous": text(then), "now": text(now),
                     "change": change})
    return pd.DataFrame(rows, columns=cols)


# -- figures ------------------------------------------------------------------------

def _grid_layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    """`_base` for subplot grids: the legend sits on a line of its own under the
    title, clear of the subplot titles and the mode bar; the right-hand ticks keep
    some room."""
    _base(fig, title, height)
    fig.update_layout(title={"yref": "container", "y": 1 - 10 / height, "yanchor": "top"},
                      legend={"yref": "container", "y": 1 - 46 / height, "yanchor": "top",
                              "x": 0.0, "xanchor": "left"},
                      margin={"t": 104, "r": 36})
    fig.update_annotations(font_size=12, selector={"showarrow": False})
    return fig


def usage_vs_requests(hourly: pd.DataFrame, resource: str = "cpu", *, limit: int = 10,
                      columns: int = 2) -> go.Figure:
    """Small multiples, one per workload (largest requests first): usage over
    time against the workload's summed requests and limits."""
    unit = "cores" if resource == "cpu" else "GiB"
    what = "CPU (hourly mean)" if resource == "cpu" else "memory (hourly peak working set)"
    title = f"Usage vs requests vs limits: {what}"
    h = hourly[hourly["resource"] == resource] if hourly is not None and len(hourly) else None
    if h is None or h.empty:
        return _empty(title, "No usage history to show.")
    h = h.assign(label=_label(h))
    rank = h.groupby("label").agg(req=("request", "mean"), use=("usage", "mean"))
    rank = rank.fillna(0).sort_values(["req", "use"], ascending=False)
    shown = list(rank.index[:limit])
    rows = math.ceil(len(shown) / columns)
    if len(rank) > len(shown):
        title += f", the {len(shown)} largest of {len(rank)} workloads"
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=shown, shared_xaxes=True,
                        vertical_spacing=min(0.08, 0.35 / max(rows, 1)),
                        horizontal_spacing=0.07)
    start = h["time"].min()
    grid = pd.date_range(start, h["time"].max(), freq="1h")
    scale = 1.0 if resource == "cpu" else 2.0**30
    for i, label in enumerate(shown):
        w = h[h["label"] == label].set_index("time").reindex(grid)
        row, col = i // columns + 1, i % columns + 1
        common = {"x0": start, "dx": HOUR_MS, "legendgroup": "", "showlegend": i == 0}
        fig.add_trace(go.Scatter(
            y=(w["usage"] / scale).to_numpy("float32"), name="usage", mode="lines",
            line={"color": USAGE_COLOUR, "width": 1.2}, fill="tozeroy",
            fillcolor="rgba(37,99,235,0.15)", **{**common, "legendgroup": "usage"},
            hovertemplate="%{x|%b %d %H:00}<br>usage %{y:.3f} " + unit + "<extra>"
            + label + "</extra>"), row=row, col=col)
        for key, name, colour, dash in (("request", "requests", REQUEST_COLOUR, "dash"),
                                        ("limit", "limits", LIMIT_COLOUR, "dot")):
            y = w[key] / scale
            if y.notna().any():
                fig.add_trace(go.Scatter(
                    y=y.to_numpy("float32"), name=name, mode="lines", line_shape="hv",
                    line={"color": colour, "width": 1.5, "dash": dash},
                    **{**common, "legendgroup": name},
                    hovertemplate="%{x|%b %d %H:00}<br>" + name + " %{y:.3f} " + unit
                    + "<extra>" + label + "</extra>"), row=row, col=col)
        fig.update_yaxes(rangemode="tozero", row=row, col=col)
    # show the three legend entries once even when the first workload lacks a limit
    seen = {t.name for t in fig.data if t.showlegend}
    for t in fig.data:
        if t.name not in seen:
            t.showlegend = True
            seen.add(t.name)
    fig.update_yaxes(title_text=unit, col=1)
    fig.update_xaxes(tickformat="%b %d")
    return _grid_layout(fig, title, 130 + 190 * rows)


# on 0..150 %: red below 30 %, amber to 60 %, green 60-100 %, brown above 100 %
_EFFICIENCY_SCALE = [[0.0, "#dc2626"], [0.2, "#f59e0b"], [0.4, "#bbf7d0"], [0.6, "#22c55e"],
                     [0.667, "#16a34a"], [0.7, "#fde68a"], [1.0, "#b45309"]]


def efficiency_heatmap(eff: pd.DataFrame, *, limit: int = 30) -> go.Figure:
    """Usage / request per workload and day, CPU beside memory (values in %).

    Red: most of the request is idle (waste); green: 60–100 % used; amber above
    100 %: the workload uses more than it asked for (throttling/eviction risk).
    """
    title = "Efficiency per workload and day (usage / request)"
    if eff is None or eff.empty:
        return _empty(title, "No workload with both usage history and requests.")
    e = eff.assign(label=_label(eff), pct=100 * eff["efficiency"].astype(float))
    order = (e.groupby("label")["request"].sum().sort_values(ascending=False).index[:limit])
    order = list(order)[::-1]  # heatmap rows draw bottom-up: the largest on top
    days = sorted(e["day"].unique())
    fig = make_subplots(rows=1, cols=2, subplot_titles=["CPU", "memory"], shared_yaxes=True,
                        horizontal_spacing=0.03)
    for col, res in enumerate(("cpu", "memory"), start=1):
        z = (e[e["resource"] == res].pivot_table(index="label", columns="day", values="pct")
             .reindex(index=order, columns=days))
        fig.add_trace(go.Heatmap(
            z=z.round(0).to_numpy(), x=[pd.Timestamp(d).strftime("%b %d") for d in days],
            y=order, zmin=0, zmax=150, colorscale=_EFFICIENCY_SCALE,
            texttemplate="%{z:.0f}", textfont={"size": 9}, xgap=1, ygap=1,
            showscale=col == 2, colorbar={"title": {"text": "%"}, "ticksuffix": " %"},
            hovertemplate="%{y}<br>%{x}: %{z:.0f} % of the request used<extra>" + res
            + "</extra>"), row=1, col=col)
    fig.update_xaxes(tickangle=-45, type="category")
    return _base(fig, title, 140 + 22 * len(order))


def savings_bars(recs: pd.DataFrame, *, limit: int = 15, currency: str = "USD") -> go.Figure:
    """Monthly savings of the recommendations per workload (negative: the
    recommendation raises requests, e.g. after OOM kills)."""
    title = f"Monthly savings per workload if the recommendations are applied ({currency})"
    if recs is None or recs.empty or "monthly_savings_usd" not in recs:
        return _empty(title, "No recommendations.")
    r = recs.assign(label=_label(recs), v=recs["monthly_savings_usd"].astype(float).fillna(0))
    per = r.groupby("label")["v"].sum()
    per = per[per.abs() >= 0.005]
    if per.empty:
        return _empty(title, "No recommendation changes the cost.")
    per = per.reindex(per.abs().sort_values(ascending=False).index[:limit])
    per = per.sort_values()  # horizontal bars draw bottom-up: the largest on top
    fig = go.Figure(go.Bar(
        x=per.round(2), y=per.index, orientation="h",
        marker_color=[OK if v > 0 else ERROR for v in per],
        text=[f"{v:+,.2f}" for v in per], textposition="auto",
        hovertemplate="%{y}: %{x:,.2f} " + currency + "/month<extra></extra>"))
    fig.update_xaxes(title_text=f"{currency} per month (730 h)", zeroline=True,
                     zerolinecolor=NEUTRAL)
    return _base(fig, title, max(240, 80 + 26 * len(per)))


def leak_chart(daily: pd.DataFrame, forecast: pd.DataFrame, *, limit: int = 4,
               horizon_days: float = 45.0) -> go.Figure:
    """Per leaking container: daily peak working set, the fitted trend, its
    forecast with the 95 % band from the slope's uncertainty, and the limit."""
    title = "Memory-leak forecast: daily peak working set and trend to the limit"
    leaks = forecast[forecast["leak"].astype(bool)] if forecast is not None and \
        len(forecast) else None
    if leaks is None or leaks.empty:
        return _empty(title, "No container's working set grows steadily: no leak forecast.")
    leaks = leaks.assign(_d=leaks["days_to_limit"].fillna(np.inf)).sort_values("_d").head(limit)
    names = [f"{r.namespace}/{r.workload} · {r.container}" for r in leaks.itertuples()]
    fig = make_subplots(rows=len(leaks), cols=1, subplot_titles=names,
                        vertical_spacing=0.22 / max(len(leaks), 1))
    for i, r in enumerate(leaks.itertuples(index=False), start=1):
        pts = daily[(daily["namespace"] == r.namespace) & (daily["workload"] == r.workload)
                    & (daily["container"] == r.container)] if daily is not None and \
            len(daily) else pd.DataFrame(columns=["t", "max"])
        t_pts = pd.to_datetime(pts["t"], utc=True)
        now = (t_pts.max() if len(pts) else pd.Timestamp(r.eta) - pd.Timedelta(
            days=float(r.days_to_limit))).floor("s")
        seg0 = pd.Timestamp(r.segment_start).floor("s")
        fitted = t_pts >= seg0
        legend = i == 1
        if (~fitted).any():
            fig.add_trace(go.Scatter(
                x=t_pts[~fitted], y=pts["max"][~fitted] / 2**30, mode="markers",
                marker={"color": NEUTRAL, "size": 6}, name="before the last restart",
                showlegend=legend, legendgroup="before",
                hovertemplate="%{x|%b %d %H:%M}: %{y:.2f} GiB<extra></extra>"), row=i, col=1)
        fig.add_trace(go.Scatter(
            x=t_pts[fitted], y=pts["max"][fitted] / 2**30, mode="markers",
            marker={"color": USAGE_COLOUR, "size": 7}, name="daily peak (fitted)",
            showlegend=legend, legendgroup="points",
            hovertemplate="%{x|%b %d %H:%M}: %{y:.2f} GiB<extra></extra>"), row=i, col=1)
        b, se, level = float(r.slope_bytes_per_day), float(r.slope_se), float(r.current_bytes)
        se = 0.0 if math.isnan(se) else se
        tq = t975(int(r.days) - 2) * se
        lim = float(r.limit_bytes)
        reach = float(r.days_to_limit_high) if np.isfinite(r.days_to_limit_high) else \
            float(r.days_to_limit) if np.isfinite(r.days_to_limit) else 14.0
        ahead = min(max(reach * 1.15, 2.0), horizon_days)
        past = [(seg0 + (now - seg0) * k / 20).floor("s") for k in range(21)]
        future = [(now + pd.Timedelta(days=ahead * k / 30)).floor("s") for k in range(31)]

        def at(ts: Sequence[pd.Timestamp], slope: float, now: pd.Timestamp = now,
               level: float = level) -> np.ndarray:
            d = np.array([(t - now) / pd.Timedelta(days=1) for t in ts])
            return (level + slope * d) / 2**30

        fig.add_trace(go.Scatter(
            x=past, y=at(past, b), mode="lines", line={"color": USAGE_COLOUR, "width": 2},
            name="linear fit", showlegend=legend, legendgroup="fit", hoverinfo="skip"),
            row=i, col=1)
        fig.add_trace(go.Scatter(x=future, y=at(future, b + tq), mode="lines",
                                 line={"width": 0}, showlegend=False, legendgroup="band",
                                 hoverinfo="skip"), row=i, col=1)
        fig.add_trace(go.Scatter(
            x=future, y=at(future, max(b - tq, 0.0)), mode="lines", line={"width": 0},
            fill="tonexty", fillcolor="rgba(217,119,6,0.25)", name="95 % band",
            showlegend=legend, legendgroup="band", hoverinfo="skip"), row=i, col=1)
        fig.add_trace(go.Scatter(
            x=future, y=at(future, b), mode="lines", name="forecast",
            line={"color": WARN, "width": 2, "dash": "dash"}, showlegend=legend,
            legendgroup="forecast",
            hovertemplate="%{x|%b %d %H:%M}: %{y:.2f} GiB<extra>forecast</extra>"),
            row=i, col=1)
        if np.isfinite(lim):
            fig.add_trace(go.Scatter(
                x=[past[0], future[-1]], y=[lim / 2**30] * 2, mode="lines",
                line={"color": ERROR, "width": 1.5}, name="memory limit", showlegend=legend,
                legendgroup="limit", hovertemplate="limit %{y:.2f} GiB<extra></extra>"),
                row=i, col=1)
            if r.eta is not None and not pd.isna(r.eta):
                fig.add_annotation(
                    x=pd.Timestamp(r.eta).floor("s"), y=lim / 2**30, row=i, col=1, showarrow=True,
                    arrowhead=2, ax=-40, ay=-28, font={"size": 11, "color": ERROR},
                    text=f"limit in ~{float(r.days_to_limit):.1f} d "
                         f"({pd.Timestamp(r.eta):%b %d %H:%M} UTC)")
        fig.update_yaxes(title_text="GiB", rangemode="tozero", row=i, col=1)
    fig.update_xaxes(tickformat="%b %d")
    return _grid_layout(fig, title, 150 + 300 * len(leaks))


def cost_bars(by: pd.DataFrame, dimension: str = "namespace", *, limit: int = 15,
              currency: str = "USD", title: str | None = None) -> go.Figure:
    """Monthly cost per namespace / workload / label value (an `aggregate()`
    frame); idle node cost is its own grey bar."""
    title = title or f"Monthly cost by {dimension.replace('label:', 'label ')} ({currency})"
    if by is None or by.empty:
        return _empty(title, "No costs to show.")
    b = by.sort_values("total_cost", ascending=False)
    top, rest = b.head(limit), b.iloc[limit:]
    labels = [cost_label(str(k), dimension) for k in top[dimension]]
    values = list(top["total_cost"].astype(float))
    keys = [str(k) for k in top[dimension]]
    if len(rest):
        labels.append(f"{len(rest)} others")
        values.append(float(rest["total_cost"].sum()))
        keys.append("")
    total = sum(values)
    colours = [NEUTRAL if k == IDLE else "#94a3b8" if k == UNALLOCATED else PALETTE[0]
               for k in keys]
    detail = []
    for k in keys:
        row = top[top[dimension].astype(str) == k]
        detail.append("" if row.empty else
                      f"CPU {row['cpu_cost'].iloc[0]:,.2f}, memory {row['ram_cost'].iloc[0]:,.2f}"
                      f", storage {row['pv_cost'].iloc[0]:,.2f}")
    fig = go.Figure(go.Bar(
        x=[round(v, 2) for v in values][::-1], y=labels[::-1], orientation="h",
        marker_color=colours[::-1], customdata=detail[::-1],
        text=[f"{v:,.2f} ({100 * v / total:.0f} %)" if total else f"{v:,.2f}"
              for v in values][::-1], textposition="auto",
        hovertemplate="%{y}: %{x:,.2f} " + currency + "/month<br>%{customdata}"
        "<extra></extra>"))
    fig.update_xaxes(title_text=f"{currency} per month (730 h)")
    return _base(fig, title, max(220, 80 + 28 * len(labels)))


def node_cost_bars(nodes: pd.DataFrame, *, currency: str = "USD") -> go.Figure:
    """Per node: cost allocated to containers vs idle, stacked to the node's cost."""
    title = f"Node cost: allocated to pods vs idle ({currency} per month)"
    if nodes is None or nodes.empty:
        return _empty(title, "No nodes in this source.")
    n = nodes.sort_values("node_cost")
    idle = n["idle_cost"].clip(lower=0)
    alloc = n["node_cost"] - idle
    fig = go.Figure()
    fig.add_trace(go.Bar(y=n["node"], x=alloc.round(2), orientation="h", name="allocated",
                         marker_color=PALETTE[0],
                         hovertemplate="%{y}: %{x:,.2f} allocated<extra></extra>"))
    fig.add_trace(go.Bar(y=n["node"], x=idle.round(2), orientation="h", name="idle",
                         marker_color=NEUTRAL, customdata=n["idle_pct"].fillna(0),
                         hovertemplate="%{y}: %{x:,.2f} idle (%{customdata:.0f} %)"
                         "<extra></extra>"))
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title_text=f"{currency} per month (730 h)")
    return _base(fig, title, max(200, 110 + 30 * len(n)))


def savings_effect(current: float, recommended: float, *, nodes_before: int | None = None,
                   nodes_after: int | None = None, currency: str = "USD") -> go.Figure:
    """The analysed containers' monthly cost now vs with the recommendations."""
    title = f"Cost of the analysed containers: now vs recommended ({currency} per month)"
    if not (current > 0 or recommended > 0):
        return _empty(title, "No containers with a cost to compare.")
    labels = ["now", "recommended"]
    if nodes_before is not None and nodes_after is not None:
        labels = [f"now ({nodes_before} node(s) needed)",
                  f"recommended ({nodes_after} node(s) needed)"]
    fig = go.Figure(go.Bar(
        x=[round(current, 2), round(recommended, 2)], y=labels, orientation="h",
        marker_color=[NEUTRAL, OK], text=[f"{current:,.2f}", f"{recommended:,.2f}"],
        textposition="auto", hovertemplate="%{y}: %{x:,.2f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title_text=f"{currency} per month (730 h)", rangemode="tozero")
    return _base(fig, title, 200)


__all__ = [
    "EFFICIENCY_COLUMNS", "HOURLY_COLUMNS", "IDLE_LABEL", "cost_bars", "cost_label",
    "cost_rows", "daily_efficiency", "efficiency_heatmap", "efficiency_totals",
    "hourly_usage", "leak_chart", "leak_daily_maxima", "leak_rows", "node_cost_bars",
    "recommendation_rows", "savings_bars", "savings_effect", "scaling_rows", "trend_rows",
    "usage_vs_requests",
]
