"""Continue, pause or undo a rolling update: the decision rule over a Comparison.

The rule, in order (every threshold is a field of `Thresholds`):

1. No new pod yet: **continue** (too early to tell).
2. **undo** when the new pods are clearly worse than the old ones:
   a. a new pod waits for a reason that does not heal by waiting
      (`fatal_waiting`: ImagePullBackOff, CrashLoopBackOff, ...) or was OOMKilled,
      and no old pod shows the same;
   b. past `grace` seconds, the new ready share is at least `ready_drop_undo`
      below the old one;
   c. new restarts per pod exceed the old ones by `restarts_undo` or more;
   d. the Deployment exceeded its progress deadline and the new ready share is
      below the old one.
   Undo rolls back to the previous ReplicaSet's template (image and resources);
   without a previous ReplicaSet it becomes a pause, and says so.
3. **pause** when the new pods are degrading but not clearly worse:
   a. past `grace`, the new ready share is at least `ready_drop_pause` below;
   b. new restarts per pod exceed the old by `restarts_pause` or more;
   c. a new pod terminated with a failure no old pod shows (Error, exit codes);
   d. error log lines per new pod reach `error_ratio` times the old rate and
      at least `min_error_lines` more;
   e. with metrics, a new pod uses `memory_share` of its memory limit or more
      while every old pod stays below it.
4. Otherwise **continue**: the new pods are healthy, or younger than `grace`.

Old pods are the comparison: with none (a first rollout) the new pods are judged
against a healthy ideal (all ready, no restarts, no errors); a rollout that is
complete with nothing to compare with is never paused or undone here (that is
`aiops diagnose`'s job). Both undo and pause are tier low (design notes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from aiops.diagnose.actions import rollout_pause, rollout_undo_to
from aiops.diagnose.finding import Action, Evidence
from aiops.rollout.compare import Comparison, Side

VERDICTS = ("continue", "pause", "undo")
FATAL_WAITING = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CrashLoopBackOff",
                 "CreateContainerConfigError", "CreateContainerError", "RunContainerError")


@dataclass(frozen=True)
class Thresholds:
    """The decision rule's parameters (see the module docstring)."""

    grace: float = 60.0  # seconds a new pod gets before its readiness counts
    ready_drop_pause: float = 0.25
    ready_drop_undo: float = 0.5
    restarts_pause: float = 1.0  # extra restarts per pod
    restarts_undo: float = 3.0
    error_ratio: float = 2.0
    min_error_lines: float = 5.0  # extra error lines per pod
    memory_share: float = 0.9  # of the memory limit
    fatal_waiting: tuple[str, ...] = FATAL_WAITING


@dataclass
class Decision:
    """A recommendation with its evidence, like a Finding."""

    verdict: str  # continue | pause | undo
    summary: str
    reasons: list[str]
    evidence: list[Evidence]
    comparison: Comparison
    action: Action | None = None
    confidence: float = 0.5
    completed: bool = False
    thresholds: Thresholds = field(default_factory=Thresholds)

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "summary": self.summary, "reasons": self.reasons,
                "evidence": [e.to_dict() for e in self.evidence],
                "confidence": round(self.confidence, 2), "completed": self.completed,
                "new": self.comparison.new.numbers(), "old": self.comparison.old.numbers(),
                "rollout": self.comparison.rollout.to_dict(),
                "notes": list(self.comparison.notes),
                "action": self.action.to_dict() if self.action else None,
                "thresholds": asdict(self.thresholds)}


def _ideal() -> dict[str, Any]:
    return {"ready_share": 1.0, "restarts_per_pod": 0.0, "errors_per_pod": 0.0,
            "memory_share": None, "waiting": {}, "terminations": {}}


