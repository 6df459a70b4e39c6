"""Detection KPIs: MTTD and configuration-related incidents.

Each function returns one row per item with `time` (when it counts, for the
window and the weekly trend) and `value`; `aiops.kpis.summary` aggregates.
"""

from __future__ import annotations

import pandas as pd

from aiops.kpis.inputs import KpiInputs
from aiops.kpis.recovery import mttr_items
from aiops.kpis.timeline import CONFIG_RULES, failure_start

ITEM_COLUMNS = ["time", "value", "id", "rule", "namespace", "name", "failure_start"]


def mttd_items(inp: KpiInputs) -> pd.DataFrame:
    """MTTD, one row per `detection` record.

    value = (detection time - failure start) in minutes, where detection time is
    the record's event time and failure start its data.failure_start, else the
    first_seen of the matching finding. NaN when neither is known (not averaged);
    negative gaps (clock skew) are clipped to 0. Failures already present when a
    watcher started (data.at_start) measure the watcher's downtime, not detection:
    they are left out.
    """
    det = inp.records[inp.records["type"] == "detection"]
    rows = []
    for r in det.itertuples(index=False):
        if isinstance(r.data, dict) and r.data.get("at_start"):
            continue
        start = failure_start(r, inp.finding_frame)
        gap = (r.at - start).total_seconds() / 60 if start is not None else float("nan")
        rows.append({"time": r.at, "value": max(gap, 0.0) if gap == gap else gap, "id": r.id,
                     "rule": r.data.get("rule"), "namespace": r.namespace, "name": r.name,
                     "failure_start": start})
    return _frame(rows)


def config_incident_items(inp: KpiInputs) -> pd.DataFrame:
    """Configuration-related incidents: one row per detection whose data.rule is
    missing-configmap, missing-secret or missing-config-key, plus each such
    current finding of the cluster no detection covers yet (same rule and
    namespace, the object or its owner, detected at or after the finding's
    first_seen: an older detection was an earlier occurrence), timed at its
    first_seen. value = 1 (the KPI is the count)."""
    rows = []
    det = inp.records[inp.records["type"] == "detection"]
    detected = []
    for r in det.itertuples(index=False):
        rule = r.data.get("rule")
        if rule in CONFIG_RULES:
            detected.append((rule, r.namespace or "", r.name or "", r.at))
            rows.append({"time": r.at, "value": 1.0, "id": r.id, "rule": rule,
                         "namespace": r.namespace, "name": r.name,
                         "failure_start": failure_start(r, inp.finding_frame)})
    f = inp.finding_frame
    for r in f[f["rule"].isin(CONFIG_RULES)].itertuples(index=False):
        names = {r.name or "", str(r.owner or "").rsplit("/", 1)[-1]}
        covered = any(rule == r.rule and ns == (r.namespace or "") and name in names
                      and (pd.isna(r.first_seen) or at >= r.first_seen)
                      for rule, ns, name, at in detected)
        if not covered:
            rows.append({"time": r.first_seen, "value": 1.0, "id": None, "rule": r.rule,
                         "namespace": r.namespace, "name": r.name,
                         "failure_start": r.first_seen})
    return _frame(rows)


def config_mttr_items(inp: KpiInputs) -> pd.DataFrame:
    """MTTR (approval to recovery, minutes) of the changes whose lineage (or own
    data.rule) is a configuration rule."""
    items = mttr_items(inp)
    return items[items["rule"].isin(CONFIG_RULES)].reset_index(drop=True)


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=ITEM_COLUMNS)
    df["time"] = pd.to_datetime(df["time"], utc=True)
    df["value"] = df["value"].astype(float)
    return df
