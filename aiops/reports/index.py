"""`reports/index.html`: every report run, newest day first, as plain static HTML.

The index is rebuilt from what is on disk (`<reports>/<YYYY-MM-DD>/<name>.*`),
so it never drifts from the files and needs no state of its own. No script, no
external resource: it opens from a file share or a bucket as is.
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
from urllib.parse import quote

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
INDEX_NAME = "index.html"


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
h2 { font-size: 1.15rem; margin: 1.6rem 0 0.4rem; }
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
    if not entries:
        out.append("<p>No reports yet. Run <code>aiops report health</code>.</p>")
    day = None
    for e in entries:
        if e.day != day:
            if day is not None:
                out.append("</tbody></table>")
            day = e.day
            out.append(f'<h2 id="d{escape(day, quote=True)}">{escape(day)}</h2>')
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
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def update_index(reports_dir: str | Path, title: str = "aiops reports") -> Path:
    """Rewrite `<reports_dir>/index.html` atomically and return its path."""
    root = Path(reports_dir)
    root.mkdir(parents=True, exist_ok=True)
    page = render_index(root, title)
    fd, tmp = tempfile.mkstemp(prefix=".index.", suffix=".html.tmp", dir=root)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page)
        os.chmod(tmp, 0o644)
        target = root / INDEX_NAME
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


__all__ = ["RunEntry", "render_index", "scan", "update_index"]
