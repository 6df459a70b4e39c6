"""Failure episodes: one detection record and at most one alert per episode.

A crash-looping pod produces an event every restart and each one triggers a
diagnosis that finds the same problem again. An episode is identified by the
rule, the namespace and the owner (or the object); it stays open while the
diagnoses of its scope keep finding it and closes when one no longer does. Its
key adds the failure start (the finding's first_seen when first detected), so
the same failure coming back after a recovery is a new episode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiops.diagnose.finding import Finding
from aiops.errors import AiopsError
from aiops.watch.triggers import Scope, covers

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
ACTOR = {"name": "aiops watch", "email": "aiops@localhost"}
CLOSED_KEPT = 200  # resolution notes kept in memory


def _iso(t: datetime | None) -> str | None:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z") \
        if t else None


def identity(f: Finding) -> tuple[str, str, str]:
    return (f.rule, f.namespace or "", f.owner or f.object_ref)


@dataclass
class Episode:
    """One failure from its detection to its resolution."""

    rule: str
    severity: str
    namespace: str
    subject: str  # owner, else the finding's object
    object_ref: str
    failure_start: datetime | None
    detected_at: datetime
    observed_at: datetime | None  # the watch event that led to the detection
    scope: Scope
    recorded: bool  # False when adopted at start-up without a record
    at_start: bool = False  # present when the watcher started: predates the watch
    record_id: str | None = None
    escalated: bool = False
    closed_at: datetime | None = None

    @property
    def key(self) -> str:
        return "|".join((self.rule, self.namespace, self.subject,
                         _iso(self.failure_start) or ""))

    @property
    def latency_s(self) -> float | None:
        """Detection time minus failure start (the MTTD of this episode)."""
        if self.failure_start is None:
            return None
        return max(0.0, (self.detected_at - self.failure_start).total_seconds())


@dataclass
class Outcome:
    """What one diagnosis changed."""

    opened: list[Episode] = field(default_factory=list)
    closed: list[Episode] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Episodes:
    """Open episodes, the detection records and the escalations they cause.

    `store` (a PhrStore) gets one `detection` record per new episode at or above
    `min_severity`; `notifier` gets the critical ones through `aiops.notify.escalate`
    (whose state file dedups across runs too). Keys of detections already in the
    store are not recorded again, so a restarted watcher does not double-count.
    """

    def __init__(self, store: Any = None, notifier: Any = None, *,
                 notify_state: str | Path | None = None, min_severity: str = "warning",
                 source: str = "", cluster: str = "",
                 log: Callable[[str], None] = lambda _m: None) -> None:
        self.store, self.notifier, self.notify_state = store, notifier, notify_state
        self.min_severity, self.source, self.cluster, self.log = (min_severity, source,
                                                                  cluster, log)
        self.open: dict[tuple[str, str, str], Episode] = {}
        self.closed: list[Episode] = []
        self.recorded_keys: set[str] = set()
        self.recorded = 0  # detection records written by this process
        if store is not None:
            for rec in store.records("detection"):
                if key := rec.meta.data.get("episode"):
                    self.recorded_keys.add(str(key))

    def update(self, scope: Scope, findings: list[Finding], *, detected_at: datetime,
               observed_at: datetime | None, record: bool = True,
               at_start: bool = False) -> Outcome:
        """Compare a diagnosis of `scope` with the open episodes of that scope;
        `at_start`: the baseline diagnosis (its failures predate the watch)."""
        out = Outcome()
        seen: set[tuple[str, str, str]] = set()
        limit = SEVERITY_ORDER.get(self.min_severity, 1)
        for f in findings:
            if SEVERITY_ORDER.get(f.severity, 9) > limit:
                continue
            ident = identity(f)
            seen.add(ident)
            if ident in self.open:
                continue
            ep = Episode(f.rule, f.severity, f.namespace or "", ident[2], f.object_ref,
                         f.first_seen, detected_at, observed_at, scope, recorded=False,
                         at_start=at_start)
            self.open[ident] = ep
            out.opened.append(ep)
            if record and ep.key not in self.recorded_keys:
                self._record(ep, f, findings, out)
                self._escalate(ep, f, out)
        for ident, ep in list(self.open.items()):
            if ident not in seen and _speaks_for(scope, ep):
                ep.closed_at = detected_at
                del self.open[ident]
                out.closed.append(ep)
                self.closed = [*self.closed, ep][-CLOSED_KEPT:]
        return out

    def _record(self, ep: Episode, f: Finding, findings: list[Finding], out: Outcome) -> None:
        if self.store is None:
            return
        from aiops.approvals.phr import ObjectRef

        related = [{"rule": o.rule, "severity": o.severity, "object": o.object_ref,
                    "summary": o.summary} for o in findings
                   if (o.namespace or "") == ep.namespace and identity(o)[2] == ep.subject][:10]
        data = {
            "rule": ep.rule, "severity": ep.severity, "object": ep.object_ref,
            "owner": f.owner, "episode": ep.key, "failure_start": _iso(ep.failure_start),
            "detected_at": _iso(ep.detected_at), "observed_at": _iso(ep.observed_at),
            "latency_s": None if ep.latency_s is None else round(ep.latency_s, 3),
            "pipeline_s": None if ep.observed_at is None
            else round((ep.detected_at - ep.observed_at).total_seconds(), 3),
            "at_start": ep.at_start,  # found by the first diagnosis, not by a watch event
            "summary": f.summary,
            "evidence": [e.text for e in f.evidence[:3]],
            "findings": related,
        }
        try:
            rec = self.store.record(
                "detection", actor=ACTOR, title=f"{ep.rule} on {ep.object_ref}",
                object=ObjectRef(kind=f.kind, namespace=f.namespace or "", name=f.name),
                data=data, body=f.summary)
        except AiopsError as exc:
            out.errors.append(f"detection record for {ep.key}: {exc}")
            self.log(f"could not record the detection of {ep.key}: {exc}")
            return
        ep.recorded, ep.record_id = True, rec.id
        self.recorded += 1
        self.recorded_keys.add(ep.key)

    def _escalate(self, ep: Episode, f: Finding, out: Outcome) -> None:
        if self.notifier is None or ep.severity != "critical":
            return
        from aiops.notify import escalate

        res = escalate([f], self.notifier, min_severity="critical",
                       state_file=self.notify_state, source=self.source, cluster=self.cluster)
        ep.escalated = bool(res.sent)
        for why in res.failed.values():
            out.errors.append(f"escalation of {ep.key}: {why}")
            self.log(f"escalation failed: {why}")


def _speaks_for(scope: Scope, ep: Episode) -> bool:
    """A diagnosis of `scope` would have found `ep` again if it were still failing."""
    if covers(scope, ep.scope):
        return True
    ns, kind, name = scope
    return kind is not None and ns == ep.namespace and ep.subject == f"{kind}/{name}"
