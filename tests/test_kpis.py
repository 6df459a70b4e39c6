"""Each KPI on hand-built PHR frames with known answers, empty inputs and edge cases.

The frames have the columns of `PhrStore.frame()`; ids are real time-sortable
ids, so the changes are folded exactly as from a store.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from aiops.approvals.phr import FRAME_COLUMNS
from aiops.approvals.phr_ids import new_id
from aiops.kpis import KPIS, NO_DATA, KpiInputs, format_value, kpis
from aiops.kpis.approvals import compliance_items, latency_by_tier, latency_items
from aiops.kpis.recovery import rollback_items
from aiops.kpis.summary import window_bounds

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
AIOPS = ("aiops", "aiops@localhost")
BOB = ("Bob Operator", "bob@example.com")
ALICE = ("Alice Approver", "alice@example.com")
SAM = ("Sam Security", "sam@example.com")
HASH = "sha256:" + "ab" * 32


class History:
    """Builds a PHR frame step by step: `add` returns the new record's id."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.last: str | None = None

    def add(self, type: str, minute: float, actor: tuple[str, str] = AIOPS, *,
            after: str | None = None, tier: str | None = None, name: str = "todo-worker",
            occurred: bool = True, **data: Any) -> str:
        at = T0 + timedelta(minutes=minute)
        rid = new_id(int(at.timestamp() * 1000), after=self.last)
        self.last = rid
        if occurred:
            data = {"occurred_at": at.isoformat(), **data}
        self.rows.append({
            "seq": len(self.rows) + 1, "id": rid, "type": type,
            "created_at": at + timedelta(days=0 if not occurred else 90), "actor_name": actor[0],
            "actor_email": actor[1], "title": f"{type} {minute}", "tier": tier,
            "action_hash": HASH if tier else None, "api_version": "apps/v1",
            "kind": "Deployment", "namespace": "todo", "name": name, "previous_step": after,
            "corrects": None, "pre_metrics": {}, "post_metrics": {}, "data": data,
            "prev_hash": None, "hash": "", "path": ""})
        return rid

    def approve(self, minute: float, after: str, who: tuple[str, str] = ALICE,
                tier: str = "medium", roles: tuple[str, ...] = ("approver",)) -> str:
        return self.add("approval", minute, who, after=after, tier=tier, roles=list(roles))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=list(FRAME_COLUMNS))

    def inputs(self, findings: pd.DataFrame | None = None) -> KpiInputs:
        return KpiInputs(self.frame(), findings)


def report(h: History, findings: pd.DataFrame | None = None, window: str | None = None):
    return kpis(h.inputs(findings), window=window, end=T0 + timedelta(days=60))


def simple_change(h: History, start: float, *, tier: str = "medium", approve_after: float = 10,
                  validate: bool | None = True, after: str | None = None,
                  **proposal_data: Any) -> str:
    """proposal -> approval -> execution -> validation; returns the proposal id."""
    p = h.add("proposal", start, BOB, tier=tier, after=after, **proposal_data)
    a = h.approve(start + approve_after, p, tier=tier)
    x = h.add("execution", start + approve_after + 2, after=a, tier=tier, phase="done")
    if validate is not None:
        h.add("validation", start + approve_after + 10, after=x, tier=tier, passed=validate)
    return p


# -- empty inputs -----------------------------------------------------------------

@pytest.mark.parametrize("phr", [None, pd.DataFrame(columns=list(FRAME_COLUMNS))])
def test_no_records_is_no_data_everywhere(phr):
    rep = kpis(KpiInputs(phr), window="28d", end="2026-03-31")
    assert not rep.has_data
    assert set(rep.summary["text"]) == {NO_DATA}
    assert rep.summary["value"].isna().all() and (rep.summary["n"] == 0).all()
    assert len(rep.trends) == len(KPIS) * 5  # the window's weeks, each without a value
    assert rep.trends["value"].isna().all()
    assert all(v["value"] is None for v in rep.to_dict().values())


