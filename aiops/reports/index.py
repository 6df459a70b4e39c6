"""`reports/index.html`: the report site's front page, as plain static files.

The index is rebuilt from what is on disk (`<reports>/<YYYY-MM-DD>/<name>.*`),
so it never drifts from the files and needs no state of its own: every run by
day and type (newest first), a small plotly trend of the health and security
scores and the daily cost read from each run's `<name>.summary.json`, and links
to the runbooks (`runbooks/*.md`, also rendered to `*.html` so a browser shows
them). Every link is relative and the only script, plotly.js, is a file next to
the index (`assets/plotly.min.js`): it opens from a directory, a file share or
any static file server, with no network.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiops.atomic import write_text

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
INDEX_NAME = "index.html"
ASSETS = "assets"
PLOTLY_FILE = "plotly.min.js"
RUNBOOKS = "runbooks"
DAYS_PER_MONTH = 365 / 12  # the cost summary is monthly; the trend shows a daily figure


@dataclass
class RunEntry:
    """One report of one day, as found on disk."""

    day: str
    name: str
    html: Path | None = None
    notebook: Path | None = None
    failed: Path | None = None
    summary: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.html is not None


def _name_of(path: Path) -> tuple[str, str] | None:
    """(report name, role) from a file name, or None for files we do not list."""
    n = path.name
    if n.startswith("."):
        return None
    for suffix, role in ((".failed.ipynb", "failed"), (".summary.json", "summary"),
                         (".html", "html"), (".ipynb", "notebook")):
        if n.endswith(suffix) and len(n) > len(suffix):
            return n[: -len(suffix)], role
    return None


def scan(reports_dir: str | Path) -> list[RunEntry]:
    """All runs under `reports_dir`, newest day first, then by report name."""
    root = Path(reports_dir)
    entries: list[RunEntry] = []
    if not root.is_dir():
        return entries
    for day_dir in sorted((d for d in root.iterdir() if d.is_dir() and DAY.match(d.name)),
                          key=lambda d: d.name, reverse=True):
        found: dict[str, RunEntry] = {}
        for f in sorted(day_dir.iterdir()):
            parsed = _name_of(f) if f.is_file() else None
            if not parsed:
                continue
            name, role = parsed
            e = found.setdefault(name, RunEntry(day_dir.name, name))
            if role == "summary":
                try:
                    data = json.loads(f.read_text(encoding="utf-8"))
                    e.summary = data if isinstance(data, dict) else {}
                except (OSError, ValueError):
                    e.summary = {}
            else:
                setattr(e, role, f)
        entries.extend(found[k] for k in sorted(found))
    return entries


def _link(root: Path, path: Path | None, label: str) -> str:
    if path is None:
        return ""
    href = quote(path.relative_to(root).as_posix())
    return f'<a href="{escape(href, quote=True)}">{escape(label)}</a>'


_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif;
       margin: 2rem auto; max-width: 960px; padding: 0 1rem; color: #1f2937; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
p.meta { color: #6b7280; margin-top: 0; }
h2 { font-size: 1.25rem; margin: 1.8rem 0 0.4rem; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 0.4rem; }
table { border-collapse: collapse; width: 100%; font-size: 0.92rem; table-layout: fixed; }
th:nth-child(1) { width: 18%; } th:nth-child(2) { width: 22%; } th:nth-child(3) { width: 10%; }
th:nth-child(4) { width: 22%; }
td { overflow-wrap: anywhere; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #e5e7eb; }
th { background: #f3f4f6; font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; }
.failed { color: #9b1c1c; font-weight: 600; }
.grade { font-weight: 700; }
a { color: #1d4ed8; }
"""


def render_index(reports_dir: str | Path, title: str = "aiops reports") -> str:
    """The index page as a string (see `update_index`)."""
    root = Path(reports_dir)
    entries = scan(root)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
           f"<h1>{escape(title)}</h1>",
           f'<p class="meta">{len(entries)} report runs · updated {escape(now)}</p>']
    chart, chart_script = _trend_html(root, entries)
    out.append(chart)
    out.append(_runbooks_html(root))
    if entries:
        out.append('<h2 id="runs">Runs</h2>')
    if not entries:
        out.append("<p>No reports yet. Run <code>aiops report health</code>.</p>")
    day = None
    for e in entries:
        if e.day != day:
            if day is not None:
                out.append("</tbody></table>")
            day = e.day
            out.append(f'<h3 id="d{escape(day, quote=True)}">{escape(day)}</h3>')
            out.append("<table><thead><tr><th>report</th><th>status</th><th>score</th>"
                       "<th>source</th><th>files</th></tr></thead><tbody>")
        score = e.summary.get("score")
        grade = e.summary.get("grade")
        score_txt = ""
        if isinstance(score, int | float):
            score_txt = f"{score:.0f}"
            if grade:
                score_txt += f' <span class="grade">{escape(str(grade))}</span>'
        if e.ok:
            status = "ok" if not e.failed else 'ok <span class="failed">(a later run failed)</span>'
        else:
            status = '<span class="failed">failed</span>'
        files = " · ".join(x for x in (
            _link(root, e.html, "report"), _link(root, e.notebook, "notebook"),
            _link(root, e.failed, "failed notebook")) if x)
        name = _link(root, e.html, e.name) if e.html else escape(e.name)
        source = escape(str(e.summary.get("source", "")))
        out.append(f"<tr><td>{name}</td><td>{status}</td><td class=\"num\">{score_txt}</td>"
                   f"<td>{source}</td><td>{files}</td></tr>")
    if day is not None:
        out.append("</tbody></table>")
    out.append(chart_script)
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# -- trend -----------------------------------------------------------------------

