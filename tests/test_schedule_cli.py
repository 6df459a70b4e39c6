"""`aiops schedule show|once|run|install-cron` through `aiops.cli.main(argv)`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import git
import pytest

from aiops.approvals.phr import PhrStore
from aiops.cli import main
from aiops.schedule.scheduler import BEGIN, END
from aiops.schedule.state import load_state
from tests.test_schedule_once import write_tiny_notebooks

REPO = Path(__file__).resolve().parent.parent


def test_show_prints_the_next_runs(capsys):
    code = main(["schedule", "show", "--file", str(REPO / "schedules.yaml"), "-n", "3",
                 "--now", "2026-11-22T12:00:00Z"])
    out = capsys.readouterr().out
    assert code == 0
    assert "At 00:00 on Monday (UTC)" in out
    rows = [ln for ln in out.splitlines() if "2026-11-2" in ln]
    assert [r.split("│")[3].strip() for r in rows] == ["health", "utilization", "cost"]
    assert "2026-11-23 00:00 Mon" in rows[0]


def test_show_converts_local_time(tmp_path, capsys):
    f = tmp_path / "s.yaml"
    f.write_text("reports:\n  cost: {cron: '30 2 * * *', timezone: Europe/Berlin}\n")
    assert main(["schedule", "show", "--file", str(f), "-n", "1",
                 "--now", "2026-03-28T12:00:00Z"]) == 0
    out = capsys.readouterr().out
    assert "2026-03-29 01:00" in out and "2026-03-29 03:00 CEST" in out


def test_bad_schedule_file_exits_2_naming_file_and_field(tmp_path, capsys):
    f = tmp_path / "s.yaml"
    f.write_text("reports:\n  health: {cron: '0 0 * * 1', timezone: Europe/Berlyn}\n")
    assert main(["schedule", "show", "--file", str(f)]) == 2
    err = capsys.readouterr().err
    assert str(f) in err and "reports.health.timezone" in err and "Europe/Berlyn" in err


def test_install_cron_prints_the_lines(tmp_path, capsys):
    f = REPO / "schedules.yaml"
    assert main(["schedule", "install-cron", "--file", str(f), "--out",
                 str(tmp_path / "reports"), "--every", "10"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(BEGIN) and lines[-1] == END
    [job] = [ln for ln in lines if not ln.startswith("#")]
    assert job.startswith("*/10 * * * * cd ")
    assert f"schedule once --out {tmp_path / 'reports'} --file {f}" in job
    assert any("# health: 0 0 * * 1 in UTC" in ln for ln in lines)


FAKE_CRONTAB = """#!/bin/sh
# a stand-in for crontab(1) that keeps the table in $CRONTAB_FILE
if [ "$1" = "-l" ]; then
  [ -f "$CRONTAB_FILE" ] || { echo "no crontab for $USER" >&2; exit 1; }
  cat "$CRONTAB_FILE"
elif [ "$1" = "-" ]; then
  cat > "$CRONTAB_FILE"
else
  exit 2
fi
"""


def test_install_cron_write_replaces_its_own_block(tmp_path, monkeypatch, capsys):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "crontab").write_text(FAKE_CRONTAB)
    (bindir / "crontab").chmod(0o755)
    table = tmp_path / "table"
    table.write_text("MAILTO=ops@example.com\n0 5 * * * backup\n")
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("CRONTAB_FILE", str(table))
    argv = ["schedule", "install-cron", "--file", str(REPO / "schedules.yaml"), "--out",
            str(tmp_path / "reports"), "--write"]
    assert main(argv) == 0
    assert main(argv) == 0  # twice: still one block
    text = table.read_text()
    assert text.startswith("MAILTO=ops@example.com\n0 5 * * * backup\n")
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert "schedule once" in text


def test_install_cron_write_without_crontab_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no crontab anywhere
    assert main(["schedule", "install-cron", "--write"]) == 2
    err = capsys.readouterr().err
    assert "crontab is not installed" in err and "CronJob" in err


@pytest.mark.slow
def test_once_runs_the_real_health_report_into_a_demo_store(tmp_path, capsys):
    """The demo source records into <out>/.schedule/history, never history/prompts."""
    repo_trail = REPO / "history" / "prompts"
    before = sorted(p.name for p in repo_trail.rglob("*.md")) if repo_trail.exists() else []
    f = tmp_path / "s.yaml"
    f.write_text("reports:\n  health: {cron: '0 0 * * 1', retries: 0, wall_timeout: 900}\n")
    out_dir = tmp_path / "reports"
    argv = ["schedule", "once", "--file", str(f), "--out", str(out_dir),
            "--now", "2026-11-25T08:00:00Z"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "health: ok slot 2026-11-23 00:00 UTC" in out
    assert (out_dir / "2026-11-23" / "health.html").is_file()
    demo = out_dir / ".schedule" / "history" / "prompts"
    [rec] = PhrStore(demo).records("report")
    assert rec.meta.data["report"] == "health" and rec.meta.data["source"] == "demo"
    assert rec.id in out
    assert git.Repo(out_dir / ".schedule" / "history").head.commit.message.startswith("phr:")
    after = sorted(p.name for p in repo_trail.rglob("*.md")) if repo_trail.exists() else []
    assert after == before
    assert main(argv) == 0  # idempotent
    assert "health: not-due" in capsys.readouterr().out


def test_demo_runs_refuse_the_repository_trail(tmp_path, capsys):
    f = tmp_path / "s.yaml"
    f.write_text("reports:\n  health: {cron: '0 0 * * 1'}\n")
    code = main(["schedule", "once", "--file", str(f), "--out", str(tmp_path / "r"),
                 "--history", str(REPO / "history" / "prompts"), "--now", "2026-11-23T01:00Z"])
    assert code == 2
    assert "demo runs never write there" in capsys.readouterr().err
    assert load_state(tmp_path / "r").reports == {}


RUN_LOOP = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_schedule_once import register_tiny
    from aiops.cli import main
    register_tiny()
    sys.exit(main(["schedule", "run", "--file", {file!r}, "--out", {out!r},
                   "--history", {history!r}]))
""")


@pytest.mark.slow
def test_run_loop_runs_due_reports_and_stops_on_sigterm(tmp_path):
    nbs = write_tiny_notebooks(tmp_path / "notebooks")
    git.Repo.init(tmp_path / "audit")
    f = tmp_path / "s.yaml"
    f.write_text("reports:\n  ok: {cron: '0 0 1 1 *', retries: 0}\n")  # yearly
    code = RUN_LOOP.format(tests=str(Path(__file__).parent), file=str(f),
                           out=str(tmp_path / "reports"),
                           history=str(tmp_path / "audit" / "prompts"))
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True,
                            env=os.environ | {"AIOPS_NOTEBOOKS": str(nbs)})
    lines = []
    try:
        deadline = time.monotonic() + 120
        for line in proc.stderr:  # never ran: the latest slot runs at start
            lines.append(line)
            if "next run" in line or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    log = "".join(lines) + rest
    assert proc.returncode == 0, log
    assert "ok: ok in" in log and "SIGTERM: stopping" in log and "scheduler stopped" in log
    assert len(PhrStore(tmp_path / "audit" / "prompts").records("report")) == 1
