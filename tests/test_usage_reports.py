"""The utilization and cost reports on the demo cluster, and their figure builders.

The report tests run the notebooks through the runner (papermill, a kernel, the
HTML export) and assert on what came out: the saved summaries, the tables of
the published page, the charts, the trend of a second run, and the
"unavailable" sections of a source without usage history.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from aiops.reports import usage_plots as up
from aiops.reports.html import PLOTLYJS_MARKER, external_references
from aiops.reports.runner import (
    REPORTS,
    build_parameters,
    declared_parameters,
    notebooks_dir,
    run_report,
)

DAY1, DAY2 = "2026-11-23", "2026-11-24"
NAMES = ("utilization", "cost")
PAGE_BUDGET = 1_500_000  # bytes of a page besides the inlined plotly.js


# -- helpers ------------------------------------------------------------------------

class TableRows(HTMLParser):
    """The rows of every <table> in a page, each a list of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._row: list[str] | None = None
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._text is not None:
            self._row.append(" ".join("".join(self._text).split()))
            self._text = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None


def table_rows(page: str) -> list[list[str]]:
    parser = TableRows()
    parser.feed(page)
    return parser.rows


def find_row(rows: list[list[str]], *needles: str) -> list[str] | None:
    """The first row in which every needle occurs in some cell."""
    for row in rows:
        if all(any(n in cell for cell in row) for n in needles):
            return row
    return None


def section(page: str, heading: str) -> str:
    """The page from the <h2> titled `heading` to the next <h2>."""
    found = re.search(r"<h2[^>]*>\s*" + re.escape(heading), page)
    assert found, f"no section {heading!r}"
    end = page.find("<h2", found.end())
    return page[found.start():end if end > 0 else len(page)]


class Run:
    def __init__(self, result) -> None:
        self.result = result
        self.page = Path(result.html).read_text(encoding="utf-8")
        self.summary = json.loads(Path(result.summary).read_text())
        self.rows = table_rows(self.page)


@pytest.fixture(scope="module")
def reports_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("usage-reports")


@pytest.fixture(scope="module")
def first(reports_dir: Path) -> dict[str, Run]:
    return {name: Run(run_report(name, source="demo", out_dir=reports_dir, date=DAY1))
            for name in NAMES}


@pytest.fixture(scope="module")
def second(first: dict[str, Run], reports_dir: Path) -> dict[str, Run]:
    return {name: Run(run_report(name, source="demo", out_dir=reports_dir, date=DAY2))
            for name in NAMES}


