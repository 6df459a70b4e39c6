"""`aiops execute | rollback | pending | approve | reject | show-change`: the approval
gate from a terminal, and the only commands that change a cluster.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from aiops.cli._common import PhrStoreOpt, _phr_store, app, out
from aiops.errors import ParameterError

GovernanceOpt = Annotated[Path | None, typer.Option(
    "--governance", help="Governance file: tiers and approvers (default: the built-in "
    "tiers, no approvers).", envvar="AIOPS_GOVERNANCE")]
JustificationOpt = Annotated[str, typer.Option(
    "--justification", "-j", help="Why, in one sentence (recorded).")]
NameOpt = Annotated[str | None, typer.Option("--name", help="Who decides (default: git "
                                             "config user.name).")]
EmailOpt = Annotated[str | None, typer.Option("--email", help="Their email (default: git "
                                              "config user.email).")]
DecisionFormatOpt = Annotated[str, typer.Option("--format", help="text | json")]
ProposalIdArg = Annotated[str, typer.Argument(metavar="ID", help="Proposal id (or a "
                                                                  "unique prefix).")]
KubeOpt = Annotated[str, typer.Option(
    "--source", "-s", help="kube[:context]: the cluster to change.", envvar="AIOPS_SOURCE")]


def _writer(source: str, kubeconfig: str | None, timeout: float):
    from aiops.approvals.kube_writer import KubeWriter
    from aiops.sources.live import connect

    if source != "kube" and not source.startswith("kube:"):
        raise ParameterError(f"--source {source!r} cannot be changed",
                             "changes go to a live cluster: --source kube[:context]")
    client, _server, _ctx = connect(source.partition(":")[2] or None, kubeconfig=kubeconfig,
                                    timeout=timeout)
    return KubeWriter(client, timeout=timeout)


def _decider(name: str | None, email: str | None):
    from aiops.approvals.workflow import identity

    return identity(name, email)


def _recorded_action(store, proposal_id: str):
    """The proposal's Action as recorded, if it is exactly what was approved."""
    from aiops.approvals import workflow
    from aiops.approvals.executor import action_from_record

    c = workflow.change(store, proposal_id)
    action = action_from_record(c.action)
    if action.hash() != c.action_hash:
        raise ParameterError(
            f"the Action recorded in {c.id} was redacted (it held a secret), so it cannot be "
            "rebuilt exactly from the audit trail",
            "execute it from the notebook that proposed it (aiops.approvals.executor.execute)")
    return action


@app.command("execute")
def execute_cmd(
    proposal_id: Annotated[str, typer.Argument(metavar="ID", help="The approved proposal.")],
    source: KubeOpt = "kube",
    kubeconfig: Annotated[str | None, typer.Option(help="Kubeconfig file.")] = None,
    store: PhrStoreOpt = None,
    governance: GovernanceOpt = None,
    name: Annotated[str | None, typer.Option(help="Your name (default: git config).")] = None,
    email: Annotated[str | None, typer.Option(help="Your email (default: git config).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for validation.")] = 300.0,
) -> None:
    """Run an approved change: dry run, change, validation, automatic rollback on failure.

    Exit 0 validated; 1 failed or rolled back; 4 refused by the gate (recorded)."""
    from aiops.approvals.executor import execute
    from aiops.approvals.tiers import load_governance

    st = _phr_store(store)
    action = _recorded_action(st, proposal_id)
    writer = _writer(source, kubeconfig, min(timeout, 30.0))
    try:
        run = execute(st, proposal_id, action, writer=writer, actor=_decider(name, email),
                      governance=load_governance(governance), timeout=timeout)
    finally:
        writer.client.close()
    for c in run.validation.checks if run.validation else []:
        mark = "[green]ok[/]" if c["passed"] else "[red]FAILED[/]"
        out.print(f"  {mark} {c['check']}: {c['seen']}", highlight=False)
    out.print(f"{run.change.id}: {run.state} (records {', '.join(run.records)})",
              highlight=False)
    raise typer.Exit(0 if run.state == "validated" else 1)


@app.command("rollback")
def rollback_cmd(
    proposal_id: Annotated[str, typer.Argument(metavar="ID", help="The executed change.")],
    source: KubeOpt = "kube",
    kubeconfig: Annotated[str | None, typer.Option(help="Kubeconfig file.")] = None,
    store: PhrStoreOpt = None,
    governance: GovernanceOpt = None,
    name: Annotated[str | None, typer.Option(help="Your name (default: git config).")] = None,
    email: Annotated[str | None, typer.Option(help="Your email (default: git config).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for validation.")] = 300.0,
) -> None:
    """Revert an executed change with its inverse (dry run first). Exit 0 reverted."""
    from aiops.approvals.executor import rollback
    from aiops.approvals.tiers import load_governance

    st = _phr_store(store)
    action = _recorded_action(st, proposal_id)
    writer = _writer(source, kubeconfig, min(timeout, 30.0))
    try:
        run = rollback(st, proposal_id, writer=writer, actor=_decider(name, email),
                       governance=load_governance(governance), action=action,
                       timeout=timeout)
    finally:
        writer.client.close()
    out.print(f"{run.change.id}: {run.state} (record {', '.join(run.records)})",
              highlight=False)
    raise typer.Exit(0 if run.state == "rolled-back" else 1)


