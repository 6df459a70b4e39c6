"""Governance KPIs: approval latency against the tier's SLA, and PHR compliance."""

from __future__ import annotations

import pandas as pd

from aiops.kpis.inputs import KpiInputs

GOVERNED_TIERS = ("medium", "critical")


def _sla_minutes(inp: KpiInputs, tier: str, emergency: bool) -> float:
    gov = inp.governance
    if emergency:
        return gov.emergency_sla.total_seconds() / 60
    policy = gov.tiers.get(tier)
    return policy.sla.total_seconds() / 60 if policy and policy.sla else float("nan")


def latency_items(inp: KpiInputs, emergency: bool | None = None) -> pd.DataFrame:
    """Approval latency, one row per change approved by people.

    minutes = approved_at - proposed_at, where approved_at is the approval that
    satisfied the tier (`Change.missing` empty); sla = the tier's SLA, or the
    emergency SLA for an emergency proposal. value = 1 when minutes <= sla, else
    0. Tiers needing no approval, and changes rejected or never approved, have
    no row. `emergency` True/False keeps only those; None keeps both. time =
    proposed_at.
    """
    ch = inp.changes
    ch = ch[ch["approved_at"].notna() & (ch["approvals"] > 0)]
    if emergency is not None:
        ch = ch[ch["emergency"].astype(bool) == emergency]
    minutes = ((pd.to_datetime(ch["approved_at"], utc=True)
                - pd.to_datetime(ch["proposed_at"], utc=True)).dt.total_seconds() / 60)
    sla = [_sla_minutes(inp, t, bool(e)) for t, e in zip(ch["tier"], ch["emergency"],
                                                        strict=True)]
    out = pd.DataFrame({"time": pd.to_datetime(ch["proposed_at"], utc=True),
                        "minutes": minutes.clip(lower=0), "sla": sla, "id": ch["id"],
                        "tier": ch["tier"], "emergency": ch["emergency"].astype(bool)})
    out["value"] = (out["minutes"] <= out["sla"]).astype(float)
    out.loc[out["sla"].isna(), "value"] = float("nan")  # no SLA: nothing to meet
    return out.reset_index(drop=True)


def latency_minutes_items(inp: KpiInputs) -> pd.DataFrame:
    """Approval latency in minutes as the value (every tier, emergencies included)."""
    df = latency_items(inp)
    return df.assign(value=df["minutes"])


def latency_by_tier(inp: KpiInputs, start: pd.Timestamp | None = None,
                    end: pd.Timestamp | None = None) -> pd.DataFrame:
    """Per tier (emergencies as their own row): SLA, approved, median and max
    latency, share within SLA, and how many proposals were rejected, expired or
    are still waiting. Rows only for tiers that had proposals."""
    ch = inp.changes
    if start is not None:
        ch = ch[pd.to_datetime(ch["proposed_at"], utc=True) >= start]
    if end is not None:
        ch = ch[pd.to_datetime(ch["proposed_at"], utc=True) < end]
    lat = latency_items(inp)
    lat = lat[lat["id"].isin(ch["id"])]
    rows = []
    groups = [(t, False) for t in ("trivial", "low", "medium", "critical")] + [(None, True)]
    for tier, emergency in groups:
        sel = ch[ch["emergency"].astype(bool)] if emergency else \
            ch[(ch["tier"] == tier) & ~ch["emergency"].astype(bool)]
        if sel.empty:
            continue
        got = lat[lat["id"].isin(sel["id"])]
        sla = _sla_minutes(inp, tier or "", emergency)
        rows.append({
            "tier": "emergency" if emergency else tier, "sla_minutes": sla,
            "proposals": len(sel), "approved": len(got),
            "median_minutes": got["minutes"].median() if len(got) else float("nan"),
            "max_minutes": got["minutes"].max() if len(got) else float("nan"),
            "within_sla_pct": 100 * got["value"].mean() if got["value"].notna().any()
            else float("nan"),
            "rejected": int(sel["rejected_at"].notna().sum()),
            "expired": int(sel["expired_at"].notna().sum()),
            "waiting": int((sel["state"] == "proposed").sum())})
    return pd.DataFrame(rows, columns=[
        "tier", "sla_minutes", "proposals", "approved", "median_minutes", "max_minutes",
        "within_sla_pct", "rejected", "expired", "waiting"])


def compliance_items(inp: KpiInputs) -> pd.DataFrame:
    """PHR compliance, one row per executed medium or critical change.

    value = 1 when the chain is complete: approvals that satisfy the tier
    (`Change.missing` empty) recorded before the execution, the execution, and
    a validation after it; else 0 with the reason. An execution record of a
    medium/critical tier that leads back to no proposal counts as a change with
    no chain at all. Proposals never executed (rejected, expired, waiting) are
    not in the denominator: nothing ran. time = executed_at.
    """
    ch = inp.changes
    ch = ch[ch["tier"].isin(GOVERNED_TIERS) & ch["executed_at"].notna()]
    rows = []
    for r in ch.itertuples(index=False):
        reasons = []
        if pd.isna(r.approval_seq) or r.approval_seq > r.execution_seq:
            reasons.append("approvals incomplete before execution"
                           + (f" (missing {r.missing})" if r.missing else ""))
        if pd.isna(r.validated_at):
            reasons.append("no validation recorded")
        rows.append({"time": r.executed_at, "value": 0.0 if reasons else 1.0, "id": r.id,
                     "tier": r.tier, "title": r.title, "reason": "; ".join(reasons)})
    recs = inp.records
    owned = _owned_ids(inp)
    orphans = recs[(recs["type"] == "execution") & recs["tier"].isin(GOVERNED_TIERS)
                   & ~recs["id"].isin(owned)]
    for r in orphans.itertuples(index=False):
        rows.append({"time": r.at, "value": 0.0, "id": r.id, "tier": r.tier, "title": r.title,
                     "reason": "execution without a proposal"})
    df = pd.DataFrame(rows, columns=["time", "value", "id", "tier", "title", "reason"])
    df["time"] = pd.to_datetime(df["time"], utc=True)
    return df.astype({"value": float}).sort_values("time").reset_index(drop=True)


def _owned_ids(inp: KpiInputs) -> set[str]:
    from aiops.kpis.timeline import fold

    _, owner = fold(inp.records)
    return set(owner)
