"""Atomic file writes: a reader sees the old file or the new one, never half of one
(reports served while they are rebuilt, state files read by a second scheduler)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_text(path: Path, text: str, *, mode: int | None = None,
               fsync: bool = False) -> None:
    """Write `text` to a hidden temp file beside `path`, then rename it over `path`.
    `mode` sets the permissions (the temp file is created 0600); `fsync` flushes it
    to disk before the rename, for state that must survive a crash."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
