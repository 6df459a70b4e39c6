"""What the scheduler remembers per report: the last slot run and how it went.

One small JSON file, `<reports>/.schedule/state.json`, next to the reports it
describes (so a reports directory moved elsewhere keeps its schedule state).
It is what makes `once` idempotent: a slot already recorded is not due again.
Updates are read-modify-write under an flock and replaced atomically, so
parallel runs of different reports (threads or processes) never lose each
other's entries and a crash never leaves half a file.
"""

from __future__ import annotations

import fcntl
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from aiops.atomic import write_text
from aiops.errors import ParameterError

STATE_DIR = ".schedule"
STATE_FILE = "state.json"
_THREAD_LOCK = threading.Lock()  # flock does not serialise threads sharing nothing else


class ReportState(BaseModel):
    """The last scheduled run of one report."""

    model_config = ConfigDict(extra="ignore")
    last_slot: datetime | None = None  # the cron slot last run (UTC), ok or not
    last_run_at: datetime | None = None
    outcome: str | None = None  # ok | failed | timeout
    attempts: int = 0
    skipped: int = 0  # missed slots the last run stood in for
    seconds: float = 0.0
    html: str | None = None
    error: str | None = None
    phr: str | None = None
    last_ok_slot: datetime | None = None


class State(BaseModel):
    model_config = ConfigDict(extra="ignore")
    version: int = 1
    reports: dict[str, ReportState] = {}


def schedule_dir(reports_dir: str | Path) -> Path:
    return Path(reports_dir).expanduser().absolute() / STATE_DIR


def state_path(reports_dir: str | Path) -> Path:
    return schedule_dir(reports_dir) / STATE_FILE


def load_state(reports_dir: str | Path) -> State:
    """The state, or an empty one when the file does not exist yet."""
    path = state_path(reports_dir)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return State()
    try:
        return State.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        raise ParameterError(f"schedule state {path} is unreadable: {str(exc).splitlines()[0]}",
                             "delete it: every report then runs once at its latest slot"
                             ) from None


@contextmanager
def _locked(reports_dir: str | Path) -> Iterator[None]:
    d = schedule_dir(reports_dir)
    d.mkdir(parents=True, exist_ok=True)
    with _THREAD_LOCK, open(d / "state.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def update_report(reports_dir: str | Path, name: str, **changes: Any) -> ReportState:
    """Merge `changes` into one report's entry and write the file atomically."""
    with _locked(reports_dir):
        state = load_state(reports_dir)
        current = state.reports.get(name, ReportState())
        new = current.model_copy(update=changes)
        new = ReportState.model_validate(new.model_dump())
        state.reports[name] = new
        write_text(state_path(reports_dir), state.model_dump_json(indent=2) + "\n",
                   fsync=True)
        return new


def last_slot(reports_dir: str | Path, name: str) -> datetime | None:
    entry = load_state(reports_dir).reports.get(name)
    if entry is None or entry.last_slot is None:
        return None
    slot = entry.last_slot
    return slot if slot.tzinfo else slot.replace(tzinfo=UTC)


__all__ = ["ReportState", "State", "last_slot", "load_state", "schedule_dir", "state_path",
           "update_report"]
