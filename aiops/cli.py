"""The `aiops` command: one entry point, one subcommand per job.

Every command takes `--source` (demo | snapshot path | kube[:context]).
Errors from bad input print one line naming what is wrong and how to fix it,
exit 2, and show a traceback only with --debug.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from aiops.errors import AiopsError, ParameterError

app = typer.Typer(
    help="Evidence-based AIOps workbench for Kubernetes: diagnose, report, recommend, govern.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
demo_app = typer.Typer(help="The bundled demo cluster.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")
metrics_app = typer.Typer(
    help="A local usage history from metrics-server, for clusters without Prometheus.",
    no_args_is_help=True)
app.add_typer(metrics_app, name="metrics")

# Piped output (CI logs, files) gets wide tables instead of rich's 80 columns.
_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160
out = Console(width=_WIDTH)
err = Console(stderr=True, width=_WIDTH)
_DEBUG = {"on": False}

SourceOpt = Annotated[
    str,
    typer.Option("--source", "-s", help="demo | snapshot path | kube[:context]",
                 envvar="AIOPS_SOURCE"),
]
FleetSourceOpt = Annotated[
    str,
    typer.Option("--source", "-s", envvar="AIOPS_SOURCE",
                 help="demo | snapshot path | kube[:context]; several, comma-separated, "
                      "for a fleet (one report set per cluster plus fleet.html)"),
]
NamespacesOpt = Annotated[
    str, typer.Option("--namespaces", "-n", help="Comma-separated namespaces (default: all).")
]
RecordOpt = Annotated[bool, typer.Option(
    "--record", help="Record each proposed Action as a recommendation PHR (the first step "
    "of a change; see `aiops phr list`).")]
RecordStoreOpt = Annotated[Path | None, typer.Option(
    "--phr-store", help="PHR store for --record (default: $AIOPS_HISTORY, else "
    "history/prompts of the current git repository).", envvar="AIOPS_HISTORY")]


def _record(items, phr_store: Path | None) -> None:
    """Write recommendation PHRs and say how many (before the exit code is decided)."""
    from aiops.approvals.phr import PhrStore
    from aiops.approvals.recommend import record

    recs = record(PhrStore(phr_store), items)
    err.print(f"recorded {len(recs)} recommendation(s)"
              + (f": {', '.join(r.id for r in recs[:5])}" if recs else "")
              + ("" if len(recs) <= 5 else ", ..."), highlight=False)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _DEBUG["on"] = debug


def _load(source: str):
    """Open a source with a spinner; report unreadable files as warnings."""
    from aiops.sources import open_source

    with err.status(f"loading {source} ...") as status:
        if source == "kube" or source.startswith("kube:"):
            from aiops.sources.live import load_live

            state = load_live(source.partition(":")[2] or None,
                              progress=lambda msg: status.update(f"{source}: {msg}"))
        else:
            state = open_source(source)
    for p in state.problems:
        err.print(f"[yellow]warning:[/] {p}", highlight=False, soft_wrap=True)
    for kind, why in state.unavailable.items():
        err.print(f"[yellow]unavailable:[/] {kind}: {why}", highlight=False, soft_wrap=True)
    return state


def _input_problems(state) -> bool:
    """Files that could not be read make the exit code 2 (the rest was still used)."""
    return bool(state.problems) and not state.source.startswith("kube")


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


PromOpt = Annotated[str | None, typer.Option(
    "--prometheus", help="Prometheus-compatible URL for usage history.",
    envvar="AIOPS_PROMETHEUS_URL")]
PromTokenOpt = Annotated[Path | None, typer.Option(
    "--prometheus-token-file", help="File holding a bearer token for Prometheus.")]
PromHeaderOpt = Annotated[list[str] | None, typer.Option(
    "--prometheus-header", help="Extra HTTP header NAME=VALUE (repeatable).")]
StoreOpt = Annotated[Path | None, typer.Option(
    "--store", help="Local metrics store written by `aiops metrics sample`.",
    envvar="AIOPS_METRICS_STORE")]


def _history(state, prometheus: str | None, token_file: Path | None,
             headers: list[str] | None, store: Path | None):
    """Parse the history options, then let `open_history` choose the source."""
    from aiops.usage import open_history

    hdrs = {}
    for h in headers or []:
        key, sep, value = h.partition("=")
        if not sep or not key:
            raise ParameterError(f"invalid --prometheus-header {h!r}", "use NAME=VALUE")
        hdrs[key] = value
    return open_history(state, prometheus=prometheus, token_file=token_file, headers=hdrs,
                        store=store)


@app.command()
def rightsize(
    source: SourceOpt = "demo",
    prometheus: PromOpt = None,
    prometheus_token_file: PromTokenOpt = None,
    prometheus_header: PromHeaderOpt = None,
    store: StoreOpt = None,
    history: Annotated[str, typer.Option("--history", help="History window, e.g. 14d.")] = "14d",
    namespaces: NamespacesOpt = "",
    percentile: Annotated[float, typer.Option(help="CPU request percentile.")] = 0.95,
    margin: Annotated[float, typer.Option(help="Safety margin over the percentile/peak.")] = 0.30,
    strategy: Annotated[str, typer.Option(help="percentile | krr-simple")] = "percentile",
    fmt: Annotated[str, typer.Option("--format", help="table | json | csv")] = "table",
    record: RecordOpt = False,
    phr_store: RecordStoreOpt = None,
) -> None:
    """Right-size requests and limits from usage history, back-tested, with savings."""
    from aiops.durations import parse_duration
    from aiops.rightsizing import RightsizeConfig, recommend, to_json_records

    if fmt not in ("table", "json", "csv"):
        raise ParameterError(f"unknown --format {fmt!r}", "use table, json or csv")
    parse_duration(history, "history window")
    try:
        cfg = RightsizeConfig(strategy=strategy, percentile=percentile, margin=margin)
    except ValueError as exc:
        raise ParameterError(f"invalid right-sizing setting: {exc}".splitlines()[0],
                             "see `aiops rightsize --help`") from None
    state = _load(source)
    hist = _history(state, prometheus, prometheus_token_file, prometheus_header, store)
    ns = [n for n in namespaces.split(",") if n] or None
    with err.status("computing recommendations ..."):
        recs = recommend(state, hist, cfg, window=history, namespaces=ns)
    records = to_json_records(recs)
    if fmt == "json":
        sys.stdout.write(json.dumps(records, indent=2, default=str) + "\n")
    elif fmt == "csv":
        import pandas as pd

        flat = pd.DataFrame(records).drop(columns=["action"])
        flat["backtest"] = flat["backtest"].map(json.dumps)
        sys.stdout.write(flat.to_csv(index=False))
    else:
        _print_recommendations(recs)
    if record:
        from aiops.approvals.recommend import from_rightsizing

        _record(from_rightsizing(recs), phr_store)


def _print_recommendations(recs) -> None:
    from rich.table import Table

    from aiops.quantity import format_bytes, format_cores

    t = Table("workload", "container", "cpu req", "mem req", "mem limit", "status",
              "back-test", "$/month saved")
    for r in recs.itertuples():
        bt = r.backtest if isinstance(r.backtest, dict) else {}
        t.add_row(f"{r.namespace}/{r.workload_kind}/{r.workload}", r.container,
                  f"{format_cores(r.cpu_request_current)} -> "
                  f"{format_cores(r.cpu_request_recommended)}",
                  f"{format_bytes(r.memory_request_current)} -> "
                  f"{format_bytes(r.memory_request_recommended)}",
                  f"{format_bytes(r.memory_limit_current)} -> "
                  f"{format_bytes(r.memory_limit_recommended)}",
                  r.status,
                  f"cpu>req {bt.get('cpu_over_request_pct', '-')}%, "
                  f"throttle {bt.get('cpu_throttle_risk_pct', '-')}%, "
                  f"mem>limit {bt.get('memory_over_limit', '-')}x" if bt else "-",
                  f"{r.monthly_savings_usd:.2f}" if r.monthly_savings_usd == r.monthly_savings_usd
                  else "-")
    out.print(t)
    total = recs["monthly_savings_usd"].sum()
    out.print(f"total: {total:.2f} USD/month (p95 + margin; savings become real once nodes "
              "shrink)")


@app.command()
def cost(
    source: SourceOpt = "demo",
    by: Annotated[str, typer.Option(help="namespace | workload | node | label:KEY")] = "namespace",
    pricing: Annotated[Path | None, typer.Option(help="Pricing file (JSON/YAML).")] = None,
    store: StoreOpt = None,
    history: Annotated[str | None, typer.Option(
        "--history", help="Usage window for the average, e.g. 7d (default: all).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Monthly cost by namespace/workload/label (OpenCost model), with idle cost."""
    from aiops.cost import aggregate, cost_report, default_prices, load_prices

    if fmt not in ("table", "json"):
        raise ParameterError(f"unknown --format {fmt!r}", "use table or json")
    if history:
        from aiops.durations import parse_duration

        parse_duration(history, "history window")
    prices = load_prices(pricing) if pricing else default_prices()
    state = _load(source)
    usage = state.history
    if store is not None:  # else the source's own history, as before
        usage = _history(state, None, None, None, store).samples(window=history)
    rep = cost_report(state, usage, prices, window=history)
    df = aggregate(rep, by)
    if fmt == "json":
        sys.stdout.write(df.to_json(orient="records", indent=2) + "\n")
    else:
        out.print(df.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
        out.print(f"USD per month (730 h); prices: CPU {prices.default.cpu_core_hour}/core-h, "
                  f"RAM {prices.default.ram_gib_hour}/GiB-h; idle = node cost - allocated",
                  highlight=False)


# -- aiops audit (security posture; issue 5) ------------------------------------------

@app.command()
def audit(
    source: Annotated[str | None, typer.Option(
        "--source", "-s", help="demo | snapshot path | kube[:context] (default: demo)",
        envvar="AIOPS_SOURCE")] = None,
    manifests: Annotated[str | None, typer.Option(
        "--manifests", help="YAML/JSON manifests: a file, a directory, or - for stdin.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json | sarif | junit")] = "table",
    min_score: Annotated[float | None, typer.Option(
        "--min-score", help="Exit 3 when the score is below this (0-100).")] = None,
    exemptions: Annotated[Path | None, typer.Option(
        "--exemptions", help="YAML file of exemptions (each with a reason).")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the output to this file instead of stdout.")] = None,
) -> None:
    """Audit security and reliability posture (Pod Security Standards, images, ...).

    Exit code 0: passed; 3: a non-exempt danger-level check failed or the score is
    below --min-score; 2: bad input. Manifests that cannot be audited (invalid YAML,
    custom resources) are warned about and listed, never fatal.
    """
    from rich.markup import escape

    from aiops.security import audit as run_audit
    from aiops.security import load_manifests
    from aiops.security.exemptions import load_config
    from aiops.security.formats import (
        FORMATS,
        Redactor,
        exit_code,
        problems_text,
        render_table,
        render_text,
        scan_root,
    )

    if fmt not in FORMATS:
        raise ParameterError(f"unknown --format {fmt!r}", f"use {', '.join(FORMATS)}")
    if min_score is not None and not 0 <= min_score <= 100:
        raise ParameterError(f"invalid --min-score {min_score:g}", "use a number from 0 to 100")
    if manifests and source and source != os.environ.get("AIOPS_SOURCE"):
        raise ParameterError("--source and --manifests are exclusive", "give one of them")
    if output is not None and not output.parent.is_dir():
        raise ParameterError(f"--output {output}: directory {output.parent} does not exist",
                             "create it or write elsewhere")
    config = load_config(exemptions)  # a bad file fails before anything is loaded
    root = None
    if manifests:
        state, origin = load_manifests(manifests)
        root = scan_root(manifests)
        for line in problems_text(state.problems, root):
            err.print(f"[yellow]warning:[/] {escape(line)}", highlight=False, soft_wrap=True)
    else:
        state, origin = _load(source or "demo"), None
    with err.status("auditing ..."):
        rep = run_audit(state, exemptions=config, origin=origin)
    redactor = Redactor.from_state(state)
    if output is None and fmt == "table":
        render_table(rep, out, redactor, root)
    else:
        text = render_text(rep, fmt, redactor, root, manifests=bool(manifests))
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text, encoding="utf-8")
            err.print(f"wrote {output}", highlight=False)
    code = exit_code(rep, min_score)
    if code == 0 and not manifests and _input_problems(state):
        code = 2
    raise typer.Exit(code)


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


DEFAULT_STORE = Path("aiops-metrics")
SampleStoreOpt = Annotated[Path, typer.Option(
    "--store", help="Store directory (created on the first sample).",
    envvar="AIOPS_METRICS_STORE")]


@metrics_app.command("sample")
def metrics_sample(
    source: Annotated[str, typer.Option(
        "--source", "-s", help="kube[:context] (a snapshot path or demo also works, for trying)"
    )] = "kube",
    every: Annotated[str, typer.Option(help="Polling interval, e.g. 60s, 5m.")] = "60s",
    store: SampleStoreOpt = DEFAULT_STORE,
    retention: Annotated[str, typer.Option(
        help="Keep this much history, e.g. 30d (whole days are dropped); 'none' keeps all."
    )] = "30d",
    namespace: Annotated[list[str] | None, typer.Option(
        "--namespace", "-n", help="Only these namespaces (repeatable or comma-separated).")
    ] = None,
    once: Annotated[bool, typer.Option(
        "--once", help="Take one sample and exit (for cron / a CronJob).")] = False,
    count: Annotated[int | None, typer.Option(
        "--count", min=1, help="Stop after N polls (default: run until stopped).")] = None,
    timeout: Annotated[float, typer.Option(help="Per-request timeout (s).")] = 15.0,
) -> None:
    """Poll metrics.k8s.io (metrics-server) and append the samples to a local store.

    Runs until Ctrl-C or SIGTERM, which stop it after the write in progress. A
    failed poll prints one line and is retried with backoff; stored samples are
    never lost. Exit code 2 when no poll succeeded (e.g. `--once` failed).
    """
    from rich.markup import escape

    from aiops.durations import parse_duration
    from aiops.sources.live import KubeconfigError
    from aiops.sources.metrics_store import MetricsStore, metrics_loader, sample_loop

    if once and count not in (None, 1):
        raise ParameterError("--once and --count disagree", "give one of them")
    polls = 1 if once else count
    interval = parse_duration(every, "sampling interval")
    keep = None if retention.strip().lower() in ("none", "0", "forever", "") else retention
    mstore = MetricsStore(store, retention=keep)
    if store.exists() and not store.is_dir():
        raise ParameterError(f"metrics store {store} is not a directory",
                             "pass --store DIR (a directory, created if missing)")
    namespaces = [n for item in namespace or [] for n in item.split(",") if n] or None
    load = metrics_loader(source, namespaces=namespaces, timeout=timeout)
    last_error: list[Exception] = []

    def show_poll(poll) -> None:
        now = _utc_now()
        if poll.error is None:
            rows = poll.rows
            skipped = "" if len(rows) else " (metrics-server has not refreshed since the " \
                                               "last poll)"
            out.print(f"{now}  pods {rows.attrs.get('pods', 0)}  containers "
                      f"{rows.attrs.get('containers', 0)}  rows {len(rows)}{skipped}",
                      highlight=False, soft_wrap=True)
            last_error.clear()
        else:
            last_error[:] = [poll.error]
            retry = "" if polls is not None and poll.number >= polls else \
                f"; retrying in {poll.backoff:.3g}s"
            err.print(f"{now}  [red]poll {poll.number} failed:[/] "
                      f"{escape(_one_line(poll.error))}{retry}",
                      highlight=False, soft_wrap=True)

    err.print(f"sampling {source} every {interval.total_seconds():g}s into {store} "
              f"(retention {keep or 'none'}"
              f"{', namespaces ' + ','.join(namespaces) if namespaces else ''}); "
              "Ctrl-C stops", highlight=False, soft_wrap=True)
    with _stop_on_signals() as stop:
        res = sample_loop(load, mstore, every=interval.total_seconds(), iterations=polls,
                          stop_event=stop, on_poll=show_poll, fatal=(KubeconfigError,))
    if res.polls > 1 or stop.is_set():
        err.print(f"{res.polls} polls, {res.failures} failed, {res.rows} rows written to {store}",
                  highlight=False)
    if res.polls and res.failures == res.polls and last_error:
        exc = last_error[0]
        if isinstance(exc, AiopsError):
            raise exc
        raise typer.Exit(2)


def _utc_now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _one_line(exc: Exception) -> str:
    """An error as one line: the message and, for our errors, the fix."""
    if isinstance(exc, AiopsError):
        text = exc.message + (f" (fix: {exc.hint})" if exc.hint else "")
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT/SIGTERM set an event the sampler checks between polls, so the write
    in progress completes; a second signal interrupts at once (appends are atomic)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        err.print(f"{signal.Signals(signum).name}: stopping after the current poll",
                  highlight=False)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


@metrics_app.command("show")
def metrics_show(
    store: SampleStoreOpt = DEFAULT_STORE,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """What a metrics store holds: time range, samples, namespaces, containers, size."""
    from aiops.sources.metrics_store import MetricsStore

    if fmt not in ("table", "json"):
        raise ParameterError(f"unknown --format {fmt!r}", "use table or json")
    if not store.is_dir():
        raise ParameterError(f"metrics store {store} does not exist",
                             "create it with `aiops metrics sample --store DIR`")
    info = MetricsStore(store).describe()
    if fmt == "json":
        sys.stdout.write(json.dumps(info, indent=2, default=str) + "\n")
        return
    from aiops.quantity import format_bytes

    out.print(f"store:      {store}", highlight=False)
    if not info["rows"]:
        out.print("empty: no samples yet (run `aiops metrics sample`)", highlight=False)
    else:
        out.print(f"time range: {info['first']} .. {info['last']} ({info['span']})",
                  highlight=False)
        out.print(f"samples:    {info['samples']} sample times, {info['rows']} rows "
                  f"(cpu {info['rows_by_resource'].get('cpu', 0)}, memory "
                  f"{info['rows_by_resource'].get('memory', 0)})", highlight=False)
        out.print(f"namespaces: {len(info['namespaces'])} ({', '.join(info['namespaces'])})",
                  highlight=False, soft_wrap=True)
        out.print(f"workloads:  {info['workloads']}   pods: {info['pods']}   "
                  f"containers: {info['containers']}", highlight=False)
    out.print(f"on disk:    {format_bytes(info['bytes'])} in {info['files']} Parquet files, "
              f"{len(info['days'])} day partitions", highlight=False)


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


@demo_app.command("generate")
def demo_generate(
    out_dir: Annotated[Path, typer.Option("--out", help="Target directory.")],
    seed: int = 42,
    scale: Annotated[int, typer.Option(help="Copies of the todo namespace.")] = 1,
    events_per_pod: Annotated[int | None, typer.Option(help="Extra events per pod.")] = None,
    history: Annotated[bool, typer.Option(help="Write usage history.")] = True,
) -> None:
    """Generate the demo cluster (or a scaled-up copy for benchmarks)."""
    from aiops.sources.demo.generator import generate

    with err.status(f"generating into {out_dir} ..."):
        counts = generate(out_dir, seed=seed, scale=scale, events_per_pod=events_per_pod,
                          history=history)
    out.print(counts)


# -- aiops phr: the audit trail (Prompt History Records) ----------------------
phr_app = typer.Typer(help="The audit trail: Prompt History Records in git.",
                      no_args_is_help=True)
app.add_typer(phr_app, name="phr")
PhrStoreOpt = Annotated[Path | None, typer.Option(
    "--store", help="PHR store directory (default: history/prompts of the current git "
    "repository).", envvar="AIOPS_HISTORY")]


def _phr_store(store: Path | None):
    from aiops.approvals.phr import PhrStore

    return PhrStore(store)


@phr_app.command("list")
def phr_list(
    store: PhrStoreOpt = None,
    rec_type: Annotated[str | None, typer.Option("--type", help="Only this record type.")] = None,
    since: Annotated[str | None, typer.Option(help="Only records newer than e.g. 7d, 24h.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """List the records, oldest first."""
    import pandas as pd

    from aiops.approvals.phr import RECORD_TYPES
    from aiops.durations import parse_duration

    if fmt not in ("table", "json"):
        raise ParameterError(f"unknown --format {fmt!r}", "use table or json")
    if rec_type and rec_type not in RECORD_TYPES:
        raise ParameterError(f"unknown --type {rec_type!r}",
                             f"use one of {', '.join(RECORD_TYPES)}")
    cutoff = None
    if since:
        cutoff = (pd.Timestamp.now(tz="UTC") - parse_duration(since, "--since")).to_pydatetime()
    recs = _phr_store(store).records(rec_type, cutoff)
    if fmt == "json":
        docs = [r.meta.model_dump(mode="json") | {"hash": r.hash} for r in recs]
        sys.stdout.write(json.dumps(docs, indent=2) + "\n")
        return
    from rich.table import Table

    t = Table("seq", "id", "type", "created (UTC)", "actor", "tier", "object", "title")
    for r in recs:
        m, o = r.meta, r.meta.object
        obj = f"{o.kind}/{o.namespace + '/' if o.namespace else ''}{o.name}" if o else "-"
        t.add_row(str(m.seq), m.id, m.type, f"{m.created_at:%Y-%m-%d %H:%M:%S}", m.actor.name,
                  m.tier or "-", obj, m.title)
    out.print(t)
    out.print(f"{len(recs)} records", highlight=False)


@phr_app.command("show")
def phr_show(
    rec_id: Annotated[str, typer.Argument(metavar="ID", help="Record id (or a unique prefix).")],
    store: PhrStoreOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="markdown | json")] = "markdown",
) -> None:
    """Print one record."""
    if fmt not in ("markdown", "json"):
        raise ParameterError(f"unknown --format {fmt!r}", "use markdown or json")
    rec = _phr_store(store).get(rec_id)
    if fmt == "json":
        sys.stdout.write(json.dumps(rec.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(rec.path.read_text(encoding="utf-8"))
        sys.stdout.write(f"\n<!-- {rec.path} {rec.hash} -->\n")


@phr_app.command("verify")
def phr_verify(
    store: PhrStoreOpt = None,
    full: Annotated[bool, typer.Option(help="Also validate every record's whole front "
                                       "matter against the schema (slower).")] = False,
    fmt: Annotated[str, typer.Option("--format", help="text | json")] = "text",
) -> None:
    """Check the hash chain and git history. Exit 0: intact; 1: problems (listed)."""
    if fmt not in ("text", "json"):
        raise ParameterError(f"unknown --format {fmt!r}", "use text or json")
    res = _phr_store(store).verify(full=full)
    if fmt == "json":
        sys.stdout.write(json.dumps(res.to_dict(), indent=2) + "\n")
    elif res.ok:
        out.print(f"ok: {res.records} records, chain intact, {res.commits} commits "
                  f"({res.root})", highlight=False)
    else:
        out.print(f"[red]{len(res.problems)} problems[/] in {res.root} ({res.records} records):",
                  highlight=False)
        for p in res.problems:
            out.print(f"  {p}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(0 if res.ok else 1)


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



# -- aiops execute / rollback: the only commands that change a cluster -----------
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
    proposal_id: Annotated[str, typer.Argument(metavar="ID", help="Proposal id (or a "
                                               "unique prefix).")],
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
    proposal_id: Annotated[str, typer.Argument(metavar="ID", help="Proposal id (or a "
                                               "unique prefix).")],
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
    proposal_id: Annotated[str, typer.Argument(metavar="ID", help="Proposal id (or a "
                                               "unique prefix).")],
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

# -- aiops notify / runbooks: escalation through a webhook, generated runbooks (issue 7) --
notify_app = typer.Typer(help="Escalation through a webhook (Slack-compatible or JSON).",
                         no_args_is_help=True)
app.add_typer(notify_app, name="notify")


def _notifier(url: str | None, fmt: str | None):
    """The webhook from --url/--format, else AIOPS_WEBHOOK_URL/AIOPS_WEBHOOK_FORMAT."""
    from aiops.notify.webhook import ENV_FORMAT, ENV_URL, Notifier

    url = url or os.environ.get(ENV_URL, "").strip()
    if not url:
        raise ParameterError("no webhook configured",
                             f"set {ENV_URL} (and {ENV_FORMAT}=slack|json) or pass --url")
    return Notifier(url, format=fmt or os.environ.get(ENV_FORMAT, "").strip() or "slack")


def _escalate(findings, notifier, state) -> None:
    """Send the critical findings of a diagnosis; failures are printed, not fatal."""
    from aiops.notify import escalate

    res = escalate(findings, notifier, source=state.source, cluster=state.context or "")
    err.print(f"notify: {len(res.sent)} sent, {len(res.duplicates)} already sent within "
              f"the window, {len(res.failed)} failed ({notifier.masked_url})", highlight=False)
    for why in res.failed.values():
        err.print(f"[red]notify failed:[/] {why}", highlight=False, markup=False,
                  soft_wrap=True)


@notify_app.command("test")
def notify_test(
    url: Annotated[str | None, typer.Option(
        "--url", help="Webhook URL (default: $AIOPS_WEBHOOK_URL).")] = None,
    fmt: Annotated[str | None, typer.Option(
        "--format", help="slack | json (default: $AIOPS_WEBHOOK_FORMAT, else slack)")] = None,
) -> None:
    """Send a sample critical finding to the webhook. Exit 0 delivered, 1 not."""
    from aiops.notify.escalate import build
    from aiops.notify.message import sample_finding

    notifier = _notifier(url, fmt)
    d = notifier.send(build(notifier, sample_finding(), source="aiops notify test"))
    out.print(f"delivered to {notifier.masked_url} ({notifier.format}): HTTP {d.status} "
              f"after {d.attempts} attempt{'s' if d.attempts != 1 else ''}", highlight=False)


@app.command("runbooks")
def runbooks_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write them.")] = Path(
        "reports/runbooks"),
    history: Annotated[Path | None, typer.Option(
        "--history", help="PHR store for measured recovery times (e.g. history/prompts).")
    ] = None,
    source: Annotated[str | None, typer.Option(
        "--source", "-s", help="Also quote the remediations of this cluster's findings as "
        "examples (demo | snapshot path | kube[:context]).")] = None,
) -> None:
    """Write one Markdown runbook per failure family, and an index README.md."""
    from aiops.runbooks import generate

    store = None
    if history is not None:
        if not history.is_dir():
            raise ParameterError(f"PHR store {history} does not exist",
                                 "pass --history DIR of an existing audit trail")
        store = _phr_store(history)
    findings, label = None, ""
    if source:
        from aiops.diagnose import diagnose as run

        state = _load(source)
        findings, label = run(state).findings, state.source
    paths = generate(out_dir, store=store, findings=findings, source=label)
    out.print(f"wrote {len(paths) - 1} runbooks and {paths[-1]}", highlight=False)

# -- aiops schedule: scheduled reports ------------------------------------------
schedule_app = typer.Typer(
    help="Scheduled reports: cron expressions with time zones, locks, retries, retention.",
    no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")
ScheduleFileOpt = Annotated[Path | None, typer.Option(
    "--file", "-f", help="Schedule file (default: $AIOPS_SCHEDULE, ./schedules.yaml, else "
    "the built-in seed schedule).")]
ScheduleOutOpt = Annotated[Path, typer.Option("--out", help="Reports directory.")]
ScheduleHistoryOpt = Annotated[Path | None, typer.Option(
    "--history", help="PHR store for the run records (default: $AIOPS_HISTORY or the "
    "repository's history/prompts; demo runs use a store under <out>/.schedule/history).")]
OnlyOpt = Annotated[list[str] | None, typer.Option(
    "--only", help="Only this report (repeatable).")]


def _schedule(file: Path | None):
    from aiops.schedule.config import load_schedule

    return load_schedule(file)


def _say(msg: str) -> None:
    from datetime import UTC, datetime

    err.print(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} {msg}", highlight=False, markup=False,
              soft_wrap=True)


@schedule_app.command("show")
def schedule_show(
    file: ScheduleFileOpt = None,
    count: Annotated[int, typer.Option("-n", "--count", min=1, help="How many runs.")] = 5,
    now: Annotated[str | None, typer.Option(help="Pretend it is this time (ISO 8601).")] = None,
) -> None:
    """Print the schedule and the next runs of all enabled reports."""
    from rich.table import Table

    from aiops.schedule.scheduler import Scheduler

    schedule, path = _schedule(file)
    sched = Scheduler(schedule)
    out.print(f"schedule: {path or 'built-in seed schedule'}", highlight=False)
    t = Table("report", "cron", "time zone", "when", "source", "retries", "retention",
              "enabled")
    for name, e in schedule.reports.items():
        keep = ", ".join(x for x in (f"keep {e.retention.keep}" if e.retention.keep else "",
                                     f"max {e.retention.max_age}" if e.retention.max_age
                                     else "") if x) or "all"
        t.add_row(name, e.cron, e.timezone, e.describe(), e.source, str(e.retries), keep,
                  "yes" if e.enabled else "no")
    out.print(t)
    t = Table("next run (UTC)", "local time", "report")
    for slot, name, e in sched.next_runs(count, _parse_now(now)):
        t.add_row(f"{slot:%Y-%m-%d %H:%M %a}", f"{slot.astimezone(e.zone):%Y-%m-%d %H:%M %Z}",
                  name)
    out.print(t)


def _parse_now(now: str | None):
    from datetime import UTC, datetime

    if now is None:
        return None
    try:
        value = datetime.fromisoformat(now.replace("Z", "+00:00"))
    except ValueError:
        raise ParameterError(f"invalid --now {now!r}",
                             "use ISO 8601, e.g. 2026-11-23T00:05:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@schedule_app.command("once")
def schedule_once(
    file: ScheduleFileOpt = None,
    out_dir: ScheduleOutOpt = Path("reports"),
    history: ScheduleHistoryOpt = None,
    now: Annotated[str | None, typer.Option(
        help="Decide what is due as if it were this time (ISO 8601; default: now).")] = None,
    only: OnlyOpt = None,
    workers: Annotated[int, typer.Option(min=1, help="Reports run in parallel.")] = 2,
) -> None:
    """Run the reports that are due now, then exit (for cron and CronJobs).

    Missed slots are caught up once (the latest runs, the rest are counted). A report
    another scheduler is running is skipped. Exit 0: all ran ok or nothing was due;
    1: a report failed.
    """
    from aiops.schedule.scheduler import Scheduler

    schedule, _ = _schedule(file)
    sched = Scheduler(schedule, out_dir, history=history, workers=workers, only=only, say=_say)
    results = sched.once(_parse_now(now))
    failed = False
    for r in results:
        if r.outcome is None:
            out.print(f"{r.name}: {r.status}" + (f" ({r.detail})" if r.detail else ""),
                      highlight=False)
            continue
        o = r.outcome
        failed |= not o.ok
        skipped = f", {o.skipped} missed slot(s) skipped" if o.skipped else ""
        where = o.html if o.ok else o.error
        out.print(f"{r.name}: {o.result} slot {o.slot:%Y-%m-%d %H:%M} UTC, "
                  f"{len(o.attempts)} attempt(s), {o.seconds:.1f}s{skipped}: {where} "
                  f"[PHR {o.phr}]", highlight=False, soft_wrap=True)
    raise typer.Exit(1 if failed else 0)


@schedule_app.command("run")
def schedule_run(
    file: ScheduleFileOpt = None,
    out_dir: ScheduleOutOpt = Path("reports"),
    history: ScheduleHistoryOpt = None,
    only: OnlyOpt = None,
    workers: Annotated[int, typer.Option(min=1, help="Reports run in parallel.")] = 2,
) -> None:
    """Run due reports until stopped, sleeping until the next slot.

    SIGTERM or Ctrl-C stop it after the runs in progress (no new retries start).
    """
    from aiops.schedule.scheduler import Scheduler

    schedule, path = _schedule(file)
    sched = Scheduler(schedule, out_dir, history=history, workers=workers, only=only, say=_say)

    def stop(signum, _frame) -> None:
        _say(f"{signal.Signals(signum).name}: stopping after the runs in progress")
        sched.stop.set()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    _say(f"scheduler started: {len(sched.entries())} report(s) from "
         f"{path or 'the built-in seed schedule'} into {sched.reports_dir}")
    try:
        sched.run()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    _say("scheduler stopped")


@schedule_app.command("install-cron")
def schedule_install_cron(
    file: ScheduleFileOpt = None,
    out_dir: ScheduleOutOpt = Path("reports"),
    history: ScheduleHistoryOpt = None,
    every: Annotated[int, typer.Option(help="Minutes between `once` runs.")] = 5,
    write: Annotated[bool, typer.Option(
        "--write", help="Install into your crontab (replacing an earlier aiops block).")
    ] = False,
) -> None:
    """Print the crontab lines that run `aiops schedule once` (or install them)."""
    from aiops.schedule.scheduler import crontab_lines, install_crontab

    schedule, path = _schedule(file)
    lines = crontab_lines(schedule, schedule_file=path, reports_dir=out_dir, history=history,
                          every=every)
    if write:
        install_crontab(lines)
        err.print(f"installed {len(lines)} lines into your crontab (see `crontab -l`)",
                  highlight=False)
    else:
        sys.stdout.write("\n".join(lines) + "\n")


# -- aiops watch: follow a cluster and detect failures within seconds (issue 7, MTTD) --
def _parse_rate(text: str) -> float:
    """'2/s', '30/m' or '2' (per second) as diagnoses per second."""
    num, _, unit = text.strip().partition("/")
    per = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0}.get(unit.strip())
    try:
        rate = float(num) / per if per else 0.0
    except ValueError:
        rate = 0.0
    if rate <= 0:
        raise ParameterError(f"invalid --max-rate {text!r}", "use e.g. 2/s or 30/m")
    return rate


@app.command("watch")
def watch_cluster(
    source: SourceOpt = "kube",
    namespace: Annotated[str | None, typer.Option(
        "--namespace", "-n", help="Watch one namespace (default: all).")] = None,
    store: PhrStoreOpt = None,
    notify: Annotated[bool, typer.Option(
        "--notify", help="Send critical findings to $AIOPS_WEBHOOK_URL (once per episode)."
    )] = False,
    max_rate: Annotated[str, typer.Option(
        "--max-rate", help="Diagnoses per second at most, e.g. 2/s or 30/m.")] = "2/s",
    duration: Annotated[str | None, typer.Option(
        help="Stop after, e.g. 10m (default: until SIGTERM/Ctrl-C).")] = None,
    existing: Annotated[str, typer.Option(
        help="Failures present at start: record (a detection each, once) or ignore.")
    ] = "record",
    heartbeat: Annotated[Path | None, typer.Option(
        help="Touch this file every 30 s while every stream is alive (for a liveness "
        "probe in a pod).")] = None,
) -> None:
    """Follow the cluster through the watch API; record a detection PHR for each new
    failure episode within seconds and escalate the critical ones with --notify."""
    from aiops.durations import parse_duration
    from aiops.sources.live import connect, load_live
    from aiops.watch import Watcher, WatchOptions

    if not (source == "kube" or source.startswith("kube:")):
        raise ParameterError(f"aiops watch follows a live cluster, not {source!r}",
                             "use --source kube or kube:CONTEXT")
    if existing not in ("record", "ignore"):
        raise ParameterError(f"unknown --existing {existing!r}", "use record or ignore")
    rate = _parse_rate(max_rate)
    seconds = parse_duration(duration, "--duration").total_seconds() if duration else None
    notifier = _notifier(None, None) if notify else None
    phr = _phr_store(store)
    context = source.partition(":")[2] or None
    client, _server, _ctx = connect(context)
    try:
        initial = load_live(context, namespaces=[namespace] if namespace else None, logs=False)
        options = WatchOptions(namespace=namespace, max_rate=rate,
                               record_existing=existing == "record")
        watcher = Watcher(client, initial, store=phr, notifier=notifier, options=options,
                          log=lambda m: err.print(m, highlight=False, markup=False,
                                                  soft_wrap=True))
        with _stop_on_signals() as stop:
            watcher.start()
            err.print(f"watching {initial.source} ({namespace or 'all namespaces'}); "
                      f"{len(watcher.episodes.open)} failures open at start", highlight=False)
            _watch_until(stop, seconds, watcher, heartbeat)
            watcher.stop()
    finally:
        client.close()
    err.print(f"stopped: {len(watcher.stats.diagnoses)} diagnoses, "
              f"{watcher.episodes.recorded} detections recorded, "
              f"{len(watcher.episodes.open)} failures open",
              highlight=False)


def _watch_until(stop: threading.Event, seconds: float | None, watcher,
                 heartbeat: Path | None, beat: float = 30.0) -> None:
    """Wait for a stop or the duration; meanwhile touch the heartbeat file while the
    watcher is alive, so a probe restarts a pod whose streams died."""
    import time

    end = None if seconds is None else time.monotonic() + seconds
    while True:
        if heartbeat is not None and watcher.alive():
            heartbeat.parent.mkdir(parents=True, exist_ok=True)
            heartbeat.touch()
        left = None if end is None else end - time.monotonic()
        if left is not None and left <= 0:
            return
        if stop.wait(beat if left is None else min(beat, left)):
            return


def main(argv: list[str] | None = None) -> int:
    """Entry point: turn AiopsError into one line and an exit code."""
    try:
        app(args=argv, prog_name="aiops")
    except AiopsError as exc:
        if _DEBUG["on"]:
            raise
        hint = f" (fix: {exc.hint})" if exc.hint else ""
        err.print(f"[red]error:[/] {exc.message}{hint}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
