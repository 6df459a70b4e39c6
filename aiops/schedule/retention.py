"""Prune a report's old runs under `reports/<day>/` by its retention policy.

Runs are what `aiops.reports.index.scan` finds (one per report per day), so
pruning and the index agree on what a run is. Never pruned: the newest run
(the one the index lists first) and the newest good run, whatever the policy.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

from aiops.reports.index import scan, update_index
from aiops.schedule.config import Retention

_SUFFIXES = (".html", ".ipynb", ".failed.ipynb", ".summary.json")


def prune(reports_dir: str | Path, name: str, retention: Retention,
          now: datetime | None = None) -> list[Path]:
    """Delete the runs of `name` the policy drops; return the files removed."""
    if retention.keep is None and retention.max_age is None:
        return []
    root = Path(reports_dir).expanduser().resolve()
    runs = [e for e in scan(root) if e.name == name]  # newest day first
    if not runs:
        return []
    protected = {runs[0].day}
    good = next((e for e in runs if e.ok), None)
    if good is not None:
        protected.add(good.day)
    now = now or datetime.now(UTC)
    age = retention.max_age_delta
    oldest_day = (now - age).date().isoformat() if age is not None else None
    removed: list[Path] = []
    for i, run in enumerate(runs):
        if run.day in protected:
            continue
        too_many = retention.keep is not None and i >= retention.keep
        too_old = oldest_day is not None and run.day < oldest_day
        if not (too_many or too_old):
            continue
        day_dir = root / run.day
        for suffix in _SUFFIXES:
            f = day_dir / f"{name}{suffix}"
            if f.is_file():
                f.unlink()
                removed.append(f)
        for leftover in day_dir.glob(f".{name}.*.tmp*"):
            leftover.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # only when no other report's run is left
            day_dir.rmdir()
    if removed:
        update_index(root)
    return removed


__all__ = ["prune"]
