"""`once`: real papermill runs in worker processes, a real git PHR store, real flocks."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import git
import nbformat
import psutil
import pytest

from aiops.approvals.phr import PhrStore
from aiops.reports.runner import REPORTS, ReportSpec
from aiops.schedule.config import Retention, parse_schedule
from aiops.schedule.lock import report_lock
from aiops.schedule.retention import prune
from aiops.schedule.scheduler import Scheduler
from aiops.schedule.state import load_state

pytestmark = pytest.mark.slow

MON = datetime(2026, 11, 23, 0, 5, tzinfo=UTC)

TINY = {
    "ok": "print(message)",
    "bad": "1 / 0",
    # writes the kernel's pid, then hangs well past any timeout
    "hang": "import os, pathlib, time\npathlib.Path(marker).write_text(str(os.getpid()))\n"
            "time.sleep(600)",
    # holds its report's lock for a few seconds once the kernel is up
    "slowish": "import pathlib, time\npathlib.Path(marker).write_text('started')\ntime.sleep(6)",
}


def write_tiny_notebooks(root: Path) -> Path:
    """Small notebooks (parameters + one cell) so a run costs a kernel start, no more."""
    for name, body in TINY.items():
        params = nbformat.v4.new_code_cell('source = "demo"\nmessage = "hello"\nmarker = ""')
        params.metadata["tags"] = ["parameters"]
        nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(body)])
        path = root / "tiny" / f"{name}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
    return root


def register_tiny() -> None:
    for name in TINY:
        REPORTS[name] = ReportSpec(name, f"tiny/{name}.ipynb", name.title())


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """Tiny reports registered, a reports dir and a git-backed PHR store."""
    nbs = write_tiny_notebooks(tmp_path / "notebooks")
    monkeypatch.setenv("AIOPS_NOTEBOOKS", str(nbs))
    for name in TINY:
        monkeypatch.setitem(REPORTS, name, ReportSpec(name, f"tiny/{name}.ipynb", name.title()))
    git.Repo.init(tmp_path / "audit")
    return tmp_path / "reports", tmp_path / "audit" / "prompts"


def schedule(**reports):
    return parse_schedule({"reports": reports})


def test_catch_up_runs_once_and_second_once_is_idempotent(tiny):
    reports, history = tiny
    sched = Scheduler(schedule(ok={"cron": "0 0 * * *", "retries": 0,
                                   "parameters": {"message": "scheduled"},
                                   "retention": {"keep": 1}}), reports, history=history)
    first = sched.once(MON)
    assert [(r.name, r.status) for r in first] == [("ok", "ran")]
    assert first[0].outcome.ok and first[0].outcome.skipped == 0
    assert Path(first[0].outcome.html) == reports / "2026-11-23" / "ok.html"
    assert [r.status for r in sched.once(MON)] == ["not-due"]  # same time: nothing to do

    # the scheduler was down for ten days: the latest slot runs, once, nine are skipped
    later = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
    second = sched.once(later)
    o = second[0].outcome
    assert second[0].status == "ran" and o.ok
    assert o.slot == datetime(2026, 12, 3, tzinfo=UTC) and o.skipped == 9
    assert [r.status for r in sched.once(later)] == ["not-due"]

    state = load_state(reports).reports["ok"]
    assert state.last_slot == o.slot and state.skipped == 9 and state.outcome == "ok"
    recs = PhrStore(history).records("report")
    assert len(recs) == 2
    data = recs[-1].meta.data
    assert data["result"] == "ok" and data["skipped_slots"] == 9
    assert data["parameters"]["message"] == "scheduled" and data["duration_s"] > 0
    assert data["slot"] == "2026-12-03T00:00:00+00:00" and len(data["attempts"]) == 1
    assert data["html"].endswith("2026-12-03/ok.html")
    assert "scheduled" in (reports / "2026-12-03" / "ok.html").read_text()
    assert PhrStore(history).verify().ok
    # retention keep 1: the older run is gone, the index lists only the new one
    assert not (reports / "2026-11-23").exists()
    assert (reports / "2026-12-03" / "ok.html").is_file()
    index = (reports / "index.html").read_text()
    assert "2026-12-03/ok.html" in index and "2026-11-23" not in index


def test_failing_report_is_retried_with_backoff_then_recorded_failed(tiny):
    reports, history = tiny
    sched = Scheduler(schedule(bad={"cron": "0 0 * * 1", "retries": 1, "backoff": 2}),
                      reports, history=history)
    t0 = time.monotonic()
    [res] = sched.once(MON)
    o = res.outcome
    assert res.status == "ran" and o.result == "failed"
    assert [a.number for a in o.attempts] == [1, 2] and not any(a.ok for a in o.attempts)
    assert time.monotonic() - t0 >= sum(a.seconds for a in o.attempts) + 2  # the backoff
    assert "ZeroDivisionError" in o.error
    assert (reports / "2026-11-23" / "bad.failed.ipynb").is_file()
    [rec] = PhrStore(history).records("report")
    assert rec.meta.data["result"] == "failed" and len(rec.meta.data["attempts"]) == 2
    assert "ZeroDivisionError" in rec.meta.data["error"]
    assert "failed" in rec.meta.title
    # bounded: the failed slot is done, not retried by the next `once`
    assert load_state(reports).reports["bad"].outcome == "failed"
    assert [r.status for r in sched.once(MON)] == ["not-due"]


def test_bad_parameter_fails_without_retries(tiny, monkeypatch):
    reports, history = tiny
    bodies: list[bytes] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AIOPS_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
    monkeypatch.setenv("AIOPS_WEBHOOK_FORMAT", "json")
    sched = Scheduler(schedule(ok={"cron": "0 0 * * 1", "retries": 3, "backoff": 30,
                                   "parameters": {"windw": "1d"}}), reports, history=history)
    t0 = time.monotonic()
    [res] = sched.once(MON)
    assert res.outcome.result == "failed" and len(res.outcome.attempts) == 1
    assert "windw" in res.outcome.error
    assert time.monotonic() - t0 < 30  # no backoff was waited
    assert PhrStore(history).records("report")[0].meta.data["result"] == "failed"
    server.shutdown()
    [body] = bodies  # the failed scheduled report was escalated once
    sent = json.loads(body)
    assert sent["event"] == "report-failed" and sent["report_name"] == "ok"
    assert "windw" in sent["error"]


def test_wall_clock_timeout_kills_the_hung_kernel(tiny, tmp_path):
    reports, history = tiny
    marker = tmp_path / "kernel.pid"
    sched = Scheduler(schedule(hang={"cron": "0 0 * * 1", "retries": 0, "timeout": 600,
                                     "wall_timeout": 25,
                                     "parameters": {"marker": str(marker)}}),
                      reports, history=history)
    t0 = time.monotonic()
    [res] = sched.once(MON)
    assert time.monotonic() - t0 < 60
    assert res.outcome.result == "timeout" and "wall clock" in res.outcome.error
    assert marker.exists(), "the kernel never started: raise wall_timeout for this machine"
    pid = int(marker.read_text())
    if psutil.pid_exists(pid):
        assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    day = reports / "2026-11-23"
    assert not list(day.glob(".hang.*")) and not (day / "hang.html").exists()
    assert PhrStore(history).records("report")[0].meta.data["result"] == "timeout"


SECOND_PROCESS = textwrap.dedent("""
    import sys
    from datetime import datetime
    sys.path.insert(0, {tests!r})
    from test_schedule_once import register_tiny, schedule
    from aiops.schedule.scheduler import Scheduler
    register_tiny()
    sched = Scheduler(schedule(slowish={{"cron": "0 0 * * 1", "retries": 0,
                                        "parameters": {{"marker": {marker!r}}}}}),
                      {reports!r}, history={history!r})
    [r] = sched.once(datetime.fromisoformat({now!r}))
    print(r.status, r.outcome.result if r.outcome else "")