def decide(cmp: Comparison, th: Thresholds | None = None) -> Decision:
    """Apply the rule of the module docstring to one comparison."""
    th = th or Thresholds()
    r, new, old = cmp.rollout, cmp.new, cmp.old
    ref = f"Deployment/{r.namespace}/{r.name}"
    evidence = _evidence(cmp)
    if not new.pods:
        return Decision("continue", f"{ref}: no pod of the new revision yet, too early to "
                        "tell", ["no new pod"], evidence, cmp, confidence=0.3,
                        completed=r.complete, thresholds=th)
    base = old.numbers() if old.pods else _ideal()
    if not old.pods and r.complete:
        return Decision("continue", f"{ref}: rollout complete (nothing left to compare the "
                        "new pods with)", ["rollout complete"], evidence, cmp,
                        confidence=0.6, completed=True, thresholds=th)
    n = new.numbers()
    past_grace = (new.youngest_seconds or 0.0) >= th.grace
    drop = (base["ready_share"] or 0.0) - (n["ready_share"] or 0.0)
    extra_restarts = (n["restarts_per_pod"] or 0.0) - (base["restarts_per_pod"] or 0.0)
    undo, pause = [], []

    fatal = sorted(w for w in new.waiting if w in th.fatal_waiting and w not in base["waiting"])
    if fatal:
        undo.append(f"new pods wait with {', '.join(fatal)}; no old pod does")
    if "OOMKilled" in new.terminations and "OOMKilled" not in base["terminations"]:
        undo.append("new pods were OOMKilled; no old pod was")
    if past_grace and drop >= th.ready_drop_undo:
        undo.append(f"ready share {_pct(n['ready_share'])} vs {_pct(base['ready_share'])} "
                    f"(drop >= {_pct(th.ready_drop_undo)})")
    if extra_restarts >= th.restarts_undo:
        undo.append(f"{n['restarts_per_pod']:g} restarts per new pod vs "
                    f"{base['restarts_per_pod']:g} (>= +{th.restarts_undo:g})")
    if r.deadline_exceeded and drop > 0:
        undo.append("the Deployment exceeded its progress deadline with fewer new pods "
                    "ready than old")

    if past_grace and th.ready_drop_pause <= drop < th.ready_drop_undo:
        pause.append(f"ready share {_pct(n['ready_share'])} vs {_pct(base['ready_share'])} "
                     f"(drop >= {_pct(th.ready_drop_pause)})")
    if th.restarts_pause <= extra_restarts < th.restarts_undo:
        pause.append(f"{n['restarts_per_pod']:g} restarts per new pod vs "
                     f"{base['restarts_per_pod']:g} (>= +{th.restarts_pause:g})")
    failed = sorted(t for t in new.terminations
                    if t != "OOMKilled" and t not in base["terminations"])
    if failed:
        pause.append(f"new pods terminated with {', '.join(failed)}; no old pod did")
    new_err, old_err = n["errors_per_pod"] or 0.0, base["errors_per_pod"] or 0.0
    if new_err >= max(old_err * th.error_ratio, old_err + th.min_error_lines):
        pause.append(f"{new_err:g} error log lines per new pod vs {old_err:g}")
    old_mem = base["memory_share"]
    if new.memory_share is not None and new.memory_share >= th.memory_share and \
            old_mem is not None and old_mem < th.memory_share:
        pause.append(f"new pods use {_pct(new.memory_share)} of their memory limit, old "
                     f"ones {_pct(old_mem)}")

    if undo:
        return _act("undo", undo + pause, evidence, cmp, th)
    if pause:
        return _act("pause", pause, evidence, cmp, th)
    why = "new pods healthy" if past_grace else \
        f"new pods younger than {th.grace:g}s and showing no failure: too early to tell"
    done = " and the rollout is complete" if r.complete else ""
    return Decision("continue", f"{ref}: {why}{done}", [why], evidence, cmp,
                    confidence=0.7 if past_grace else 0.4, completed=r.complete,
                    thresholds=th)


def _act(verdict: str, reasons: list[str], evidence: list[Evidence], cmp: Comparison,
         th: Thresholds) -> Decision:
    """The Action for a pause or undo (an undo with nowhere to go becomes a pause)."""
    r = cmp.rollout
    ref = f"Deployment/{r.namespace}/{r.name}"
    prev = r.previous_rs
    action: Action | None = None
    if verdict == "undo" and prev is not None:
        rev = (prev.get("metadata") or {}).get("annotations", {}).get(
            "deployment.kubernetes.io/revision")
        action = rollout_undo_to(r.deployment, prev, rev, description=(
            f"roll {ref} back to revision {rev} ({prev['metadata']['name']}): {reasons[0]}"))
    elif verdict == "undo":
        reasons = [*reasons, "no previous ReplicaSet to roll back to: pausing instead"]
        verdict = "pause"
    if verdict == "pause" and not r.paused:
        action = rollout_pause(r.deployment, True, description=(
            f"pause the rollout of {ref}: {reasons[0]}"))
    elif verdict == "pause":
        reasons = [*reasons, "the rollout is already paused"]
    summary = f"{ref}: {verdict} - " + "; ".join(reasons)
    return Decision(verdict, summary, reasons, evidence, cmp, action,
                    confidence=0.9 if verdict == "undo" else 0.7, completed=r.complete,
                    thresholds=th)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.0f}%"


def _evidence(cmp: Comparison) -> list[Evidence]:
    """Numbers from both sides, quoted where they were read."""
    r = cmp.rollout
    out = [Evidence("status", f"replicas {r.desired}, updated {r.updated}, ready {r.ready}, "
                    f"available {r.available}, total {r.total}"
                    + (", progress deadline exceeded" if r.deadline_exceeded else "")
                    + (", paused" if r.paused else ""),
                    f"Deployment/{r.name}.status", cmp.at)]
    for s in (cmp.new, cmp.old):
        if not s.pods:
            continue
        what = f"{s.label} ({', '.join(s.replicasets)}): " + _side_text(s)
        out.append(Evidence("status", what, f"pods of revision(s) "
                            f"{', '.join(map(str, s.revisions)) or '?'}", cmp.at))
        for p in s.pods:
            for line in p.error_samples[:1]:
                out.append(Evidence("log", line, f"{p.name} log", cmp.at))
    return out


def _side_text(s: Side) -> str:
    n = s.numbers()
    parts = [f"{n['ready']}/{n['pods']} ready", f"{n['restarts']} restarts",
             f"{n['error_lines']} error lines", f"{n['warning_events']} warning events"]
    if n["waiting"]:
        parts.append("waiting " + ", ".join(f"{k} x{v}" for k, v in n["waiting"].items()))
    if n["terminations"]:
        parts.append("terminated " + ", ".join(f"{k} x{v}"
                                               for k, v in n["terminations"].items()))
    if n["memory_share"] is not None:
        parts.append(f"memory up to {_pct(n['memory_share'])} of limit")
    return ", ".join(parts)
