"""`aiops audit` through typer's CliRunner: every format, every exit code, manifests
with a helm-template-like file, an invalid document, a CRD and an unknown kind.

Bad input raises an AiopsError that `aiops.cli.main` turns into one line and its
exit code (2); with CliRunner the exception is what comes back, so `invoke` maps
it the same way, and one test goes through `main` itself.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from typer.testing import CliRunner

from aiops.cli import app, main
from aiops.errors import AiopsError
from aiops.security import audit, load_manifests
from aiops.security.formats import LOAD_PROBLEM
from tests.security.test_formats import MANIFESTS, sarif_errors

EXEMPT_SHOP = """\
exemptions:
  - checks: [image-tag-latest]
    namespaces: [shop]
    workloads: ["Deployment/web"]
    reason: nginx is pinned by the platform team's mirror (TICKET-42)
"""


class Run:
    def __init__(self, code: int, stdout: str, stderr: str, exc: BaseException | None) -> None:
        self.code, self.stdout, self.stderr, self.exc = code, stdout, stderr, exc


def invoke(*args: str, input: str | None = None) -> Run:
    res = CliRunner().invoke(app, ["audit", *args], input=input)
    exc = res.exception if not isinstance(res.exception, SystemExit) else None
    if isinstance(exc, AiopsError):
        return Run(exc.exit_code, res.stdout, res.stderr, exc)
    assert exc is None, f"unexpected {exc!r}"
    return Run(res.exit_code, res.stdout, res.stderr, None)


# -- formats on the demo cluster -----------------------------------------------------------

def test_table_on_the_demo_fails_the_gate():
    run = invoke("--source", "demo")
    assert run.code == 3  # the demo runs busybox:latest and redis:latest
    assert "image-tag-latest" in run.stdout and "default/Pod/debug-shell" in run.stdout
    assert "Score " in run.stdout and "grade " in run.stdout
    assert "score = 100 x 2P / (2P + W + 2D)" in run.stdout
    assert "PSS level per namespace: " in run.stdout and "exempted: 0 failure(s)" in run.stdout


def test_json_on_the_demo():
    run = invoke("--format", "json")
    assert run.code == 3
    records = json.loads(run.stdout)
    assert records and all({"check", "severity", "category", "namespace", "kind", "name",
                            "container", "message", "fix", "refs", "exempt"} <= set(r)
                           for r in records)
    assert any(r["name"] == "todo-redis" and r["check"] == "image-tag-latest" for r in records)


def test_sarif_on_the_demo_is_valid():
    run = invoke("--format", "sarif")
    assert run.code == 3
    doc = json.loads(run.stdout)
    assert sarif_errors(doc) == []
    assert doc["runs"][0]["results"]


def test_junit_on_the_demo_parses():
    run = invoke("--format", "junit")
    assert run.code == 3
    root = ET.fromstring(run.stdout)
    assert int(root.get("failures")) > 0 and int(root.get("tests")) > int(root.get("failures"))


# -- manifests -----------------------------------------------------------------------------

def test_manifests_directory_reports_problems_and_audits_the_rest():
    run = invoke("--manifests", str(MANIFESTS), "--format", "json")
    assert run.code == 3  # shop/web runs nginx:latest
    for needle in ("broken.yaml: document 1: invalid YAML at line 14",
                   "chart/rendered.yaml: document 3: kind CustomResourceDefinition",
                   "chart/rendered.yaml: document 4: kind Widget"):
        assert needle in run.stderr, needle
    records = json.loads(run.stdout)
    problems = [r for r in records if r["check"] == LOAD_PROBLEM]
    assert len(problems) == 3
    audited = {(r["namespace"], r["kind"], r["name"]) for r in records
               if r["check"] != LOAD_PROBLEM}
    assert {("shop", "Deployment", "web"), ("ops", "CronJob", "backup")} <= audited
    web = next(r for r in records if r["name"] == "web" and r["check"] == "image-tag-latest")
    assert (web["file"], web["line"]) == ("chart/rendered.yaml", 11)


def test_manifests_sarif_and_junit():
    run = invoke("--manifests", str(MANIFESTS), "--format", "sarif")
    doc = json.loads(run.stdout)
    assert run.code == 3 and sarif_errors(doc) == []
    assert len(doc["runs"][0]["invocations"][0]["toolExecutionNotifications"]) == 3
    state, origin = load_manifests(MANIFESTS)
    rep = audit(state, origin=origin)
    results = doc["runs"][0]["results"]
    assert len(results) == len(rep.failures())
    # every result points at a manifest (a namespace without a Namespace document at
    # its first workload): code scanning shows no result without a file
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
    assert uris == {"chart/rendered.yaml", "jobs.yaml"}
    run = invoke("--manifests", str(MANIFESTS), "--format", "junit")
    root = ET.fromstring(run.stdout)
    assert run.code == 3
    assert root.find(f"testsuite[@name='{LOAD_PROBLEM}']").get("skipped") == "3"
    subjects = {(r.check.id, r.namespace, r.kind, r.name, r.container) for r in rep.results}
    failed = {(r.check.id, r.namespace, r.kind, r.name, r.container)
              for r in rep.failures(include_exempt=False)}
    assert int(root.get("tests")) == len(subjects) + 3  # + the 3 load problems
    assert int(root.get("failures")) == len(failed) > 0


def test_clean_manifest_exits_0():
    run = invoke("--manifests", str(MANIFESTS / "jobs.yaml"))
    assert run.code == 0, run.stdout  # the CronJob's danger is exempted by annotation
    assert "exempted: 1 failure(s)" in run.stdout
    assert "vendor image" in run.stdout  # the exempted failure is listed, not hidden


def test_exemptions_file_and_min_score(tmp_path: Path):
    ex = tmp_path / "exemptions.yaml"
    ex.write_text(EXEMPT_SHOP)
    run = invoke("--manifests", str(MANIFESTS), "--exemptions", str(ex), "--format", "json")
    assert run.code == 0
    web = next(r for r in json.loads(run.stdout)
               if r["name"] == "web" and r["check"] == "image-tag-latest")
    assert web["exempt"] is True and "TICKET-42" in web["exempt_reason"]
    # the proxy's pull policy still fails (a warning): the score is below 100
    assert invoke("--manifests", str(MANIFESTS), "--exemptions", str(ex),
                  "--min-score", "100").code == 3
    assert invoke("--manifests", str(MANIFESTS), "--exemptions", str(ex),
                  "--min-score", "50").code == 0


def test_manifests_from_stdin():
    text = (MANIFESTS / "chart" / "rendered.yaml").read_text()
    run = invoke("--manifests", "-", "--format", "json", input=text)
    assert run.code == 3
    names = {r["name"] for r in json.loads(run.stdout)}
    assert "web" in names


def test_output_file(tmp_path: Path):
    target = tmp_path / "audit.sarif"
    run = invoke("--manifests", str(MANIFESTS), "--format", "sarif", "--output", str(target))
    assert run.code == 3
    assert run.stdout == ""
    assert sarif_errors(json.loads(target.read_text())) == []
    table = tmp_path / "audit.txt"
    assert invoke("--manifests", str(MANIFESTS), "-o", str(table)).code == 3
    assert "Score " in table.read_text() and "\x1b[" not in table.read_text()


# -- bad input: exit 2 ---------------------------------------------------------------------

def test_bad_input_exits_2(tmp_path: Path):
    assert invoke("--manifests", str(tmp_path / "missing")).code == 2
    assert invoke("--format", "xml").code == 2
    assert invoke("--min-score", "101").code == 2
    assert invoke("--source", "demo", "--manifests", str(MANIFESTS)).code == 2
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("exemptions: [\n")
    assert invoke("--exemptions", str(bad_yaml)).code == 2
    no_reason = tmp_path / "no-reason.yaml"
    no_reason.write_text("exemptions:\n  - checks: [image-tag-latest]\n")
    run = invoke("--exemptions", str(no_reason))
    assert run.code == 2 and "reason" in str(run.exc)
    assert invoke("--exemptions", str(tmp_path / "none.yaml")).code == 2
    assert invoke("--output", str(tmp_path / "no" / "dir.json")).code == 2


def test_bad_input_is_one_line_through_main(tmp_path: Path, capsys):
    assert main(["audit", "--manifests", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not exist" in err and "Traceback" not in err
    assert main(["audit", "--format", "xml"]) == 2
    assert "use table, json, sarif, junit" in capsys.readouterr().err
