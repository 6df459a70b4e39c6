"""The KPI registry, the window, the weekly trends and the one-call summary.

Every KPI is a function giving one row per item (`time`, `value`) plus how the
items aggregate; the summary and each week of the trend apply that same
aggregation to the items in their span, so a week's figure and the window's
figure can never disagree in definition. No items: the value is None and
reads "no data" (never NaN, never a division by zero).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from aiops.durations import parse_duration
from aiops.kpis import adoption, approvals, detection, recovery
from aiops.kpis.inputs import KpiInputs

NO_DATA = "no data"


@dataclass(frozen=True)
class KpiSpec:
    """One KPI: its items, how they aggregate, its unit and its exact definition."""

    key: str
    name: str
    unit: str  # min | % | count | USD/month
    agg: str  # mean | share | sum | count
    items: Callable[[KpiInputs], pd.DataFrame]
    definition: str
    target: float | None = None
    better: str = "lower"  # lower | higher: which way is good


KPIS: tuple[KpiSpec, ...] = (
    KpiSpec("mttd", "MTTD", "min", "mean", detection.mttd_items,
            "Mean over detection records of (detection time - failure start); failure start "
            "is the record's data.failure_start, else the first_seen of the matching finding."),
    KpiSpec("mttr", "MTTR (from approval)", "min", "mean", recovery.mttr_items,
            "Mean over recovered changes of (recovery - approval that satisfied the tier); "
            "recovery = first passing validation, else a completed rollback."),
    KpiSpec("mttr_failure", "MTTR (from failure start)", "min", "mean",
            recovery.mttr_failure_items,
            "Mean over recovered changes with a known failure start of (recovery - failure "
            "start)."),
    KpiSpec("approval_latency", "Approval latency (mean)", "min", "mean",
            approvals.latency_minutes_items,
            "Mean over changes approved by people of (approval that satisfied the tier - "
            "proposal); per tier in the table below."),
    KpiSpec("approval_sla", "Approvals within SLA", "%", "share",
            lambda i: approvals.latency_items(i, emergency=False),
            "Share of approved non-emergency changes whose approval latency was within their "
            "tier's SLA (low 5 min, medium 30 min, critical 120 min by default).",
            target=100, better="higher"),
    KpiSpec("approval_sla_emergency", "Emergency approvals within SLA", "%", "share",
            lambda i: approvals.latency_items(i, emergency=True),
            "Share of approved emergency proposals approved within the emergency SLA "
            "(5 min by default).", target=100, better="higher"),
    KpiSpec("compliance", "PHR compliance", "%", "share", approvals.compliance_items,
            "Share of executed medium/critical changes with a complete chain: proposal, "
            "approvals satisfying the tier (Change.missing empty) before the execution, "
            "execution, validation. An execution with no proposal counts as incomplete.",
            target=100, better="higher"),
    KpiSpec("rollback_success", "Rollback success", "%", "share", recovery.rollback_items,
            "Share of rollback records that completed (data.passed not false).",
            target=100, better="higher"),
    KpiSpec("rollback_time", "Rollback time (mean)", "min", "mean",
            recovery.rollback_time_items,
            "Mean rollback duration: data.duration_s, else the time from the step the "
            "rollback follows."),
    KpiSpec("acceptance", "Recommendation acceptance", "%", "share",
            adoption.acceptance_items,
            "Share of recommendation records followed (links.previous_step) by a proposal "
            "that was executed. Target: at least 80 % actionable.", target=80,
            better="higher"),
    KpiSpec("config_incidents", "Configuration incidents", "count", "count",
            detection.config_incident_items,
            "Detections (and current findings not yet detected) of rule missing-configmap, "
            "missing-secret or missing-config-key."),
    KpiSpec("config_mttr", "MTTR of configuration incidents", "min", "mean",
            detection.config_mttr_items,
            "MTTR (from approval) of the changes whose detection is a configuration rule."),
    KpiSpec("toil", "Automated steps (toil reduction)", "%", "share", adoption.toil_items,
            "Share of operational steps (detection, recommendation, proposal, execution, "
            "validation, rollback, expiry) done by automation (data.automated, else actor "
            "aiops) rather than by people.", better="higher"),
    KpiSpec("savings_realised", "Cost savings realised", "USD/month", "sum",
            adoption.savings_items,
            "Sum of data.monthly_savings_usd of changes validated and not rolled back.",
            better="higher"),
    KpiSpec("savings_proposed", "Cost savings proposed", "USD/month", "sum",
            lambda i: adoption.savings_items(i, realised=False),
            "Sum of data.monthly_savings_usd of every proposal (or its recommendation).",
            better="higher"),
)
BY_KEY = {k.key: k for k in KPIS}


def aggregate(items: pd.DataFrame, agg: str, counted: bool = True
              ) -> tuple[float | None, int]:
    """(value, n) of items; value None when there is nothing to aggregate.

    A count is 0 when nothing happened, but None ("no data") when there was
    nothing to count from (`counted` false: no records and no findings).
    """
    if agg == "count":
        n = len(items)
        return (float(n) if counted else None), n
    vals = pd.to_numeric(items["value"], errors="coerce").dropna() if len(items) else \
        pd.Series(dtype=float)
    n = len(vals)
    if n == 0:
        return None, 0
    if agg == "mean":
        return float(vals.mean()), n
    if agg == "share":
        return float(100 * vals.mean()), n
    if agg == "sum":
        return float(vals.sum()), n
    raise ValueError(f"unknown aggregation {agg!r}")


def in_window(items: pd.DataFrame, start: pd.Timestamp | None,
              end: pd.Timestamp | None) -> pd.DataFrame:
    t = pd.to_datetime(items["time"], utc=True)
    keep = t.notna()
    if start is not None:
        keep &= t >= start
    if end is not None:
        keep &= t < end
    return items[keep]


def window_bounds(window: str | None, end: datetime | str | None = None
                  ) -> tuple[pd.Timestamp | None, pd.Timestamp]:
    """[start, end): `end` (a time, or a YYYY-MM-DD day meaning its end) or now,
    and `window` (e.g. 28d) before it; no window = all history."""
    if end is None or end == "":
        stop = pd.Timestamp.now(tz="UTC")
    elif isinstance(end, str) and len(end) == 10:
        stop = pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)
    else:
        stop = pd.Timestamp(end)
        stop = stop.tz_localize("UTC") if stop.tzinfo is None else stop.tz_convert("UTC")
    start = stop - parse_duration(window, "KPI window") if window else None
    return start, stop


def format_value(value: float | None, unit: str) -> str:
    """A KPI value for people: '12.5 min', '83%', '3', '$1,234/month' or 'no data'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NO_DATA
    if unit == "min":
        if value >= 120:
            return f"{value / 60:,.1f} h"
        return f"{value:,.1f} min"
    if unit == "%":
        return f"{value:,.0f}%"
    if unit == "count":
        return f"{value:,.0f}"
    if unit == "USD/month":
        return f"${value:,.2f}/month"
    return f"{value:,.2f} {unit}"