""")


def test_second_process_skips_the_locked_report(tiny, tmp_path):
    reports, history = tiny
    marker = tmp_path / "started"
    code = SECOND_PROCESS.format(tests=str(Path(__file__).parent), marker=str(marker),
                                 reports=str(reports), history=str(history),
                                 now=MON.isoformat())
    env = os.environ | {"AIOPS_NOTEBOOKS": os.environ["AIOPS_NOTEBOOKS"]}
    other = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while not marker.exists():  # the other `once` holds the lock and its kernel runs
            assert other.poll() is None, other.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        sched = Scheduler(schedule(slowish={"cron": "0 0 * * 1", "retries": 0,
                                            "parameters": {"marker": str(marker)}}),
                          reports, history=history)
        [mine] = sched.once(MON)
        assert mine.status == "locked" and f"pid={other.pid}" in mine.detail
        out, err = other.communicate(timeout=120)
    finally:
        if other.poll() is None:
            other.kill()
    assert other.returncode == 0, err
    assert out.split() == ["ran", "ok"]
    # after the other run finished, the slot is done: no second run
    assert [r.status for r in sched.once(MON)] == ["not-due"]
    assert len(PhrStore(history).records("report")) == 1


def test_lock_of_a_dead_process_does_not_block(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time
            from aiops.schedule.lock import report_lock
            with report_lock({str(tmp_path)!r}, "ok") as held:
                print(held, flush=True)
                time.sleep(120)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "True"
        with report_lock(tmp_path, "ok") as held:
            assert held is False  # held by a live process
        with report_lock(tmp_path, "other") as held:
            assert held is True  # other reports are not blocked
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with report_lock(tmp_path, "ok") as held:
        assert held is True  # the kernel released the dead holder's flock


def _run_files(reports: Path, day: str, name: str, ok: bool) -> None:
    d = reports / day
    d.mkdir(parents=True, exist_ok=True)
    if ok:
        (d / f"{name}.html").write_text("<html></html>")
        (d / f"{name}.ipynb").write_text("{}")
        (d / f"{name}.summary.json").write_text(json.dumps({"score": 1}))
    else:
        (d / f"{name}.failed.ipynb").write_text("{}")


def test_retention_keeps_the_newest_good_run(tmp_path):
    reports = tmp_path / "reports"
    _run_files(reports, "2026-10-01", "cost", ok=True)
    _run_files(reports, "2026-10-02", "cost", ok=True)   # the newest good run
    _run_files(reports, "2026-10-03", "cost", ok=False)
    _run_files(reports, "2026-10-04", "cost", ok=False)  # the newest run (failed)
    _run_files(reports, "2026-10-01", "health", ok=True)  # another report, same day
    removed = prune(reports, "cost", Retention(keep=1, max_age="1d"),
                    now=datetime(2026, 12, 1, tzinfo=UTC))
    assert sorted(p.parent.name for p in removed) == ["2026-10-01"] * 3 + ["2026-10-03"]
    assert (reports / "2026-10-02" / "cost.html").is_file()
    assert (reports / "2026-10-04" / "cost.failed.ipynb").is_file()
    assert (reports / "2026-10-01" / "health.html").is_file()  # untouched
    assert not (reports / "2026-10-03").exists()  # emptied day folders go
    index = (reports / "index.html").read_text()
    assert "2026-10-02/cost.html" in index and "2026-10-01/cost" not in index
    # nothing more to drop: a second prune is a no-op
    assert prune(reports, "cost", Retention(keep=1), now=datetime(2026, 12, 1, tzinfo=UTC)) == []
