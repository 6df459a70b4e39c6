"""`aiops schedule show | once | run | install-cron`: scheduled reports."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from aiops.cli._common import app, err, out
from aiops.errors import ParameterError

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
