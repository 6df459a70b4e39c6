"""The health notebook on the demo cluster: the injected problems must come out.

Asserts on results (the saved summary JSON and the tables in the executed
notebook), not merely that the notebook ran.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser

import nbformat
import pytest

from aiops.reports.runner import REPORTS, declared_parameters, notebooks_dir, run_report

pytestmark = pytest.mark.slow
NOTEBOOK = notebooks_dir() / REPORTS["health"].notebook
SECOND_DAY = "2026-11-30"  # a week after conftest.FIRST_DAY


class _Tables(HTMLParser):
    """Rows (lists of cell texts) of every <table> in an HTML fragment."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _html_outputs(nb: nbformat.NotebookNode) -> list[str]:
    return ["".join(o["data"]["text/html"]) for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if "text/html" in o.get("data", {})]


def _rows(nb: nbformat.NotebookNode) -> list[list[str]]:
    parser = _Tables()
    for html in _html_outputs(nb):
        if "plotly-graph-div" not in html:
            parser.feed(html)
    return parser.rows


def _has_row(rows: list[list[str]], *needles: str) -> bool:
    return any(all(any(n in cell for cell in row) for n in needles) for row in rows)


@pytest.fixture(scope="module")
def executed(health_run):
    nb = nbformat.read(health_run.notebook, as_version=4)
    return nb, _rows(nb), json.loads(health_run.summary.read_text())


# -- the committed notebook ---------------------------------------------------------

def test_committed_notebook_is_clean_and_thin():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert "parameters" in code[0].metadata.get("tags", [])
    assert set(declared_parameters(NOTEBOOK)) >= {
        "source", "namespaces", "window", "title", "reports_dir", "previous_summary",
        "summary_path", "report_date"}
    # thin: no function or class definitions, only calls into aiops
    for c in code:
        assert "def " not in c.source and "class " not in c.source, c.source
    sources = "\n".join(c.source for c in code)
    assert "from aiops.health import assess" in sources and "open_source(source)" in sources
    assert sum(1 for c in nb.cells if c.cell_type == "markdown") >= 6


# -- results on the demo ------------------------------------------------------------

def test_score_and_grade_are_reported(executed):
    nb, _, summary = executed
    assert 0 <= summary["score"] <= 100
    assert summary["grade"] in set("ABCDEF")
    assert summary["grade"] != "A"  # the demo has problems
    assert summary["source"] == "demo"
    headline = next(h for h in _html_outputs(nb) if "aiops-scorecard" in h)
    assert f">{summary['score']:.0f}<" in headline
    assert f">{summary['grade']}<" in headline
    assert "How the score is computed" in headline and "Section score" in headline


def test_injected_problems_are_found(executed):
    _, rows, summary = executed
    issues = summary["issues"]
    text = "\n".join(issues)

    def issue(*needles: str) -> bool:
        return any(all(n in i for n in needles) for i in issues)

    assert issue("todo-chatbot", "CrashLoopBackOff"), text
    assert issue("todo-frontend"), text  # ImagePullBackOff pods / stuck rollout
    assert _has_row(rows, "todo-frontend", "ImagePullBackOff") or issue(
        "todo-frontend", "ImagePullBackOff"), text
    assert issue("todo-embeddings", "Pending"), text
    assert issue("todo-notifier"), text
    assert issue("Service", "todo-redis"), text
    assert issue("Job", "todo-db-backup"), text
    # OOMKilled shows as the last reason of todo-worker's restarts
    assert _has_row(rows, "todo-worker", "OOMKilled"), "no OOMKilled todo-worker row"
    assert any(k.endswith("todo-worker") or "todo-worker" in k for k in summary["restarts"])
    # and the same problems are in the published tables, not only in the JSON
    assert _has_row(rows, "error", "todo-chatbot", "CrashLoopBackOff")
    assert _has_row(rows, "todo-db-backup")


def test_diagnosis_findings_are_shown(executed):
    _, rows, _ = executed
    # the rule engine's root causes, with their evidence and remediation
    assert _has_row(rows, "critical", "dependency-unreachable", "todo-chatbot", "todo-redis:6379")
    assert _has_row(rows, "oom-killed", "todo-worker", "Action: patch")
    assert _has_row(rows, "service-selector-mismatch", "todo-redis")
    assert _has_row(rows, "image-not-found", "todo-frontend", "rollout-undo")


def test_sections_and_tables_are_present(executed):
    nb, rows, summary = executed
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for heading in ("## Problems found", "## Root causes and what to do", "## Nodes",
                    "## Workloads not ready", "## Restarts",
                    "## Warning events by reason", "## Changes since the previous report"):
        assert heading in markdown
    assert set(summary["sections"]) >= {"nodes", "pods", "workloads", "services"}
    assert summary["warning_events"], "the demo has warning events"
    assert _has_row(rows, "minikube")  # the node table
    reasons = set(summary["warning_events"])
    assert reasons & {"BackOff", "Failed", "FailedScheduling", "Unhealthy"}
    html = "\n".join(_html_outputs(nb))
    assert "This is the first report" in html  # no previous summary in a fresh dir
    assert html.count('class="plotly-graph-div"') == 6


def test_second_run_shows_changes(health_copy):
    result = run_report("health", source="demo", out_dir=health_copy.reports_dir,
                        date=SECOND_DAY)
    nb = nbformat.read(result.notebook, as_version=4)
    params = nb.metadata.papermill.parameters
    assert params["previous_summary"] == str(health_copy.summary.resolve())
    html = "\n".join(_html_outputs(nb))
    assert "This is the first report" not in html
    rows = _rows(nb)
    assert ["item", "previous", "current", "change"] in rows
    first = json.loads(health_copy.summary.read_text())
    second = json.loads(result.summary.read_text())
    change = f"{second['score'] - first['score']:+.1f}"
    assert any(row[0] == "score" and row[-1] == change for row in rows), rows
    index = (health_copy.reports_dir / "index.html").read_text()
    assert index.index(SECOND_DAY) < index.index(health_copy.day)


def test_parameters_reach_the_analysis(tmp_path):
    result = run_report("health", source="demo", out_dir=tmp_path, date="2026-11-24",
                        parameters={"namespaces": ["kube-system"], "window": "24h",
                                    "title": "<Ops> weekly"})
    nb = nbformat.read(result.notebook, as_version=4)
    assert nb.metadata.papermill.parameters["namespaces"] == "kube-system"
    summary = json.loads(result.summary.read_text())
    assert not any("todo" in i for i in summary["issues"]), summary["issues"]
    html = "\n".join(_html_outputs(nb))
    assert "&lt;Ops&gt; weekly" in html and "<Ops>" not in html
    page = result.html.read_text()
    assert "<title>&lt;Ops&gt; weekly · 2026-11-24</title>" in page
    assert ">kube-system<" in html and ">24h<" in html
