"""Presentation for the investigation notebook: finding cards, the timeline
chart, log excerpts and usage against limits. Escapes every cluster string."""

from __future__ import annotations

import json
from html import escape

import pandas as pd
import plotly.graph_objects as go

from aiops.diagnose.engine import Diagnosis
from aiops.reports.html import HTMLBlock
from aiops.reports.plots import ERROR, NEUTRAL, PALETTE, WARN

_SEV = {"critical": "error", "warning": "warn", "info": "ok"}


def finding_cards(diag: Diagnosis) -> HTMLBlock:
    """Each finding with its quoted evidence, remediation commands and Action."""
    if not diag.findings:
        return HTMLBlock('<p class="aiops-empty">No problems found for this target.</p>')
    parts = []
    for i, f in enumerate(diag.findings, 1):
        ev = "".join(
            f"<li><code>{escape(e.text)}</code> <small>({escape(e.source)}: "
            f"{escape(e.ref)})</small></li>" for e in f.evidence)
        cmds = escape("\n".join(f.remediation.commands))
        action = ""
        if a := f.remediation.action:
            action = (f"<p><b>Action</b> {escape(a.kind)} {escape(a.target['kind'])}/"
                      f"{escape(a.target['name'])}, tier <b>{escape(a.tier)}</b>: "
                      f"{escape(a.description)}</p>")
        seen = f.first_seen.strftime("%Y-%m-%d %H:%M UTC") if f.first_seen else "unknown"
        parts.append(
            f'<div class="aiops-finding"><h3>{i}. <span class="aiops-badge '
            f'{_SEV.get(f.severity, "ok")}">{escape(f.severity)}</span> '
            f"<code>{escape(f.rule)}</code> {escape(f.kind)} {escape(f.namespace)}/"
            f"{escape(f.name)}</h3><p><b>{escape(f.summary)}</b></p>"
            f"<p>Owner {escape(f.owner)} · confidence {f.confidence:.2f} · since {seen}</p>"
            f"<p>Evidence:</p><ul>{ev}</ul>"
            f"<p>Remediation: {escape(f.remediation.summary)}</p>"
            + (f"<pre>{cmds}</pre>" if cmds else "") + action
            + f'<p><a href="{escape(f.docs)}">{escape(f.docs)}</a></p></div>')
    return HTMLBlock("\n".join(parts))


def log_blocks(excerpts: list[dict]) -> HTMLBlock:
    if not excerpts:
        return HTMLBlock('<p class="aiops-empty">No log lines were quoted.</p>')
    return HTMLBlock("\n".join(
        f"<p><code>{escape(x['rule'])}</code>: {'previous' if x['previous'] else 'current'} "
        f"log of {escape(x['pod'])}/{escape(x['container'])}, line {x['line']}</p>"
        f"<pre>{escape(x['excerpt'])}</pre>" for x in excerpts))


def timeline_figure(tl: pd.DataFrame, title: str = "Timeline") -> go.Figure:
    """Events, starts and terminations on one time axis, one row per pod/container."""
    fig = go.Figure()
    if tl.empty:
        fig.add_annotation(text="No events or state changes recorded", showarrow=False)
    else:
        tl = tl.assign(row=tl["pod"] + tl["container"].map(lambda c: f" / {c}" if c else ""))
        colors = {"warning": WARN, "termination": ERROR, "event": PALETTE[0],
                  "lifecycle": NEUTRAL}
        for kind, g in tl.groupby("kind", sort=False):
            spans = g.dropna(subset=["end"])
            for r in spans.itertuples():  # an event repeated from first to last time
                fig.add_trace(go.Scatter(
                    x=[r.time, r.end], y=[r.row, r.row], mode="lines",
                    line={"color": colors.get(kind, NEUTRAL), "width": 6}, opacity=0.35,
                    hoverinfo="skip", showlegend=False))
            fig.add_trace(go.Scatter(
                x=g["time"], y=g["row"], mode="markers", name=kind,
                marker={"color": colors.get(kind, NEUTRAL), "size": 11,
                        "symbol": "x" if kind == "termination" else "circle"},
                customdata=g[["what", "detail"]].to_numpy(),
                hovertemplate="%{x}<br>%{customdata[0]}<br>%{customdata[1]}<extra></extra>"))
    fig.update_layout(title=title, height=max(260, 60 + 40 * tl["pod"].nunique() * 2)
                      if not tl.empty else 260, margin={"l": 10, "r": 10, "t": 50, "b": 40},
                      legend={"orientation": "h", "y": -0.2}, template="plotly_white")
    return fig


def usage_figure(usage: pd.DataFrame | None) -> go.Figure:
    """Usage history against request and limit, one panel per resource."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("CPU (cores)", "memory (MiB)"))
    if usage is None or usage.empty:
        fig.add_annotation(text="No usage history for this target", showarrow=False)
        fig.update_layout(height=300, template="plotly_white")
        return fig
    for row, res, scale in ((1, "cpu", 1.0), (2, "memory", 1 / 2**20)):
        u = usage[usage["resource"] == res]
        for i, ((pod, c), g) in enumerate(u.groupby(["pod", "container"])):
            color = PALETTE[i % len(PALETTE)]
            fig.add_trace(go.Scattergl(x=g["time"], y=g["value"] * scale, mode="lines",
                                       name=f"{pod}/{c} {res}", line={"color": color}),
                          row=row, col=1)
            for col, dash in (("request", "dot"), ("limit", "dash")):
                v = g[col].dropna()
                if not v.empty:
                    fig.add_hline(y=float(v.iloc[-1]) * scale, line_dash=dash,
                                  line_color=color, row=row, col=1,
                                  annotation_text=f"{col}", annotation_position="top left")
    fig.update_layout(height=560, template="plotly_white", showlegend=True,
                      legend={"orientation": "h", "y": -0.12},
                      margin={"l": 10, "r": 10, "t": 40, "b": 40})
    return fig


def actions_json(diag: Diagnosis) -> str:
    """The proposed Actions, ready for the approval step."""
    acts = [f.remediation.action.to_dict() | {"finding": f.rule, "object": f.object_ref}
            for f in diag.findings
            if f.remediation.action and f.remediation.action.kind != "manual"]
    return json.dumps(acts, indent=2)
