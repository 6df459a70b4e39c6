"""When each step happened, who did it, and one row per change folded from the PHRs.

Event time. A PHR's `created_at` is when it was *recorded*, always the store's
clock (the store cannot write past timestamps). A step that happened earlier
than it was recorded (back-filled or imported history, the demo history) says
so in `data.occurred_at` (ISO 8601, UTC). Every KPI uses `at`:
`data.occurred_at` when present and parseable, else `created_at`.

Failure start. A `detection` record's `data.failure_start`; without it, the
`first_seen` of the diagnose finding with the same rule and object (the
findings frame); for a change, that of the detection its lineage leads back to
(proposal -> recommendation -> detection through `links.previous_step`), else
the proposal's or recommendation's own `data.failure_start`.

Automation. A step is automated when `data.automated` says so; without that
field, when its actor is the workbench itself (name `aiops` or an
`aiops@...` email, as the gate's own expiry records are).

Changes are folded from the frame the way `aiops.approvals.workflow.changes`
folds them from the store (a proposal, then every record whose `previous_step`
chain leads back to it), into real `workflow.Change` objects, so whether the
approvals satisfy the tier is decided by `Change.missing`, the gate's own rule.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from aiops.approvals.phr import Actor, Links, ObjectRef, PhrMeta, Record
from aiops.approvals.tiers import Approver, Governance
from aiops.approvals.workflow import STEP_TYPES, Change

CONFIG_RULES = ("missing-configmap", "missing-secret", "missing-config-key")
AUTOMATION_NAMES = ("aiops",)

CHANGE_COLUMNS = [
    "id", "seq", "tier", "emergency", "proposer", "title", "namespace", "kind", "name",
    "proposed_at", "approvals", "approved_at", "approval_seq", "rejected_at", "expired_at",
    "executed_at", "execution_seq", "execution_automated", "validated_at", "validation_passed",
    "rollback_at", "rollback_passed", "recovered_at", "recovered_by", "state",
    "recommendation_id", "detection_id", "rule", "failure_start", "monthly_savings_usd",
    "missing"]


def _ts(value: Any) -> pd.Timestamp | None:
    """A UTC timestamp from an ISO string / datetime, or None when absent or unparseable."""
    if value is None or value == "":
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    if pd.isna(ts):
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _data(row: Any) -> dict[str, Any]:
    d = row.get("data") if isinstance(row, dict) else getattr(row, "data", None)
    return d if isinstance(d, dict) else {}


def prepare(phr: pd.DataFrame | None) -> pd.DataFrame:
    """The PHR frame in chain order with `at` (event time) and `automated` added.

    Accepts `PhrStore.frame()` / `records_frame` output; missing optional columns
    are filled so hand-built frames work too. An empty or None frame gives an
    empty frame with the same columns.
    """
    cols = ["seq", "id", "type", "created_at", "actor_name", "actor_email", "title", "tier",
            "action_hash", "namespace", "kind", "name", "previous_step", "data"]
    df = pd.DataFrame(columns=cols) if phr is None else phr.copy()
    for c in cols:
        if c not in df.columns:
            df[c] = None
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
    df["data"] = [d if isinstance(d, dict) else {} for d in df["data"]]
    occurred = [_ts(d.get("occurred_at")) for d in df["data"]]
    df["at"] = pd.to_datetime(
        [o if o is not None else c for o, c in zip(occurred, df["created_at"], strict=True)],
        utc=True)
    df["automated"] = [_automated(d, n, e) for d, n, e in
                       zip(df["data"], df["actor_name"], df["actor_email"], strict=True)]
    if len(df):
        df = df.sort_values("seq", kind="stable")
    return df.reset_index(drop=True)


def _automated(data: dict[str, Any], name: Any, email: Any) -> bool:
    flag = data.get("automated")
    if isinstance(flag, bool):
        return flag
    local = str(email or "").split("@", 1)[0].lower()
    return str(name or "").lower() in AUTOMATION_NAMES or local in AUTOMATION_NAMES


def recorded_governance(base: Governance, phr: pd.DataFrame) -> Governance:
    """`base` with the approvers and roles the approval records say the gate saw.

    The gate writes the approver's roles into each approval (`data.roles`) when
    it accepts it; the governance file may have changed since, so for past
    approvals those recorded roles count (approvers only in the file keep theirs).
    """
    roles: dict[str, tuple[str, set[str]]] = {}
    for row in phr[phr["type"] == "approval"].itertuples(index=False):
        got = _data(row).get("roles")
        email = str(row.actor_email or "").strip()
        if not email or not isinstance(got, list):
            continue
        name, have = roles.get(email.lower(), (str(row.actor_name or email), set()))
        roles[email.lower()] = (name, have | {str(r) for r in got})
    approvers = [Approver(name=n, email=e, roles=sorted(r)) for e, (n, r) in roles.items()]
    approvers += [a for a in base.approvers if a.email.lower() not in roles]
    return base.model_copy(update={"approvers": approvers})


def _record(row: Any) -> Record:
    """A frame row back as a store Record (not re-validated: it was when written)."""
    obj = None
    if isinstance(row.kind, str) and isinstance(row.name, str):
        obj = ObjectRef.model_construct(apiVersion="", kind=row.kind,
                                        namespace=row.namespace or "", name=row.name)
    meta = PhrMeta.model_construct(
        id=row.id, seq=int(row.seq), type=row.type, created_at=row.at.to_pydatetime(),
        actor=Actor.model_construct(name=str(row.actor_name or ""),
                                    email=str(row.actor_email or "")),
        title=str(row.title or ""), tier=row.tier if isinstance(row.tier, str) else None,
        action_hash=row.action_hash if isinstance(row.action_hash, str) else None,
        object=obj, pre_metrics={}, post_metrics={},
        links=Links.model_construct(previous_step=_str(row.previous_step), corrects=None),
        data=_data(row), prev_hash=None)
    return Record(meta, "", Path(str(getattr(row, "path", "") or "")), "")


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def fold(phr: pd.DataFrame) -> tuple[dict[str, Change], dict[str, str]]:
    """Changes by proposal id, and the proposal each step record belongs to."""
    out: dict[str, Change] = {}
    owner: dict[str, str] = {}
    for row in phr[phr["type"].isin(STEP_TYPES)].itertuples(index=False):
        if row.type == "proposal":
            out[row.id] = Change(_record(row))
            owner[row.id] = row.id
            continue
        root = owner.get(_str(row.previous_step) or "")
        if root:
            owner[row.id] = root
            out[root].steps.append(_record(row))
    return out, owner


def failure_start(detection: Any, findings: pd.DataFrame | None) -> pd.Timestamp | None:
    """A detection's failure start: its data.failure_start, else the matching finding's
    first_seen (same rule, same namespace, object name or owner name)."""
    d = _data(detection)
    ts = _ts(d.get("failure_start"))
    if ts is not None or findings is None or findings.empty:
        return ts
    rule = d.get("rule")
    ns = detection.get("namespace") if isinstance(detection, dict) else detection.namespace
    name = detection.get("name") if isinstance(detection, dict) else detection.name
    hits = findings[(findings["rule"] == rule) & (findings["namespace"].fillna("") == (ns or ""))]
    if name:
        owners = hits["owner"].fillna("").astype(str).str.split("/").str[-1] \
            if "owner" in hits else pd.Series("", index=hits.index)
        hits = hits[(hits["name"] == name) | (owners == name)]
    times = pd.to_datetime(hits["first_seen"], utc=True, errors="coerce").dropna()
    return times.min() if len(times) else None


def lineage(phr: pd.DataFrame, rec_id: str | None) -> dict[str, str]:
    """The recommendation and detection a record descends from (by previous_step)."""
    by_id = {r.id: r for r in phr.itertuples(index=False)}
    out: dict[str, str] = {}
    seen: set[str] = set()
    cur = by_id.get(rec_id or "")
    while cur is not None and cur.id not in seen:
        seen.add(cur.id)
        if cur.type in ("recommendation", "detection"):
            out.setdefault(cur.type, cur.id)
        cur = by_id.get(_str(cur.previous_step) or "")
    return out


def changes_table(phr: pd.DataFrame, governance: Governance,
                  findings: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per proposal: its tier, every step's time, recovery, lineage and savings.

    `phr` is a `prepare`d frame. approved_at is the time of the approval that
    made `Change.missing` empty (the proposal itself for a tier needing none);
    recovered_at is the first passing validation, else a completed rollback
    (`data.passed` true) after a failed one.
    """
    gov = recorded_governance(governance, phr)
    folded, _ = fold(phr)
    by_id = {r.id: r for r in phr.itertuples(index=False)}
    rows = []
    for cid, c in folded.items():
        p = c.proposal.meta
        rows.append(_change_row(cid, c, p, gov, phr, by_id, findings))
    return pd.DataFrame(rows, columns=CHANGE_COLUMNS)


