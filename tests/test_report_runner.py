"""The report runner: papermill execution, publishing, failures, the registry."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest

from aiops.errors import ParameterError, ReportError
from aiops.reports import runner
from aiops.reports.runner import (
    REPORTS,
    ReportProgress,
    ReportSpec,
    ensure_kernel,
    kernel_name_for,
    run_report,
    run_reports,
)

pytestmark = pytest.mark.slow


def _leftovers(day_dir: Path) -> list[str]:
    return sorted(p.name for p in day_dir.iterdir() if p.name.startswith("."))


def test_health_report_is_published(health_run):
    res = health_run.result
    assert res.ok and res.error is None
    assert health_run.notebook.is_file()
    assert health_run.html.is_file()
    assert health_run.summary.is_file()
    assert (health_run.reports_dir / "index.html").is_file()
    assert res.notebook == health_run.notebook and res.html == health_run.html
    assert _leftovers(health_run.day_dir) == []
    assert not (health_run.day_dir / "health.failed.ipynb").exists()


def test_parameters_are_recorded_by_papermill(health_run):
    nb = nbformat.read(health_run.notebook, as_version=4)
    params = nb.metadata.papermill.parameters
    assert params["source"] == "demo"
    assert params["window"] == "7d"
    assert params["namespaces"] == ""
    assert params["title"] == "Weekly cluster health"
    assert params["reports_dir"] == str(health_run.reports_dir.resolve())
    assert params["report_date"] == health_run.day
    assert params["previous_summary"] == ""  # the first report of this dir
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "source = \"demo\"" in injected[0].source
    # executed in this interpreter's kernel, not some global python3
    assert nb.metadata.aiops.kernel == kernel_name_for()
    assert nb.metadata.aiops.python == sys.executable
    assert nb.metadata.aiops.report == "health" and nb.metadata.aiops.date == health_run.day
    assert nb.metadata.papermill.exception in (None, False)


def test_index_lists_the_run(health_run):
    page = (health_run.reports_dir / "index.html").read_text()
    assert f'href="{health_run.day}/health.html"' in page
    assert f'href="{health_run.day}/health.ipynb"' in page
    summary = json.loads(health_run.summary.read_text())
    assert f"{summary['score']:.0f}" in page


def test_kernel_runs_this_interpreter():
    from jupyter_client.kernelspec import KernelSpecManager

    name = ensure_kernel()
    assert KernelSpecManager().get_kernel_spec(name).argv[0] == sys.executable


def _broken_notebooks(tmp_path: Path, error_cell: str) -> Path:
    """A copy of the notebooks dir whose health notebook raises after its parameters."""
    src = runner.notebooks_dir() / REPORTS["health"].notebook
    nb = nbformat.read(src, as_version=4)
    idx = next(i for i, c in enumerate(nb.cells)
               if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(idx + 1, nbformat.v4.new_code_cell(error_cell))
    dst = tmp_path / "notebooks" / REPORTS["health"].notebook
    dst.parent.mkdir(parents=True)
    nbformat.write(nb, dst)
    return tmp_path / "notebooks"


def test_failing_notebook_keeps_last_good_report(health_copy, tmp_path, monkeypatch):
    day_dir = health_copy.day_dir
    good = {p: p.read_bytes() for p in (health_copy.html, health_copy.notebook,
                                         health_copy.summary)}
    notebooks = _broken_notebooks(tmp_path, 'raise RuntimeError("boom: <b>disk</b> on fire")')
    monkeypatch.setenv("AIOPS_NOTEBOOKS", str(notebooks))
    events: list[ReportProgress] = []

    with pytest.raises(ReportError) as info:
        run_report("health", source="demo", out_dir=health_copy.reports_dir,
                   date=health_copy.day, progress=events.append)

    err = info.value
    assert err.exit_code == 1
    assert "cell" in err.message and "RuntimeError: boom" in err.message
    assert "In [" in err.message  # names the failing cell
    failed = day_dir / "health.failed.ipynb"
    assert str(failed) in (err.hint or "")
    # the executed notebook with the red error cell is kept beside
    nb = nbformat.read(failed, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert errors and errors[0].ename == "RuntimeError"
    assert nb.metadata.papermill.exception is True
    # the last good report is untouched, nothing half-written is left
    for path, content in good.items():
        assert path.read_bytes() == content, path
    assert _leftovers(day_dir) == []
    assert events[0].stage == "start" and events[-1].stage == "failed"
    index = (health_copy.reports_dir / "index.html").read_text()
    assert "health.failed.ipynb" in index


def test_unknown_report_lists_known_ones(tmp_path):
    with pytest.raises(ParameterError) as info:
        run_report("helth", out_dir=tmp_path)
    assert "helth" in info.value.message
    assert "health" in (info.value.hint or "")
    assert not any(tmp_path.iterdir())


def test_unknown_parameter_is_rejected_before_running(tmp_path):
    with pytest.raises(ParameterError) as info:
        run_report("health", out_dir=tmp_path, parameters={"windw": "1d"})
    assert "windw" in info.value.message and "window" in (info.value.hint or "")


def test_bad_date_is_a_parameter_error(tmp_path):
    with pytest.raises(ParameterError):
        run_report("health", out_dir=tmp_path, date="23/11/2026")


# -- several reports, small notebooks ---------------------------------------------

def _tiny(path: Path, body: str) -> None:
    params = nbformat.v4.new_code_cell('source = "demo"\nmessage = "hello"')
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# tiny"), params, nbformat.v4.new_code_cell(body)])
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


@pytest.fixture
def tiny_reports(tmp_path, monkeypatch):
    nbs = tmp_path / "notebooks"
    _tiny(nbs / "tiny" / "ok.ipynb", "print(message * 2)")
    _tiny(nbs / "tiny" / "bad.ipynb", "1 / 0")
    _tiny(nbs / "tiny" / "slow.ipynb", "import time\ntime.sleep(60)")
    monkeypatch.setenv("AIOPS_NOTEBOOKS", str(nbs))
    for name in ("ok", "bad", "slow"):
        monkeypatch.setitem(REPORTS, name, ReportSpec(name, f"tiny/{name}.ipynb", name.title()))
    return tmp_path / "reports"


def test_run_reports_continues_after_a_failure(tiny_reports):
    events: list[ReportProgress] = []
    results = run_reports(["bad", "ok"], out_dir=tiny_reports, date="2026-01-05",
                          parameters={"message": "<hi>"}, progress=events.append)
    assert [r.name for r in results] == ["bad", "ok"]
    bad, ok = results
    assert not bad.ok and isinstance(bad.error, ReportError)
    assert "ZeroDivisionError" in str(bad.error)
    assert bad.failed_notebook and bad.failed_notebook.exists()
    assert ok.ok and ok.html.exists() and ok.notebook.exists()
    nb = nbformat.read(ok.notebook, as_version=4)
    assert nb.metadata.papermill.parameters["message"] == "<hi>"
    page = ok.html.read_text()
    assert "&lt;hi&gt;&lt;hi&gt;" in page  # stream output escaped by nbconvert
    assert "print(message" not in page  # no code cells in the page
    stages = [(e.report, e.stage) for e in events]
    assert ("bad", "failed") in stages and ("ok", "done") in stages
    cells = [e for e in events if e.report == "ok" and e.stage == "cell"]
    assert cells[-1].done == cells[-1].total == 3  # injected params + 2 code cells
    index = (tiny_reports / "index.html").read_text()
    assert "2026-01-05/ok.html" in index and "bad.failed.ipynb" in index


def test_timeout_is_a_report_error(tiny_reports):
    with pytest.raises(ReportError) as info:
        run_report("slow", out_dir=tiny_reports, timeout=3, date="2026-01-05")
    assert "timed out" in info.value.message
    assert "time.sleep(60)" in info.value.message or "cell" in info.value.message
    assert (tiny_reports / "2026-01-05" / "slow.failed.ipynb").exists()
    assert not (tiny_reports / "2026-01-05" / "slow.html").exists()


def test_missing_notebook_names_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("AIOPS_NOTEBOOKS", str(tmp_path / "nowhere"))
    with pytest.raises(ReportError) as info:
        run_report("health", out_dir=tmp_path / "reports")
    assert "AIOPS_NOTEBOOKS" in (info.value.hint or "")


def test_timed_out_cell_is_marked_red(tiny_reports):
    with pytest.raises(ReportError):
        run_report("slow", out_dir=tiny_reports, timeout=2, date="2026-01-06")
    nb = nbformat.read(tiny_reports / "2026-01-06" / "slow.failed.ipynb", as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any(o.output_type == "error" and o.ename == "CellTimeoutError" for o in outputs)