# -- aiops pending / approve / reject: the approval gate from a terminal ------------


@app.command("pending")
def approvals_pending(
    store: PhrStoreOpt = None,
    governance: GovernanceOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Proposals awaiting a decision: approvals so far, what is missing, SLA."""
    from datetime import UTC, datetime

    from aiops.approvals import workflow
    from aiops.approvals.cell import summary
    from aiops.approvals.tiers import load_governance

    if fmt not in ("table", "json"):
        raise ParameterError(f"unknown --format {fmt!r}", "use table or json")
    gov, now = load_governance(governance), datetime.now(UTC)
    rows = [summary(c, gov, now) for c in workflow.pending(_phr_store(store), gov, now)]
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    from rich.table import Table

    t = Table("id", "tier", "object", "proposer", "approvals", "missing", "SLA deadline (UTC)",
              "breached")
    for r in rows:
        deadline = (r["sla_deadline"] or "-")[:19].replace("T", " ")
        t.add_row(r["id"], r["tier"] + (" (emergency)" if r["emergency"] else ""),
                  r["object"], r["proposer"], ", ".join(r["approvals"]) or "-",
                  ", ".join(r["missing"]) or "-", deadline,
                  "[red]yes[/]" if r["sla_breached"] else "no")
    out.print(t)
    out.print(f"{len(rows)} pending", highlight=False)


def _decide_cli(decision: str, proposal_id: str, justification: str, name: str | None,
                email: str | None, store: Path | None, governance: Path | None,
                fmt: str) -> None:
    """approve/reject share this: a refusal raises ApprovalRefused (exit 4, recorded)."""
    from aiops.approvals.cell import decide

    if fmt not in ("text", "json"):
        raise ParameterError(f"unknown --format {fmt!r}", "use text or json")
    res = decide(proposal_id, decision, justification=justification, approver_name=name,
                 approver_email=email, store=_phr_store(store), governance=governance,
                 strict=True)
    if fmt == "json":
        sys.stdout.write(json.dumps(res, indent=2) + "\n")
    else:
        out.print(f"{res['message']} (record {res['record']})", highlight=False,
                  soft_wrap=True)


@app.command("approve")
def approvals_approve(
    proposal_id: ProposalIdArg,
    justification: JustificationOpt,
    name: NameOpt = None,
    email: EmailOpt = None,
    store: PhrStoreOpt = None,
    governance: GovernanceOpt = None,
    fmt: DecisionFormatOpt = "text",
) -> None:
    """Approve a proposal. Exit 0: recorded; 4: refused (the refusal is recorded)."""
    _decide_cli("approve", proposal_id, justification, name, email, store, governance, fmt)


@app.command("reject")
def approvals_reject(
    proposal_id: ProposalIdArg,
    justification: JustificationOpt,
    name: NameOpt = None,
    email: EmailOpt = None,
    store: PhrStoreOpt = None,
    governance: GovernanceOpt = None,
    fmt: DecisionFormatOpt = "text",
) -> None:
    """Reject a proposal. Exit 0: recorded; 4: refused (the refusal is recorded)."""
    _decide_cli("reject", proposal_id, justification, name, email, store, governance, fmt)


@app.command("show-change")
def approvals_show_change(
    proposal_id: ProposalIdArg,
    store: PhrStoreOpt = None,
    governance: GovernanceOpt = None,
    fmt: DecisionFormatOpt = "text",
) -> None:
    """One change: its state, the proposed patch and rollback, and every step so far."""
    from aiops.approvals import workflow
    from aiops.approvals.cell import summary
    from aiops.approvals.tiers import load_governance

    if fmt not in ("text", "json"):
        raise ParameterError(f"unknown --format {fmt!r}", "use text or json")
    gov = load_governance(governance)
    c = workflow.change(_phr_store(store), proposal_id)
    steps = [{"id": r.id, "type": r.meta.type, "created_at": r.meta.created_at.isoformat(),
              "actor": r.meta.actor.email, "title": r.meta.title} for r in c.steps]
    doc = summary(c, gov) | {"action": c.action, "steps": steps}
    if fmt == "json":
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
        return
    lines = [f"{c.id}  {doc['state']}  {doc['tier']}  {doc['object']}", doc["title"],
             f"proposed by {doc['proposer']} at {doc['proposed_at']}",
             f"approvals: {', '.join(doc['approvals']) or 'none'}; missing: "
             f"{', '.join(doc['missing']) or 'nothing'}",
             f"SLA deadline: {doc['sla_deadline'] or '-'}"
             + (" (breached)" if doc["sla_breached"] else ""),
             f"effect: {c.action.get('description', '')}",
             "patch:", *(f"  {json.dumps(op)}" for op in c.action.get("patch") or []),
             "rollback:", *(f"  {json.dumps(op)}" for op in c.action.get("inverse") or []),
             "steps:", *(f"  {s['created_at'][:19]}  {s['type']:<10} {s['actor']}  {s['title']}"
                         for s in steps)]
    out.print("\n".join(lines), highlight=False, markup=False, soft_wrap=True)
