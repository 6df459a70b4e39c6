"""Decide what is due and run it: `once` (for cron), `run` (the loop), `show`.

Due-ness comes from the state file and the cron slots: per report, the latest
slot in (last run, now] runs, once, however many were missed. Each report is
run under its own lock, re-checking the state after taking it, so two
schedulers started together never run one slot twice; different reports run
in parallel on a small bounded pool.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiops.errors import ParameterError
from aiops.schedule import slots
from aiops.schedule.config import ReportSchedule, Schedule
from aiops.schedule.lock import holder, report_lock
from aiops.schedule.runner import RunOutcome, run_scheduled
from aiops.schedule.state import last_slot, update_report

MAX_SLEEP = 300.0  # re-evaluate at least this often (clock jumps, suspend/resume)
BEGIN = "# BEGIN aiops schedule"
END = "# END aiops schedule"


@dataclass
class OnceResult:
    """What `once` did for one report."""

    name: str
    status: str  # ran | not-due | locked
    outcome: RunOutcome | None = None
    detail: str = ""


class Scheduler:
    """Runs a schedule's reports into `reports_dir`, recording PHRs into `history`."""

    def __init__(self, schedule: Schedule, reports_dir: str | Path = "reports", *,
                 history: str | Path | None = None, workers: int = 2,
                 only: list[str] | None = None,
                 say: Callable[[str], None] | None = None) -> None:
        unknown = sorted(set(only or ()) - set(schedule.reports))
        if unknown:
            raise ParameterError(f"{', '.join(unknown)} not in the schedule",
                                 f"scheduled reports: {', '.join(schedule.reports)}")
        self.schedule = schedule
        self.reports_dir = Path(reports_dir).expanduser().resolve()
        self.history = history
        self.workers = max(1, workers)
        self.only = only
        self.say = say or (lambda _msg: None)
        self.stop = threading.Event()

    def entries(self) -> dict[str, ReportSchedule]:
        return {n: e for n, e in self.schedule.enabled().items()
                if not self.only or n in self.only}

    # -- once --------------------------------------------------------------------
    def due(self, now: datetime | None = None) -> dict[str, slots.Due]:
        now = now or datetime.now(UTC)
        out = {}
        for name, entry in self.entries().items():
            d = slots.due(entry, last_slot(self.reports_dir, name), now)
            if d is not None:
                out[name] = d
        return out

    def once(self, now: datetime | None = None) -> list[OnceResult]:
        """Run every report due at `now` (default: the current time) and return."""
        now = now or datetime.now(UTC)
        due = self.due(now)
        results = [OnceResult(n, "not-due") for n in self.entries() if n not in due]
        if due:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(due)),
                                    thread_name_prefix="aiops-schedule") as pool:
                futures = [pool.submit(self._run_locked, n, now) for n in due]
                results += [f.result() for f in futures]
        return sorted(results, key=lambda r: r.name)

    def _run_locked(self, name: str, now: datetime) -> OnceResult:
        entry = self.schedule.reports[name]
        with report_lock(self.reports_dir, name) as held:
            if not held:
                who = holder(self.reports_dir, name)
                self.say(f"{name}: skipped, another scheduler is running it ({who})")
                return OnceResult(name, "locked", detail=who)
            # re-read under the lock: another scheduler may have just run this slot
            d = slots.due(entry, last_slot(self.reports_dir, name), now)
            if d is None:
                return OnceResult(name, "not-due", detail="run by another scheduler")
            extra = f", {d.skipped}{'+' if d.capped else ''} missed slot(s) skipped" \
                if d.skipped else ""
            self.say(f"{name}: running slot {d.slot:%Y-%m-%d %H:%M} UTC{extra}")
            outcome = run_scheduled(name, entry, slot=d.slot, skipped=d.skipped,
                                    reports_dir=self.reports_dir, history=self.history,
                                    stop=self.stop, say=self.say)
            update_report(self.reports_dir, name, last_slot=d.slot,
                          last_run_at=datetime.now(UTC), outcome=outcome.result,
                          attempts=len(outcome.attempts), skipped=d.skipped,
                          seconds=round(outcome.seconds, 2), html=outcome.html,
                          error=outcome.error or None, phr=outcome.phr,
                          **({"last_ok_slot": d.slot} if outcome.ok else {}))
            self.say(f"{name}: {outcome.result} in {outcome.seconds:.1f}s "
                     f"({len(outcome.attempts)} attempt(s), PHR {outcome.phr})")
            return OnceResult(name, "ran", outcome)

    # -- run -----------------------------------------------------------------------
    def next_wakeup(self, now: datetime) -> datetime | None:
        upcoming = [next(slots.upcoming(e, now), None) for e in self.entries().values()]
        found = [u for u in upcoming if u is not None]
        return min(found) if found else None

    def run(self, *, clock: Callable[[], datetime] | None = None) -> None:
        """Loop until `self.stop` is set: run what is due, sleep until the next slot.

        Setting `stop` (SIGTERM, Ctrl-C) ends the loop after the runs in progress;
        pending retries are not started.
        """
        clock = clock or (lambda: datetime.now(UTC))
        while not self.stop.is_set():
            self.once(clock())
            if self.stop.is_set():
                break
            now = clock()
            wake = self.next_wakeup(now)
            if wake is None:
                self.say("nothing scheduled; stopping")
                return
            self.say(f"next run {wake:%Y-%m-%d %H:%M} UTC")
            self.stop.wait(min(max((wake - now).total_seconds(), 0.0), MAX_SLEEP))

    # -- show ----------------------------------------------------------------------
    def next_runs(self, n: int = 5, now: datetime | None = None
                  ) -> list[tuple[datetime, str, ReportSchedule]]:
        """The next `n` slots of all enabled reports together, soonest first."""
        now = now or datetime.now(UTC)
        merged: list[tuple[datetime, str, ReportSchedule]] = []
        for name, entry in self.entries().items():
            for slot, _ in zip(slots.upcoming(entry, now), range(n), strict=False):
                merged.append((slot, name, entry))
        return sorted(merged, key=lambda t: (t[0], t[1]))[:n]


