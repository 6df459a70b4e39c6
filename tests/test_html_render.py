"""The published HTML: offline, code-free, escaped, and charts that really draw.

The Chromium tests load the page with the network blocked (dead proxy, no DNS)
and read the DOM after the scripts ran.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pandas as pd
import plotly.graph_objects as go
import pytest

from aiops.reports import plots
from aiops.reports.html import (
    PLOTLYJS_MARKER,
    callout,
    export_html,
    external_references,
    scorecard,
    table,
)
from aiops.reports.index import render_index, update_index

N_FIGURES = 6  # plots.show calls in notebooks/reports/cluster_health.ipynb
PLOTLYJS_BANNER = re.compile(r"\* plotly\.js v\d+\.\d+\.\d+")


# -- static checks on the demo report ----------------------------------------------

def test_page_is_offline_and_has_no_code(health_run):
    page = health_run.html.read_text(encoding="utf-8")
    assert external_references(page) == []
    for tag in re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", page):
        assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", tag), tag
    # outside the inlined plotly.js bundle (which names map-tile hosts it never
    # uses here), nothing mentions a CDN: no require.js, MathJax, mermaid, widgets
    rest = re.sub(r"<script[^>]*" + PLOTLYJS_MARKER + r".*?</script>", "", page, flags=re.S)
    assert len(rest) < len(page) - 1_000_000
    assert not re.search(r"https?://[^\s\"'<>]*(?:cdn|unpkg|jsdelivr|cloudflare)", rest)
    assert "require.js" not in rest and "require.min.js" not in rest
    assert "mathjax" not in rest.lower().replace("mathjaxconfig", "")
    # plotly.js inlined exactly once
    assert page.count(PLOTLYJS_MARKER) == 1
    assert len(PLOTLYJS_BANNER.findall(page)) == 1
    assert page.count('class="plotly-graph-div"') == N_FIGURES
    # no code, no prompts
    assert not re.search(r'class="[^"]*(?:jp-InputArea-editor|jp-InputPrompt|jp-OutputPrompt)',
                         page)
    assert "open_source(source)" not in page and "plots.show(" not in page
    assert "In&nbsp;[" not in page and "Out[1]" not in page
    # the notebook-only note is not published
    assert "notebook notes" not in page
    assert "<title>Weekly cluster health · 2026-11-23</title>" in page


def test_index_is_static_and_offline(health_run):
    page = (health_run.reports_dir / "index.html").read_text()
    # the trend chart's only library is plotly.js saved next to the index (issue 7)
    assert re.findall(r"<script[^>]*\bsrc=[^>]*>", page) == [
        '<script src="assets/plotly.min.js">']
    assert (health_run.reports_dir / "assets" / "plotly.min.js").is_file()
    assert external_references(page) == []


# -- Chromium --------------------------------------------------------------------

@pytest.mark.system
def test_charts_render_in_chromium_offline(health_run, chromium):
    dom = chromium.dump_dom(health_run.html)
    # plotly ran: one js-plotly-plot per figure, each with drawn SVG
    assert dom.count("js-plotly-plot") >= N_FIGURES
    assert dom.count('class="main-svg"') >= N_FIGURES
    assert len(re.findall(r'<g class="trace bars"', dom)) >= 4  # bar charts drew bars
    assert 'class="indicatorlayer"' in dom  # the score gauge
    assert "class=\"scatterlayer" in dom  # the restart trend
    # the problems are on the page, as text
    for needle in ("todo-chatbot", "CrashLoopBackOff", "ImagePullBackOff", "todo-redis",
                   "todo-db-backup", "Pending", "OOMKilled"):
        assert needle in dom, needle
    assert "Problems found" in dom and "Warning events by reason" in dom


@pytest.mark.system
def test_cluster_text_is_shown_as_text_in_chromium(tmp_path, chromium):
    hostile = "<img src=x onerror=alert(1)><b>bold</b>"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
    df = pd.DataFrame({"pod": [hostile], "restarts": [3]})
    nb.cells[0].outputs = [nbformat.v4.new_output(
        "display_data", data={"text/html": table(df).html, "text/plain": "table"})]
    page = tmp_path / "hostile.html"
    page.write_text(export_html(nb, title=hostile))
    dom = chromium.dump_dom(page)
    assert "<b>bold</b>" not in dom and "<img src=\"x\"" not in dom
    assert "&lt;b&gt;bold&lt;/b&gt;" in dom


@pytest.mark.system
def test_screenshot_is_written(health_run, chromium, tmp_path):
    shot = chromium.screenshot(health_run.html, tmp_path / "health.png", height=1600)
    assert shot.exists() and shot.stat().st_size > 20_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- unit: tables, cards, export ------------------------------------------------------

def test_table_escapes_and_formats():
    df = pd.DataFrame({
        "severity": ["error", "warn"],
        "name": ["<script>alert(1)</script>", "a&b"],
        "memory": [2.5 * 2**30, float("nan")],
        "ready": [True, False],
    })
    html = table(df, badges={"severity": {"error": "error", "warn": "warn"}},
                 formats={"memory": lambda v: f"{v / 2**30:.1f} GiB"}).html
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "a&amp;b" in html
    assert '<span class="badge error">error</span>' in html
    assert "2.5 GiB" in html and "nan" not in html.lower()
    assert ">yes<" in html and ">no<" in html
    assert 'class="dataframe aiops-table"' in html


def test_table_empty_and_truncated():
    assert "Nothing here" in table(pd.DataFrame(), empty="Nothing here").html
    html = table(pd.DataFrame({"n": range(60)}), max_rows=10).html
    assert html.count("<tr>") == 11 and "50 more rows" in html


def test_table_column_mapping():
    df = pd.DataFrame({"a": [1], "b": [2], "c": [3]})
    html = table(df, columns={"c": "C!", "a": "A"}).html
    assert html.index(">C!<") < html.index(">A<") and ">b<" not in html


def test_scorecard_and_callout_escape():
    card = scorecard(72.4, "C", {"Source": "<x>", "Empty": ""}, note="a < b").html
    assert ">72<" in card and "grade-C" in card and "&lt;x&gt;" in card
    assert "Empty" not in card and "a &lt; b" in card
    note = callout("<hi>", "warn", ["<li>"]).html
    assert "&lt;hi&gt;" in note and "<li>&lt;li&gt;</li>" in note


def _figure_nb(outputs: list[str]) -> nbformat.NotebookNode:
    cells = []
    for html in outputs:
        c = nbformat.v4.new_code_cell("plots.show(fig)")
        c.outputs = [nbformat.v4.new_output("display_data",
                                            data={"text/html": html, "text/plain": "fig"})]
        cells.append(c)
    return nbformat.v4.new_notebook(cells=cells)


def test_external_references_detector():
    assert external_references('<a href="https://example.org">docs</a>') == []
    assert external_references('<script src="https://cdn.example/x.js"></script>')
    assert external_references('<link rel="stylesheet" href="//cdn.example/x.css">')
    assert external_references("<style>@import 'https://fonts.example/a.css';</style>")
    assert external_references('<style>b { background: url("http://x/y.png") }</style>')
    inline = '<style>b { background: url(data:image/png;base64,AA) }</style>'
    assert external_references(inline) == []


def test_export_keeps_exactly_one_plotlyjs():
    fig = go.Figure(go.Bar(x=["a"], y=[1]))
    twice = _figure_nb([plots.figure_html(fig, True), plots.figure_html(fig, True)])
    page = export_html(twice, title="t")
    assert page.count(PLOTLYJS_MARKER) == 1 and page.count('class="plotly-graph-div"') == 2
    missing = export_html(_figure_nb([plots.figure_html(fig, False)]), title="t")
    assert missing.count(PLOTLYJS_MARKER) == 1  # injected because a chart needs it
    none = export_html(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("hi")]))
    assert PLOTLYJS_MARKER not in none and len(none) < 1_000_000
    assert external_references(page) == []


def test_show_publishes_plotly_json_and_html(monkeypatch):
    import IPython.display

    shown: list[dict] = []
    monkeypatch.setattr(IPython.display, "display",
                        lambda obj, raw=False: shown.append(obj))
    plots.reset_plotlyjs()
    fig = plots.warning_events(pd.DataFrame({"reason": ["BackOff"], "events": [3],
                                             "objects": [1]}))
    plots.show(fig)  # the exporter inlines plotly.js: the notebook stays small
    plots.show(fig, standalone=True)  # inlined once per kernel...
    plots.show(fig, standalone=True)  # ...then never again
    assert [PLOTLYJS_MARKER in s["text/html"] for s in shown] == [False, True, False]
    assert len(shown[0]["text/html"]) < 100_000
    assert 'class="plotly-graph-div"' in shown[0]["text/html"]
    spec = shown[0]["application/vnd.plotly.v1+json"]
    assert spec["data"][0]["type"] == "bar" and spec["config"]["displaylogo"] is False
    plots.reset_plotlyjs()


# -- unit: figure builders -------------------------------------------------------------

def test_figure_builders_handle_empty_frames():
    for fig in (plots.node_capacity(pd.DataFrame()), plots.workload_readiness(pd.DataFrame()),
                plots.restart_trend(pd.DataFrame()), plots.warning_events(pd.DataFrame()),
                plots.issues_by_section(pd.DataFrame())):
        assert isinstance(fig, go.Figure) and not fig.data
        assert fig.layout.annotations and fig.layout.annotations[0].text


def test_figure_builders_on_small_frames():
    nodes = pd.DataFrame({
        "name": ["n1"], "ready": [True], "pressure": [""], "cpu_allocatable": [4.0],
        "cpu_requested": [3.8], "cpu_pct": [95.0], "memory_allocatable": [8 * 2**30],
        "memory_requested": [2 * 2**30], "memory_pct": [25.0], "pods": [20],
        "pods_allocatable": [110.0]})
    fig = plots.node_capacity(nodes)
    assert [t.name for t in fig.data] == ["CPU", "Memory", "Pods"]
    assert list(fig.data[0].y) == [95.0]

    workloads = pd.DataFrame({
        "namespace": ["todo", "todo", "todo"], "kind": ["Deployment", "Deployment", "Job"],
        "name": ["web", "api", "backup"], "desired": [2, 3, 1], "ready": [2, 1, 0],
        "available": [2, 1, 0], "healthy": [True, False, False], "condition": ["", "x", ""]})
    fig = plots.workload_readiness(workloads)
    assert list(fig.data[0].y) == ["todo/web", "todo/api"]  # worst drawn on top
    assert list(fig.data[1].x) == [0, 2]

    trend = pd.DataFrame({"day": [pd.Timestamp("2026-11-20").date()] * 2,
                          "namespace": ["a", "b"], "restarts": [3, 4]})
    assert {t.name for t in plots.restart_trend(trend, "7d").data} == {"a", "b"}

    sections = pd.DataFrame({"section": ["pods", "nodes"], "ok": [3, 1], "warn": [1, 0],
                             "error": [1, 0], "total": [5, 1], "score": [60.0, 100.0]})
    fig = plots.health_overview(80.0, "B", sections)
    assert fig.data[0].type == "indicator" and fig.data[0].value == 80.0
    assert list(fig.data[1].y) == ["pods", "nodes"]

    issues = pd.DataFrame({"severity": ["error", "warn", "error"],
                           "section": ["pods", "pods", "jobs"]})
    fig = plots.issues_by_section(issues, ["jobs", "pods"])
    assert [t.name for t in fig.data] == ["error", "warn"]
    assert list(fig.data[0].x) == ["jobs", "pods"] and list(fig.data[0].y) == [1, 1]


# -- unit: index -------------------------------------------------------------------------

def test_index_orders_runs_and_escapes(tmp_path: Path):
    for day, name in (("2026-01-01", "health"), ("2026-01-08", "health"),
                      ("2026-01-08", "co<st")):
        d = tmp_path / day
        d.mkdir(exist_ok=True)
        (d / f"{name}.html").write_text("x")
        (d / f"{name}.ipynb").write_text("{}")
    (tmp_path / "2026-01-08" / "health.summary.json").write_text(
        '{"score": 71.5, "grade": "C", "source": "<demo>"}')
    (tmp_path / "2026-01-08" / "bad.failed.ipynb").write_text("{}")
    (tmp_path / "2026-01-08" / ".health.1234.tmp.html").write_text("half")
    (tmp_path / "not-a-day").mkdir()
    page = render_index(tmp_path)
    assert page.index("2026-01-08") < page.index("2026-01-01")
    assert "co&lt;st" in page and "co<st" not in page and "co%3Cst.html" in page
    assert "&lt;demo&gt;" in page and ">72 <span" in page  # score and grade
    assert "bad.failed.ipynb" in page and "tmp" not in page and "not-a-day" not in page
    out = update_index(tmp_path)
    assert out == tmp_path / "index.html" and out.read_text() .startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.glob(".index*")] == []