def test_records_without_the_kpis_items_are_no_data_not_zero():
    h = History()
    h.add("report", 0, BOB)
    rep = report(h)
    assert rep.value("mttd") is None and rep.value("acceptance") is None
    assert rep.value("config_incidents") == 0  # counted from records: none happened
    assert rep.value("compliance") is None  # nothing executed: no denominator


# -- MTTD ---------------------------------------------------------------------------

def test_mttd_from_failure_start_or_the_findings_first_seen():
    h = History()
    h.add("detection", 10, rule="oom-killed", failure_start=T0.isoformat())
    h.add("detection", 100, rule="crash-loop", name="todo-chatbot")  # from the finding
    h.add("detection", 200, rule="dns-failure", name="todo-dns")  # no start anywhere
    findings = pd.DataFrame([{
        "rule": "crash-loop", "severity": "critical", "namespace": "todo", "kind": "Pod",
        "name": "todo-chatbot-5d9f-abc", "owner": "Deployment/todo-chatbot",
        "first_seen": T0 + timedelta(minutes=70)}])
    # a failure already there when the watcher started measures its downtime: left out
    h.add("detection", 300, rule="oom-killed", failure_start=T0.isoformat(), at_start=True)
    rep = report(h, findings)
    assert rep.value("mttd") == pytest.approx((10 + 30) / 2)
    assert rep.summary.set_index("key").loc["mttd", "n"] == 2


# -- approvals --------------------------------------------------------------------------

def test_approval_latency_against_the_tier_sla_and_emergencies_apart():
    h = History()
    simple_change(h, 0, approve_after=20)  # medium, within 30 min
    simple_change(h, 100, approve_after=45)  # medium, past the SLA
    low = h.add("proposal", 200, BOB, tier="low")
    h.approve(206, low, who=BOB, tier="low")  # low: self-approval allowed, 6 > 5 min
    crit = h.add("proposal", 300, BOB, tier="critical", emergency=True)
    h.approve(302, crit, tier="critical")
    h.approve(304, crit, who=SAM, tier="critical", roles=("approver", "security"))
    lonely = h.add("proposal", 400, BOB, tier="critical")
    h.approve(410, lonely, tier="critical")  # no security approver: never approved
    rep = report(h)
    assert rep.value("approval_sla") == pytest.approx(100 / 3)
    assert rep.value("approval_sla_emergency") == 100
    assert rep.value("approval_latency") == pytest.approx((20 + 45 + 6 + 4) / 4)
    tiers = latency_by_tier(h.inputs()).set_index("tier")
    assert tiers.loc["medium", "within_sla_pct"] == 50
    assert tiers.loc["medium", "median_minutes"] == pytest.approx(32.5)
    assert tiers.loc["critical", "approved"] == 0 and tiers.loc["critical", "waiting"] == 1
    assert tiers.loc["emergency", "sla_minutes"] == 5
    assert tiers.loc["emergency", "max_minutes"] == 4


def test_a_second_approval_by_the_same_person_does_not_complete_a_critical_change():
    h = History()
    p = h.add("proposal", 0, BOB, tier="critical")
    h.approve(5, p, who=SAM, tier="critical", roles=("approver", "security"))
    h.approve(6, p, who=SAM, tier="critical", roles=("approver", "security"))
    assert latency_items(h.inputs()).empty
    h.approve(50, p, tier="critical")
    lat = latency_items(h.inputs())
    assert lat["minutes"].tolist() == [50]


def test_rejected_change_is_not_approved_even_if_approved_later():
    h = History()
    p = h.add("proposal", 0, BOB, tier="medium")
    h.add("rejection", 5, ALICE, after=p, tier="medium")
    h.approve(10, p)
    assert latency_items(h.inputs()).empty


# -- compliance -------------------------------------------------------------------------

