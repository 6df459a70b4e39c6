"""A non-blocking, per-file exclusive lock between processes on one machine.

`fcntl.flock`: the kernel drops it when the holder exits or dies, so a killed
process never leaves a stale lock behind; the file says who holds it.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path


@contextmanager
def try_lock(path: str | Path) -> Iterator[bool]:
    """Yield True holding the lock at `path`, or False when another holder has it."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
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
