"""Cron slots in a time zone: the next ones, and the ones missed since a time.

cronsim evaluates the expression the way Debian's cron does, including its
DST rules: a time skipped by spring-forward runs right after the jump, a time
repeated by fall-back runs once. Slots are returned as aware UTC datetimes so
they compare and serialise without ambiguity.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cronsim import CronSim

from aiops.schedule.config import ReportSchedule

COUNT_CAP = 10_000  # stop counting missed slots here (an every-minute job down for weeks)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def upcoming(entry: ReportSchedule, after: datetime) -> Iterator[datetime]:
    """Slots strictly after `after`, in UTC."""
    for slot in CronSim(entry.cron, _aware(after).astimezone(entry.zone)):
        yield slot.astimezone(UTC)


def latest(entry: ReportSchedule, now: datetime) -> datetime | None:
    """The newest slot at or before `now` (None if there is none in 50 years)."""
    # cronsim's reverse iteration is strictly before its start, at whole seconds
    start = _aware(now).replace(microsecond=0) + timedelta(seconds=1)
    try:
        return next(CronSim(entry.cron, start.astimezone(entry.zone), reverse=True)
                    ).astimezone(UTC)
    except StopIteration:
        return None


@dataclass(frozen=True)
class Due:
    """What `once` should do for one report: run `slot`, skipping `skipped` older ones."""

    slot: datetime
    skipped: int
    capped: bool = False  # more than COUNT_CAP slots were missed


def due(entry: ReportSchedule, last: datetime | None, now: datetime) -> Due | None:
    """The latest slot in (last, now], with how many earlier ones it replaces.

    A report that never ran is due at its latest slot (nothing skipped): the
    first `once` renders every report once instead of waiting up to a week.
    """
    newest = latest(entry, now)
    if newest is None or (last is not None and newest <= _aware(last)):
        return None
    if last is None:
        return Due(newest, 0)
    count = 0
    for slot in upcoming(entry, last):
        if slot >= newest or count >= COUNT_CAP:
            break
        count += 1
    return Due(newest, count, capped=count >= COUNT_CAP)


__all__ = ["COUNT_CAP", "Due", "due", "latest", "upcoming"]
