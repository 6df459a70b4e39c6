"""`aiops capture | report`: snapshots, and report notebooks rendered to HTML (one
cluster or a fleet), recorded as PHRs and escalated when they fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aiops.cli._common import (
    NamespacesOpt,
    SourceOpt,
    _load,
    _notifier,
    app,
    err,
    out,
)
from aiops.errors import ParameterError

FleetSourceOpt = Annotated[
    str,
    typer.Option("--source", "-s", envvar="AIOPS_SOURCE",
                 help="demo | snapshot path | kube[:context]; several, comma-separated, "
                      "for a fleet (one report set per cluster plus fleet.html)"),
]


@app.command()
def capture(
    out_dir: Annotated[Path, typer.Argument(help="Directory to write the snapshot to.")],
    source: SourceOpt = "kube",
    overwrite: Annotated[bool, typer.Option(help="Write into a non-empty directory.")] = False,
) -> None:
    """Write a snapshot (cluster-info dump layout plus the kinds it leaves out)."""
    from aiops.sources.capture import capture as do_capture

    state = _load(source)
    with err.status(f"writing {out_dir} ..."):
        counts = do_capture(state, out_dir, overwrite=overwrite)
    total = sum(counts.values())
    out.print(f"wrote {total} objects to {out_dir} ({len(counts)} kinds)")


@app.command()
def report(
    name: Annotated[str, typer.Argument(help="health | all (every registered report)")],
    source: FleetSourceOpt = "demo",
    out_dir: Annotated[Path, typer.Option("--out", help="Reports directory.")] = Path("reports"),
    namespaces: NamespacesOpt = "",
    window: Annotated[str | None, typer.Option(
        help="Time window, e.g. 7d (default: each report's own).")] = None,
    timeout: Annotated[int, typer.Option(help="Per-cell execution timeout (s).")] = 600,
    kernel: Annotated[str | None, typer.Option(help="Jupyter kernel (default: this env).")] = None,
    date: Annotated[str | None, typer.Option(help="Report date folder, YYYY-MM-DD.")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="Extra notebook parameter KEY=VALUE (repeatable).")] = None,
    store: Annotated[Path | None, typer.Option(
        "--store", help="Local metrics store for the usage reports (same as -p store=DIR).")
    ] = None,
    phr_store: Annotated[Path | None, typer.Option(
        "--phr-store", help="Record a `report` PHR per report here (default: "
        "$AIOPS_HISTORY, else history/prompts of the repository; the demo records into "
        "its own store under --out).")] = None,
    record: Annotated[bool, typer.Option(
        "--record/--no-record", help="Record each generated report as a PHR.")] = True,
    notify: Annotated[bool, typer.Option(
        "--notify", help="Send each failed report to $AIOPS_WEBHOOK_URL.")] = False,
) -> None:
    """Execute report notebooks with papermill and render them to offline HTML."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from aiops.reports.runner import REPORTS, run_reports

    if notify:
        _notifier(None, None)  # a missing webhook is bad input, before any work
    names = list(REPORTS) if name == "all" else [name]
    params: dict[str, str] = {"namespaces": namespaces}
    if window:
        params["window"] = window
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ParameterError(f"invalid --param {item!r}", "use KEY=VALUE")
        params[key] = value
    if store is not None:
        if not store.is_dir():
            raise ParameterError(f"metrics store {store} does not exist",
                                 "create it with `aiops metrics sample --store DIR`")
        # absolute: the notebooks run in their own directory
        params.setdefault("store", str(store.resolve()))
    from aiops.reports.fleet import is_fleet

    if is_fleet(source):  # several clusters: one `aiops report` process each, then fleet.html
        _report_fleet(name, source, out_dir, params, timeout=timeout, kernel=kernel, date=date)
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=err, transient=True) as bar:
        tasks: dict[str, int] = {}

        def step(ev) -> None:
            if ev.report not in tasks:
                tasks[ev.report] = bar.add_task(ev.report, total=ev.total or None)
            task = tasks[ev.report]
            if ev.stage == "cell":
                bar.update(task, completed=ev.done, total=ev.total,
                           description=f"{ev.report}: cell {ev.done}/{ev.total}")
            else:
                bar.update(task, description=f"{ev.report}: {ev.stage}")

        results = run_reports(names, source=source, out_dir=out_dir, parameters=params,
                              timeout=timeout, kernel=kernel, date=date, progress=step)
    for r in results:
        if r.ok:
            out.print(f"[green]ok[/] {r.name}: {r.html}  ({r.seconds:.1f}s)", highlight=False)
        else:
            out.print(f"[red]FAILED[/] {r.name}: {r.error}", highlight=False, soft_wrap=True)
            if r.failed_notebook:
                out.print(f"  executed notebook with the failing cell: {r.failed_notebook}",
                          highlight=False)
    out.print(f"reports index: {Path(out_dir) / 'index.html'}", highlight=False)
    if record:
        _record_reports(results, source, out_dir, phr_store, params)
    if notify:
        _notify_failures(results, source)
    if any(not r.ok for r in results):
        raise typer.Exit(1)


