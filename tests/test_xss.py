"""Cluster-supplied text is shown as text, never executed, on every page of the site.

A copy of the demo cluster gets HTML/script payloads where a cluster really
lets anyone write free text: event messages, log lines, pod annotations and
container termination messages (pod names and label values are restricted by
the API to DNS-ish names, so no markup fits there). One `aiops report all`
renders it (module fixture); headless Chromium, with the network blocked,
loads the index and every report. Each payload, if it ran, would set
`window.__xss` and mark the <html> element with a `data-xss` attribute, which
the DOM dump would show.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import aiops.sources.demo as demo
from aiops.reports.html import external_references
from aiops.reports.runner import REPORTS

AIOPS = Path(sys.executable).parent / "aiops"
DAY = "2026-11-23"
MARK = "document.documentElement.setAttribute('data-xss','1')"
SCRIPT = f"<script>window.__xss=1;{MARK}</script>"
IMG = f'<img src=x onerror="window.__xss=1;{MARK}">'
SVG = f'"><svg/onload=window.__xss=1;{MARK}>'
PAYLOADS = (SCRIPT, IMG, SVG)


def _plant(cluster: Path) -> None:
    """Payloads into the todo namespace's events, pods and logs."""
    ns = cluster / "todo"
    events = json.loads((ns / "events.json").read_text())
    for i, ev in enumerate(events["items"]):
        ev["message"] = f"{ev.get('message', '')} {PAYLOADS[i % 3]}"
    (ns / "events.json").write_text(json.dumps(events))
    pods = json.loads((ns / "pods.json").read_text())
    for pod in pods["items"]:
        pod["metadata"].setdefault("annotations", {})["example.com/note"] = IMG
        for cs in pod.get("status", {}).get("containerStatuses") or []:
            for state in (cs.get("lastState") or {}, cs.get("state") or {}):
                if "terminated" in state:
                    state["terminated"]["message"] = SVG + " " + SCRIPT
    (ns / "pods.json").write_text(json.dumps(pods))
    for log in ns.glob("*/logs*.txt"):
        lines = log.read_text().splitlines(keepends=True)
        out = []
        for line in lines:
            out.append(line)
            if line.startswith("==== START"):
                out.append(f"2026-11-23T07:00:00Z ERROR request failed: {SCRIPT} {SVG}\n")
        log.write_text("".join(out))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`aiops report all` of the poisoned demo cluster, through the real CLI."""
    tmp = tmp_path_factory.mktemp("xss")
    snap = tmp / "cluster"
    shutil.copytree(demo.DATA_DIR, snap)
    _plant(snap / "cluster")
    out = tmp / "reports"
    proc = subprocess.run([str(AIOPS), "report", "all", "--source", str(snap), "--out",
                           str(out), "--date", DAY], capture_output=True, text=True,
                          check=False, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def _pages(site: Path) -> list[Path]:
    return [site / "index.html", *(site / DAY / f"{n}.html" for n in REPORTS)]


def test_payloads_reach_the_pages_escaped(site):
    """The payloads are in the data the reports show (else this test proves nothing),
    and no page carries one as markup."""
    found = set()
    for page in _pages(site):
        html = page.read_text(encoding="utf-8")
        for p in PAYLOADS:
            assert p not in html, (page.name, p)
        if "&lt;script&gt;window.__xss=1" in html:
            found.add(page.name)
        assert external_references(html) == [], page
    assert "health.html" in found  # events and findings quote the planted messages


@pytest.mark.system
def test_every_page_loads_clean_in_chromium(site, chromium):
    shown = 0
    for page in _pages(site):
        dom, console = load(chromium, page)
        assert console == [], (page.name, console)
        root = re.search(r"<html[^>]*>", dom)
        assert root and "data-xss" not in root.group(0), page.name
        assert "<script>window.__xss" not in dom and "<svg/onload" not in dom
        assert not re.search(r"<img[^>]*onerror", dom), page.name
        if "&lt;script&gt;window.__xss=1" in dom:
            shown += 1  # the payload, visible as text
        if page.name != "index.html" or "plotly-graph-div" in page.read_text():
            # charts drew: a plotly div with its svg
            assert "js-plotly-plot" in dom and 'class="main-svg"' in dom, page.name
    assert shown >= 1


def load(chromium, page: Path) -> tuple[str, list[str]]:
    """The DOM after scripts ran, and every console message (Chromium logs them all
    at one level, so any message counts: the pages are expected to be silent)."""
    proc = subprocess.run([*chromium._args(), "--enable-logging=stderr", "--v=0",
                           "--dump-dom", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and "<html" in proc.stdout, proc.stderr[-2000:]
    console = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]
    return proc.stdout, console