# -- crontab -------------------------------------------------------------------------
def aiops_command() -> list[str]:
    """How cron should start this aiops: the venv's script, else `python -m aiops.cli`."""
    script = Path(sys.executable).parent / "aiops"
    return [str(script)] if script.exists() else [sys.executable, "-m", "aiops.cli"]


def crontab_lines(schedule: Schedule, *, schedule_file: Path | None, reports_dir: Path,
                  history: Path | None = None, every: int = 5,
                  workdir: Path | None = None) -> list[str]:
    """The managed crontab block: one `aiops schedule once` every `every` minutes.

    cron itself knows one time zone (the machine's); the schedule's zones, catch-up
    and locking live in `once`, so cron only has to wake it up often enough.
    """
    if not 1 <= every <= 60:
        raise ParameterError(f"invalid --every {every}", "use 1 to 60 minutes")
    reports_dir = reports_dir.expanduser().resolve()
    cmd = [*aiops_command(), "schedule", "once", "--out", str(reports_dir)]
    if schedule_file is not None:
        cmd += ["--file", str(schedule_file.expanduser().resolve())]
    if history is not None:
        cmd += ["--history", str(history.expanduser().resolve())]
    log = reports_dir / ".schedule" / "cron.log"
    cwd = (workdir or Path.cwd()).resolve()
    line = (f"*/{every} * * * * cd {shlex.quote(str(cwd))} && mkdir -p "
            f"{shlex.quote(str(log.parent))} && {shlex.join(cmd)} >> {shlex.quote(str(log))} 2>&1")
    if every == 60:
        line = line.replace("*/60 * * * *", "0 * * * *", 1)
    out = [f"{BEGIN} (written by `aiops schedule install-cron`; edit the schedule file, "
           "not these lines)"]
    for name, entry in schedule.enabled().items():
        out.append(f"# {name}: {entry.cron} in {entry.timezone}: {entry.describe()}")
    out += [line, END]
    return out


def install_crontab(lines: list[str]) -> str:
    """Replace the managed block in the user's crontab (`crontab -l` / `crontab -`)."""
    exe = shutil.which("crontab")
    if exe is None:
        raise ParameterError("crontab is not installed on this machine",
                             "install cron (Debian: apt-get install cron), or paste the "
                             "lines `aiops schedule install-cron` prints into your scheduler, "
                             "or run `aiops schedule once` from a Kubernetes CronJob")
    cur = subprocess.run([exe, "-l"], capture_output=True, text=True, check=False)
    current = cur.stdout if cur.returncode == 0 else ""  # 1: "no crontab for user"
    kept, inside = [], False
    for ln in current.splitlines():
        if ln.startswith(BEGIN):
            inside = True
        elif ln.startswith(END) and inside:
            inside = False
        elif not inside:
            kept.append(ln)
    while kept and not kept[-1].strip():
        kept.pop()
    new = "\n".join([*kept, *([""] if kept else []), *lines]) + "\n"
    done = subprocess.run([exe, "-"], input=new, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ParameterError(f"crontab refused the new table: {done.stderr.strip()}",
                             "check `crontab -l` and the printed lines")
    return new


__all__ = ["OnceResult", "Scheduler", "crontab_lines", "install_crontab"]
