"""The approval cell: what an approver sees before saying yes, and the two ways
to say it.

`review` puts together everything a decision needs (the object before and
after the patch, the risk tier and what it requires, the expected effect, the
rollback plan, the metrics before) as text and as plain HTML, so it reads the
same in JupyterLab, in nbconvert's static HTML and in a terminal.
`approval_cell` adds ipywidgets (justification, Approve / Reject) when they are
installed; `decide` is the same decision as a function call, for papermill and
scripts. Both go through `workflow.approve`/`reject`: the gate, its rules and
its records stay in one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

from aiops.approvals import workflow
from aiops.approvals.diff import ObjectDiff, object_diff, redact, redact_ops
from aiops.approvals.phr import Actor, PhrStore
from aiops.approvals.tiers import Governance, TierPolicy, load_governance
from aiops.diagnose.finding import Action
from aiops.errors import AiopsError, ParameterError

DECISIONS = ("approve", "reject")


# -- inputs --------------------------------------------------------------------------

def open_store(store: PhrStore | str | Path | None) -> PhrStore:
    """A PhrStore from a store, a directory or None (AIOPS_HISTORY / the git repo)."""
    return store if isinstance(store, PhrStore) else PhrStore(store)


def open_governance(governance: Governance | str | Path | None) -> Governance:
    """A Governance from itself, a file or None ($AIOPS_GOVERNANCE, else defaults)."""
    return governance if isinstance(governance, Governance) else load_governance(governance)


def pod_metrics(pods: list[dict[str, Any]], label: str = "") -> dict[str, Any]:
    """The symptom before the change (pods, ready, restarts), to compare after it."""
    ready = restarts = 0
    for p in pods:
        statuses = (p.get("status") or {}).get("containerStatuses") or []
        restarts += sum(int(cs.get("restartCount") or 0) for cs in statuses)
        ready += bool(statuses) and all(cs.get("ready") for cs in statuses)
    out: dict[str, Any] = {"pods": len(pods), "ready": ready, "restarts": restarts}
    return {"observed": label, **out} if label else out


# -- the review ----------------------------------------------------------------------

def _dur(td: timedelta) -> str:
    s = int(td.total_seconds())
    if s % 3600 == 0:
        return f"{s // 3600}h"
    return f"{s // 60}m" if s % 60 == 0 else f"{s}s"


def requirements(policy: TierPolicy, governance: Governance, tier: str,
                 emergency: bool = False) -> list[str]:
    """What a tier needs before its change may run, in words."""
    if policy.approvals == 0:
        out = ["no approver: proposing it approves it (it is logged)"]
    else:
        who = "distinct approvers" if policy.approvals > 1 else "approver"
        out = [f"{policy.approvals} {who}"
               + ("" if policy.self_approval else " other than the proposer")]
    out += [f"one approver with the {r} role" for r in policy.roles]
    sla = governance.emergency_sla if emergency else policy.sla
    if sla:
        out.append(f"a decision within {_dur(sla)}" + (" (emergency SLA)" if emergency else ""))
    if policy.expires:
        out.append(f"void if unapproved after {_dur(policy.expires)}; an approval lapses "
                   f"{_dur(policy.expires)} after it is given")
    if policy.dry_run:
        out.append("a server-side dry run must pass before it runs")
    return out


@dataclass
class Review:
    """Everything shown to an approver, secrets already masked."""

    action: Action
    object: str  # Kind/namespace/name
    diff: ObjectDiff
    tier: str
    needs: list[str]
    approvers: list[str]  # who may decide, "Name <email> (roles)"
    effect: str
    rollback: list[dict[str, Any]]  # the inverse patch, redacted
    validate: list[str]
    pre_metrics: dict[str, Any]
    change: dict[str, Any] | None = None  # the proposal's summary, once proposed
    patch: list[dict[str, Any]] = field(default_factory=list)  # redacted

    def to_dict(self) -> dict[str, Any]:
        return {"object": self.object, "kind": self.action.kind, "tier": self.tier,
                "action_hash": self.action.hash(), "needs": self.needs,
                "approvers": self.approvers, "effect": self.effect, "diff": self.diff.diff,
                "problem": self.diff.problem, "patch": self.patch, "rollback": self.rollback,
                "validate": self.validate, "pre_metrics": self.pre_metrics,
                "change": self.change}

    def _status(self) -> list[str]:
        c = self.change
        if not c:
            return ["not proposed yet"]
        out = [f"proposal {c['id']}: {c['state']}, proposed by {c['proposer']} at "
               f"{c['proposed_at']}",
               f"approvals so far: {', '.join(c['approvals']) or 'none'}",
               f"missing: {', '.join(c['missing']) or 'nothing'}"]
        if c.get("sla_deadline"):
            out.append(f"SLA deadline: {c['sla_deadline']}"
                       + (" (breached)" if c.get("sla_breached") else ""))
        return out

    def text(self) -> str:
        a = self.action
        lines = [f"Proposed change: {a.kind} of {self.object} (tier {self.tier})",
                 f"Action {a.hash()}", *(f"  {s}" for s in self._status()), "",
                 "Expected effect:", f"  {self.effect}", "",
                 f"What the {self.tier} tier needs:", *(f"  - {n}" for n in self.needs),
                 "Who may decide:", *(f"  - {p}" for p in self.approvers), "",
                 "Before -> after:"]
        if self.diff.problem:
            lines.append(f"  ! {self.diff.problem}")
        lines += [f"  {ln}" for ln in (self.diff.diff or "(no diff)").splitlines()]
        inverse = [f"  {json.dumps(op)}" for op in self.rollback] or ["  (none: not reversible)"]
        checks = [f"  - {v}" for v in self.validate] or ["  (nothing listed)"]
        lines += ["", "Patch:", *(f"  {json.dumps(op)}" for op in self.patch), "",
                  "Rollback plan: apply the inverse patch", *inverse, "then check:", *checks,
                  "", "Metrics before:"]
        lines += [f"  {k}: {v}" for k, v in self.pre_metrics.items()] or ["  (none recorded)"]
        return "\n".join(lines)

    def html(self) -> str:
        """Plain HTML with inline styles: no CSS file or script needed to read it."""
        def ul(items: list[str]) -> str:
            return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"

        def pre(body: str) -> str:
            return ('<pre style="background:#f6f8fa;padding:0.5em;overflow-x:auto;'
                    f'font-size:0.85em">{body}</pre>')

        def ops(items: list[dict[str, Any]]) -> str:
            return pre(escape("\n".join(json.dumps(op) for op in items))) if items \
                else "<p><em>none</em></p>"

        diff_lines = []
        for ln in (self.diff.diff or "").splitlines():
            colour = ("#1a7f37" if ln.startswith("+") and not ln.startswith("+++") else
                      "#cf222e" if ln.startswith("-") and not ln.startswith("---") else
                      "#6e7781" if ln.startswith(("@@", "---", "+++")) else "")
            style = f' style="color:{colour}"' if colour else ""
            diff_lines.append(f"<span{style}>{escape(ln)}</span>")
        problem = (f'<p style="color:#cf222e"><strong>{escape(self.diff.problem)}</strong></p>'
                   if self.diff.problem else "")
        metrics = "".join(f"<tr><th style='text-align:left'>{escape(str(k))}</th>"
                          f"<td>{escape(str(v))}</td></tr>" for k, v in self.pre_metrics.items())
        a = self.action
        return (
            '<div class="aiops-review" style="border:1px solid #d0d7de;padding:0.6em 1em;'
            'border-radius:6px">'
            f"<h3>Proposed change: {escape(a.kind)} of {escape(self.object)} "
            f"<span style='font-weight:normal'>(tier <strong>{escape(self.tier)}</strong>)"
            f"</span></h3>"
            f"<p><code>{escape(a.hash())}</code></p>{ul(self._status())}"
            f"<h4>Expected effect</h4><p>{escape(self.effect)}</p>"
            f"<h4>What the {escape(self.tier)} tier needs</h4>{ul(self.needs)}"
            f"<h4>Who may decide</h4>{ul(self.approvers)}"
            f"<h4>Before &rarr; after</h4>{problem}"
            + (pre("\n".join(diff_lines)) if diff_lines else "<p><em>no diff</em></p>")
            + f"<h4>Patch</h4>{ops(self.patch)}"
            f"<h4>Rollback plan</h4><p>Apply the inverse patch:</p>{ops(self.rollback)}"
            f"<p>then check:</p>{ul(self.validate or ['(nothing listed)'])}"
            "<h4>Metrics before</h4>"
            + (f"<table>{metrics}</table>" if metrics else "<p><em>none recorded</em></p>")
            + "</div>")

    def _repr_html_(self) -> str:
        return self.html()

    def __str__(self) -> str:
        return self.text()

    # the generated repr would print the raw Action (its patch values unmasked) as
    # a notebook's text/plain output
    __repr__ = __str__


def summary(c: workflow.Change, governance: Governance,
            now: datetime | None = None) -> dict[str, Any]:
    """A change's summary plus whether its SLA is breached while it waits."""
    now = now or datetime.now(UTC)
    s = c.summary(governance, now)
    deadline = c.sla_deadline(governance)
    s["sla_breached"] = bool(deadline and s["state"] == "proposed" and deadline < now)
    return s


