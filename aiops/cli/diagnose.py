"""`aiops info | health | diagnose | ask`: read a cluster and say what is wrong."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from aiops.cli._common import (
    NamespacesOpt,
    RecordOpt,
    RecordStoreOpt,
    SourceOpt,
    _input_problems,
    _load,
    _notifier,
    _record,
    app,
    err,
    out,
)
from aiops.errors import ParameterError


@app.command()
def info(source: SourceOpt = "demo") -> None:
    """Load a source and show what it holds (object counts, capture time, problems)."""
    state = _load(source)
    out.print(f"source: {state.source}  context: {state.context or '-'}  "
              f"captured: {state.captured_at.isoformat()}")
    for kind, n in state.summary().items():
        out.print(f"  {kind:<26} {n:>7}")
    out.print(f"  {'logs':<26} {len(state.logs):>7}")
    out.print(f"  {'previous logs':<26} {len(state.previous_logs):>7}")
    if _input_problems(state):
        raise typer.Exit(2)


@app.command()
def health(
    source: SourceOpt = "demo",
    namespaces: NamespacesOpt = "",
    window: Annotated[str, typer.Option(help="Time window for events, e.g. 7d, 24h.")] = "7d",
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Score the cluster's health (Popeye-style) and list the problems found."""
    from aiops.health import assess, parse_window

    if fmt not in ("table", "json"):
        raise ParameterError(f"unknown --format {fmt!r}", "use table or json")
    parse_window(window)  # reject a bad parameter before loading anything
    state = _load(source)
    rep = assess(state, namespaces.split(",") if namespaces else None, window)
    if fmt == "json":
        doc = rep.summary() | {"problems": json.loads(rep.issues.to_json(orient="records"))}
        out.print_json(json.dumps(doc))
    else:
        from rich.table import Table

        out.print(f"[bold]Health score {rep.score:.0f}/100, grade {rep.grade}[/]  "
                  f"({state.source}, captured {state.captured_at:%Y-%m-%d %H:%M} UTC)")
        t = Table("severity", "section", "object", "reason", "detail", show_lines=False)
        for r in rep.issues.itertuples():
            obj = f"{r.kind}/{r.namespace + '/' if r.namespace else ''}{r.name}"
            t.add_row(r.severity, r.section, obj, r.reason, r.detail)
        out.print(t)
        out.print(f"[dim]{rep.formula}[/]")
    if _input_problems(state):
        raise typer.Exit(2)


@app.command()
def diagnose(
    source: SourceOpt = "demo",
    namespace: Annotated[str | None, typer.Option("--namespace", "-n",
                                                  help="Limit to one namespace.")] = None,
    pod: Annotated[str | None, typer.Option("--pod", help="Diagnose one pod.")] = None,
    workload: Annotated[str | None, typer.Option(
        "--workload", help="Diagnose one workload, KIND/NAME.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json | markdown")] = "table",
    notify: Annotated[bool, typer.Option(
        "--notify", help="Send critical findings to $AIOPS_WEBHOOK_URL (once per episode)."
    )] = False,
    record: RecordOpt = False,
    phr_store: RecordStoreOpt = None,
) -> None:
    """Find root causes with quoted evidence and reversible remediations.

    Exit code 0: nothing wrong; 1: critical findings; 2: bad input.
    """
    from aiops.diagnose import diagnose as run
    from aiops.diagnose import render
    from aiops.diagnose.target import parse_workload, resolve_pod, resolve_workload

    if fmt not in ("table", "json", "markdown"):
        raise ParameterError(f"unknown --format {fmt!r}", "use table, json or markdown")
    if pod and workload:
        raise ParameterError("--pod and --workload are exclusive", "give one of them")
    if workload:
        parse_workload(workload)  # reject a malformed value before loading
    notifier = _notifier(None, None) if notify else None
    state = _load(source)
    target: dict = {"namespace": namespace}
    if pod:
        target["namespace"], target["pod"] = resolve_pod(state, pod, namespace)
    elif workload:
        ns, kind, name = resolve_workload(state, workload, namespace)
        target.update(namespace=ns, workload=(kind, name))
    diag = run(state, **target)
    if fmt == "json":
        sys.stdout.write(render.to_json(diag) + "\n")
    elif fmt == "markdown":
        sys.stdout.write(render.to_markdown(diag) + "\n")
    else:
        render.print_table(diag, out)
    if notifier is not None:
        _escalate(diag.findings, notifier, state)
    if record:
        from aiops.approvals.recommend import from_findings

        _record(from_findings(diag.findings), phr_store)
    if _input_problems(state):
        raise typer.Exit(2)
    raise typer.Exit(1 if diag.has_critical else 0)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help='e.g. "why is the backend failing?"')],
    source: SourceOpt = "demo",
    fmt: Annotated[str, typer.Option("--format", help="text | json")] = "text",
    explain: Annotated[bool | None, typer.Option(
        "--llm/--no-llm", help="Phrase the answer with the configured LLM endpoint.")] = None,
) -> None:
    """Ask in plain language; answered from the rules (an LLM may only rephrase)."""
    from aiops.diagnose.ask import answer_dict
    from aiops.diagnose.ask import ask as run

    if fmt not in ("text", "json"):
        raise ParameterError(f"unknown --format {fmt!r}", "use text or json")
    ans = run(_load(source), question, explain=explain)
    if fmt == "json":
        from aiops.redact import mask_text

        sys.stdout.write(mask_text(json.dumps(answer_dict(ans), indent=2, default=str)) + "\n")
    else:
        out.print(str(ans), highlight=False, markup=False)


def _escalate(findings, notifier, state) -> None:
    """Send the critical findings of a diagnosis; failures are printed, not fatal."""
    from aiops.notify import escalate

    res = escalate(findings, notifier, source=state.source, cluster=state.context or "")
    err.print(f"notify: {len(res.sent)} sent, {len(res.duplicates)} already sent within "
              f"the window, {len(res.failed)} failed ({notifier.masked_url})", highlight=False)
    for why in res.failed.values():
        err.print(f"[red]notify failed:[/] {why}", highlight=False, markup=False,
                  soft_wrap=True)
