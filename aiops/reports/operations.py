"""Tables and figures of the operations (KPI) report and the health report's KPI
section. Presentation only: the numbers come from `aiops.kpis`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from aiops.kpis import KpiInputs, KpiReport, format_value
from aiops.kpis.approvals import compliance_items, latency_by_tier
from aiops.reports import plots
from aiops.reports.html import HTMLBlock, callout, table

# the KPIs the weekly health report summarises, in this order
HEALTH_KEYS = ("mttd", "mttr", "approval_sla", "compliance", "acceptance", "config_incidents",
               "savings_realised")


def kpi_table(rep: KpiReport, keys: tuple[str, ...] | None = None) -> pd.DataFrame:
    """One row per KPI: name, value as text, items counted, target, definition."""
    s = rep.summary if keys is None else rep.summary.set_index("key").loc[list(keys)] \
        .reset_index()
    target = [("" if pd.isna(t) else format_value(t, u)) for t, u in
              zip(s["target"], s["unit"], strict=True)]
    return pd.DataFrame({"KPI": s["kpi"], "value": s["text"], "counted": s["n"],
                         "target": target, "definition": s["definition"]})


def no_data_note(inp: KpiInputs) -> str:
    """Why there is nothing to show, in one sentence."""
    why = f" ({inp.problem})" if inp.problem else ""
    return ("No audit trail yet: no PHR records were found" + why + ". The KPIs appear "
            "once changes are proposed, approved and executed through the approval gate "
            "(`aiops phr list` shows the records).")


def facts(inp: KpiInputs, rep: KpiReport, source: str) -> list[str]:
    """What the page covers: the window, the audit trail, the cluster."""
    since = f"{rep.start:%Y-%m-%d %H:%M}" if rep.start is not None else "the first record"
    return [f"Window: {since} to {rep.end:%Y-%m-%d %H:%M} UTC (end excluded)",
            f"Audit trail: {inp.store or 'none'} ({len(inp.records)} records)",
            f"Cluster findings from: {source or 'none'} ({len(inp.finding_frame)} findings)"]


def trend_figure(rep: KpiReport, keys: list[str] | None = None, cols: int = 3) -> go.Figure:
    """Small multiples: each KPI's weekly value over the window (gaps: no data)."""
    t = rep.trends
    keys = keys or list(dict.fromkeys(t["key"]))
    if t.empty or t["value"].isna().all():
        return plots._empty("Weekly trends", "no data yet in this window")
    names = dict(zip(rep.summary["key"], rep.summary["kpi"], strict=True))
    units = dict(zip(rep.summary["key"], rep.summary["unit"], strict=True))
    rows = -(-len(keys) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[
        f"{names[k]} ({units[k]})" for k in keys], vertical_spacing=0.09,
        horizontal_spacing=0.07)
    for i, k in enumerate(keys):
        d = t[t["key"] == k]
        fig.add_trace(go.Scatter(
            x=d["week"].dt.strftime("%Y-%m-%d"), y=d["value"], mode="lines+markers",
            name=names[k], showlegend=False, connectgaps=False,
            line={"color": plots.PALETTE[i % len(plots.PALETTE)]},
            customdata=d["n"], hovertemplate="week of %{x}<br>%{y:.1f}<br>%{customdata} "
            "counted<extra></extra>"), row=i // cols + 1, col=i % cols + 1)
    fig = plots._base(fig, "Weekly trends (week starting Monday, UTC)", 190 * rows + 80)
    fig.update_annotations(font={"size": 11})
    fig.update_xaxes(type="category", tickfont={"size": 9})
    return fig


def tiers_table(inp: KpiInputs, rep: KpiReport) -> pd.DataFrame:
    """Approval latency per tier over the window (latency_by_tier, for people)."""
    return latency_by_tier(inp, rep.start, rep.end)


def compliance_gaps(inp: KpiInputs, rep: KpiReport) -> pd.DataFrame:
    """Executed medium/critical changes in the window whose chain is incomplete."""
    items = compliance_items(inp)
    t = items["time"]
    keep = (items["value"] == 0) & (t < rep.end) & ((t >= rep.start) if rep.start is not None
                                                    else True)
    return items[keep][["time", "tier", "title", "reason", "id"]]


def changes_in_window(inp: KpiInputs, rep: KpiReport) -> pd.DataFrame:
    """The changes proposed in the window, with their state and step times."""
    ch = inp.changes
    t = pd.to_datetime(ch["proposed_at"], utc=True)
    keep = t < rep.end
    if rep.start is not None:
        keep &= t >= rep.start
    out = ch[keep].copy()
    out["tier"] = [f"{t} (emergency)" if e else t for t, e in
                   zip(out["tier"], out["emergency"], strict=True)]
    out["object"] = out["kind"].fillna("") + "/" + out["name"].fillna("")
    return out[["proposed_at", "tier", "state", "object", "approved_at", "executed_at",
                "recovered_at", "monthly_savings_usd", "id"]]


def health_section(inp: KpiInputs, rep: KpiReport) -> HTMLBlock:
    """The health report's short KPI summary, or why there is none."""
    if inp.empty:
        return callout(no_data_note(inp), "info")
    return table(kpi_table(rep, HEALTH_KEYS), columns={
        "KPI": "KPI", "value": "value", "counted": "counted", "target": "target"})


def save_summary(rep: KpiReport, path: str | Path, extra: dict[str, Any] | None = None) -> None:
    """The KPI values as JSON next to the report (for the index and later runs)."""
    doc = {"kpis": rep.to_dict(), "window_start": rep.start.isoformat() if rep.start is not
           None else None, "window_end": rep.end.isoformat(), **(extra or {})}
    Path(path).write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
