"""Plotly figures for the reports, and `show` to display them in a notebook.

The builders are pure: DataFrames in (the column contracts of
`aiops.health.HealthReport`), a `go.Figure` out, no I/O and no display, so a
test can assert on traces without a kernel. An empty frame gives a figure with
a short "nothing to show" note instead of an exception.

`show(fig)` exists because Plotly 6+ emits only `application/vnd.plotly.v1+json`,
which nbconvert drops. It publishes one output carrying both that mimetype
(rendered natively, and safely, by JupyterLab and VS Code) and a `text/html`
rendering (a div and its `Plotly.newPlot` script) that nbconvert keeps. The
plotly.js library itself (4.8 MB) is not repeated in the notebook: the report
exporter (`aiops.reports.html.export_html`) inlines it exactly once per page.
`show(fig, standalone=True)` inlines it in the first figure of the kernel
instead, for a notebook meant to be converted by plain `jupyter nbconvert`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from aiops.reports.html import PLOTLYJS_MARKER

CONFIG: dict[str, Any] = {"displaylogo": False, "responsive": True}
OK, WARN, ERROR, NEUTRAL = "#16a34a", "#d97706", "#dc2626", "#64748b"
PALETTE = ["#2563eb", "#d97706", "#16a34a", "#dc2626", "#7c3aed", "#0891b2", "#be185d",
           "#65a30d", "#9333ea", "#ea580c"]
FONT = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif"

_plotlyjs_sent = False


# -- display -------------------------------------------------------------------

def plotlyjs_tag() -> str:
    """A <script> inlining plotly.js (from the installed plotly package), marked so
    the exporter can keep exactly one per page."""
    from plotly.offline import get_plotlyjs

    return (f'<script type="text/javascript" {PLOTLYJS_MARKER}="1">'
            "window.PlotlyConfig = {MathJaxConfig: 'local'};\n"
            f"{get_plotlyjs()}\n</script>")


def figure_html(fig: go.Figure, include_plotlyjs: bool = False) -> str:
    """The figure as an HTML fragment (a div and its Plotly.newPlot script)."""
    height = fig.layout.height or 420
    body = fig.to_html(full_html=False, include_plotlyjs=False, config=CONFIG,
                       default_width="100%", default_height=f"{height}px")
    return (plotlyjs_tag() + "\n" + body) if include_plotlyjs else body


def reset_plotlyjs() -> None:
    """Forget that plotly.js was sent (the next `show` inlines it again)."""
    global _plotlyjs_sent
    _plotlyjs_sent = False


def show(fig: go.Figure, standalone: bool = False) -> None:
    """Display a figure so it renders in JupyterLab and in the exported HTML.

    With `standalone`, plotly.js is inlined in the first such figure of the
    kernel (once, then never again), so the notebook's HTML works without the
    aiops exporter.
    """
    global _plotlyjs_sent
    from IPython.display import display

    inline = standalone and not _plotlyjs_sent
    html = figure_html(fig, include_plotlyjs=inline)
    _plotlyjs_sent = _plotlyjs_sent or inline
    spec = json.loads(fig.to_json(validate=False))
    spec["config"] = CONFIG
    title = fig.layout.title.text or "figure"
    display({"application/vnd.plotly.v1+json": spec, "text/html": html,
             "text/plain": f"<plotly figure: {title}>"}, raw=True)


# -- helpers ---------------------------------------------------------------------

def _base(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 16}},
        template="plotly_white", height=height, font={"family": FONT, "size": 12},
        margin={"l": 10, "r": 20, "t": 56, "b": 40}, hoverlabel={"namelength": -1},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right",
                "x": 1.0},
    )
    return fig


def _empty(title: str, message: str, height: int = 220) -> go.Figure:
    fig = _base(go.Figure(), title, height)
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper",
                       yref="paper", font={"size": 14, "color": NEUTRAL})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _grade_colour(score: float) -> str:
    return OK if score >= 80 else WARN if score >= 60 else ERROR


def _gib(v: float) -> str:
    return f"{v / 2**30:.1f} GiB"


# -- health report figures ------------------------------------------------------

def health_overview(score: float, grade: str, sections: pd.DataFrame) -> go.Figure:
    """A gauge of the cluster score beside one bar per section score."""
    title = "Health score by section"
    fig = make_subplots(rows=1, cols=2, column_widths=[0.32, 0.68],
                        specs=[[{"type": "indicator"}, {"type": "xy"}]],
                        horizontal_spacing=0.12)
    fig.add_trace(go.Indicator(
        mode="gauge+number", value=round(float(score), 1),
        number={"suffix": f" ({grade})", "font": {"size": 30}},
        gauge={"axis": {"range": [0, 100]}, "bar": {"color": _grade_colour(score)},
               "steps": [{"range": [0, 60], "color": "#fde2e1"},
                         {"range": [60, 80], "color": "#fef3c7"},
                         {"range": [80, 100], "color": "#dcfce7"}]},
        title={"text": "Cluster"}), row=1, col=1)
    if sections is not None and not sections.empty:
        s = sections.sort_values("score")
        hover = [f"{r.section}: {r.score:.0f}/100<br>ok {r.ok}, warn {r.warn}, "
                 f"error {r.error} of {r.total}" for r in s.itertuples()]
        fig.add_trace(go.Bar(
            x=s["score"], y=s["section"], orientation="h", name="section score",
            marker_color=[_grade_colour(v) for v in s["score"]],
            text=[f"{v:.0f}" for v in s["score"]], textposition="auto",
            hovertext=hover, hoverinfo="text", showlegend=False), row=1, col=2)
        fig.update_xaxes(range=[0, 100], title_text="score (100 × ok / total)", row=1, col=2)
    return _base(fig, title, 320)


def node_capacity(nodes: pd.DataFrame) -> go.Figure:
    """Requests as a share of allocatable CPU, memory and pod slots, per node."""
    title = "Node capacity: requests vs allocatable"
    if nodes is None or nodes.empty:
        return _empty(title, "No nodes in this source.")
    n = nodes.sort_values("name")
    pods_pct = 100 * n["pods"] / n["pods_allocatable"].where(n["pods_allocatable"] > 0)
    series = [
        ("CPU", n["cpu_pct"], [f"{a:.2f} of {b:.2f} cores" for a, b in
                               zip(n["cpu_requested"], n["cpu_allocatable"], strict=True)]),
        ("Memory", n["memory_pct"], [f"{_gib(a)} of {_gib(b)}" for a, b in
                                     zip(n["memory_requested"], n["memory_allocatable"],
                                         strict=True)]),
        ("Pods", pods_pct, [f"{a} of {b} pods" for a, b in
                            zip(n["pods"], n["pods_allocatable"], strict=True)]),
    ]
    fig = go.Figure()
    for (label, pct, detail), colour in zip(series, ["#2563eb", "#7c3aed", "#0891b2"],
                                            strict=True):
        fig.add_trace(go.Bar(
            x=n["name"], y=pct.fillna(0).round(1), name=label, marker_color=colour,
            text=[f"{v:.0f}%" for v in pct.fillna(0)], textposition="outside",
            customdata=detail, hovertemplate="%{x}<br>" + label
            + " requested: %{y}% (%{customdata})<extra></extra>"))
    top = max(110.0, float(pd.concat([s[1] for s in series]).max(skipna=True) or 0) + 15)
    fig.add_hline(y=100, line_dash="dash", line_color=ERROR,
                  annotation_text="allocatable", annotation_position="top left")
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="% of allocatable requested", range=[0, top])
    return _base(fig, title, 360)


def workload_readiness(workloads: pd.DataFrame, limit: int = 25) -> go.Figure:
    """Ready vs missing replicas per workload, unhealthy ones first."""
    title = "Workload readiness (ready vs desired replicas)"
    if workloads is None or workloads.empty:
        return _empty(title, "No workloads in scope.")
    w = workloads[~workloads["kind"].isin(["Job", "CronJob"]) & (workloads["desired"] > 0)]
    if w.empty:
        return _empty(title, "No workloads with desired replicas in scope.")
    w = w.assign(missing=(w["desired"] - w["ready"]).clip(lower=0),
                 label=w["namespace"] + "/" + w["name"])
    w = w.sort_values(["healthy", "missing", "label"], ascending=[True, False, True]).head(limit)
    w = w.iloc[::-1]  # horizontal bars draw bottom-up: put the worst on top
    fig = go.Figure()
    # ready replicas of a workload that is still unhealthy (a stuck rollout) in amber
    colours = [OK if bool(h) else WARN for h in w["healthy"]]
    fig.add_trace(go.Bar(y=w["label"], x=w["ready"], orientation="h", name="ready",
                         marker_color=colours, customdata=w[["kind", "condition"]],
                         hovertemplate="%{customdata[0]} %{y}<br>ready %{x}"
                         "<br>%{customdata[1]}<extra></extra>"))
    fig.add_trace(go.Bar(y=w["label"], x=w["missing"], orientation="h", name="not ready",
                         marker_color=ERROR, customdata=w["condition"],
                         hovertemplate="%{y}<br>not ready %{x}<br>%{customdata}"
                         "<extra></extra>"))
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title_text="replicas", dtick=1)
    return _base(fig, title, max(260, 60 + 26 * len(w)))


def restart_trend(trend: pd.DataFrame, window: str | None = None) -> go.Figure:
    """Container restarts per day and namespace (estimated from events)."""
    title = "Container restarts per day" + (f" (last {window})" if window else "")
    if trend is None or trend.empty:
        return _empty(title, "No restart events in the window.")
    t = trend.copy()
    t["day"] = pd.to_datetime(t["day"])
    fig = go.Figure()
    for i, (ns, g) in enumerate(t.groupby("namespace", sort=True)):
        g = g.sort_values("day")
        fig.add_trace(go.Scatter(x=g["day"], y=g["restarts"], mode="lines+markers",
                                 name=str(ns), line={"color": PALETTE[i % len(PALETTE)]},
                                 marker={"size": 8},
                                 hovertemplate="%{x|%Y-%m-%d}<br>" + str(ns)
                                 + ": %{y} restarts<extra></extra>"))
    fig.update_xaxes(title_text="day (UTC)", tickformat="%b %d", dtick=86400000)
    fig.update_yaxes(title_text="restarts", rangemode="tozero")
    return _base(fig, title, 320)


def warning_events(events: pd.DataFrame, limit: int = 15) -> go.Figure:
    """Warning events by reason (event counts), most frequent on top."""
    title = "Warning events by reason"
    if events is None or events.empty:
        return _empty(title, "No warning events in the window.")
    e = events.sort_values("events", ascending=False).head(limit).iloc[::-1]
    fig = go.Figure(go.Bar(
        y=e["reason"], x=e["events"], orientation="h", marker_color=WARN,
        text=e["events"], textposition="auto", customdata=e["objects"],
        hovertemplate="%{y}: %{x} events on %{customdata} objects<extra></extra>"))
    fig.update_xaxes(title_text="events")
    return _base(fig, title, max(240, 70 + 28 * len(e)))


def issues_by_section(issues: pd.DataFrame, sections: Sequence[str] | None = None) -> go.Figure:
    """Errors and warnings found, stacked per section."""
    title = "Problems found by section"
    if issues is None or issues.empty:
        return _empty(title, "No problems found.")
    counts = issues.groupby(["section", "severity"]).size().unstack(fill_value=0)
    order = [s for s in (sections or counts.index) if s in counts.index]
    counts = counts.reindex(order)
    fig = go.Figure()
    for sev, colour in (("error", ERROR), ("warn", WARN)):
        if sev in counts:
            fig.add_trace(go.Bar(x=counts.index, y=counts[sev], name=sev, marker_color=colour))
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="objects", dtick=1)
    return _base(fig, title, 300)


__all__ = [
    "CONFIG", "figure_html", "health_overview", "issues_by_section", "node_capacity",
    "plotlyjs_tag", "reset_plotlyjs", "restart_trend", "show", "warning_events",
    "workload_readiness",
]