def test_compliance_needs_approvals_before_execution_and_a_validation():
    h = History()
    simple_change(h, 0)  # complete
    simple_change(h, 100, validate=None)  # no validation
    p = h.add("proposal", 200, BOB, tier="critical")
    x = h.add("execution", 205, after=p, tier="critical")  # ran without approvals
    h.add("validation", 210, after=x, tier="critical", passed=True)
    h.add("execution", 300, tier="medium")  # no proposal at all
    simple_change(h, 400, tier="low")  # low: not governed by this KPI
    rejected = h.add("proposal", 500, BOB, tier="medium")
    h.add("rejection", 510, ALICE, after=rejected, tier="medium")
    items = compliance_items(h.inputs())
    assert items["value"].tolist() == [1, 0, 0, 0]
    reasons = items["reason"].tolist()
    assert reasons[1] == "no validation recorded"
    assert reasons[2].startswith("approvals incomplete before execution (missing 2 more")
    assert reasons[3] == "execution without a proposal"
    assert report(h).value("compliance") == 25


def test_approval_recorded_after_the_execution_does_not_make_it_compliant():
    h = History()
    p = h.add("proposal", 0, BOB, tier="medium")
    x = h.add("execution", 5, after=p, tier="medium")
    a = h.approve(10, x)
    h.add("validation", 15, after=a, tier="medium", passed=True)
    assert compliance_items(h.inputs())["value"].tolist() == [0]


# -- MTTR and rollbacks -----------------------------------------------------------------

def test_mttr_from_approval_and_from_failure_start():
    h = History()
    d = h.add("detection", 0, rule="oom-killed", failure_start=T0.isoformat())
    r = h.add("recommendation", 1, after=d)
    simple_change(h, 5, after=r)  # approved at 15, validated at 25
    p = simple_change(h, 100, validate=False)  # approved 110, failed at 120
    v = h.rows[-1]["id"]
    h.add("rollback", 124, after=v, tier="medium", passed=True, duration_s=90)
    simple_change(h, 200, validate=False)  # failed, never rolled back: open
    rep = report(h)
    assert rep.value("mttr") == pytest.approx((10 + 14) / 2)
    assert rep.value("mttr_failure") == 25  # only the change with a known start
    ch = h.inputs().changes.set_index("id")
    assert ch.loc[p, "recovered_by"] == "rollback"
    assert ch.loc[p, "state"] == "rolled-back"


def test_rollback_success_and_time():
    h = History()
    p = simple_change(h, 0, validate=False)
    h.add("rollback", 25, after=h.rows[-1]["id"], passed=True, duration_s=120)
    simple_change(h, 100, validate=False)
    h.add("rollback", 130, after=h.rows[-1]["id"], passed=False)  # 10 min after the failure
    items = rollback_items(h.inputs())
    assert items["value"].tolist() == [1, 0]
    assert items["minutes"].tolist() == [2, 10]
    rep = report(h)
    assert rep.value("rollback_success") == 50 and rep.value("rollback_time") == 6
    assert h.inputs().changes.set_index("id").loc[p, "recovered_by"] == "rollback"


# -- adoption, config, toil, savings ----------------------------------------------------

def test_recommendation_acceptance_counts_only_executed_proposals():
    h = History()
    done = h.add("recommendation", 0)
    simple_change(h, 5, after=done)
    waiting = h.add("recommendation", 50)
    h.add("proposal", 55, BOB, tier="medium", after=waiting)
    h.add("recommendation", 100)  # never proposed
    assert report(h).value("acceptance") == pytest.approx(100 / 3)