def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value else None  # NaN is not a point


def trend(entries: list[RunEntry]) -> dict[str, list[tuple[str, float]]]:
    """Per series (health, security, cost per day), (day, value) oldest first,
    from the summaries of the good runs."""
    series: dict[str, list[tuple[str, float]]] = {"health": [], "security": [], "cost": []}
    for e in sorted((e for e in entries if e.ok), key=lambda e: e.day):
        if e.name in ("health", "security"):
            v = _number(e.summary.get("score"))
            if v is not None:
                series[e.name].append((e.day, v))
        elif e.name == "cost":
            v = _number(e.summary.get("cluster_monthly"))
            if v is not None:
                series["cost"].append((e.day, round(v / DAYS_PER_MONTH, 2)))
    return series


def trend_figure(series: dict[str, list[tuple[str, float]]], currency: str = "") -> Any:
    """Scores on the left axis (0-100), daily cost on the right."""
    import plotly.graph_objects as go

    from aiops.reports.plots import FONT, PALETTE

    fig = go.Figure()
    for key, label, color in (("health", "health score", PALETTE[2]),
                              ("security", "security score", PALETTE[0])):
        pts = series.get(key) or []
        if pts:
            fig.add_trace(go.Scatter(x=[d for d, _ in pts], y=[v for _, v in pts], name=label,
                                     mode="lines+markers", line={"color": color}))
    cost = series.get("cost") or []
    if cost:
        fig.add_trace(go.Scatter(x=[d for d, _ in cost], y=[v for _, v in cost],
                                 name=f"cost per day{f' ({currency})' if currency else ''}",
                                 mode="lines+markers", yaxis="y2",
                                 line={"color": PALETTE[1], "dash": "dot"}))
    fig.update_layout(
        height=260, margin={"l": 50, "r": 60, "t": 20, "b": 40}, font={"family": FONT},
        legend={"orientation": "h", "y": -0.25}, template="plotly_white",
        xaxis={"type": "date", "tickformat": "%Y-%m-%d"},
        yaxis={"title": "score", "range": [0, 105]},
        yaxis2={"title": "cost per day", "overlaying": "y", "side": "right",
                "rangemode": "tozero", "showgrid": False})
    return fig


def write_plotlyjs(root: Path) -> Path:
    """`<root>/assets/plotly.min.js` from the installed plotly, rewritten only when it
    differs (a page that loads it then works without any network)."""
    from plotly.offline import get_plotlyjs

    target = root / ASSETS / PLOTLY_FILE
    js = get_plotlyjs()
    if target.is_file() and target.stat().st_size == len(js.encode("utf-8")):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text(target, js, mode=0o644)
    return target


def _trend_html(root: Path, entries: list[RunEntry]) -> tuple[str, str]:
    """(the chart's heading and div, the scripts that draw it: for the page's end)."""
    series = trend(entries)
    if not any(series.values()):
        return "", ""
    currency = next((str(e.summary.get("currency")) for e in entries
                     if e.name == "cost" and e.summary.get("currency")), "")
    from aiops.reports.plots import CONFIG

    write_plotlyjs(root)
    fig = trend_figure(series, currency)
    # plotly's JSON escapes "<", ">" and "&" as \\u003c..., so summary text cannot
    # close the script; the values here are numbers and dates anyway.
    html = fig.to_html(full_html=False, include_plotlyjs=False, config=CONFIG,
                       default_width="100%", default_height="260px", div_id="aiops-trend")
    # The chart's place stays at the top; its data script goes to the end of the
    # page, so the list of runs (newest first) is the first thing in the source too.
    cut = html.index("<script")
    div, script = html[:cut], html[cut:]
    return (f'<h2 id="trend">Trend</h2><div class="trend">{div}</div></div>',
            f'<script src="{ASSETS}/{PLOTLY_FILE}"></script><div hidden>{script}')


# -- runbooks --------------------------------------------------------------------

_ANCHOR_LINE = re.compile(r'^<a id="([A-Za-z0-9_.:-]+)"></a>\s*$')
_MD_HREF = re.compile(r"^([A-Za-z0-9_.-]+)\.md(#[A-Za-z0-9_.:-]*)?$")
_SAFE_SCHEMES = ("http://", "https://", "mailto:")


