"""Value KPIs: recommendation acceptance, toil reduction and cost savings realised."""

from __future__ import annotations

import pandas as pd

from aiops.kpis.inputs import KpiInputs

# steps of running operations; approvals, rejections, refusals, reports and
# corrections are people's decisions or bookkeeping by design, not toil
OPERATIONAL_STEPS = ("detection", "recommendation", "proposal", "execution", "validation",
                     "rollback", "expiry")


def acceptance_items(inp: KpiInputs) -> pd.DataFrame:
    """Recommendation acceptance, one row per `recommendation` record.

    value = 1 when a proposal descends from it (links.previous_step, directly or
    through other records) and that change was executed; else 0. time = the
    recommendation's event time.
    """
    recs = inp.records
    rec = recs[recs["type"] == "recommendation"]
    ch = inp.changes
    executed = set(ch.loc[ch["executed_at"].notna(), "recommendation_id"].dropna())
    proposed = set(ch["recommendation_id"].dropna())
    df = pd.DataFrame({"time": rec["at"], "id": rec["id"], "title": rec["title"],
                       "proposed": rec["id"].isin(proposed),
                       "value": rec["id"].isin(executed).astype(float)})
    return df.reset_index(drop=True)


def toil_items(inp: KpiInputs) -> pd.DataFrame:
    """Toil reduction, one row per operational step (detection, recommendation,
    proposal, execution, validation, rollback, expiry): value = 1 when automated
    (data.automated, else the actor is aiops), 0 when done by a person."""
    recs = inp.records
    steps = recs[recs["type"].isin(OPERATIONAL_STEPS)]
    return pd.DataFrame({"time": steps["at"], "id": steps["id"], "type": steps["type"],
                         "actor": steps["actor_email"],
                         "value": steps["automated"].astype(float)}).reset_index(drop=True)


def savings_items(inp: KpiInputs, realised: bool = True) -> pd.DataFrame:
    """Monthly savings (USD) of changes that carry data.monthly_savings_usd (on the
    proposal, else on its recommendation).

    realised: only changes validated (a passing validation) and not rolled back,
    timed at the validation; else every proposal, timed at the proposal.
    value = the monthly saving.
    """
    ch = inp.changes
    ch = ch[ch["monthly_savings_usd"].notna()]
    if realised:
        ch = ch[(ch["validation_passed"] == True) & ch["rollback_at"].isna()]  # noqa: E712
        time = ch["validated_at"]
    else:
        time = ch["proposed_at"]
    return pd.DataFrame({"time": pd.to_datetime(time, utc=True), "id": ch["id"],
                         "title": ch["title"],
                         "value": ch["monthly_savings_usd"].astype(float)}).reset_index(drop=True)
