"""Exclusive per-report locks, so two runs of one report never overlap.

`fcntl.flock` on `<reports>/.schedule/locks/<name>.lock`, non-blocking: a second
scheduler (another `once` from cron, a `run` loop) gets `None` and skips the
report instead of queueing behind it. The kernel drops the lock when the holder
dies, so a crashed scheduler leaves no stale lock behind; the file's content
(pid, host, time) is for people only. Different reports lock different files
and may run at the same time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aiops.locks import try_lock
from aiops.schedule.state import schedule_dir


def lock_path(reports_dir: str | Path, name: str) -> Path:
    return schedule_dir(reports_dir) / "locks" / f"{name}.lock"


@contextmanager
def report_lock(reports_dir: str | Path, name: str) -> Iterator[bool]:
    """Yield True holding the report's lock, or False when another process holds it."""
    with try_lock(lock_path(reports_dir, name)) as held:
        yield held


def holder(reports_dir: str | Path, name: str) -> str:
    """What the lock file says about its (last) holder, for messages."""
    try:
        return lock_path(reports_dir, name).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


__all__ = ["holder", "lock_path", "report_lock"]
