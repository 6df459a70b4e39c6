"""HTML for reports: safe tables and score cards for notebook cells, and the
offline, code-free page export of an executed notebook.

Two halves:

* helpers a notebook cell calls (`table`, `scorecard`, `callout`): they build
  HTML strings themselves and escape every value, because pod names, event
  messages and labels come from the cluster and must show as text;
* `export_html`: nbconvert's HTMLExporter with the `aiops` template (code cells
  and prompts removed, no require.js / MathJax / mermaid / widget loaders from a
  CDN) and a final pass guaranteeing plotly.js is inlined exactly once when the
  page holds a chart and never when it does not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

TEMPLATES_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAME = "aiops"
TABLE_CLASS = "aiops-table"
HIDE_TAG = "report-hide"
LONG_CELL = 32  # characters (escaped) above which a table cell may wrap anywhere

# The marker `plots.show` puts on the one <script> that inlines plotly.js.
PLOTLYJS_MARKER = "data-aiops-plotlyjs"
_PLOTLYJS_TAG = re.compile(
    r"<script[^>]*\b" + PLOTLYJS_MARKER + r"\b[^>]*>.*?</script>", re.DOTALL)
_PLOTLY_DIV = re.compile(r'class="plotly-graph-div"')

Formatter = Callable[[Any], str] | str


# -- cell helpers -------------------------------------------------------------

class HTMLBlock:
    """A piece of HTML that Jupyter displays (`_repr_html_`) and nbconvert keeps."""

    def __init__(self, html: str) -> None:
        self.html = html

    def _repr_html_(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.html


def _missing(value: Any) -> bool:
    if value is None or value is pd.NaT or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def _cell(value: Any, fmt: Formatter | None) -> str:
    if _missing(value):
        return ""
    if fmt is not None:
        try:
            text = fmt(value) if callable(fmt) else fmt.format(value)
        except (TypeError, ValueError):
            text = str(value)
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"
    elif isinstance(value, pd.Timestamp | datetime):
        text = value.strftime("%Y-%m-%d %H:%M")
    elif isinstance(value, date):
        text = value.isoformat()
    elif isinstance(value, list | tuple | set):
        text = ", ".join(str(v) for v in value)
    else:
        text = str(value)
    return escape(text)


def table(
    df: pd.DataFrame | None,
    *,
    columns: Sequence[str] | Mapping[str, str] | None = None,
    formats: Mapping[str, Formatter] | None = None,
    badges: Mapping[str, Mapping[str, str]] | None = None,
    links: Mapping[str, Callable[[Any], str | None]] | None = None,
    max_rows: int = 50,
    empty: str = "Nothing to show.",
    caption: str | None = None,
) -> HTMLBlock:
    """Render a DataFrame as a readable, escaped HTML table.

    `columns` picks (and with a mapping, renames) columns; `formats` maps a
    column to a format string or callable; `badges` maps a column to
    {value: css-class} so e.g. severities render as coloured labels (`error`,
    `warn`, `ok`); `links` maps a column to a function giving the cell's href (or
    None), e.g. a finding's rule to its runbook. Rows past `max_rows` are
    summarised in a footer line.
    """
    if df is None or df.empty:
        return HTMLBlock(f'<p class="aiops-empty">{escape(empty)}</p>')
    if columns is None:
        mapping = {c: str(c) for c in df.columns}
    elif isinstance(columns, Mapping):
        mapping = {c: h for c, h in columns.items() if c in df.columns}
    else:
        mapping = {c: str(c) for c in columns if c in df.columns}
    formats = formats or {}
    badges = badges or {}
    links = links or {}
    shown = df.head(max_rows)
    out = [f'<table class="dataframe {TABLE_CLASS}">']
    if caption:
        out.append(f"<caption>{escape(caption)}</caption>")
    out.append("<thead><tr>")
    for col, head in mapping.items():
        numeric = pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col])
        out.append(f'<th class="{"num" if numeric else "txt"}">{escape(head)}</th>')
    out.append("</tr></thead><tbody>")
    numeric_cols = {c for c in mapping if pd.api.types.is_numeric_dtype(df[c])
                    and not pd.api.types.is_bool_dtype(df[c])}
    for row in shown[list(mapping)].itertuples(index=False, name=None):
        out.append("<tr>")
        for col, value in zip(mapping, row, strict=True):
            text = _cell(value, formats.get(col))
            # numbers align right; short values stay on one line, long ones wrap anywhere
            size = "long" if len(text) > LONG_CELL else "short"
            cls = "num" if col in numeric_cols else size
            if col in badges and text:
                css = badges[col].get(str(value), "")
                text = f'<span class="badge {escape(css, quote=True)}">{text}</span>'
            href = links[col](value) if col in links and text else None
            if href:
                text = f'<a href="{escape(href, quote=True)}">{text}</a>'
            out.append(f'<td class="{cls}">{text}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    if len(df) > max_rows:
        out.append(f'<p class="aiops-more">… and {len(df) - max_rows} more rows '
                   "(the full table is in the executed notebook).</p>")
    return HTMLBlock("".join(out))


SEVERITY_BADGES = {"severity": {"error": "error", "warn": "warn", "ok": "ok",
                                "critical": "error", "warning": "warn", "info": "ok"}}


def gib(value: float) -> str:
    """Bytes as GiB with one decimal (a table formatter)."""
    return f"{value / 2**30:,.1f} GiB"


def pct(value: float) -> str:
    """A percentage without decimals (a table formatter)."""
    return f"{value:,.0f}%"


def cores(value: float) -> str:
    """CPU cores with two decimals (a table formatter)."""
    return f"{value:,.2f}"


def heading(text: str, level: int = 1) -> HTMLBlock:
    """An escaped heading (for titles that come from parameters)."""
    level = min(max(int(level), 1), 6)
    return HTMLBlock(f"<h{level}>{escape(text)}</h{level}>")


def scorecard(score: float, grade: str, facts: Mapping[str, Any], *,
              label: str = "Health score", note: str | None = None) -> HTMLBlock:
    """A headline card: big score and grade, then escaped `facts` as a list."""
    g = escape(str(grade))
    items = "".join(f"<dt>{escape(str(k))}</dt><dd>{escape(str(v))}</dd>"
                    for k, v in facts.items() if v not in (None, ""))
    note_html = f'<p class="aiops-note">{escape(note)}</p>' if note else ""
    return HTMLBlock(
        '<div class="aiops-scorecard">'
        f'<div class="aiops-score grade-{g}"><span class="value">{score:.0f}</span>'
        f'<span class="of">/100</span><span class="grade">{g}</span>'
        f'<span class="label">{escape(label)}</span></div>'
        f'<dl class="aiops-facts">{items}</dl>{note_html}</div>'
    )


def callout(text: str, kind: str = "info", items: Sequence[str] | None = None) -> HTMLBlock:
    """An escaped notice (`info`, `warn`, `error`, `ok`) with an optional list."""
    lst = "".join(f"<li>{escape(str(i))}</li>" for i in items or [])
    lst = f"<ul>{lst}</ul>" if lst else ""
    return HTMLBlock(f'<div class="aiops-callout {escape(kind, quote=True)}">'
                     f"<p>{escape(text)}</p>{lst}</div>")


# -- page export -------------------------------------------------------------

def _exporter() -> Any:
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    exp = HTMLExporter(
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(TEMPLATES_DIR)],
    )
    exp.exclude_input = True
    # Cells tagged `report-hide` (notes for notebook users) stay out of the page.
    exp.register_preprocessor(TagRemovePreprocessor(
        remove_cell_tags={HIDE_TAG}, enabled=True), enabled=True)
    exp.exclude_input_prompt = True
    exp.exclude_output_prompt = True
    exp.embed_images = True
    return exp


def _one_plotlyjs(body: str) -> str:
    """Keep the first inlined plotly.js, drop copies; inline it if charts lack it."""
    tags = list(_PLOTLYJS_TAG.finditer(body))
    if len(tags) > 1:
        first = tags[0].end()
        body = body[:first] + _PLOTLYJS_TAG.sub("", body[first:])
    elif not tags and _PLOTLY_DIV.search(body):
        from aiops.reports.plots import plotlyjs_tag

        body = body.replace("</head>", plotlyjs_tag() + "\n</head>", 1)
    return body


def export_html(nb: Any, title: str | None = None) -> str:
    """Render an executed notebook (a NotebookNode or a path) as one offline page."""
    import nbformat

    if not isinstance(nb, nbformat.NotebookNode):
        nb = nbformat.read(str(nb), as_version=4)
    resources = {"metadata": {"name": title or "aiops report"}}
    body, _ = _exporter().from_notebook_node(nb, resources=resources)
    return _one_plotlyjs(body)


def write_html(nb: Any, path: str | Path, title: str | None = None) -> Path:
    """Export to `path` (written as is; the runner handles the atomic rename)."""
    p = Path(path)
    p.write_text(export_html(nb, title), encoding="utf-8")
    return p


_EXTERNAL = re.compile(
    r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""",
    re.IGNORECASE)


_STYLE = re.compile(r"<style\b[^>]*>(.*?)</style>", re.IGNORECASE | re.DOTALL)
_CSS_URL = re.compile(r"""(?:@import\s+|url\(\s*)["']?\s*(?:https?:)?//[^"')\s]*""", re.IGNORECASE)


def external_references(page: str) -> list[str]:
    """What in a page would load from the network: tags with an http(s) or
    protocol-relative src/href (plain <a> links excepted), and CSS imports/urls."""
    found = [m.group(0) for m in _EXTERNAL.finditer(page)]
    for style in _STYLE.finditer(page):
        found += [m.group(0) for m in _CSS_URL.finditer(style.group(1))]
    return found


__all__ = [
    "HIDE_TAG", "SEVERITY_BADGES", "HTMLBlock", "callout", "cores", "export_html",
    "external_references", "gib", "heading", "pct", "scorecard", "table", "write_html",
]
