"""Scheduled reports: a schedule file, `once`/`run` schedulers, locks, state, retention.

`Scheduler(load_schedule(path)[0], "reports").once()` runs what is due now; see
`aiops schedule --help` and the "Schedules" section of the README.
"""

from aiops.schedule.config import (
           ReportSchedule,
           Retention,
           Schedule,
           default_schedule,
           load_schedule,
)
from aiops.schedule.scheduler import OnceResult, Scheduler, crontab_lines, install_crontab

__all__ = ["OnceResult", "ReportSchedule", "Retention", "Schedule", "Scheduler",
           "crontab_lines", "default_schedule", "install_crontab", "load_schedule"]
