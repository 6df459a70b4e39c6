"""The report site: `reports/index.html` with every run (newest first), the score
and cost trend, runbooks as pages, findings linked to them, reports run in
parallel, all with relative links that work from a plain directory.

One real `run_reports` of every registered report on the demo cluster (module
fixture); an earlier day is then made by copying that run with other scores in
its summaries, so the trend has two points per series.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from aiops.reports.html import external_references
from aiops.reports.index import markdown_html, scan, trend, update_index
from aiops.reports.runner import REPORTS, ReportProgress, run_reports

DAY, EARLIER = "2026-11-23", "2026-11-16"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[ReportProgress]]:
    out = tmp_path_factory.mktemp("site") / "reports"
    events: list[ReportProgress] = []
    results = run_reports(list(REPORTS), source="demo", out_dir=out, date=DAY,
                          progress=events.append, workers=2)
    assert all(r.ok for r in results), [str(r) for r in results if not r.ok]
    # an earlier run of every report, with other scores and cost, for the trend
    shutil.copytree(out / DAY, out / EARLIER)
    for name, key, value in (("health", "score", 42.0), ("security", "score", 33.0),
                             ("cost", "cluster_monthly", 3650.0)):
        p = out / EARLIER / f"{name}.summary.json"
        data = json.loads(p.read_text())
        data[key] = value
        p.write_text(json.dumps(data))
    update_index(out)
    return out, events


def test_reports_ran_in_parallel_and_in_order(site):
    _, events = site
    starts = [i for i, e in enumerate(events) if e.stage == "start"]
    ends = [i for i, e in enumerate(events) if e.stage == "done"]
    assert len(starts) == len(ends) == len(REPORTS)
    assert starts[1] < ends[0]  # the second report started before the first finished
    # each report's own events stay in order: start, cells 1..n, render, done
    for name in REPORTS:
        mine = [e for e in events if e.report == name]
        assert mine[0].stage == "start" and mine[-1].stage == "done"
        cells = [e.done for e in mine if e.stage == "cell"]
        assert cells == list(range(1, len(cells) + 1)) and cells[-1] == mine[0].total


def test_index_lists_every_run_newest_first_with_relative_links(site):
    root, _ = site
    page = (root / "index.html").read_text(encoding="utf-8")
    runs = re.findall(r'href="(\d{4}-\d{2}-\d{2})/([a-z]+)\.html"', page)
    assert {(d, n) for d, n in runs} == {(d, n) for d in (DAY, EARLIER) for n in REPORTS}
    assert page.index(f'id="d{DAY}"') < page.index(f'id="d{EARLIER}"')
    assert external_references(page) == []
    hrefs = re.findall(r'(?:href|src)="([^"]+)"', page)
    assert hrefs
    for href in hrefs:
        parts = urlsplit(href)
        assert not parts.scheme and not parts.netloc and not href.startswith("/"), href
        if parts.path:
            assert (root / unquote(parts.path)).is_file(), href
    assert 'src="assets/plotly.min.js"' in page and "runbooks/index.html" in page


def test_trend_reads_each_runs_summary(site):
    root, _ = site
    series = trend(scan(root))
    today = {k: dict(v)[DAY] for k, v in series.items()}
    assert [d for d, _ in series["health"]] == [EARLIER, DAY]
    assert dict(series["health"])[EARLIER] == 42.0
    assert dict(series["security"])[EARLIER] == 33.0
    assert dict(series["cost"])[EARLIER] == pytest.approx(3650 * 12 / 365, abs=0.01)
    saved = json.loads((root / DAY / "health.summary.json").read_text())
    assert today["health"] == saved["score"]
    assert 0 < today["cost"] < 10_000


def test_findings_link_to_runbook_pages(site):
    root, _ = site
    page = (root / DAY / "health.html").read_text(encoding="utf-8")
    links = set(re.findall(r'href="\.\./runbooks/([a-z-]+)\.html#([a-z0-9-]+)"', page))
    assert len(links) >= 5
    for family, rule in links:
        runbook = (root / "runbooks" / f"{family}.html").read_text(encoding="utf-8")
        assert f'<a id="{rule}"></a>' in runbook, (family, rule)
        assert (root / "runbooks" / f"{family}.md").is_file()
    assert (root / "runbooks" / "README.md").is_file()


def test_runbook_markdown_is_rendered_safely():
    html = markdown_html('<a id="crash-loop"></a>\n\n# T\n\n<script>alert(1)</script>\n\n'
                         '[x](javascript:alert(1)) [y](nodes.md#node-not-ready) '
                         '[i](README.md) <https://kubernetes.io/docs/>\n\n'
                         '<a id="x" onclick="alert(1)"></a>\n')
    assert '<a id="crash-loop"></a>' in html and "<h1>T</h1>" in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript' not in html
    assert 'href="nodes.html#node-not-ready"' in html and 'href="index.html"' in html
    assert 'href="https://kubernetes.io/docs/"' in html
    assert 'onclick="' not in html and "&lt;a id=&quot;x&quot; onclick" in html


@pytest.mark.system
def test_index_and_runbooks_in_chromium(site, chromium):
    root, _ = site
    for page in (root / "index.html", root / "runbooks" / "index.html",
                 root / "runbooks" / "containers.html"):
        proc = subprocess.run([*chromium._args(), "--enable-logging=stderr", "--v=0",
                               "--dump-dom", page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0 and "<html" in proc.stdout, proc.stderr[-2000:]
        console = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]
        assert console == [], (page.name, console)
        if page.name == "index.html" and page.parent == root:
            dom = proc.stdout
            assert "js-plotly-plot" in dom and 'class="main-svg"' in dom
            assert dom.count('class="scatterlayer') >= 1
            assert len(re.findall(r'<g class="trace scatter', dom)) == 3  # health, security, cost
