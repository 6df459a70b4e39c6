"""`aiops rollout watch`: the rollout guard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aiops.cli._common import PhrStoreOpt, SourceOpt, _load, _phr_store, app, out
from aiops.errors import ParameterError

# -- aiops rollout: the rollout guard ---------------------------------------------
rollout_app = typer.Typer(help="Follow a rolling update; recommend continue, pause or undo.",
                          no_args_is_help=True)
app.add_typer(rollout_app, name="rollout")


@rollout_app.command("watch")
def rollout_watch(
    workload: Annotated[str, typer.Argument(metavar="KIND/NAME",
                                            help="The Deployment, e.g. deploy/todo-frontend.")],
    source: SourceOpt = "demo",
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="Its namespace "
                         "(a snapshot: found by name; a cluster: default 'default').")] = None,
    every: Annotated[str, typer.Option(help="Poll interval, e.g. 10s.")] = "10s",
    timeout: Annotated[str, typer.Option(help="Give up after, e.g. 10m.")] = "10m",
    store: PhrStoreOpt = None,
    governance: Annotated[Path | None, typer.Option(help="Tiers and approvers (YAML).",
                                                    envvar="AIOPS_GOVERNANCE")] = None,
    execute: Annotated[bool, typer.Option(help="Wait for an approval of the proposed pause/"
                                          "undo, then execute it through the gate.")] = False,
) -> None:
    """Compare the new pods of a rolling update with the old ones until it completes,
    times out or a pause/undo is recommended (proposed for approval, never approved
    here). Exit 0: completed healthy; 1: pause/undo recommended or executed; 2: bad
    input; 3: timed out / still in progress; 4: refused by the gate."""
    from aiops.approvals.tiers import load_governance
    from aiops.approvals.workflow import identity
    from aiops.diagnose.target import parse_workload, resolve_workload
    from aiops.durations import parse_duration
    from aiops.rollout.watch import LivePoller, SnapshotPoller, watch

    kind, name = parse_workload(workload)
    if kind != "Deployment":
        raise ParameterError(f"rollout watch follows Deployments, not {kind}",
                             "give deploy/NAME")
    interval = parse_duration(every, "--every").total_seconds()
    limit = parse_duration(timeout, "--timeout").total_seconds()
    gov = load_governance(governance)
    phr = _phr_store(store)
    actor = identity(repo=phr.repo.working_tree_dir)
    live = source == "kube" or source.startswith("kube:")
    poller: LivePoller | SnapshotPoller
    if live:
        poller = LivePoller(source.partition(":")[2] or None, namespace or "default", name)
        ns = namespace or "default"
    else:
        if execute:
            raise ParameterError("--execute needs a live cluster",
                                 "use --source kube[:context]; a snapshot cannot be changed")
        state = _load(source)
        ns, _kind, name = resolve_workload(state, f"deployment/{name}", namespace)
        poller = SnapshotPoller(state)
    result = watch(poller, ns, name, store=phr, actor=actor, governance=gov, every=interval,
                   timeout=limit, execute=execute, writer=poller.writer,
                   one_shot=poller.one_shot,
                   say=lambda line: out.print(line, highlight=False, markup=False,
                                              soft_wrap=True))
    d = result.decision
    if d is not None:
        out.print(d.comparison.table().to_string(index=False), highlight=False, markup=False)
        out.print(f"decision: {d.summary}", highlight=False, markup=False, soft_wrap=True)
        for n in d.comparison.notes:
            out.print(f"note: {n}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(result.exit_code)