def _find_change(store: PhrStore, action: Action) -> workflow.Change | None:
    """The latest proposal of exactly this Action, if it was proposed."""
    h = action.hash()
    found = [c for c in workflow.changes(store).values() if c.action_hash == h]
    return found[-1] if found else None


def review(action: Action, obj: dict[str, Any] | None, *, governance: Governance,
           store: PhrStore | None = None, pre_metrics: dict[str, Any] | None = None,
           change: workflow.Change | None = None) -> Review:
    """The review of `action` on `obj` (the object as loaded; None when unknown).

    With a store, the latest proposal of this exact Action (or `change`) adds its
    state, approvals so far, what is missing and the SLA deadline.
    """
    t = action.target
    ref = "/".join(x for x in (t.get("kind", ""), t.get("namespace", ""), t.get("name", ""))
                   if x)
    if change is None and store is not None:
        change = _find_change(store, action)
    if pre_metrics is None and change is not None:
        pre_metrics = dict(change.proposal.meta.pre_metrics)
    policy = governance.policy(action.tier)
    emergency = bool(change and change.emergency)
    people = [f"{p.name} <{p.email}> ({', '.join(p.roles)})" for p in governance.approvers]
    if not people:
        people = ["nobody: the governance file names no approvers, so every approval is "
                  "refused (set AIOPS_GOVERNANCE)"]
    kind = t.get("kind", "")
    return Review(action=action, object=ref,
                  diff=object_diff(obj, action.patch, ref or "object"),
                  tier=action.tier, needs=requirements(policy, governance, action.tier,
                                                       emergency),
                  approvers=people, effect=redact(action.description),
                  rollback=redact_ops(action.inverse, kind),
                  validate=[redact(v) for v in action.validate],
                  pre_metrics=redact(dict(pre_metrics or {})),
                  change=summary(change, governance) if change else None,
                  patch=redact_ops(action.patch, kind))


