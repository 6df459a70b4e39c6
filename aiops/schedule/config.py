"""The schedule file: which report runs when, with what, and how long it is kept.

A YAML file (default `schedules.yaml` at the repository root) maps registered
report names to a cron expression in an IANA time zone plus the run's
parameters, timeouts, retries and retention. Validation happens here, once, so
a typo names the file and field before anything runs rather than at 3 a.m.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aiops.errors import ParameterError

SCHEDULE_ENV = "AIOPS_SCHEDULE"
DEFAULT_FILE = Path("schedules.yaml")


class Retention(BaseModel):
    """Keep the newest `keep` runs and/or runs younger than `max_age` (both: both apply).

    The newest good run is never pruned, whatever the policy says.
    """

    model_config = ConfigDict(extra="forbid")
    keep: int | None = Field(None, ge=1)
    max_age: str | None = None

    @field_validator("max_age")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            from aiops.durations import parse_duration

            try:
                parse_duration(value, "max_age")
            except ParameterError as exc:
                raise ValueError(f"{exc.message}; {exc.hint}") from None
        return value

    @property
    def max_age_delta(self) -> timedelta | None:
        if self.max_age is None:
            return None
        from aiops.durations import parse_duration

        return parse_duration(self.max_age, "max_age").to_pytimedelta()


class ReportSchedule(BaseModel):
    """When and how one report runs."""

    model_config = ConfigDict(extra="forbid")
    cron: str
    timezone: str = "UTC"
    source: str = "demo"
    parameters: dict[str, Any] = Field(default_factory=dict)
    timeout: float = Field(600, gt=0, description="papermill's per-cell timeout (s)")
    wall_timeout: float = Field(1800, gt=0, description="the whole run, kernel killed after (s)")
    retries: int = Field(2, ge=0, le=10)
    backoff: float = Field(60, ge=0, description="wait before the first retry (s), doubled each")
    retention: Retention = Field(default_factory=lambda: Retention(keep=30))
    enabled: bool = True

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        value = " ".join(value.split())
        try:
            CronSim(value, datetime(2000, 1, 1))
        except CronSimError as exc:
            raise ValueError(f"invalid cron expression {value!r}: {exc}") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as "
                             "UTC or Europe/Berlin)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def describe(self) -> str:
        """The cron expression in words, e.g. 'At 00:00 on Monday (UTC)'."""
        try:
            words = CronSim(self.cron, datetime.now(UTC)).explain()
        except Exception:  # explain() does not cover every expression
            words = self.cron
        return f"{words} ({self.timezone})"


class Schedule(BaseModel):
    """The whole file: `reports: {name: ReportSchedule}`."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(1, ge=1, le=1)
    reports: dict[str, ReportSchedule] = Field(default_factory=dict)

    @field_validator("reports")
    @classmethod
    def _registered(cls, value: dict[str, ReportSchedule]) -> dict[str, ReportSchedule]:
        from aiops.reports.runner import REPORTS

        unknown = sorted(set(value) - set(REPORTS))
        if unknown:
            raise ValueError(f"unknown report {', '.join(map(repr, unknown))}; registered "
                             f"reports: {', '.join(sorted(REPORTS))}")
        return value

    def enabled(self) -> dict[str, ReportSchedule]:
        return {n: r for n, r in self.reports.items() if r.enabled}


def default_schedule() -> Schedule:
    """The seed plan: health weekly on Monday 00:00 UTC, utilization and cost daily,
    security weekly (and `operations` daily when that report is registered).

    The daily and weekly runs are spread over the night so they do not compete
    for the same cores.
    """
    from aiops.reports.runner import REPORTS

    reports = {
        "health": ReportSchedule(cron="0 0 * * 1"),
        "utilization": ReportSchedule(cron="0 1 * * *"),
        "cost": ReportSchedule(cron="0 2 * * *"),
        "security": ReportSchedule(cron="0 3 * * 1", retention=Retention(keep=26)),
    }
    if "operations" in REPORTS:
        reports["operations"] = ReportSchedule(cron="0 4 * * *")
    return Schedule(reports={n: r for n, r in reports.items() if n in REPORTS})


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def parse_schedule(data: Any, origin: str = "<schedule>") -> Schedule:
    """Validate a loaded YAML document; errors name `origin` and the field."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParameterError(f"{origin}: expected a mapping with `reports:`, got "
                             f"{type(data).__name__}", "see schedules.yaml for the format")
    try:
        return Schedule.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        msg = first["msg"].removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ParameterError(f"{origin}: {_where(first['loc'])}: {msg}{more}",
                             "fix that field; see schedules.yaml for the format") from None


def load_schedule(path: str | Path | None = None) -> tuple[Schedule, Path | None]:
    """The schedule from `path`, else $AIOPS_SCHEDULE, else ./schedules.yaml if it
    exists, else the built-in defaults (returned with None as the path)."""
    if path is None:
        env = os.environ.get(SCHEDULE_ENV)
        if env:
            path = Path(env)
        elif DEFAULT_FILE.is_file():
            path = DEFAULT_FILE
        else:
            return default_schedule(), None
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParameterError(f"cannot read schedule file {path}: {exc.strerror}",
                             "pass --file with an existing file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ParameterError(f"{path}:{where} is not valid YAML: "
                             f"{getattr(exc, 'problem', None) or exc}",
                             "fix the YAML syntax") from None
    return parse_schedule(data, str(path)), path


__all__ = [
    "ReportSchedule",
    "Retention",
    "Schedule",
    "default_schedule",
    "load_schedule",
    "parse_schedule",
]
