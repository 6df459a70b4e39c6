"""Recommendations into the audit trail: the first step of every change.

A diagnosis remediation, a right-sizing row or an audit fix that carries an
Action becomes one `recommendation` PHR (action hash, tier, object, why). A
proposal made from it links to it (`previous_step`), which is what the
recommendation-acceptance KPI counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiops.approvals.phr import Actor, PhrStore, Record
from aiops.diagnose.finding import Action

AUTOMATION = Actor(name="aiops", email="aiops@localhost")


@dataclass(frozen=True)
class Recommended:
    action: Action
    title: str
    why: str
    data: dict[str, Any] = field(default_factory=dict)


def from_findings(findings: Iterable[Any]) -> list[Recommended]:
    """The diagnosis findings whose remediation has an Action."""
    out = []
    for f in findings:
        action = getattr(getattr(f, "remediation", None), "action", None)
        if action is None or action.kind == "manual":
            continue
        out.append(Recommended(action, f"{f.rule}: {action.description}", f.summary,
                               {"source": "diagnose", "rule": f.rule,
                                "severity": f.severity, "owner": f.owner}))
    return out


def from_rightsizing(recs: Any) -> list[Recommended]:
    """Right-sizing rows that change something and carry an Action."""
    out = []
    for row in recs.itertuples(index=False):
        action = getattr(row, "action", None)
        if not isinstance(action, Action) or getattr(row, "status", "ok") != "ok":
            continue
        savings = getattr(row, "monthly_savings_usd", None)
        data = {"source": "rightsize", "container": row.container}
        if savings is not None and savings == savings:  # not NaN
            data["monthly_savings_usd"] = round(float(savings), 2)
        out.append(Recommended(action, f"right-size {row.workload_kind}/{row.workload} "
                                       f"{row.container}", str(row.reason), data))
    return out


def record(store: PhrStore, items: Iterable[Recommended], *,
           actor: Actor = AUTOMATION) -> list[Record]:
    """One recommendation PHR per item (the same Action already recorded as a
    recommendation and not yet acted upon is not recorded again)."""
    seen = {r.meta.action_hash for r in store.records(type="recommendation")}
    out = []
    for item in items:
        if item.action.hash() in seen:
            continue
        seen.add(item.action.hash())
        out.append(store.record("recommendation", actor=actor, action=item.action,
                                title=item.title, body=item.why,
                                data={"automated": True, **item.data}))
    return out
