"""What every command group shares: the root app, the consoles, the common options
and the helpers for loading a source, the PHR store, the webhook and signals.

Kept in one place so the groups print, fail and stop the same way.
"""

from __future__ import annotations

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

from aiops.errors import ParameterError

app = typer.Typer(
    help="Evidence-based AIOps workbench for Kubernetes: diagnose, report, recommend, govern.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Piped output (CI logs, files) gets wide tables instead of rich's 80 columns.
_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160
out = Console(width=_WIDTH)
err = Console(stderr=True, width=_WIDTH)
_DEBUG = {"on": False}

# Options more than one command group takes.
SourceOpt = Annotated[
    str,
    typer.Option("--source", "-s", help="demo | snapshot path | kube[:context]",
                 envvar="AIOPS_SOURCE"),
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
PhrStoreOpt = Annotated[Path | None, typer.Option(
    "--store", help="PHR store directory (default: history/prompts of the current git "
    "repository).", envvar="AIOPS_HISTORY")]


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


def _record(items, phr_store: Path | None) -> None:
    """Write recommendation PHRs and say how many (before the exit code is decided)."""
    from aiops.approvals.phr import PhrStore
    from aiops.approvals.recommend import record

    recs = record(PhrStore(phr_store), items)
    err.print(f"recorded {len(recs)} recommendation(s)"
              + (f": {', '.join(r.id for r in recs[:5])}" if recs else "")
              + ("" if len(recs) <= 5 else ", ..."), highlight=False)


def _phr_store(store: Path | None):
    from aiops.approvals.phr import PhrStore

    return PhrStore(store)


def _notifier(url: str | None, fmt: str | None):
    """The webhook from --url/--format, else AIOPS_WEBHOOK_URL/AIOPS_WEBHOOK_FORMAT."""
    from aiops.notify.webhook import ENV_FORMAT, ENV_URL, Notifier

    url = url or os.environ.get(ENV_URL, "").strip()
    if not url:
        raise ParameterError("no webhook configured",
                             f"set {ENV_URL} (and {ENV_FORMAT}=slack|json) or pass --url")
    return Notifier(url, format=fmt or os.environ.get(ENV_FORMAT, "").strip() or "slack")


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
