"""Reports: parameterized notebooks run with papermill, published as offline HTML.

`run_report("health", source="demo")` executes `notebooks/reports/cluster_health.ipynb`
and writes `reports/<date>/health.{ipynb,html,summary.json}` plus `reports/index.html`.
Notebook cells use `aiops.reports.plots` (figures, `show`) and `aiops.reports.html`
(escaped tables, score cards). Names are imported lazily so a kernel importing
`aiops.reports.plots` does not pay for papermill and nbconvert.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "REPORTS": "aiops.reports.runner",
    "ReportProgress": "aiops.reports.runner",
    "ReportResult": "aiops.reports.runner",
    "ReportSpec": "aiops.reports.runner",
    "ensure_kernel": "aiops.reports.runner",
    "get_report": "aiops.reports.runner",
    "register_report": "aiops.reports.runner",
    "run_report": "aiops.reports.runner",
    "run_reports": "aiops.reports.runner",
    "export_html": "aiops.reports.html",
    "update_index": "aiops.reports.index",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aiops.reports' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = sorted(_LAZY)