@pytest.fixture(scope="module")
def snapshot_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Both reports on a snapshot of the demo (a capture has no usage.parquet)."""
    from aiops import open_source
    from aiops.sources.capture import capture

    snap = tmp_path_factory.mktemp("snapshot") / "demo"
    capture(open_source("demo"), snap)
    assert open_source(str(snap)).history is None
    out = tmp_path_factory.mktemp("snapshot-reports")
    return {name: Run(run_report(name, source=str(snap), out_dir=out, date=DAY1))
            for name in NAMES}


# -- the committed notebooks and the registry ---------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_is_clean_and_parameterised(name):
    path = notebooks_dir() / REPORTS[name].notebook
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "outputs committed"
    assert "parameters" in code[0].metadata.get("tags", [])
    assert "report-hide" in nb.cells[0].metadata.get("tags", [])
    declared = declared_parameters(path)
    assert set(declared) >= {"source", "namespaces", "window", "title", "prometheus", "store",
                             "percentile", "margin", "reports_dir", "report_date",
                             "previous_summary", "summary_path"}
    assert declared["source"] == '"demo"' and declared["window"] == '"14d"'
    # executing it with the defaults (pytest --nbval-lax) must not write into the repo
    assert declared["summary_path"] == '""'
    for c in code:  # thin: the logic lives in aiops/
        assert "def " not in c.source and "class " not in c.source, c.source
    if name == "cost":
        assert declared["pricing"] == '""'


def test_reports_are_registered_with_their_own_window():
    for name in NAMES:
        spec = REPORTS[name]
        assert spec.defaults["window"] == "14d"
        assert (notebooks_dir() / spec.notebook).is_file()
    assert REPORTS["health"].defaults["window"] == "7d"
    spec = REPORTS["utilization"]
    declared = declared_parameters(notebooks_dir() / spec.notebook)
    kw = {"source": "demo", "out_root": Path("/tmp/r"), "day": DAY1,
          "summary_tmp": Path("/tmp/r/s.json")}
    assert build_parameters(spec, declared, parameters=None, **kw)["window"] == "14d"
    assert build_parameters(spec, declared, parameters={"window": "3d"}, **kw)["window"] == "3d"


# -- utilization ----------------------------------------------------------------------

@pytest.mark.slow
def test_utilization_summary_on_the_demo(first):
    s = first["utilization"].summary
    assert s["report"] == "utilization" and s["source"] == "demo" and s["date"] == DAY1
    assert s["history"] == "demo" and s["window"] == "14d"
    assert s["containers"] >= 10
    assert s["insufficient_data"] >= 1  # the CronJob and the Pending pod have no samples
    assert s["savings_pct"] >= 20 and s["monthly_savings"] > 0
    assert 0 < s["cpu_efficiency"] < 1 and 0 < s["memory_efficiency"] < 2
    assert "todo/todo-backend/backend" in s["leaks"]


@pytest.mark.slow
def test_utilization_page_has_the_frontend_recommendation_with_its_backtest(first):
    from aiops import open_source
    from aiops.quantity import format_cores
    from aiops.rightsizing import recommend

    run = first["utilization"]
    recs = recommend(open_source("demo"), window="14d")
    fe = recs[recs["workload"] == "todo-frontend"].iloc[0]
    change = f"{format_cores(fe['cpu_request_current'])} → " \
             f"{format_cores(fe['cpu_request_recommended'])}"
    row = find_row(run.rows, "todo/todo-frontend · frontend", change)
    assert row is not None, f"no todo-frontend row with {change}"
    assert "patch ready" in row
    # the back-test sits beside the recommendation: CPU > request and throttling risk in %
    bt = fe["backtest"]
    assert f"{bt['cpu_over_request_pct']:.1f} %" in row
    assert f"{bt['cpu_throttle_risk_pct']:.1f} %" in row
    assert f"{fe['monthly_savings_usd']:+,.2f}" in row
    head = find_row(run.rows, "workload · container", "back-test: CPU > request")
    assert head is not None and "OOM kills" in head
    # every recommendation row carries its back-test cells (or blanks for no data)
    assert find_row(run.rows, "todo/todo-db-backup · backup", "insufficient-data")


@pytest.mark.slow
def test_utilization_page_has_the_backend_leak_forecast(first):
    run = first["utilization"]
    leaks = section(run.page, "Memory-leak forecasts")
    row = find_row(table_rows(leaks), "todo/Deployment/todo-backend", "backend")
    assert row is not None
    assert row[0] == "critical"
    days = float(row[6])
    assert 0 < days < 14
    assert re.search(r"\d+\.\d – \d+\.\d days", " ".join(row))
    assert "plotly-graph-div" in leaks and "95 % band" in leaks and "memory limit" in leaks


@pytest.mark.slow
def test_utilization_page_charts_and_advice(first):
    page = first["utilization"].page
    assert "Usage vs requests vs limits" in page
    assert "Efficiency per workload and day" in page
    hpa = section(page, "Replicas and autoscaling")
    assert "minReplicas = ceil(p95" in hpa  # the formula is stated
    assert find_row(table_rows(hpa), "todo/todo-backend", "2–5 at 70 %")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_pages_are_offline_and_light(first, name):
    run = first[name]
    assert external_references(run.page) == []
    charts = run.page.count('class="plotly-graph-div"')
    assert charts >= (5 if name == "utilization" else 6)
    assert run.page.count(PLOTLYJS_MARKER) == 1
    from plotly.offline import get_plotlyjs

    assert len(run.page.encode()) - len(get_plotlyjs().encode()) < PAGE_BUDGET
    assert run.result.seconds < 60, run.result.timings


# -- cost -------------------------------------------------------------------------------

@pytest.mark.slow
def test_cost_page_has_namespaces_and_idle(first):
    run = first["cost"]
    s = run.summary
    assert s["cluster_monthly"] > 0 and s["idle_monthly"] > 0
    assert s["savings_pct"] >= 20
    assert {"todo", "kube-system", "__idle__"} <= set(s["by_namespace"])
    ns = table_rows(section(run.page, "Cost by namespace"))
    assert find_row(ns, "namespace", "total USD/month")
    for name in ("todo", "kube-system"):
        row = find_row(ns, name)
        assert row is not None and row[0] == name
    idle = find_row(ns, up.IDLE_LABEL)
    assert idle is not None
    assert f"{s['by_namespace']['__idle__']:,.2f}" in idle
    wl = table_rows(section(run.page, "Cost by workload"))
    assert find_row(wl, "todo/StatefulSet/todo-postgres") and find_row(wl, up.IDLE_LABEL)
    assert find_row(table_rows(section(run.page, "Cost by team")), "no team label")
    assert find_row(table_rows(section(run.page, "Volume storage")), "data-todo-postgres-0")


@pytest.mark.slow
def test_cost_page_states_what_savings_mean(first):
    saving = section(first["cost"].page, "Savings potential")
    assert "Savings become real once nodes shrink" in saving
    assert "node(s) of the current shape now and" in saving
    assert "Honestly" not in saving  # the demo saves more than 20 %


# -- the trend of a second run ----------------------------------------------------------

@pytest.mark.slow
def test_second_run_shows_the_trend(first, second):
    for name in NAMES:
        assert "This is the first report" in section(first[name].page,
                                                     "Changes since the previous report")
        trend = section(second[name].page, "Changes since the previous report")
        assert "This is the first report" not in trend
        assert f"previous report: {DAY1}" in trend
    util = table_rows(section(second["utilization"].page, "Changes since the previous report"))
    prev = first["utilization"].summary
    row = find_row(util, "savings potential (%)")
    assert row is not None and row[1] == f"{prev['savings_pct']:.1f}" and row[3] == "no change"
    row = find_row(util, "CPU efficiency")
    assert row is not None and row[1] == f"{prev['cpu_efficiency']:.0%}"
    cost = table_rows(section(second["cost"].page, "Changes since the previous report"))
    row = find_row(cost, "cluster cost")
    assert row is not None and row[1] == f"{first['cost'].summary['cluster_monthly']:,.2f}"
    assert find_row(cost, up.IDLE_LABEL)  # namespaces then vs now, idle included


# -- sources without usage history --------------------------------------------------------

@pytest.mark.slow
def test_snapshot_without_history_is_unavailable_not_failed(snapshot_runs):
    util = snapshot_runs["utilization"]
    assert util.result.ok
    assert util.summary["history"] == "unavailable"
    assert "no usage history" in util.summary["unavailable"]
    assert util.summary["savings_pct"] is None
    for heading in ("Usage vs requests vs limits", "Efficiency by workload and day",
                    "Right-sizing recommendations", "Memory-leak forecasts"):
        assert "Unavailable:" in section(util.page, heading), heading
    assert "has no usage history" in util.page
    cost = snapshot_runs["cost"]
    assert cost.result.ok and cost.summary["history"] == "unavailable"
    assert "Unavailable:" in section(cost.page, "Savings potential")
    # costs still come out: containers are charged their requests
    assert find_row(table_rows(section(cost.page, "Cost by namespace")), up.IDLE_LABEL)
    assert cost.summary["cluster_monthly"] > 0


@pytest.mark.slow
def test_unreachable_prometheus_is_unavailable_not_failed(tmp_path):
    result = run_report("utilization", source="demo", out_dir=tmp_path, date=DAY1,
                        parameters={"prometheus": "http://127.0.0.1:9"})
    run = Run(result)
    assert run.summary["history"] == "unavailable"
    assert "127.0.0.1:9" in run.summary["unavailable"]
    assert "Unavailable:" in section(run.page, "Right-sizing recommendations")


# -- the figure builders (no kernel) -----------------------------------------------------

def _samples() -> pd.DataFrame:
    """Two pods of one Deployment, 2 days at 30 minutes: cpu 0.1 / 0.3, memory 1 / 2 GiB."""
    t = pd.date_range("2026-01-01", periods=96, freq="30min", tz="UTC")
    rows = []
    for pod, cpu, mem in (("web-1", 0.1, 2**30), ("web-2", 0.3, 2 * 2**30)):
        for res, v in (("cpu", cpu), ("memory", mem)):
            rows.append(pd.DataFrame({"time": t, "namespace": "shop",
                                      "workload_kind": "Deployment", "workload": "web",
                                      "pod": pod, "container": "app", "resource": res,
                                      "value": float(v)}))
    return pd.concat(rows, ignore_index=True)


def _recs() -> pd.DataFrame:
    return pd.DataFrame([{"namespace": "shop", "workload_kind": "Deployment", "workload": "web",
                          "container": "app", "cpu_request_current": 0.5,
                          "cpu_limit_current": 1.0, "memory_request_current": 4 * 2**30,
                          "memory_limit_current": np.nan}])


def test_hourly_usage_sums_pods_against_summed_requests():
    h = up.hourly_usage(_samples(), _recs())
    assert list(h.columns) == up.HOURLY_COLUMNS
    cpu = h[h["resource"] == "cpu"]
    assert len(cpu) == 48 and np.allclose(cpu["usage"], 0.4)
    assert np.allclose(cpu["request"], 1.0) and np.allclose(cpu["limit"], 2.0)
    mem = h[h["resource"] == "memory"]
    assert np.allclose(mem["usage"], 3 * 2**30) and np.allclose(mem["request"], 8 * 2**30)
    assert mem["limit"].isna().all()  # no memory limit: no limit line, not a zero one
    assert (h["pods"] == 2).all()


def test_daily_efficiency_is_usage_over_request():
    eff = up.daily_efficiency(_samples(), _recs())
    assert len(eff) == 4  # 2 days x 2 resources
    cpu = eff[eff["resource"] == "cpu"]
    assert np.allclose(cpu["efficiency"], 0.4 / 1.0)
    totals = up.efficiency_totals(eff)
    assert totals["cpu"] == pytest.approx(0.4) and totals["memory"] == pytest.approx(3 / 8)
    # containers without a request are left out, not divided by zero
    no_req = _recs().assign(cpu_request_current=np.nan)
    assert set(up.daily_efficiency(_samples(), no_req)["resource"]) == {"memory"}


def _is_empty_note(fig: go.Figure) -> bool:
    return len(fig.data) == 0 and any(a.text for a in fig.layout.annotations)


@pytest.mark.parametrize("build", [
    lambda: up.usage_vs_requests(pd.DataFrame(columns=up.HOURLY_COLUMNS)),
    lambda: up.efficiency_heatmap(pd.DataFrame(columns=up.EFFICIENCY_COLUMNS)),
    lambda: up.savings_bars(pd.DataFrame()),
    lambda: up.leak_chart(pd.DataFrame(), pd.DataFrame(columns=["leak"])),
    lambda: up.cost_bars(pd.DataFrame(), "namespace"),
    lambda: up.node_cost_bars(pd.DataFrame()),
    lambda: up.savings_effect(0.0, 0.0),
])
def test_builders_show_nothing_to_show_for_empty_input(build):
    assert _is_empty_note(build())


def test_builders_draw_on_data():
    h = up.hourly_usage(_samples(), _recs())
    fig = up.usage_vs_requests(h, "cpu")
    assert {t.name for t in fig.data} == {"usage", "requests", "limits"}
    assert fig.data[0].dx == 3_600_000  # a regular hourly grid, no per-point dates
    fig = up.usage_vs_requests(h, "memory")
    assert {t.name for t in fig.data} == {"usage", "requests"}
    heat = up.efficiency_heatmap(up.daily_efficiency(_samples(), _recs()))
    assert [t.type for t in heat.data] == ["heatmap", "heatmap"]
    by = pd.DataFrame({"namespace": ["shop", "__idle__"], "cpu_cost": [5.0, 2.0],
                       "ram_cost": [1.0, 1.0], "pv_cost": [0.0, 0.0],
                       "total_cost": [6.0, 3.0], "share_pct": [66.7, 33.3]})
    bars = up.cost_bars(by, "namespace")
    assert up.IDLE_LABEL in list(bars.data[0].y)
    assert list(up.cost_rows(by, "namespace")["namespace"]) == ["shop", up.IDLE_LABEL]


def test_trend_rows_compare_then_and_now():
    assert up.trend_rows(None, {"a": 1.0}, {"a": ("A", "{:.1f}")}).empty
    t = up.trend_rows({"a": 0.5, "b": 10.0, "c": None}, {"a": 0.6, "b": 10.0, "c": 2.0},
                      {"a": ("A", "{:.0%}"), "b": ("B", "{:,.2f}"), "c": ("C", "{:.0f}")})
    assert t.to_dict("records") == [
        {"metric": "A", "previous": "50%", "now": "60%", "change": "+10%"},
        {"metric": "B", "previous": "10.00", "now": "10.00", "change": "no change"},
        {"metric": "C", "previous": "–", "now": "2", "change": "–"},
    ]
