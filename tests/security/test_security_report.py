"""The weekly security report: its logic (aiops.security.report) on small inputs, and
the notebook run through the real runner (papermill, a kernel, nbconvert), its
published page read as HTML and in Chromium with the network blocked.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from aiops.reports.html import PLOTLYJS_MARKER, external_references
from aiops.reports.runner import (
    REPORTS,
    build_parameters,
    declared_parameters,
    notebooks_dir,
    run_report,
)
from aiops.security import audit, load_manifests
from aiops.security.formats import subject
from aiops.security.report import (
    EXPOSURE_BASE,
    EXTERNAL_WEIGHT,
    HOST_WEIGHT,
    RISK_FORMULA,
    SEVERITY_WEIGHT,
    changes,
    exposure,
    load_history,
    pss_table,
    summary,
    top_risks,
)
from tests.security.test_formats import MANIFESTS
from tests.test_usage_reports import find_row, section, table_rows

DAY1, DAY2 = "2026-11-23", "2026-11-30"


# -- the committed notebook and its registration -------------------------------------------

def test_committed_notebook_is_clean_parameterised_and_thin():
    path = notebooks_dir() / REPORTS["security"].notebook
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "outputs committed"
    assert "parameters" in code[0].metadata.get("tags", [])
    assert "report-hide" in nb.cells[0].metadata.get("tags", [])
    declared = declared_parameters(path)
    assert set(declared) >= {"source", "manifests", "namespaces", "window", "exemptions",
                             "title", "reports_dir", "report_date", "previous_summary",
                             "summary_path"}
    assert declared["source"] == '"demo"' and declared["summary_path"] == '""'
    for c in code:
        assert "def " not in c.source and "class " not in c.source, c.source


def test_registered_weekly_with_its_trend_window():
    spec = REPORTS["security"]
    assert spec.defaults == {"namespaces": "", "window": "90d"}
    declared = declared_parameters(notebooks_dir() / spec.notebook)
    kw = {"source": "demo", "out_root": Path("/tmp/r"), "day": DAY1,
          "summary_tmp": Path("/tmp/r/s.json")}
    params = build_parameters(spec, declared, parameters={"namespaces": "todo"}, **kw)
    assert params["window"] == "90d" and params["namespaces"] == "todo"
    assert params["title"] == "Weekly security posture"


# -- the logic, no kernel ----------------------------------------------------------------------

def _hosted_manifests(tmp_path: Path) -> Path:
    """The test manifests plus a DaemonSet on the host network mounting /var/run."""
    d = tmp_path / "m"
    d.mkdir()
    for f in MANIFESTS.rglob("*.yaml"):
        (d / f.name).write_text(f.read_text())
    (d / "agent.yaml").write_text("""\
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: ops}
spec:
  template:
    metadata: {labels: {app: agent}}
    spec:
      hostNetwork: true
      volumes: [{name: run, hostPath: {path: /var/run}}]
      containers: [{name: agent, image: "agent:latest"}]