def _href(url: str) -> str | None:
    """A link target the runbook pages may use: a sibling runbook (`x.md#y` becomes
    `x.html#y`), a same-page anchor, or http(s)/mailto; anything else is dropped."""
    m = _MD_HREF.match(url)
    if m:
        return f"{'index' if m.group(1) == 'README' else m.group(1)}.html{m.group(2) or ''}"
    if url.startswith("#") or url.lower().startswith(_SAFE_SCHEMES):
        return url
    return None


def markdown_html(text: str) -> str:
    """Our runbook Markdown as HTML, safely: raw HTML is never passed through (it
    shows as text) except the runbooks' own `<a id="rule-id"></a>` anchors, which
    are rebuilt from a strict pattern; links are limited by `_href`.

    Uses markdown-it-py (installed with rich) in CommonMark mode with html off.
    """
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    parts: list[str] = []
    chunk: list[str] = []
    for line in text.splitlines():
        m = _ANCHOR_LINE.match(line)
        if m:
            parts.append(md.render("\n".join(chunk)))
            chunk = []
            parts.append(f'<a id="{escape(m.group(1), quote=True)}"></a>')
        else:
            chunk.append(line)
    parts.append(md.render("\n".join(chunk)))
    html = "".join(parts)

    def fix(m: re.Match[str]) -> str:
        import html as html_mod

        target = _href(html_mod.unescape(m.group(1)))
        return f'href="{escape(target, quote=True)}"' if target else 'href="#"'

    return re.sub(r'href="([^"]*)"', fix, html)


_RUNBOOK_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif;
       margin: 2rem auto; max-width: 960px; padding: 0 1rem; color: #1f2937; line-height: 1.5; }
table { border-collapse: collapse; } th, td { border: 1px solid #e5e7eb; padding: 4px 8px; }
pre { background: #f3f4f6; padding: 8px; overflow-x: auto; } code { font-size: 0.92em; }
nav { font-size: 0.9rem; margin-bottom: 1rem; } a { color: #1d4ed8; }
"""


def render_runbooks(reports_dir: str | Path) -> list[Path]:
    """`<reports>/runbooks/<family>.html` (and `index.html` for README.md) from the
    Markdown runbooks there, for browsers; returns the pages written."""
    rb = Path(reports_dir) / RUNBOOKS
    if not rb.is_dir():
        return []
    written = []
    for md in sorted(rb.glob("*.md")):
        stem = "index" if md.stem == "README" else md.stem
        title = "Runbooks" if stem == "index" else f"Runbook: {md.stem}"
        page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{escape(title)}</title><style>{_RUNBOOK_CSS}</style></head><body>"
                '<nav><a href="../index.html">reports</a> · <a href="index.html">runbooks</a>'
                f' · <a href="{escape(quote(md.name), quote=True)}">Markdown source</a></nav>'
                f"{markdown_html(md.read_text(encoding='utf-8'))}</body></html>\n")
        target = rb / f"{stem}.html"
        write_text(target, page, mode=0o644)
        written.append(target)
    return written


def runbook_href(rule_id: str, base: str = "../") -> str | None:
    """The browser page of a rule's runbook section (`<base>runbooks/<family>.html#<rule>`),
    None for an unknown rule: what report cells link a finding to."""
    from aiops.runbooks.links import runbook_path

    path = runbook_path(rule_id, base=base)
    if not path:
        return None
    page, _, anchor = path.partition("#")
    return f"{page.removesuffix('.md')}.html#{anchor}"


def _runbooks_html(root: Path) -> str:
    rb = root / RUNBOOKS
    if not (rb / "README.md").is_file():
        return ""
    links = []
    for md in sorted(rb.glob("*.md")):
        if md.stem == "README":
            continue
        page = rb / f"{md.stem}.html"
        target = page if page.is_file() else md
        links.append(_link(root, target, md.stem))
    index = rb / "index.html"
    head = _link(root, index if index.is_file() else rb / "README.md", "all runbooks")
    return (f'<h2 id="runbooks">Runbooks</h2><p>{head} (Markdown: '
            f'{_link(root, rb / "README.md", "README.md")}) · one per failure family: '
            + " · ".join(links) + "</p>")


def update_index(reports_dir: str | Path, title: str = "aiops reports") -> Path:
    """Rewrite `<reports_dir>/index.html` atomically and return its path."""
    root = Path(reports_dir)
    root.mkdir(parents=True, exist_ok=True)
    target = root / INDEX_NAME
    write_text(target, render_index(root, title), mode=0o644)
    return target


__all__ = ["RunEntry", "markdown_html", "render_index", "render_runbooks", "runbook_href", "scan",
           "trend", "trend_figure", "update_index", "write_plotlyjs"]
