"""The schedule file: seed defaults, validation naming file and field, cron in time zones."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from aiops.errors import ParameterError
from aiops.schedule import slots
from aiops.schedule.config import (
    ReportSchedule,
    Retention,
    default_schedule,
    load_schedule,
    parse_schedule,
)

REPO = Path(__file__).resolve().parent.parent


def test_seed_defaults():
    s = default_schedule()
    assert s.reports["health"].cron == "0 0 * * 1" and s.reports["health"].timezone == "UTC"
    assert slots.latest(s.reports["health"], datetime(2026, 11, 25, tzinfo=UTC)) == \
        datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # Monday 00:00 UTC
    for daily in ("utilization", "cost"):
        nxt = list(zip(slots.upcoming(s.reports[daily], datetime(2026, 11, 23, tzinfo=UTC)),
                       range(3), strict=False))
        assert [(b[0] - a[0]).days for a, b in itertools.pairwise(nxt)] == [1, 1]
    sec = s.reports["security"]
    week = list(zip(slots.upcoming(sec, datetime(2026, 11, 23, tzinfo=UTC)), range(2),
                    strict=False))
    assert (week[1][0] - week[0][0]).days == 7 and week[0][0].weekday() == 0
    assert all(r.enabled and r.retries >= 1 for r in s.reports.values())


def test_repo_schedules_yaml_is_the_seed_plan():
    schedule, path = load_schedule(REPO / "schedules.yaml")
    assert path == REPO / "schedules.yaml"
    assert schedule == default_schedule()


def test_without_a_file_the_defaults_apply(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AIOPS_SCHEDULE", raising=False)
    schedule, path = load_schedule()
    assert path is None and schedule == default_schedule()
    (tmp_path / "schedules.yaml").write_text("reports:\n  cost: {cron: '5 4 * * *'}\n")
    schedule, path = load_schedule()
    assert path == Path("schedules.yaml") and list(schedule.reports) == ["cost"]


@pytest.mark.parametrize(("doc", "field", "words"), [
    ({"reports": {"health": {"cron": "61 * * * *"}}}, "reports.health.cron", "Bad minute"),
    ({"reports": {"health": {"cron": "0 0 * * 1", "timezone": "Mars/Olympus"}}},
     "reports.health.timezone", "Mars/Olympus"),
    ({"reports": {"helth": {"cron": "0 0 * * 1"}}}, "reports", "'helth'"),
    ({"reports": {"cost": {"cron": "0 0 * * *", "retries": -1}}}, "reports.cost.retries", ""),
    ({"reports": {"cost": {"cron": "0 0 * * *", "retention": {"max_age": "forever"}}}},
     "reports.cost.retention.max_age", "forever"),
    ({"reports": {"cost": {"cron": "0 0 * * *", "retension": {"keep": 3}}}},
     "reports.cost.retension", "Extra inputs"),
    ({"reports": {"cost": {"timezone": "UTC"}}}, "reports.cost.cron", "Field required"),
])
def test_validation_errors_name_file_and_field(tmp_path, doc, field, words):
    f = tmp_path / "sched.yaml"
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(ParameterError) as info:
        load_schedule(f)
    msg = info.value.message
    assert msg.startswith(f"{f}: {field}: "), msg
    assert words in msg
    if "helth" in words:
        assert "health" in msg  # lists the registered reports


def test_yaml_syntax_error_names_the_line(tmp_path):
    f = tmp_path / "sched.yaml"
    f.write_text("reports:\n  health:\n    cron: [0 0\n")
    with pytest.raises(ParameterError) as info:
        load_schedule(f)
    assert str(f) in info.value.message and "line" in info.value.message


def test_missing_file_is_a_parameter_error(tmp_path):
    with pytest.raises(ParameterError) as info:
        load_schedule(tmp_path / "nope.yaml")
    assert "nope.yaml" in info.value.message


BERLIN = "Europe/Berlin"


def test_daily_0230_berlin_across_spring_forward():
    """2026-03-29 02:00 CET jumps to 03:00 CEST: 02:30 does not exist that day.
    Like Debian cron, the job runs once, right after the jump (03:00 CEST)."""
    e = ReportSchedule(cron="30 2 * * *", timezone=BERLIN)
    got = [s for s, _ in zip(slots.upcoming(e, datetime(2026, 3, 27, 12, tzinfo=UTC)),
                             range(4), strict=False)]
    assert got == [datetime(2026, 3, 28, 1, 30, tzinfo=UTC),   # 02:30 CET
                   datetime(2026, 3, 29, 1, 0, tzinfo=UTC),    # 03:00 CEST, after the jump
                   datetime(2026, 3, 30, 0, 30, tzinfo=UTC),   # 02:30 CEST
                   datetime(2026, 3, 31, 0, 30, tzinfo=UTC)]
    # downtime over the DST day: one run, the two missed days are counted
    d = slots.due(e, datetime(2026, 3, 28, 1, 30, tzinfo=UTC), datetime(2026, 3, 31, 6, tzinfo=UTC))
    assert d == slots.Due(datetime(2026, 3, 31, 0, 30, tzinfo=UTC), 2)


def test_daily_0230_berlin_across_fall_back_runs_once():
    e = ReportSchedule(cron="30 2 * * *", timezone=BERLIN)
    got = [s for s, _ in zip(slots.upcoming(e, datetime(2026, 10, 24, 12, tzinfo=UTC)),
                             range(2), strict=False)]
    # 02:30 happens twice on 2026-10-25; it runs once, at the first (CEST) one
    assert got == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
                   datetime(2026, 10, 26, 1, 30, tzinfo=UTC)]


def test_due_computation():
    e = ReportSchedule(cron="0 0 * * 1")  # health: Mondays 00:00 UTC
    mon = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    assert slots.due(e, None, mon) == slots.Due(mon, 0)  # exactly at the slot
    assert slots.due(e, None, mon.replace(hour=5)) == slots.Due(mon, 0)  # never ran
    assert slots.due(e, mon, mon.replace(hour=5)) is None  # already ran
    # ten weeks down: only the latest Monday runs, nine are skipped
    later = datetime(2027, 2, 3, 12, tzinfo=UTC)
    assert slots.due(e, mon, later) == slots.Due(datetime(2027, 2, 1, tzinfo=UTC), 9)
    every_minute = ReportSchedule(cron="* * * * *")
    d = slots.due(every_minute, mon, datetime(2027, 1, 1, tzinfo=UTC))
    assert d is not None and d.capped and d.skipped == slots.COUNT_CAP


def test_retention_needs_a_positive_keep():
    with pytest.raises(ValueError):
        Retention(keep=0)
    assert Retention(max_age="90d").max_age_delta.days == 90


def test_parse_schedule_rejects_a_list():
    with pytest.raises(ParameterError) as info:
        parse_schedule(["health"], "x.yaml")
    assert info.value.message.startswith("x.yaml:")