def _report_fleet(name: str, source: str, out_dir: Path, params: dict[str, str], *,
                  timeout: int, kernel: str | None, date: str | None) -> None:
    """`report --source a,b,...`: each cluster into `<out>/<cluster>/`, two at a time.

    The kernel and the date are settled here once, so the clusters do not race to
    install the same kernelspec and all land in the same day folder.
    """
    from aiops.reports.fleet import parse_sources, run_fleet
    from aiops.reports.runner import ensure_kernel, get_report, report_date

    if name != "all":
        get_report(name)  # an unknown report fails once, before any cluster starts
    members = parse_sources(source)
    args = ["--timeout", str(timeout), "--kernel", kernel or ensure_kernel(),
            "--date", report_date(date)]
    for key, value in params.items():
        if key != "namespaces" or value:
            args += ["-p", f"{key}={value}"]

    def done(run) -> None:
        mark = "[green]ok[/]" if run.ok else "[red]FAILED[/]"
        out.print(f"{mark} {run.member.name} ({run.member.source})", highlight=False)
        if not run.ok:
            err.print(run.output[-2000:], highlight=False, markup=False, soft_wrap=True)

    runs = run_fleet(members, name, out_dir, args, on_done=done)
    out.print(f"fleet summary: {Path(out_dir) / 'fleet.html'}", highlight=False)
    if any(not r.ok for r in runs):
        raise typer.Exit(1)


def _notify_failures(results, source: str) -> None:
    """Escalate failed reports through the webhook; a delivery failure is printed."""
    from aiops.notify import notify_report_failure
    from aiops.notify.webhook import NotifyError

    notifier = _notifier(None, None)
    for r in results:
        if r.ok:
            continue
        try:
            notify_report_failure(r, notifier, source=source)
            err.print(f"notify: {r.name} failure sent ({notifier.masked_url})",
                      highlight=False)
        except NotifyError as exc:
            err.print(f"[red]notify failed:[/] {exc}", highlight=False, markup=False,
                      soft_wrap=True)


def _record_reports(results, source: str, out_dir: Path, phr_store: Path | None,
                    params: dict[str, str]) -> None:
    """One `report` PHR per report (the demo into its own store, never the real
    trail); a store that cannot be written is a warning: the reports stand."""
    from aiops.errors import HistoryError
    from aiops.schedule.audit import history_root, record_run

    try:
        root = history_root(source, out_dir, phr_store)
        ids = [record_run(root, name=r.name, ok=r.ok,
                          title=f"{r.name} report {'rendered' if r.ok else 'FAILED'}",
                          body=str(r.html if r.ok else r.error),
                          data={"report": r.name, "source": source, "ok": r.ok,
                                "html": str(r.html) if r.ok else None,
                                "seconds": round(r.seconds, 2), "parameters": params,
                                "automated": True})
               for r in results]
    except HistoryError as exc:
        err.print(f"[yellow]warning:[/] reports not recorded in the audit trail: {exc}",
                  highlight=False, soft_wrap=True)
        return
    err.print(f"recorded {len(ids)} report PHR(s) in {root or 'the audit trail'}",
              highlight=False)