# -- deciding without widgets --------------------------------------------------------

def decide(proposal_id: str, decision: str = "approve", *, justification: str,
           approver_name: str | None = None, approver_email: str | None = None,
           store: PhrStore | str | Path | None = None,
           governance: Governance | str | Path | None = None,
           action: Action | None = None, strict: bool = False) -> dict[str, Any]:
    """Approve or reject a proposal from a script or a papermill run.

    Returns the change's summary plus `decision`, `outcome` (approved |
    rejected | refused), `message` and `record` (the id written). A refusal is
    recorded by the gate and reported in the result, so a notebook run goes on
    and shows it; `strict=True` raises ApprovalRefused instead. Bad input (an
    unknown id, no justification, no identity) always raises.
    """
    if decision not in DECISIONS:
        raise ParameterError(f"decision must be 'approve' or 'reject', not {decision!r}",
                             "pass decision='approve' or decision='reject'")
    st, gov = open_store(store), open_governance(governance)
    who = workflow.identity(approver_name, approver_email)
    try:
        if decision == "approve":
            c = workflow.approve(st, proposal_id, approver=who, justification=justification,
                                 governance=gov, action=action)
        else:
            c = workflow.reject(st, proposal_id, approver=who, justification=justification,
                                governance=gov)
    except workflow.ApprovalRefused as exc:
        if strict:
            raise
        c = workflow.change(st, proposal_id)
        return summary(c, gov) | {"decision": decision, "outcome": "refused",
                                  "message": str(exc), "record": c.steps[-1].id}
    s = summary(c, gov)
    done = "approved" if decision == "approve" else "rejected"
    message = f"{done} by {who.email}; {c.id} is now {s['state']}"
    if s["missing"]:
        message += f" (still missing: {', '.join(s['missing'])})"
    return s | {"decision": decision, "outcome": done, "message": message,
                "record": c.steps[-1].id}


