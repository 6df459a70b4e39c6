"""Recovery KPIs: MTTR (from approval and from failure start) and rollbacks."""

from __future__ import annotations

import pandas as pd

from aiops.kpis.inputs import KpiInputs


def _minutes(later: pd.Series, earlier: pd.Series) -> pd.Series:
    later, earlier = pd.to_datetime(later, utc=True), pd.to_datetime(earlier, utc=True)
    return ((later - earlier).dt.total_seconds() / 60).clip(lower=0)


def _recovered(inp: KpiInputs) -> pd.DataFrame:
    ch = inp.changes
    return ch[ch["recovered_at"].notna()].copy()


def mttr_items(inp: KpiInputs) -> pd.DataFrame:
    """MTTR from approval, one row per recovered change.

    value = (recovered_at - approved_at) in minutes. recovered_at is the first
    passing validation (data.passed true), else a completed rollback after a
    failed one; approved_at the approval that satisfied the tier (the proposal
    for trivial changes). time = recovered_at. Changes never recovered have no
    row (they are open, not fast or slow).
    """
    ch = _recovered(inp)
    ch = ch[ch["approved_at"].notna()]
    out = pd.DataFrame({"time": pd.to_datetime(ch["recovered_at"], utc=True),
                        "value": _minutes(ch["recovered_at"], ch["approved_at"]),
                        "id": ch["id"], "tier": ch["tier"], "rule": ch["rule"],
                        "recovered_by": ch["recovered_by"]})
    return out.reset_index(drop=True)


def mttr_failure_items(inp: KpiInputs) -> pd.DataFrame:
    """MTTR from failure start, one row per recovered change with a known failure
    start: value = (recovered_at - failure_start) in minutes."""
    ch = _recovered(inp)
    ch = ch[ch["failure_start"].notna()]
    out = pd.DataFrame({"time": pd.to_datetime(ch["recovered_at"], utc=True),
                        "value": _minutes(ch["recovered_at"], ch["failure_start"]),
                        "id": ch["id"], "tier": ch["tier"], "rule": ch["rule"],
                        "recovered_by": ch["recovered_by"]})
    return out.reset_index(drop=True)


def rollback_items(inp: KpiInputs) -> pd.DataFrame:
    """One row per `rollback` record: value = 1 when it completed (data.passed is
    not false), else 0; minutes = data.duration_s / 60, else the time from the
    step it follows (links.previous_step) to the rollback."""
    recs = inp.records
    times = dict(zip(recs["id"], recs["at"], strict=True))
    rows = []
    for r in recs[recs["type"] == "rollback"].itertuples(index=False):
        dur = r.data.get("duration_s")
        if isinstance(dur, int | float) and not isinstance(dur, bool):
            minutes = float(dur) / 60
        elif isinstance(r.previous_step, str) and r.previous_step in times:
            minutes = max((r.at - times[r.previous_step]).total_seconds() / 60, 0.0)
        else:
            minutes = float("nan")
        rows.append({"time": r.at, "value": 0.0 if r.data.get("passed") is False else 1.0,
                     "minutes": minutes, "id": r.id, "namespace": r.namespace,
                     "name": r.name})
    df = pd.DataFrame(rows, columns=["time", "value", "minutes", "id", "namespace", "name"])
    df["time"] = pd.to_datetime(df["time"], utc=True)
    return df.astype({"value": float, "minutes": float})


def rollback_time_items(inp: KpiInputs) -> pd.DataFrame:
    """Rollback time: the rollback rows with their minutes as the value."""
    df = rollback_items(inp)
    return df.assign(value=df["minutes"])
