"""One scheduled run of one report: attempts, timeouts, retries, PHR, retention.

Each attempt runs `aiops.reports.runner.run_report` in a worker process
(`aiops.schedule.worker`) with papermill's per-cell timeout; the scheduler adds
a wall-clock timeout for the whole attempt and kills the worker and its kernel
(the kernel runs in its own session, so the process tree is walked with psutil,
not a process group). Failed attempts are retried after `backoff`, doubled each
time. The outcome becomes a `report` PHR, then the report's old runs are pruned.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiops.schedule.audit import history_root, record_run
from aiops.schedule.config import ReportSchedule
from aiops.schedule.retention import prune

log = logging.getLogger(__name__)
KILL_GRACE = 3.0  # seconds between SIGTERM and SIGKILL for a timed-out attempt


@dataclass
class Attempt:
    number: int
    ok: bool
    seconds: float
    error: str = ""
    timed_out: bool = False


@dataclass
class RunOutcome:
    """What a scheduled run did; also what its PHR and the state file say."""

    name: str
    slot: datetime
    skipped: int
    result: str  # ok | failed | timeout | stopped
    attempts: list[Attempt] = field(default_factory=list)
    seconds: float = 0.0
    html: str | None = None
    error: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    phr: str | None = None
    pruned: list[str] = field(default_factory=list)
    day: str = ""

    @property
    def ok(self) -> bool:
        return self.result == "ok"


def report_day(entry: ReportSchedule, slot: datetime) -> str:
    """A slot's run goes into the folder of its date in the schedule's time zone."""
    return slot.astimezone(entry.zone).date().isoformat()


def _kill_tree(pid: int) -> None:
    """Terminate a worker and everything it started (the kernel included)."""
    import psutil

    try:
        parent = psutil.Process(pid)
        procs = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=KILL_GRACE)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=KILL_GRACE)


def _keep_killed_notebook(day_dir: Path, name: str) -> None:
    """After a kill, keep the partial notebook as `<name>.failed.ipynb` (like a failed
    run) and remove the other temporary files the worker left."""
    partial = sorted(day_dir.glob(f".{name}.*.tmp.ipynb"), key=lambda p: p.stat().st_mtime)
    if partial:
        os.replace(partial[-1], day_dir / f"{name}.failed.ipynb")
    for leftover in day_dir.glob(f".{name}.*.tmp*"):
        leftover.unlink(missing_ok=True)


def attempt_once(name: str, entry: ReportSchedule, *, reports_dir: Path, day: str,
                 number: int) -> tuple[Attempt, dict[str, Any]]:
    """Run one attempt in a worker process bounded by `entry.wall_timeout`."""
    from aiops.reports.runner import get_report, notebooks_dir

    spec = get_report(name)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"aiops-sched-{name}-") as tmp:
        req, res, errlog = Path(tmp, "req.json"), Path(tmp, "res.json"), Path(tmp, "stderr")
        req.write_text(json.dumps({
            "spec": {"name": spec.name, "notebook": spec.notebook, "title": spec.title,
                     "description": spec.description, "defaults": dict(spec.defaults)},
            "notebooks": str(notebooks_dir()), "source": entry.source,
            "out_dir": str(reports_dir), "parameters": entry.parameters,
            "timeout": entry.timeout, "date": day}, default=str), encoding="utf-8")
        with open(errlog, "wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "aiops.schedule.worker",
                                     str(req), str(res)], stdin=subprocess.DEVNULL,
                                    stdout=err, stderr=err, start_new_session=True)
            try:
                proc.wait(timeout=entry.wall_timeout)
            except subprocess.TimeoutExpired:
                _kill_tree(proc.pid)
                proc.wait()
                _keep_killed_notebook(reports_dir / day, name)
                secs = time.monotonic() - t0
                return Attempt(number, False, secs, f"report {name!r} did not finish within "
                               f"{entry.wall_timeout:g}s (wall clock); killed", True), {}
        secs = time.monotonic() - t0
        if not res.exists():
            tail = errlog.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            why = tail[-1] if tail else f"exit code {proc.returncode}"
            return Attempt(number, False, secs, f"worker for {name!r} died: {why}"), {}
        out = json.loads(res.read_text(encoding="utf-8"))
    if out["ok"]:
        return Attempt(number, True, secs), out
    error = out["error"] + (f" ({out['hint']})" if out.get("hint") else "")
    return Attempt(number, False, secs, error), out


def run_scheduled(name: str, entry: ReportSchedule, *, slot: datetime, skipped: int,
                  reports_dir: str | Path, history: str | Path | None = None,
                  stop: threading.Event | None = None,
                  say: Callable[[str], None] | None = None) -> RunOutcome:
    """Run `name` for `slot` with retries, record its PHR, prune by retention."""
    say = say or (lambda _msg: None)
    stop = stop or threading.Event()
    reports_dir = Path(reports_dir).expanduser().resolve()
    root = history_root(entry.source, reports_dir, history)  # refuse a bad store first
    day = report_day(entry, slot)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    outcome = RunOutcome(name, slot, skipped, "failed", day=day,
                         parameters=dict(entry.parameters))
    for number in range(1, entry.retries + 2):
        attempt, out = attempt_once(name, entry, reports_dir=reports_dir, day=day,
                                    number=number)
        outcome.attempts.append(attempt)
        if attempt.ok:
            outcome.result, outcome.html = "ok", out.get("html")
            outcome.parameters = {k: v for k, v in (out.get("parameters") or {}).items()
                                  if k not in ("summary_path",)}
            break
        outcome.result = "timeout" if attempt.timed_out else "failed"
        outcome.error = attempt.error
        say(f"{name}: attempt {number} failed: {attempt.error}")
        if out.get("kind") == "ParameterError":
            break  # bad input fails the same way every time: no retry
        if number <= entry.retries:
            delay = entry.backoff * 2 ** (number - 1)
            say(f"{name}: retrying in {delay:g}s")
            if stop.wait(delay):
                outcome.result, outcome.error = "stopped", f"stopped before retry: {attempt.error}"
                break
    outcome.seconds = time.monotonic() - t0
    if outcome.ok:
        outcome.error = ""
        outcome.pruned = [str(p) for p in prune(reports_dir, name, entry.retention)]
    outcome.phr = record_run(root, name=name, ok=outcome.ok, title=_title(outcome),
                             body=_body(outcome, entry), data=_data(outcome, entry, started))
    if not outcome.ok:
        _escalate(outcome, entry, say)
    return outcome


def _escalate(outcome: RunOutcome, entry: ReportSchedule, say: Callable[[str], None]) -> None:
    """A failed scheduled report goes to the webhook when one is configured
    ($AIOPS_WEBHOOK_URL); a delivery failure is said, never fatal."""
    from aiops.errors import ReportError
    from aiops.notify import notify_report_failure
    from aiops.notify.webhook import ENV_URL, Notifier, NotifyError
    from aiops.reports.runner import ReportResult

    if not os.environ.get(ENV_URL, "").strip():
        return
    result = ReportResult(outcome.name, outcome.day or "", False, outcome.parameters or {},
                          error=ReportError(outcome.error or f"the run {outcome.result}"))
    try:
        notify_report_failure(result, Notifier.from_env(), source=entry.source)
        say(f"{outcome.name}: failure sent to the webhook")
    except NotifyError as exc:
        say(f"{outcome.name}: webhook failed: {exc}")


def _title(o: RunOutcome) -> str:
    return f"scheduled {o.name} report for {o.slot:%Y-%m-%d %H:%M} UTC: {o.result}"


def _data(o: RunOutcome, entry: ReportSchedule, started: datetime) -> dict[str, Any]:
    return {
        "report": o.name, "result": o.result, "slot": o.slot.isoformat(),
        "skipped_slots": o.skipped, "cron": entry.cron, "timezone": entry.timezone,
        "source": entry.source, "parameters": o.parameters, "duration_s": round(o.seconds, 2),
        "started_at": started.isoformat(timespec="seconds"), "html": o.html,
        "attempts": [asdict(a) | {"seconds": round(a.seconds, 2)} for a in o.attempts],
        "timeout_cell_s": entry.timeout, "timeout_wall_s": entry.wall_timeout,
        "error": o.error or None, "pruned": o.pruned,
    }


def _body(o: RunOutcome, entry: ReportSchedule) -> str:
    lines = [f"Scheduled run of the `{o.name}` report ({entry.describe()}), slot "
             f"{o.slot.isoformat()}: **{o.result}** after {len(o.attempts)} attempt(s), "
             f"{o.seconds:.1f} s."]
    if o.skipped:
        lines.append(f"It stands in for {o.skipped} earlier slot(s) missed while the "
                     "scheduler was down (caught up once).")
    if o.html:
        lines.append(f"Report: {o.html}")
    if o.error:
        lines.append(f"Error: {o.error}")
    if o.pruned:
        lines.append(f"Pruned by retention: {len(o.pruned)} file(s).")
    return "\n\n".join(lines)


__all__ = ["Attempt", "RunOutcome", "attempt_once", "report_day", "run_scheduled"]
