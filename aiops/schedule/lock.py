"""Exclusive per-report locks, so two runs of one report never overlap.

`fcntl.flock` on `<reports>/.schedule/locks/<name>.lock`, non-blocking: a second
scheduler (another `once` from cron, a `run` loop) gets `None` and skips the
report instead of queueing behind it. The kernel drops the lock when the holder
dies, so a crashed scheduler leaves no stale lock behind; the file's content
(pid, host, time) is for people only. Different reports lock different files
and may run at the same time.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from aiops.schedule.state import schedule_dir


def lock_path(reports_dir: str | Path, name: str) -> Path:
    return schedule_dir(reports_dir) / "locks" / f"{name}.lock"


@contextmanager
def report_lock(reports_dir: str | Path, name: str) -> Iterator[bool]:
    """Yield True holding the report's lock, or False when another process holds it."""
    path = lock_path(reports_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"pid={os.getpid()} host={socket.gethostname()} "
                         f"since={datetime.now(UTC).isoformat(timespec='seconds')}\n".encode())
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def holder(reports_dir: str | Path, name: str) -> str:
    """What the lock file says about its (last) holder, for messages."""
    try:
        return lock_path(reports_dir, name).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


__all__ = ["holder", "lock_path", "report_lock"]
