"""The only code that changes a cluster: approved Actions, dry run first.

`execute` runs one approved Action: the gate (workflow.authorize, which refuses
and records anything not exactly approved), a server-side dry run, the
pre-state saved in the execution record, the change, then validation polled
until it passes or times out, and on failure the automatic rollback (the
Action's inverse), each step its own PHR. `rollback` reverts any executed
change later (`aiops rollback ID`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiops.approvals import workflow
from aiops.approvals.kube_writer import ApiCallError, KubeWriter
from aiops.approvals.phr import Actor, PhrStore
from aiops.approvals.tiers import Governance
from aiops.approvals.validation import Outcome, checks_for, restarts, validate
from aiops.diagnose.finding import Action
from aiops.errors import AiopsError
from aiops.locks import try_lock

EXECUTABLE = ("patch", "scale", "rollout-restart", "rollout-undo", "delete-pod", "create")
AUTOMATION = Actor(name="aiops executor", email="aiops@localhost")


class ExecutionFailed(AiopsError):
    """The change could not be made or did not validate (recorded, rolled back)."""

    exit_code = 1


@dataclass
class Execution:
    change: workflow.Change
    state: str
    validation: Outcome | None = None
    rollback: Outcome | None = None
    records: list[str] = field(default_factory=list)


def action_from_record(data: dict[str, Any]) -> Action:
    """The Action as a proposal recorded it (see Action.to_dict)."""
    return Action(data["kind"], dict(data["target"]), data["description"], data["tier"],
                  list(data.get("patch") or []), list(data.get("inverse") or []),
                  list(data.get("validate") or []))


def execute(store: PhrStore, proposal_id: str, action: Action, *, writer: KubeWriter,
            governance: Governance, actor: Actor, timeout: float = 300.0,
            poll: float = 2.0) -> Execution:
    """Run an approved Action; see the module docstring for the steps.

    One executor per change at a time: a second one finds the change's lock held
    and is refused (recorded), so an approval is never executed twice."""
    with _change_lock(store, proposal_id) as held:
        if not held:
            c = workflow.change(store, proposal_id)
            workflow.refuse(store, c, actor, f"execution refused: {c.id} is being executed "
                            "by another process", {"attempt": "execution"})
        return _execute(store, proposal_id, action, writer=writer, governance=governance,
                        actor=actor, timeout=timeout, poll=poll)


@contextmanager
def _change_lock(store: PhrStore, proposal_id: str) -> Iterator[bool]:
    """A non-blocking lock per change, kept in the git directory (never committed,
    never seen by `phr verify`)."""
    path = Path(store.git.repo.git_dir) / "aiops-executor" / f"{proposal_id.upper()}.lock"
    with try_lock(path) as held:
        yield held


def _execute(store: PhrStore, proposal_id: str, action: Action, *, writer: KubeWriter,
             governance: Governance, actor: Actor, timeout: float, poll: float) -> Execution:
    change = workflow.authorize(store, proposal_id, action, actor=actor,
                                governance=governance)
    if action.kind not in EXECUTABLE:
        workflow.refuse(store, change, actor,
                         f"execution refused: a {action.kind} Action is done by a person, "
                         "not by the executor", {"attempt": "execution"})
    run = Execution(change, "approved")
    t = action.target
    pre = writer.get(t) if action.kind != "create" else None
    pre_restarts = restarts(writer, t) if pre is not None else None
    started = time.monotonic()

    def step(type_: str, title: str, **data: Any) -> None:
        rec = store.record(type_, actor=actor if type_ == "execution" else AUTOMATION,
                           title=title, tier=change.tier, action_hash=change.action_hash,
                           object=_object(t), previous_step=_last(change),
                           data={"automated": type_ != "execution", **data})
        change.steps.append(rec)
        run.records.append(rec.id)

    try:
        _apply(writer, action, dry_run=True)
    except ApiCallError as exc:
        step("execution", f"dry run of {change.id} refused by the API server",
             phase="failed", stage="dry-run", error=exc.message)
        run.state = "failed"
        raise ExecutionFailed(f"the server-side dry run failed: {exc.message}",
                              "nothing was changed; fix the Action and propose it again") \
            from None
    step("execution", f"executing {change.id}: {action.description}", phase="started",
         dry_run="passed", pre_state=pre, pre_restarts=pre_restarts,
         started_at=datetime.now(UTC).isoformat())
    try:
        _apply(writer, action, dry_run=False)
    except ApiCallError as exc:
        step("execution", f"{change.id} failed to apply", phase="failed", stage="apply",
             error=exc.message)
        run.state = "failed"
        raise ExecutionFailed(f"the change failed: {exc.message}", exc.hint) from None
    step("execution", f"{change.id} applied", phase="applied")
    run.validation = validate(writer, checks_for(action, pre, pre_restarts), timeout=timeout,
                              poll=poll)
    step("validation", f"validation of {change.id} "
         f"{'passed' if run.validation.passed else 'failed'}",
         **run.validation.to_dict(), recovered_at=datetime.now(UTC).isoformat())
    if run.validation.passed:
        run.state = "validated"
        return run
    failed = [c["check"] for c in run.validation.checks if not c["passed"]]
    run.rollback = _revert(writer, action, pre, timeout=timeout, poll=poll)
    step("rollback", f"automatic rollback of {change.id} "
         f"{'succeeded' if run.rollback.passed else 'FAILED'}",
         reason=f"validation failed: {', '.join(failed)}", **run.rollback.to_dict(),
         total_seconds=round(time.monotonic() - started, 2))
    run.state = "rolled-back" if run.rollback.passed else "failed"
    return run


def rollback(store: PhrStore, proposal_id: str, *, writer: KubeWriter, actor: Actor,
             governance: Governance, action: Action | None = None, timeout: float = 300.0,
             poll: float = 2.0) -> Execution:
    """Revert an executed change (`aiops rollback ID`): its inverse, dry run first."""
    change = workflow.change(store, proposal_id)
    state = change.state(governance)
    if state not in ("executing", "executed", "validated", "failed"):
        workflow.refuse(store, change, actor,
                         f"rollback refused: {change.id} is {state}, nothing to revert",
                         {"attempt": "rollback"})
    action = action or action_from_record(change.action)
    if action.hash() != change.action_hash:
        workflow.refuse(store, change, actor,
                         "rollback refused: the recorded Action was redacted (it held a "
                         "secret), so its inverse cannot be rebuilt from the record",
                         {"attempt": "rollback"})
    executed = [r for r in change.of("execution") if r.meta.data.get("pre_state")]
    pre = executed[-1].meta.data.get("pre_state") if executed else None
    try:
        _revert_dry_run(writer, action)
    except ApiCallError as exc:
        workflow.refuse(store, change, actor,
                         f"rollback refused by the server's dry run: {exc.message}",
                         {"attempt": "rollback"})
    outcome = _revert(writer, action, pre, timeout=timeout, poll=poll)
    rec = store.record("rollback", actor=actor,
                       title=f"rollback of {change.id} "
                             f"{'succeeded' if outcome.passed else 'FAILED'}",
                       tier=change.tier, action_hash=change.action_hash,
                       object=_object(action.target), previous_step=_last(change),
                       data={"reason": "requested", **outcome.to_dict()})
    change.steps.append(rec)
    return Execution(change, "rolled-back" if outcome.passed else "failed",
                     rollback=outcome, records=[rec.id])


# -- applying ------------------------------------------------------------------------

def _apply(writer: KubeWriter, action: Action, *, dry_run: bool) -> None:
    t = action.target
    if action.kind == "delete-pod":
        writer.delete(t, dry_run=dry_run)
    elif action.kind == "create":
        writer.create(action.patch[0]["value"], dry_run=dry_run)
    else:
        writer.patch(t, action.patch, dry_run=dry_run)


def _revert_dry_run(writer: KubeWriter, action: Action) -> None:
    if action.kind == "create":
        writer.delete(action.target, dry_run=True)
    elif action.kind != "delete-pod" and action.inverse:
        writer.patch(action.target, action.inverse, dry_run=True)


def _revert(writer: KubeWriter, action: Action, pre: dict[str, Any] | None, *,
            timeout: float, poll: float) -> Outcome:
    """Apply the inverse and check the object is back as it was."""
    t = action.target
    try:
        if action.kind == "create":
            writer.delete(t, dry_run=False)
            return Outcome(writer.get(t) is None,
                           [{"check": "created object removed", "passed": True, "seen": ""}])
        if action.kind == "delete-pod" or not action.inverse:
            return Outcome(True, [{"check": "nothing to revert", "passed": True,
                                   "seen": f"a {action.kind} has no inverse"}])
        writer.patch(t, action.inverse, dry_run=False)
    except ApiCallError as exc:
        return Outcome(False, [{"check": "inverse applied", "passed": False,
                                "seen": exc.message}])
    back = Action(action.kind, t, "rollback", action.tier, action.inverse, action.patch, [])
    base = None
    if pre is not None:
        import jsonpatch

        base = jsonpatch.apply_patch(pre, action.patch)
    return validate(writer, checks_for(back, base, None), timeout=timeout, poll=poll)


def _last(change: workflow.Change) -> str:
    return change.steps[-1].id if change.steps else change.id


def _object(t: dict[str, str]) -> dict[str, str]:
    return {"apiVersion": t.get("apiVersion", ""), "kind": t["kind"],
            "namespace": t.get("namespace", ""), "name": t["name"]}
