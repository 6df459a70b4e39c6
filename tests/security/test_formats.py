"""The audit writers: SARIF validated against the official 2.1.0 schema, JUnit XML
parsed and counted, JSON's contract, the table's score lines, the exit code, and
the redactor that keeps sensitive values out of all of them.

The assertions on specific results use the manifests under
tests/fixtures/audit-manifests/; counts are derived from the registry and the
report, so adding a check does not change what these tests expect.
"""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from aiops import open_source
from aiops.security import audit, load_checks, load_manifests
from aiops.security.exemptions import Config
from aiops.security.formats import (
    LOAD_PROBLEM,
    SARIF_LEVEL,
    Redactor,
    exit_code,
    helm_source,
    render_text,
    scan_root,
    score_lines,
    subject,
    to_json,
    to_junit,
    to_sarif,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MANIFESTS = FIXTURES / "audit-manifests"
SCHEMA = json.loads((FIXTURES / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
RESULT_KEYS = {"check", "severity", "category", "namespace", "kind", "name", "container",
               "message", "fix", "refs", "exempt"}


def sarif_errors(doc: dict) -> list[str]:
    """Every violation of the official schema (draft 4, formats checked too)."""
    cls = jsonschema.validators.validator_for(SCHEMA)
    validator = cls(SCHEMA, format_checker=cls.FORMAT_CHECKER)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]


@pytest.fixture(scope="module")
def manifests():
    state, origin = load_manifests(MANIFESTS)
    return state, audit(state, origin=origin)


@pytest.fixture(scope="module")
def demo():
    state = open_source("demo")
    return state, audit(state)


def _sarif_manifests(manifests) -> dict:
    state, rep = manifests
    return to_sarif(rep, Redactor.from_state(state), scan_root(MANIFESTS), manifests=True)


def _result(doc: dict, rule: str, fqn: str) -> dict:
    found = [r for r in doc["runs"][0]["results"] if r["ruleId"] == rule
             and r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == fqn]
    assert len(found) == 1, (rule, fqn, found)
    return found[0]


# -- SARIF ----------------------------------------------------------------------------

def test_schema_file_is_the_official_one_and_catches_mistakes(manifests):
    assert SCHEMA["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    assert SCHEMA["id"].startswith("https://docs.oasis-open.org/sarif/sarif/v2.1.0/")
    doc = _sarif_manifests(manifests)
    broken = copy.deepcopy(doc)
    broken["runs"][0]["results"][0]["level"] = "danger"  # not a SARIF level
    del broken["runs"][0]["tool"]["driver"]["name"]
    assert len(sarif_errors(broken)) >= 2


def test_sarif_of_manifests_is_valid(manifests):
    doc = _sarif_manifests(manifests)
    assert sarif_errors(doc) == []
    assert doc["version"] == "2.1.0" and len(doc["runs"]) == 1


def test_sarif_of_the_demo_cluster_is_valid(demo):
    state, rep = demo
    doc = to_sarif(rep, Redactor.from_state(state))
    assert sarif_errors(doc) == []
    results = doc["runs"][0]["results"]
    assert len(results) == len(rep.failures())
    for r in results:  # a cluster has no files: the subject is a logical location
        loc = r["locations"][0]
        assert "physicalLocation" not in loc
        fqn = loc["logicalLocations"][0]["fullyQualifiedName"]
        assert fqn.count("/") in (2, 3)
    assert "originalUriBaseIds" not in doc["runs"][0]


def test_sarif_has_a_rule_per_registered_check(manifests):
    doc = _sarif_manifests(manifests)
    driver = doc["runs"][0]["tool"]["driver"]
    rules = {r["id"]: r for r in driver["rules"]}
    assert set(rules) == set(load_checks())
    for cid, chk in load_checks().items():
        rule = rules[cid]
        assert rule["shortDescription"]["text"] == chk.title
        assert rule["fullDescription"]["text"] == chk.rationale
        assert rule["defaultConfiguration"]["level"] == SARIF_LEVEL[chk.severity]
        assert rule["properties"]["category"] == chk.category
        assert rule["properties"]["refs"] == chk.refs.to_dict()
        assert rule["help"]["text"]
    assert SARIF_LEVEL == {"danger": "error", "warning": "warning", "info": "note"}
    # each result points at its rule by id and index
    for r in doc["runs"][0]["results"]:
        assert driver["rules"][r["ruleIndex"]]["id"] == r["ruleId"]
    assert "How to fix: pin a released version tag" in rules["image-tag-latest"]["help"]["text"]
    assert "Checkov CKV_K8S_14" in rules["image-tag-latest"]["help"]["text"]


def test_sarif_manifest_results_point_at_file_and_line(manifests):
    doc = _sarif_manifests(manifests)
    run = doc["runs"][0]
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == MANIFESTS.resolve().as_uri() + "/"
    web = _result(doc, "image-tag-latest", "shop/Deployment/web/web")
    assert web["level"] == "error" and "nginx:latest" in web["message"]["text"]
    phys = web["locations"][0]["physicalLocation"]
    assert phys["artifactLocation"] == {"uri": "chart/rendered.yaml", "uriBaseId": "SRCROOT"}
    assert phys["region"] == {"startLine": 11}  # the Deployment's first line
    assert web["properties"]["helmTemplate"] == "shop/templates/deployment.yaml"
    assert "suppressions" not in web
    proxy = _result(doc, "image-pull-policy", "shop/Deployment/web/proxy")
    assert proxy["level"] == "warning"
    assert proxy["properties"]["action"]["patch"]  # the fix as a reviewable patch
    backup = _result(doc, "image-tag-latest", "ops/CronJob/backup/backup")
    assert backup["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "jobs.yaml"
    # code scanning shows no result without a file: every result of a manifest scan has one
    assert len(run["results"]) == len(manifests[1].failures())
    assert all("physicalLocation" in r["locations"][0] for r in run["results"])
    # shop has a Namespace document; ops only exists because its workloads name it, so
    # its namespace finding points at its first workload, and says so
    shop = _result(doc, "network-namespace-no-policy", "shop/Namespace/shop")
    assert shop["locations"][0]["physicalLocation"]["region"] == {"startLine": 3}
    assert "locationNote" not in shop["properties"]
    ops = _result(doc, "network-namespace-no-policy", "ops/Namespace/ops")
    phys = ops["locations"][0]["physicalLocation"]
    assert (phys["artifactLocation"]["uri"], phys["region"]) == ("jobs.yaml", {"startLine": 1})
    assert "no Namespace manifest" in ops["properties"]["locationNote"]


def test_sarif_exempted_results_are_suppressed_with_the_reason(manifests):
    doc = _sarif_manifests(manifests)
    backup = _result(doc, "image-tag-latest", "ops/CronJob/backup/backup")
    assert backup["suppressions"] == [{
        "kind": "external", "status": "accepted",
        "justification": "vendor image, pinned by the vendor's mirror"}]


def test_sarif_lists_load_problems_as_notifications(manifests):
    doc = _sarif_manifests(manifests)
    inv = doc["runs"][0]["invocations"][0]
    assert inv["executionSuccessful"] is True
    notes = inv["toolExecutionNotifications"]
    assert len(notes) == 3
    by_uri = sorted((n["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                     n["message"]["text"]) for n in notes)
    assert by_uri[0][0] == "broken.yaml" and "invalid YAML at line 14" in by_uri[0][1]
    assert by_uri[1][0] == by_uri[2][0] == "chart/rendered.yaml"
    texts = " ".join(t for _, t in by_uri)
    assert "CustomResourceDefinition" in texts and "Widget" in texts
    assert {n["level"] for n in notes} == {"warning"}


# -- JUnit ----------------------------------------------------------------------------

def _expected_suites(state, rep) -> set[str]:
    """The checks that audited at least one subject of these manifests, from the
    registry: container, workload and namespace checks (the manifests hold
    workloads), and object checks whose kinds the manifests hold."""
    assert rep.check_failures == []
    return {cid for cid, chk in load_checks().items()
            if chk.target != "object" or any(state.kind(k) for k in chk.kinds)}


def test_junit_counts_per_check_and_subject(manifests):
    state, rep = manifests
    root = ET.fromstring(to_junit(rep, Redactor.from_state(state), scan_root(MANIFESTS)))
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    # a suite per check that had something to audit (an HPA check has no subject here)
    expected = _expected_suites(state, rep)
    assert set(suites) == expected | {LOAD_PROBLEM}
    assert {"image-tag-latest", "pss-run-as-non-root", "network-namespace-no-policy",
            "network-service-nodeport", "secret-in-configmap"} <= expected
    assert "hpa-min-replicas-one" not in expected  # no HorizontalPodAutoscaler here
    for s in suites.values():  # the counts agree with the elements
        cases = s.findall("testcase")
        assert int(s.get("tests")) == len(cases)
        assert int(s.get("failures")) == sum(1 for c in cases if c.find("failure") is not None)
        assert int(s.get("skipped")) == sum(1 for c in cases if c.find("skipped") is not None)
    for key in ("tests", "failures", "skipped", "errors"):
        assert int(root.get(key)) == sum(int(s.get(key)) for s in suites.values())
    # each check's suite has a testcase per subject it audited, failed when the subject
    # fails it, skipped when that failure is exempted
    for cid in expected:
        results = [r for r in rep.results if r.check.id == cid]
        cases = {c.get("name"): c for c in suites[cid].findall("testcase")}
        assert set(cases) == {subject(r) for r in results}, cid
        failed = {subject(r) for r in results if not r.passed and not r.exempt}
        exempt = {subject(r) for r in results if not r.passed and r.exempt}
        assert {n for n, c in cases.items() if c.find("failure") is not None} == failed, cid
        assert {n for n, c in cases.items() if c.find("skipped") is not None} == exempt, cid
    # four containers are audited: web and proxy (Deployment), backup (CronJob), app (Pod)
    latest = suites["image-tag-latest"]
    cases = {c.get("name"): c for c in latest.findall("testcase")}
    assert set(cases) == {"shop/Deployment/web/web", "shop/Deployment/web/proxy",
                          "ops/CronJob/backup/backup", "ops/Pod/pinned/app"}
    assert latest.get("failures") == "1" and latest.get("skipped") == "1"
    fail = cases["shop/Deployment/web/web"].find("failure")
    assert fail.get("type") == "danger" and "nginx:latest" in fail.get("message")
    assert "fix: pin a released version tag" in fail.text
    assert cases["shop/Deployment/web/web"].get("file") == "chart/rendered.yaml"
    assert cases["shop/Deployment/web/web"].get("line") == "11"
    skipped = cases["ops/CronJob/backup/backup"].find("skipped")
    assert skipped.get("message") == "exempt: vendor image, pinned by the vendor's mirror"
    assert cases["ops/Pod/pinned/app"].find("failure") is None
    # a namespace check: one testcase per namespace, on the Namespace document if any
    ns_cases = {c.get("name"): c for c in suites["network-namespace-no-policy"]}
    assert set(ns_cases) == {"shop/Namespace/shop", "ops/Namespace/ops"}
    assert (ns_cases["shop/Namespace/shop"].get("file"),
            ns_cases["shop/Namespace/shop"].get("line")) == ("chart/rendered.yaml", "3")
    problems = suites[LOAD_PROBLEM]
    assert problems.get("tests") == problems.get("skipped") == "3"


def test_junit_of_the_demo_counts_every_failure(demo):
    state, rep = demo
    root = ET.fromstring(to_junit(rep, Redactor.from_state(state)))
    failed_subjects = {(r.check.id, r.namespace, r.kind, r.name, r.container)
                       for r in rep.failures(include_exempt=False)}
    assert int(root.get("failures")) == len(failed_subjects) > 0
    subjects = {(r.check.id, r.namespace, r.kind, r.name, r.container) for r in rep.results}
    assert int(root.get("tests")) == len(subjects)


# -- JSON, table, exit code -------------------------------------------------------------

def test_json_results_then_load_problems(manifests):
    state, rep = manifests
    records = to_json(rep, Redactor.from_state(state), scan_root(MANIFESTS))
    results = [r for r in records if r["check"] != LOAD_PROBLEM]
    problems = [r for r in records if r["check"] == LOAD_PROBLEM]
    assert len(results) == len(rep.failures()) and len(problems) == 3
    for r in records:
        assert set(r) >= RESULT_KEYS
    assert records[:len(results)] == results  # problems come last
    sev = [r["severity"] for r in results]
    assert sev == sorted(sev, key=["danger", "warning", "info"].index)  # worst first
    web = next(r for r in results if r["check"] == "image-tag-latest" and r["name"] == "web")
    assert (web["file"], web["line"], web["exempt"]) == ("chart/rendered.yaml", 11, False)
    assert web["fix"]["description"].startswith("pin a released version tag")
    assert {p["severity"] for p in problems} == {"info"}  # never gates
    assert {p["file"] for p in problems} == {"broken.yaml", "chart/rendered.yaml"}


def _pss_level(rep, namespace: str) -> str:
    """The documented rule: restricted when no unexempted PSS control fails in the
    namespace, baseline when only restricted controls fail, else privileged."""
    failed = {r.check.refs.pss for r in rep.results if r.namespace == namespace
              and not r.passed and not r.exempt and r.check.refs.pss}
    return "privileged" if "baseline" in failed else "baseline" if failed else "restricted"


def test_table_states_score_formula_pss_and_exemptions(manifests):
    state, rep = manifests
    text = render_text(rep, "table", Redactor.from_state(state), scan_root(MANIFESTS))
    lines = score_lines(rep)
    assert lines[0].startswith(f"Score {rep.score.value:.0f}/100, grade {rep.score.grade}")
    s = rep.score
    assert lines[0].endswith(f"({s.passed} passed, {s.warnings} warnings, "
                             f"{s.dangers} dangers failed)")
    assert s.dangers == len(rep.dangers()) >= 1  # shop/web runs nginx:latest
    for line in lines:
        assert line in text
    assert lines[1] == "score = 100 x 2P / (2P + W + 2D) (P passed, W failed warnings, " \
                       "D failed dangers)"
    # each namespace's level, and the enforce label only where the Namespace sets one
    pss = lines[3].removeprefix("PSS level per namespace: ").split(", ")
    assert pss == [f"ops {_pss_level(rep, 'ops')}",
                   f"shop {_pss_level(rep, 'shop')} (enforce: baseline)"]
    assert _pss_level(rep, "shop") != "restricted"  # web's containers may run as root
    exempted = rep.exempted()
    assert [(r.check.id, r.name) for r in exempted] == [("image-tag-latest", "backup")]
    assert f"exempted: 1 failure(s); score without exemptions " \
           f"{rep.score_without_exemptions.value:.0f}/100" in lines[4]
    assert rep.score_without_exemptions.dangers == rep.score.dangers + 1
    assert "chart/rendered.yaml:11" in text and "vendor image" in text
    # worst first: the first row is a danger
    first_row = next(ln for ln in text.splitlines() if "danger" in ln or "warning" in ln)
    assert "danger" in first_row


def test_exit_code_gates_on_unexempted_dangers_and_min_score(manifests):
    state, origin = load_manifests(MANIFESTS)
    rep = audit(state, origin=origin)
    assert exit_code(rep) == 3  # web runs nginx:latest
    waived = audit(state, origin=origin, exemptions=Config.model_validate(
        {"exemptions": [{"checks": ["image-tag-latest"], "namespaces": ["shop"],
                         "reason": "tracked in TICKET-1"}]}))
    assert waived.dangers() == [] and exit_code(waived) == 0
    assert waived.score.value < 100  # the proxy's pull policy is a warning
    assert exit_code(waived, min_score=waived.score.value) == 0
    assert exit_code(waived, min_score=waived.score.value + 1) == 3


# -- helpers ----------------------------------------------------------------------------

def test_helm_source_comment_is_found_above_the_document():
    f = str(MANIFESTS / "chart" / "rendered.yaml")
    assert helm_source(f, 3) == "shop/templates/namespace.yaml"
    assert helm_source(f, 11) == "shop/templates/deployment.yaml"
    assert helm_source(str(MANIFESTS / "jobs.yaml"), 1) == ""
    assert helm_source(str(MANIFESTS / "jobs.yaml"), 20) == ""  # stops at '---'


def test_redactor_removes_values_a_check_might_quote(manifests):
    state, origin = load_manifests(MANIFESTS)
    planted = "Zq8-planted-db-password"
    for cm in state.kind("ConfigMap"):
        cm.setdefault("data", {})["DB_PASSWORD"] = planted
    rep = audit(state, origin=origin)
    victim = rep.failures()[0]
    victim.message = f"container reads {planted} from its config"  # a careless check
    victim.fix_text = f"rotate {planted}"
    red = Redactor.from_state(state)
    assert planted in red.values
    root = scan_root(MANIFESTS)
    for fmt in ("table", "json", "sarif", "junit"):
        text = render_text(rep, fmt, red, root, manifests=True)
        assert planted not in text, fmt
        assert "<redacted>" in text or "&lt;redacted&gt;" in text, fmt
    assert planted in render_text(rep, "json", Redactor(), root)  # the planted value is real
