"""The operations report through the real runner (papermill, kernel, HTML export)
against a PHR store in a tmp git repository holding the demo history, an empty
store, the KPI section of the health report, and the page in Chromium."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest

from aiops.approvals import workflow
from aiops.approvals.phr import PhrStore
from aiops.approvals.tiers import Governance
from aiops.kpis import KpiInputs, kpis, load_kpi_inputs
from aiops.kpis.demo import create_demo_store, write_demo_history
from aiops.reports.html import external_references
from aiops.reports.operations import trend_figure
from aiops.reports.runner import REPORTS, declared_parameters, notebooks_dir, run_report
from tests.approvals.conftest import new_repo
from tests.test_usage_reports import find_row, table_rows

DAY = "2026-11-23"
END = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NOTEBOOK = notebooks_dir() / REPORTS["operations"].notebook


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> PhrStore:
    root = tmp_path_factory.mktemp("phr")
    new_repo(root)
    st = PhrStore(root / "history" / "prompts")
    write_demo_history(st, END)
    return st


@pytest.fixture(scope="module")
def run(store: PhrStore, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("reports")
    res = run_report("operations", source="demo", out_dir=out, date=DAY,
                     parameters={"phr_store": str(store.root)})
    return res, res.html.read_text(), json.loads(res.summary.read_text())


@pytest.fixture(scope="module")
def empty_run(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("empty")
    new_repo(root)
    out = tmp_path_factory.mktemp("empty-reports")
    res = run_report("operations", source="demo", out_dir=out, date=DAY,
                     parameters={"phr_store": str(root / "history" / "prompts")})
    return res, res.html.read_text(), json.loads(res.summary.read_text())


# -- the committed notebook and the registry -------------------------------------------

def test_committed_notebook_is_clean_thin_and_registered():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "outputs committed"
    assert "parameters" in code[0].metadata.get("tags", [])
    assert "report-hide" in nb.cells[0].metadata.get("tags", [])
    declared = declared_parameters(NOTEBOOK)
    assert set(declared) >= {"source", "namespaces", "phr_store", "window", "governance",
                             "title", "reports_dir", "report_date", "summary_path"}
    assert declared["phr_store"] == '""' and declared["summary_path"] == '""'
    assert REPORTS["operations"].defaults["window"] == "28d"
    for c in code:
        assert "def " not in c.source and "class " not in c.source, c.source
    assert "phr_store" in declared_parameters(notebooks_dir() / REPORTS["health"].notebook)


# -- the demo history, folded by the real workflow ---------------------------------------

def test_demo_history_is_a_valid_chain_with_every_kind_of_outcome(store):
    assert store.verify().ok
    states = sorted(c.state(Governance(), END) for c in workflow.changes(store).values())
    assert states == sorted(["validated"] * 7 + ["rolled-back", "rejected", "expired",
                                                 "executed", "proposed"])
    emergency = [c for c in workflow.changes(store).values() if c.emergency]
    assert len(emergency) == 1 and emergency[0].tier == "critical"


def test_kpis_of_the_demo_history(store):
    rep = kpis(load_kpi_inputs(store), window="28d", end=DAY)
    expected = {"mttd": 32 / 7, "mttr": 102 / 8, "mttr_failure": 27, "approval_sla": 600 / 7,
                "approval_sla_emergency": 100, "compliance": 600 / 7, "rollback_success": 100,
                "rollback_time": 95 / 60, "acceptance": 700 / 12, "config_incidents": 3,
                "config_mttr": 16.5, "toil": 76, "savings_realised": 162.5,
                "savings_proposed": 252.5}
    for key, value in expected.items():
        assert rep.value(key) == pytest.approx(value), key


def test_demo_store_refuses_a_directory_that_is_not_a_demo_history(tmp_path):
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit):
        create_demo_store(tmp_path / "precious", END)
    assert (tmp_path / "precious" / "notes.txt").read_text() == "keep me"


# -- the published page -----------------------------------------------------------------

@pytest.mark.slow
def test_summary_has_the_numbers(run):
    _, _, summary = run
    k = summary["kpis"]
    assert k["mttd"]["n"] == 7 and k["mttd"]["value"] == pytest.approx(32 / 7)
    assert k["mttr"]["value"] == pytest.approx(12.75)
    assert k["compliance"]["text"] == "86%" and k["acceptance"]["text"] == "58%"
    # the demo cluster's missing-configmap finding recurred after the detected one
    assert k["config_incidents"]["value"] == 4
    assert k["savings_realised"]["text"] == "$162.50/month"
    assert summary["records"] == 61 and summary["source"] == "demo"


@pytest.mark.slow
def test_page_shows_every_kpi_with_its_value_and_definition(run):
    _, page, _ = run
    rows = table_rows(page)
    for name, text in [("MTTD", "4.6 min"), ("MTTR (from approval)", "12.8 min"),
                       ("MTTR (from failure start)", "27.0 min"),
                       ("Approvals within SLA", "86%"),
                       ("Emergency approvals within SLA", "100%"),
                       ("PHR compliance", "86%"), ("Rollback success", "100%"),
                       ("Rollback time (mean)", "1.6 min"),
                       ("Recommendation acceptance", "58%"),
                       ("Configuration incidents", "4"),
                       ("Automated steps (toil reduction)", "76%"),
                       ("Cost savings realised", "$162.50/month")]:
        row = find_row(rows, name, text)
        assert row is not None, (name, text)
        assert len(row[-1]) > 30  # the definition
    assert find_row(rows, "Recommendation acceptance", "58%", "80%") is not None
    tiers = {r[0]: r for r in rows if len(r) == 10}  # the latency-per-tier table
    assert tiers["medium"] == ["medium", "30", "8", "5", "18.0", "55.0", "80%", "1", "1", "1"]
    assert tiers["emergency"] == ["emergency", "5", "1", "1", "4.0", "4.0", "100%", "0", "0",
                                  "0"]
    assert find_row(rows, "no validation recorded") is not None
    assert find_row(rows, "rolled-back", "NetworkPolicy/shop-default-deny") is not None
    assert "Weekly trends" in page and "no data yet" not in page.lower()
    assert external_references(page) == []


@pytest.mark.slow
def test_empty_store_says_no_data_and_still_renders(empty_run):
    res, page, summary = empty_run
    assert res.ok
    assert "No audit trail yet" in page
    assert all(v["value"] is None for v in summary["kpis"].values()
               if v["unit"] != "count")
    assert summary["kpis"]["mttd"]["text"] == "no data"
    rows = table_rows(page)
    assert find_row(rows, "PHR compliance", "no data") is not None
    # no records, but the demo cluster's current missing-configmap finding is an incident
    assert find_row(rows, "Configuration incidents", "1") is not None


def test_trend_figure_without_data_says_so():
    fig = trend_figure(kpis(KpiInputs(), window="28d", end=DAY))
    assert [a.text for a in fig.layout.annotations] == ["no data yet in this window"]
    assert not fig.data


@pytest.mark.slow
def test_health_report_summarises_the_kpis(store, tmp_path):
    res = run_report("health", source="demo", out_dir=tmp_path, date=DAY,
                     parameters={"phr_store": str(store.root)})
    page = res.html.read_text()
    assert "Operations KPIs" in page
    rows = table_rows(page)
    assert find_row(rows, "MTTD", "4.6 min", "7") is not None
    assert find_row(rows, "PHR compliance", "86%", "100%") is not None
    assert "No audit trail yet" not in page


@pytest.mark.slow
def test_health_report_without_a_store_says_so(health_run):
    # the session's health run: AIOPS_HISTORY points outside any git repository
    page = Path(health_run.html).read_text()
    assert "No audit trail yet" in page and "not in a git repository" in page


@pytest.mark.system
def test_page_renders_in_chromium_offline(run, chromium):
    res, _, _ = run
    dom = chromium.dump_dom(res.html)
    assert dom.count("js-plotly-plot") >= 1
    assert 'class="scatterlayer' in dom and dom.count('class="main-svg"') >= 1
    assert len(dom.split('class="trace scatter')) > 10  # one line per KPI
    for text in ("PHR compliance", "Approval latency per tier", "Compliance gaps",
                 "MTTR (from failure start)", "$162.50/month"):
        assert text in dom, text