def action_for(change: workflow.Change, actions: list[Action | None]) -> Action | None:
    """The Action among `actions` that this proposal is about (by hash), if any:
    an approval binds to the exact Action, so a look-alike is not enough."""
    return next((a for a in actions if a is not None and a.hash() == change.action_hash), None)


def how_to_decide(proposal_id: str) -> str:
    """The widget-free call, for a kernel without ipywidgets and for papermill."""
    return (f"To decide without widgets:\n"
            f"  from aiops.approvals.cell import decide\n"
            f"  decide({proposal_id!r}, 'approve', justification='why', "
            f"approver_name='Your Name', approver_email='you@example.com')\n"
            f"or from a terminal: aiops approve {proposal_id} --justification 'why'\n"
            f"(papermill: -p decision approve -p justification 'why' -p proposal_id "
            f"{proposal_id})")


# -- the cell with widgets -----------------------------------------------------------

@dataclass
class ApprovalCell:
    """The review and its controls; `widget` is None without ipywidgets."""

    change_id: str
    review: Review
    widget: Any = None
    justification: Any = None
    approve_button: Any = None
    reject_button: Any = None
    name: Any = None
    email: Any = None
    output: Any = None
    results: list[dict[str, Any]] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"ApprovalCell({self.change_id!r}, widgets={self.widget is not None})"


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def approval_cell(change_or_proposal_id: workflow.Change | str, *,
                  store: PhrStore | str | Path | None, governance: Governance | str | Path | None,
                  action: Action, obj: dict[str, Any] | None,
                  approver: Actor | None = None, show: bool = True) -> ApprovalCell:
    """Show the review of a proposal with Approve / Reject buttons and a
    justification field, wired to the gate; without ipywidgets, the text review
    and the decide() call to use instead."""
    st, gov = open_store(store), open_governance(governance)
    c = (change_or_proposal_id if isinstance(change_or_proposal_id, workflow.Change)
         else workflow.change(st, change_or_proposal_id))
    cell = ApprovalCell(c.id, review(action, obj, governance=gov, store=st, change=c))
    try:
        import ipywidgets as w
    except ImportError:
        if show:
            print(cell.review.text())
            print("\nipywidgets is not installed (pip install 'aiops-workbench[lab]').")
            print(how_to_decide(c.id))
        return cell

    if approver is None:
        try:
            approver = workflow.identity()
        except AiopsError:
            approver = None
    cell.name = w.Text(value=approver.name if approver else "", description="Name")
    cell.email = w.Text(value=approver.email if approver else "", description="Email")
    cell.justification = w.Textarea(placeholder="Why approve or reject (required)",
                                    description="Justification",
                                    layout=w.Layout(width="60%", height="5em"))
    cell.approve_button = w.Button(description="Approve", button_style="success",
                                   icon="check")
    cell.reject_button = w.Button(description="Reject", button_style="danger", icon="times")
    cell.output = w.Output()

    def on_click(decision: str) -> Any:
        def handler(_button: Any) -> None:
            cell.output.clear_output()
            try:
                res = decide(c.id, decision, justification=cell.justification.value,
                             approver_name=cell.name.value.strip() or None,
                             approver_email=cell.email.value.strip() or None,
                             store=st, governance=gov,
                             action=action if decision == "approve" else None)
            except AiopsError as exc:  # bad input: say what to fix, record nothing
                cell.output.append_stdout(f"not recorded: {exc}\n")
                return
            cell.results.append(res)
            cell.output.append_stdout(f"{res['message']} (record {res['record']})\n")
            if res["state"] != "proposed":
                cell.approve_button.disabled = cell.reject_button.disabled = True
        return handler

    cell.approve_button.on_click(on_click("approve"))
    cell.reject_button.on_click(on_click("reject"))
    if c.state(gov) != "proposed":
        cell.approve_button.disabled = cell.reject_button.disabled = True
    cell.widget = w.VBox([w.HBox([cell.name, cell.email]), cell.justification,
                          w.HBox([cell.approve_button, cell.reject_button]), cell.output])
    if show and _in_kernel():
        from IPython.display import display

        display(cell.review, cell.widget)
    elif show:  # a script or a terminal IPython: widgets cannot show there
        print(cell.review.text())
        print(how_to_decide(c.id))
    return cell
