"""`aiops metrics sample | show`: a local usage history from metrics-server, for
clusters without Prometheus.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from aiops.cli._common import _stop_on_signals, app, err, out
from aiops.errors import AiopsError, ParameterError

metrics_app = typer.Typer(
    help="A local usage history from metrics-server, for clusters without Prometheus.",
    no_args_is_help=True)
app.add_typer(metrics_app, name="metrics")


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
