"""Measured time to recover per rule, from the audit trail (PHRs).

An episode starts at a `detection` record (`data.rule` names the rule; its
`data.failure_start`, when known, is the real start, else the record's time)
and ends at the first passing `validation` after it: the one whose
`previous_step` chain leads back to the detection (detection -> proposal ->
approval -> execution -> validation), else the next passing validation on the
same object. Episodes never recovered have no time: they are open, not slow.
The median is what a runbook quotes (one very slow night does not move it).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_CHAIN = 200  # previous_step hops followed from one validation


@dataclass(frozen=True)
class Recovery:
    rule: str
    detection: str  # record ids
    validation: str
    minutes: float


@dataclass(frozen=True)
class MttrStat:
    rule: str
    count: int
    median_minutes: float
    mean_minutes: float
    max_minutes: float


def _time(value: Any, fallback: datetime) -> datetime:
    if isinstance(value, datetime):
        t = value
    else:
        try:
            t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return fallback
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _obj(rec: Any) -> tuple[str, str, str] | None:
    o = rec.meta.object
    return (o.kind, o.namespace, o.name) if o else None


def recoveries(records: Iterable[Any]) -> list[Recovery]:
    """Pair detections with the validation that ended them (records oldest first)."""
    recs = list(records)
    by_id = {r.meta.id: r for r in recs}
    paired: set[str] = set()
    out: list[Recovery] = []
    open_by_obj: dict[tuple[str, str, str], list[Any]] = {}
    for r in recs:
        m = r.meta
        if m.type == "detection" and m.data.get("rule"):
            key = _obj(r)
            if key:
                open_by_obj.setdefault(key, []).append(r)
            continue
        if m.type != "validation" or m.data.get("passed") is False:
            continue
        det = None
        step, hops = m.links.previous_step, 0
        while step and hops < MAX_CHAIN:
            prev = by_id.get(step)
            if prev is None:
                break
            if prev.meta.type == "detection" and prev.meta.id not in paired:
                det = prev
                break
            step, hops = prev.meta.links.previous_step, hops + 1
        if det is None and (key := _obj(r)):
            pending = [d for d in open_by_obj.get(key, []) if d.meta.id not in paired]
            det = pending[0] if pending else None
        if det is None or not det.meta.data.get("rule"):
            continue
        paired.add(det.meta.id)
        start = _time(det.meta.data.get("failure_start"), det.meta.created_at)
        end = _time(m.data.get("recovered_at"), m.created_at)
        minutes = max((end - start).total_seconds() / 60, 0.0)
        out.append(Recovery(str(det.meta.data["rule"]), det.meta.id, m.id, minutes))
    return out


def measured_mttr(store: Any) -> dict[str, MttrStat]:
    """{rule id: MttrStat} from a PhrStore (or an iterable of its Records)."""
    records = store.records() if hasattr(store, "records") else list(store)
    per: dict[str, list[float]] = {}
    for rec in recoveries(records):
        per.setdefault(rec.rule, []).append(rec.minutes)
    return {rule: MttrStat(rule, len(v), statistics.median(v), statistics.fmean(v), max(v))
            for rule, v in sorted(per.items())}


__all__ = ["MttrStat", "Recovery", "measured_mttr", "recoveries"]
