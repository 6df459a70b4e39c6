"""`aiops watch`: follow a cluster and detect failures within seconds (issue 7, MTTD)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

import typer

from aiops.cli._common import (
    PhrStoreOpt,
    SourceOpt,
    _notifier,
    _phr_store,
    _stop_on_signals,
    app,
    err,
)
from aiops.errors import ParameterError


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