@dataclass
class KpiReport:
    """What `kpis` computed: the summary table, weekly trends and the item rows."""

    start: pd.Timestamp | None
    end: pd.Timestamp
    summary: pd.DataFrame
    trends: pd.DataFrame
    items: dict[str, pd.DataFrame] = field(default_factory=dict)
    problem: str = ""

    @property
    def has_data(self) -> bool:
        return bool(self.summary["n"].sum())

    def value(self, key: str) -> float | None:
        row = self.summary[self.summary["key"] == key]
        v = row["value"].iloc[0] if len(row) else None
        return None if v is None or pd.isna(v) else float(v)

    def to_dict(self) -> dict[str, Any]:
        """Plain values by key (None = no data), for summaries and JSON."""
        return {r.key: {"value": None if pd.isna(r.value) else r.value, "n": int(r.n),
                        "unit": r.unit, "text": r.text}
                for r in self.summary.itertuples(index=False)}


def weeks(start: pd.Timestamp | None, end: pd.Timestamp, items: list[pd.DataFrame]
          ) -> list[pd.Timestamp]:
    """Monday 00:00 UTC of every week from start (or the first item) to end."""
    if start is None:
        times = [pd.to_datetime(i["time"], utc=True).min() for i in items if len(i)]
        times = [t for t in times if pd.notna(t)]
        if not times:
            return []
        start = min(times)
    first = (start.normalize() - pd.Timedelta(days=start.weekday()))
    out = []
    w = first
    while w < end:
        out.append(w)
        w += pd.Timedelta(days=7)
    return out


def week_of(times: pd.Series) -> pd.Series:
    """Monday 00:00 UTC of each time's week."""
    t = pd.to_datetime(times, utc=True)
    return t.dt.normalize() - pd.to_timedelta(t.dt.day_of_week, unit="D")


def kpis(inp: KpiInputs, window: str | None = "28d", end: datetime | str | None = None,
         keys: list[str] | None = None) -> KpiReport:
    """Every KPI over [end - window, end), with a weekly trend of each.

    summary columns: key, kpi, value (None: no data), text, n (items counted),
    unit, target, definition. trends columns: week (Monday), key, kpi, value, n
    (value None when the week had no items).
    """
    start, stop = window_bounds(window, end)
    specs = [BY_KEY[k] for k in keys] if keys else list(KPIS)
    items = {s.key: in_window(s.items(inp), start, stop) for s in specs}
    rows, trend = [], []
    spans = weeks(start, stop, list(items.values()))
    counted = not inp.empty or not inp.finding_frame.empty
    for s in specs:
        value, n = aggregate(items[s.key], s.agg, counted)
        rows.append({"key": s.key, "kpi": s.name, "value": value,
                     "text": format_value(value, s.unit), "n": n, "unit": s.unit,
                     "target": s.target, "definition": s.definition})
        its = items[s.key]
        by_week = dict(tuple(its.groupby(week_of(its["time"])))) if len(its) else {}
        for w in spans:
            wv, wn = aggregate(by_week.get(w, its.iloc[0:0]), s.agg, counted)
            trend.append({"week": w, "key": s.key, "kpi": s.name, "value": wv, "n": wn,
                          "unit": s.unit})
    summary = pd.DataFrame(rows, columns=["key", "kpi", "value", "text", "n", "unit", "target",
                                          "definition"])
    trends = pd.DataFrame(trend, columns=["week", "key", "kpi", "value", "n", "unit"])
    return KpiReport(start, stop, summary, trends, items, inp.problem)