""")
    return d


def test_exposure_finds_nodeport_and_host_access(tmp_path):
    state, _ = load_manifests(_hosted_manifests(tmp_path))
    ex = exposure(state).set_index(["namespace", "kind", "name"])
    web = ex.loc[("shop", "Deployment", "web")]
    assert bool(web["external"]) and web["via"] == "Service/web (NodePort)"
    assert web["exposure"] == EXPOSURE_BASE + EXTERNAL_WEIGHT
    agent = ex.loc[("ops", "DaemonSet", "agent")]
    assert not agent["external"] and agent["host_access"] == "hostNetwork, hostPath /var/run"
    assert agent["exposure"] == EXPOSURE_BASE + HOST_WEIGHT
    assert ex.loc[("ops", "CronJob", "backup")]["exposure"] == EXPOSURE_BASE


def test_exposure_follows_ingress_backends_on_the_demo():
    from aiops import open_source

    ex = exposure(open_source("demo"))
    exposed = ex[ex["external"]]
    assert {"todo-frontend", "todo-backend", "shop-storefront"} <= set(exposed["name"])
    assert "todo-redis" not in set(exposed["name"])  # ClusterIP only
    front = exposed[exposed["name"] == "todo-frontend"].iloc[0]
    assert front["via"] == "Ingress/todo (todo.local)"


def test_top_risks_rank_severity_times_exposure(tmp_path):
    state, origin = load_manifests(_hosted_manifests(tmp_path))
    rep = audit(state, origin=origin)
    exposed = exposure(state)
    unexempted = rep.failures(include_exempt=False)
    risks = top_risks(rep, exposed, n=len(unexempted))
    assert len(risks) == len(unexempted)
    assert len(top_risks(rep, exposed)) == min(15, len(unexempted))  # the page shows 15
    # every row's risk is its severity's weight times its workload's exposure
    factor = {f"{r.namespace}/{r.kind}/{r.name}": r.exposure
              for r in exposed.itertuples(index=False)}
    for row in risks.itertuples(index=False):
        workload = "/".join(row.object.split("/")[:3])
        assert row.risk == SEVERITY_WEIGHT[row.severity] * factor.get(workload, EXPOSURE_BASE)
    assert list(risks["risk"]) == sorted(risks["risk"], reverse=True)
    nodeport = SEVERITY_WEIGHT["danger"] * (EXPOSURE_BASE + EXTERNAL_WEIGHT)
    host = SEVERITY_WEIGHT["danger"] * (EXPOSURE_BASE + HOST_WEIGHT)
    # both run :latest (a danger); the NodePort one outranks the host-network one
    first = risks.iloc[0]
    assert (first["object"], first["check"], first["risk"]) == \
        ("shop/Deployment/web/web", "image-tag-latest", nodeport)
    assert first["exposure"] == "reachable from outside via Service/web (NodePort)"
    rank = {(row.check, row.object): i for i, row in enumerate(risks.itertuples(index=False))}
    agent = rank[("image-tag-latest", "ops/DaemonSet/agent/agent")]
    assert risks.iloc[agent]["risk"] == host < nodeport
    assert "hostNetwork, hostPath /var/run" in risks.iloc[agent]["exposure"]
    # at equal risk a danger comes before a warning (shop/web's warnings are worth 2 x 3)
    ties = risks[risks["risk"] == host]
    assert list(ties["severity"]) == sorted(ties["severity"], key=["danger", "warning"].index)
    exempted = (risks["check"] == "image-tag-latest") & \
        (risks["object"] == "ops/CronJob/backup/backup")
    assert not exempted.any()  # an exempted failure is not a risk
    for w in ("danger 3", "warning 2", "info 1", "+2 when reachable", "+1 with host access"):
        assert w in RISK_FORMULA


def test_pss_table_shows_the_enforce_label():
    state, origin = load_manifests(MANIFESTS)
    pss = pss_table(audit(state, origin=origin)).set_index("namespace")
    assert pss.loc["shop", "enforced"] == "baseline"
    assert pss.loc["ops", "enforced"] == "–"
    assert "no enforce label" in pss.loc["ops", "note"]


def test_changes_and_history(tmp_path):
    state, origin = load_manifests(MANIFESTS)
    now = summary(audit(state, origin=origin), DAY2)
    assert "image-tag-latest shop/Deployment/web/web" in now["failing"]
    assert changes(None, now) is None
    before = dict(now, failing=["image-pull-policy ops/Pod/gone/app"])
    ch = changes(before, now)
    assert set(ch[ch["change"] == "resolved"]["object"]) == {"ops/Pod/gone/app"}
    assert "shop/Deployment/web/web" in set(ch[ch["change"] == "new"]["object"])
    assert changes(now, now).empty
    for day, score in (("2026-06-01", 10.0), ("2026-11-16", 50.0), (DAY2, 99.0)):
        (tmp_path / day).mkdir()
        (tmp_path / day / "security.summary.json").write_text(json.dumps(
            {"score": score, "grade": "F", "failing": []}))
    (tmp_path / "2026-11-20").mkdir()
    (tmp_path / "2026-11-20" / "security.summary.json").write_text("{not json")
    hist = load_history(tmp_path, DAY2, "90d")  # too old, unreadable and same-day left out
    assert [h["date"] for h in hist] == ["2026-11-16"]


# -- the report, executed and rendered ------------------------------------------------------------

class Run:
    def __init__(self, result) -> None:
        self.result = result
        self.page = Path(result.html).read_text(encoding="utf-8")
        self.summary = json.loads(Path(result.summary).read_text())
        self.rows = table_rows(self.page)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Run]:
    out = tmp_path_factory.mktemp("security-reports")
    first = Run(run_report("security", source="demo", out_dir=out, date=DAY1))
    second = Run(run_report("security", source="demo", out_dir=out, date=DAY2))
    ex = tmp_path_factory.mktemp("ex") / "exemptions.yaml"
    ex.write_text("exemptions:\n  - checks: [image-pull-policy]\n    namespaces: [shop]\n"
                  "    reason: the shop pulls through a verified mirror\n")
    manifests = Run(run_report("security", out_dir=tmp_path_factory.mktemp("m"), date=DAY1,
                               parameters={"manifests": str(MANIFESTS),
                                           "exemptions": str(ex)}))
    return {"first": first, "second": second, "manifests": manifests}


@pytest.mark.slow
def test_summary_matches_the_audit(runs):
    from aiops import open_source

    rep = audit(open_source("demo"))
    s = runs["first"].summary
    assert s["report"] == "security" and s["date"] == DAY1
    assert s["score"] == rep.score.value and s["grade"] == rep.score.grade
    assert s["dangers"] == len(rep.dangers()) > 0
    page = runs["first"].page
    assert f'<span class="value">{rep.score.value:.0f}</span>' in page
    assert "score = 100 x 2P / (2P + W + 2D)" in page


@pytest.fixture(scope="module")
def demo_report():
    from aiops import open_source

    return audit(open_source("demo"))


@pytest.mark.slow
def test_page_sections(runs, demo_report):
    page = runs["first"].page
    pss = table_rows(section(page, "Pod Security Standards by namespace"))
    levels = demo_report.pss_levels()
    assert demo_report.enforced == {}  # no demo namespace sets an enforce label
    for ns, level in levels.items():
        assert find_row(pss, ns, level, "no enforce label"), (ns, level)
    # the PSS checks judge the demo: debug-shell runs privileged on the host network (a
    # baseline control), todo's containers fail restricted controls only (no seccomp
    # profile, may run as root, ...)
    assert levels["default"] == "privileged" and levels["todo"] == "baseline"
    risks = section(page, "Top risks")
    assert "risk = severity x exposure" in risks
    row = find_row(table_rows(risks), "default/Pod/debug-shell/debug-shell", "image-tag-latest")
    assert row is not None and row[0] == "6" and "hostNetwork" in " ".join(row)
    assert find_row(table_rows(section(page, "Network exposure")), "todo-frontend",
                    "Ingress/todo (todo.local)")
    assert "not audited yet" not in page and "is registered in this version" not in page
    failing = table_rows(section(page, "Every failing check"))
    assert find_row(failing, "todo/Deployment/todo-redis/redis", "pin a released version tag")
    assert "Nothing is exempted." in section(page, "Exemptions")
    assert "This is the first report" in section(page, "Score trend")


@pytest.mark.slow
def test_rbac_and_network_sections_show_their_families(runs, demo_report):
    page = runs["first"].page
    failures = demo_report.failures(include_exempt=False)
    for heading, family in (("RBAC", "rbac"), ("Network exposure", "network")):
        text = section(page, heading)
        rows = table_rows(text)
        expected = [r for r in failures if r.check.family == family]
        assert expected, family  # the demo fails checks of both families
        for r in expected[:50]:  # worst first; the table shows 50 rows
            assert find_row(rows, r.check.id, subject(r)), (family, r.check.id, subject(r))
        other = {r.check.id for r in failures if r.check.family != family}
        shown = {cell for row in rows for cell in row}
        assert not other & shown, (family, other & shown)  # only that family's checks
        assert f"{len(expected)} failure(s): " in text  # the caption counts them
    # the demo binds cluster-admin to the todo backend's ServiceAccount ...
    rbac = table_rows(section(page, "RBAC"))
    row = find_row(rbac, "rbac-cluster-admin-binding", "todo-backend-admin")
    assert row is not None and "danger" in row
    assert "ServiceAccount todo/todo-backend" in " ".join(row)
    # ... and none of its namespaces has a NetworkPolicy
    network = table_rows(section(page, "Network exposure"))
    for ns in ("todo", "shop", "default"):
        assert find_row(network, "network-namespace-no-policy", f"{ns}/Namespace/{ns}"), ns
    assert find_row(network, "network-pod-not-selected", "todo/Deployment/todo-backend")


@pytest.mark.slow
def test_second_run_shows_the_trend(runs):
    trend = section(runs["second"].page, "Score trend")
    assert "This is the first report" not in trend
    assert f"Nothing changed since the previous report ({DAY1})" in trend
    assert "plotly-graph-div" in trend
    nb = nbformat.read(runs["second"].result.notebook, as_version=4)
    figure = next(o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if "application/vnd.plotly.v1+json" in o.get("data", {}))
    xs = figure["data"]["application/vnd.plotly.v1+json"]["data"][0]["x"]
    assert list(xs) == [DAY1, DAY2]


@pytest.mark.slow
def test_manifests_run_lists_exemptions_and_load_problems(runs):
    run = runs["manifests"]
    page = run.page
    ex = table_rows(section(page, "Exemptions"))
    assert find_row(ex, "ops/CronJob/backup/backup", "vendor image, pinned by the vendor")
    assert find_row(ex, "shop/Deployment/web/proxy",
                    "exemptions file: the shop pulls through a verified mirror")
    assert run.summary["exempted"] == 2
    assert "Some input could not be audited" in page
    assert "broken.yaml: document 1: invalid YAML" in page
    assert "chart/rendered.yaml: document 3: kind CustomResourceDefinition" in page
    assert find_row(table_rows(section(page, "Every failing check")),
                    "shop/Deployment/web/web", "chart/rendered.yaml:11")
    assert find_row(table_rows(section(page, "Network exposure")), "web",
                    "Service/web (NodePort)")
    assert find_row(table_rows(section(page, "Pod Security Standards by namespace")),
                    "shop", "baseline")
    # no RBAC object in these manifests: the section says which checks found nothing
    rbac = section(page, "RBAC")
    assert "No RBAC check fails (checked: " in rbac and "rbac-cluster-admin-binding" in rbac
    network = table_rows(section(page, "Network exposure"))
    assert find_row(network, "network-service-nodeport", "shop/Service/web")
    assert find_row(network, "network-namespace-no-policy", "ops/Namespace/ops")


@pytest.mark.slow
def test_page_is_offline_with_one_plotlyjs(runs):
    page = runs["first"].page
    assert external_references(page) == []
    assert page.count(PLOTLYJS_MARKER) == 1
    assert "notebook notes" not in page and "build_view(" not in page
    assert "<title>Weekly security posture · 2026-11-23</title>" in page


@pytest.mark.slow
@pytest.mark.system
def test_page_renders_in_chromium_offline(runs, chromium):
    dom = chromium.dump_dom(runs["second"].result.html)
    assert dom.count("js-plotly-plot") >= 1 and 'class="main-svg"' in dom
    assert 'class="scatterlayer' in dom  # the trend line drew
    for needle in ("Security score", "Top risks", "debug-shell", "todo-frontend",
                   "Ingress/todo", "image-tag-latest", "Exemptions"):
        assert needle in dom, needle
