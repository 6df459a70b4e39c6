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
NamespacesOpt = Annotated[
    str, typer.Option("--namespaces", "-n", help="Comma-separated namespaces (default: all).")
]


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
    source: SourceOpt = "demo",
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
) -> None:
    """Execute report notebooks with papermill and render them to offline HTML."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from aiops.reports.runner import REPORTS, run_reports

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
    if any(not r.ok for r in results):
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