def test_configuration_incidents_and_their_mttr():
    h = History()
    for i, rule in enumerate(("missing-configmap", "missing-secret", "oom-killed")):
        d = h.add("detection", 100 * i, rule=rule, name=f"app-{i}",
                  failure_start=(T0 + timedelta(minutes=100 * i)).isoformat())
        simple_change(h, 100 * i + 5, after=d, approve_after=10 + i)
    findings = pd.DataFrame([
        {"rule": "missing-configmap", "namespace": "todo", "kind": "Pod", "name": "app-0-5d9",
         "owner": "Deployment/app-0", "first_seen": T0},  # already detected, by its owner
        {"rule": "missing-config-key", "namespace": "shop", "kind": "Pod", "name": "ads",
         "owner": "Deployment/ads", "first_seen": T0 + timedelta(hours=3)},
        {"rule": "missing-configmap", "namespace": "todo", "kind": "Pod", "name": "app-0-7a1",
         "owner": "Deployment/app-0", "first_seen": T0 + timedelta(days=2)}])  # recurred
    rep = report(h, findings)
    assert rep.value("config_incidents") == 4
    assert rep.value("config_mttr") == 10  # approval -> validation, both config changes
    only_findings = kpis(KpiInputs(None, findings), window=None, end=T0 + timedelta(days=3))
    assert only_findings.value("config_incidents") == 3


def test_toil_share_of_automated_operational_steps():
    h = History()
    h.add("detection", 0)  # aiops
    h.add("proposal", 1, BOB, tier="low")  # a person
    h.add("execution", 2, BOB, automated=True)  # a person's script, flagged
    h.add("validation", 3, automated=False)  # aiops actor, but done by hand
    h.add("approval", 4, ALICE)  # decisions are not toil
    assert report(h).value("toil") == 50


def test_savings_realised_only_when_validated_and_not_rolled_back():
    h = History()
    r = h.add("recommendation", 0, monthly_savings_usd=40.0)
    simple_change(h, 1, after=r)  # realised via its recommendation
    simple_change(h, 100, monthly_savings_usd=100.0)  # realised on the proposal
    simple_change(h, 200, validate=False, monthly_savings_usd=7.0)
    h.add("rollback", 230, after=h.rows[-1]["id"], passed=True)
    simple_change(h, 300, validate=None, monthly_savings_usd=3.0)
    rep = report(h)
    assert rep.value("savings_realised") == 140
    assert rep.value("savings_proposed") == 150


# -- time: occurred_at, window and trends -----------------------------------------------

def test_event_time_falls_back_to_created_at():
    h = History()
    h.add("detection", 30, occurred=False, rule="x", failure_start=T0.isoformat())
    h.rows[-1]["data"]["occurred_at"] = "not a time"
    assert report(h).value("mttd") == 30


def test_window_and_weekly_trend():
    h = History()
    for week in range(3):
        h.add("detection", week * 7 * 24 * 60 + 5, rule="x",
              failure_start=(T0 + timedelta(days=7 * week)).isoformat())
    end = T0 + timedelta(days=15)
    rep = kpis(h.inputs(), window="10d", end=end)
    assert rep.value("mttd") == 5 and rep.summary.set_index("key").loc["mttd", "n"] == 2
    trend = rep.trends[rep.trends["key"] == "mttd"]
    assert [w.date().isoformat() for w in trend["week"]] == ["2026-03-02", "2026-03-09",
                                                             "2026-03-16"]
    assert trend["n"].tolist() == [0, 1, 1]  # the first week starts before the window
    assert math.isnan(trend["value"].iloc[0])


def test_window_bounds_day_means_its_end():
    start, end = window_bounds("7d", "2026-03-08")
    assert end == pd.Timestamp("2026-03-09", tz="UTC")
    assert start == pd.Timestamp("2026-03-02", tz="UTC")
    assert window_bounds(None, end)[0] is None


@pytest.mark.parametrize("value,unit,text", [
    (None, "min", NO_DATA), (float("nan"), "%", NO_DATA), (12.34, "min", "12.3 min"),
    (150, "min", "2.5 h"), (83.3, "%", "83%"), (3, "count", "3"),
    (162.5, "USD/month", "$162.50/month")])
def test_format_value(value, unit, text):
    assert format_value(value, unit) == text


def test_every_kpi_has_a_definition_and_unique_key():
    assert len({k.key for k in KPIS}) == len(KPIS)
    assert all(len(k.definition) > 40 and k.agg in ("mean", "share", "sum", "count")
               for k in KPIS)