def _first(c: Change, kind: str, pred: Any = None) -> Record | None:
    return next((r for r in c.of(kind) if pred is None or pred(r)), None)


def _change_row(cid: str, c: Change, p: PhrMeta, gov: Governance, phr: pd.DataFrame,
                by_id: dict[str, Any], findings: pd.DataFrame | None) -> dict[str, Any]:
    approved = _qualifying_approval(c, gov)
    execution = _first(c, "execution", lambda r: r.meta.data.get("phase") != "started")
    validation = _first(c, "validation")
    passed = _first(c, "validation", lambda r: bool(r.meta.data.get("passed")))
    rollback = _first(c, "rollback")
    rolled_ok = _first(c, "rollback", lambda r: r.meta.data.get("passed") is not False)
    recovered, how = None, None
    if passed is not None:
        recovered, how = passed.meta.created_at, "validation"
    elif rolled_ok is not None:
        recovered, how = rolled_ok.meta.created_at, "rollback"
    lin = lineage(phr, cid)
    det = by_id.get(lin.get("detection", ""))
    rec = by_id.get(lin.get("recommendation", ""))
    start = failure_start(det, findings) if det is not None else None
    for src in (p.data, _data(rec) if rec is not None else {}):
        start = start or _ts(src.get("failure_start"))
    rule = (_data(det).get("rule") if det is not None else None) or p.data.get("rule") or (
        _data(rec).get("rule") if rec is not None else None)
    savings = p.data.get("monthly_savings_usd")
    if savings is None and rec is not None:
        savings = _data(rec).get("monthly_savings_usd")
    obj = p.object
    try:
        state = c.state(gov, now=datetime.max.replace(tzinfo=UTC))
    except Exception:  # an unknown tier in an old record: report it, do not crash
        state = "unknown"
    if state == "expired" and not c.of("expiry"):
        state = "proposed"  # overdue but not recorded as expired: the records decide
    return {
        "id": cid, "seq": p.seq, "tier": c.tier, "emergency": c.emergency,
        "proposer": p.actor.email, "title": p.title,
        "namespace": obj.namespace if obj else None, "kind": obj.kind if obj else None,
        "name": obj.name if obj else None, "proposed_at": p.created_at,
        "approvals": len(c.approvals),
        "approved_at": approved.meta.created_at if approved else None,
        "approval_seq": approved.meta.seq if approved else None,
        "rejected_at": _time(_first(c, "rejection")), "expired_at": _time(_first(c, "expiry")),
        "executed_at": _time(execution), "execution_seq": execution.meta.seq if execution else None,
        "execution_automated": (by_id[execution.id].automated if execution else None),
        "validated_at": _time(validation),
        "validation_passed": bool(validation.meta.data.get("passed")) if validation else None,
        "rollback_at": _time(rollback),
        "rollback_passed": (rollback.meta.data.get("passed") is not False) if rollback else None,
        "recovered_at": recovered, "recovered_by": how, "state": state,
        "recommendation_id": lin.get("recommendation"), "detection_id": lin.get("detection"),
        "rule": rule, "failure_start": start,
        "monthly_savings_usd": float(savings) if isinstance(savings, int | float) else None,
        "missing": ", ".join(_missing(c, gov)),
    }


def _time(r: Record | None) -> Any:
    return r.meta.created_at if r is not None else None


def _missing(c: Change, gov: Governance) -> list[str]:
    try:
        return c.missing(gov)
    except Exception:
        return [f"unknown tier {c.tier!r}"]


def _qualifying_approval(c: Change, gov: Governance) -> Record | None:
    """The approval that completed what the tier needs (the proposal for none needed)."""
    try:
        policy = gov.policy(c.tier)
    except Exception:
        return None
    if policy.approvals == 0 and not policy.roles:
        return c.proposal
    steps: list[Record] = []
    for r in c.steps:
        if r.meta.type == "rejection":
            return None
        if r.meta.type != "approval":
            continue
        steps.append(r)
        if not Change(c.proposal, steps).missing(gov):
            return r
    return None
