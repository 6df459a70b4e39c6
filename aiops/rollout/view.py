"""What the rollout notebook shows, kept out of the notebook: the watch samples as
a frame (this run's and the earlier runs' recommendation PHRs), the readiness /
restarts chart, and the evidence table."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from aiops.approvals.phr import PhrStore
from aiops.rollout.decide import Decision
from aiops.rollout.watch import Sample

SAMPLE_COLUMNS = ["time", "side", "verdict", "ready_share", "restarts_per_pod",
                  "errors_per_pod"]
COLOURS = {"new": "#2563eb", "old": "#64748b", "baseline": "#64748b"}


def samples_frame(samples: Sequence[Sample], store: PhrStore | None = None,
                  namespace: str = "", name: str = "") -> pd.DataFrame:
    """One row per side and poll: from the store's earlier recommendations of this
    Deployment (their pre_metrics), then this run's samples."""
    rows = []
    if store is not None:
        for r in store.records(type="recommendation"):
            o = r.meta.object
            if o is None or (o.kind, o.namespace, o.name) != ("Deployment", namespace, name):
                continue
            verdict = ((r.meta.data.get("rollout_guard") or {}).get("verdict")) or ""
            for label in ("new", "old"):
                m = r.meta.pre_metrics.get(label) or {}
                rows.append(_row(r.meta.created_at, label, verdict, m))
    for s in samples:
        for label, m in (("new", s.new), ("old", s.old)):
            rows.append(_row(s.at, label, s.verdict, m))
    df = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    df["time"] = pd.to_datetime(df["time"], utc=True)
    return df.sort_values("time", kind="stable").reset_index(drop=True)


def _row(at: object, side: str, verdict: str, m: dict) -> dict:
    return {"time": at, "side": side, "verdict": verdict,
            "ready_share": m.get("ready_share"), "restarts_per_pod": m.get("restarts_per_pod"),
            "errors_per_pod": m.get("errors_per_pod")}


def samples_figure(df: pd.DataFrame, title: str) -> go.Figure:
    """Ready share and restarts per pod of both sides over the samples."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("ready share", "restarts per pod"))
    for side, part in df.groupby("side", sort=False):
        mode = "lines+markers" if len(part) > 1 else "markers"
        for col, key in ((1, "ready_share"), (2, "restarts_per_pod")):
            fig.add_trace(go.Scatter(x=part["time"], y=part[key], mode=mode, name=str(side),
                                     legendgroup=str(side), showlegend=col == 1,
                                     marker={"color": COLOURS.get(str(side), "#d97706"),
                                             "size": 9}), row=1, col=col)
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%", row=1, col=1)
    fig.update_layout(title=title, height=320, margin={"l": 40, "r": 20, "t": 60, "b": 40})
    return fig


def evidence_frame(d: Decision) -> pd.DataFrame:
    return pd.DataFrame([e.to_dict() for e in d.evidence],
                        columns=["source", "text", "ref", "time"])
