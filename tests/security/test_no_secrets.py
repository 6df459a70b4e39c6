"""Secrets planted in the demo data never reach any audit output: the table, JSON,
SARIF and JUnit of `aiops audit` (on the snapshot and on the same objects as
manifests), and the rendered security report, its executed notebook and summary.

The planted env var and ConfigMap key are credentials the hardening checks report
(secret-in-env, secret-in-configmap): every output names them, by key, and none
holds their values. So these tests fail if the checks stop finding them as well as
if a value leaks.
"""

from __future__ import annotations

import base64
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from aiops.cli import app
from aiops.reports.runner import run_report
from aiops.sources.demo import DATA_DIR
from tests.test_usage_reports import find_row, section, table_rows

SECRET_DATA = "Pl4nted-secret-data-7f3a"
STRING_DATA = "Pl4nted-string-data-c91e"
ENV_VALUE = "Pl4nted-env-password-2b8d"
CONFIGMAP_VALUE = "Pl4nted-configmap-password-5e0c"
APPLIED_VALUE = "Pl4nted-applied-token-9d41"
PLANTED = (SECRET_DATA, STRING_DATA, ENV_VALUE, CONFIGMAP_VALUE, APPLIED_VALUE,
           base64.b64encode(SECRET_DATA.encode()).decode(), "Pl4nted")


def _planted_objects() -> list[dict]:
    applied = {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "planted-api", "namespace": "todo"},
               "spec": {"template": {"spec": {"containers": [{
                   "name": "api", "image": "ghcr.io/todo-chatbot/api:latest",
                   "env": [{"name": "API_TOKEN", "value": APPLIED_VALUE}]}]}}}}
    return [
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": "planted-secret", "namespace": "todo"},
         "data": {"password": base64.b64encode(SECRET_DATA.encode()).decode()},
         "stringData": {"token": STRING_DATA}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "planted-config", "namespace": "todo"},
         "data": {"db_password": CONFIGMAP_VALUE, "mode": "fast"}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "planted-api", "namespace": "todo", "annotations": {
             "kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied)}},
         "spec": {"selector": {"matchLabels": {"app": "planted-api"}},
                  "template": {"metadata": {"labels": {"app": "planted-api"}},
                               "spec": {"containers": [{
                                   "name": "api", "image": "ghcr.io/todo-chatbot/api:latest",
                                   "env": [{"name": "DB_PASSWORD", "value": ENV_VALUE},
                                           {"name": "LOG_LEVEL", "value": "debug"}]}]}}}},
    ]


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> dict[str, Path]:
    """The demo snapshot with the planted objects, and the same objects as manifests."""
    snap = tmp_path_factory.mktemp("planted") / "demo"
    shutil.copytree(DATA_DIR, snap)
    (snap / "planted.json").write_text(json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": _planted_objects()}))
    manifests = tmp_path_factory.mktemp("planted-manifests") / "app.yaml"
    manifests.write_text("# Source: app/templates/all.yaml\n"
                         + yaml.safe_dump_all(_planted_objects()))
    return {"snapshot": snap, "manifests": manifests}


# what the hardening checks must report, by name: (check, subject, key in the message)
REPORTED = (("secret-in-env", "todo/Deployment/planted-api/api", "DB_PASSWORD"),
            ("secret-in-configmap", "todo/ConfigMap/planted-config", "db_password"))


def _leaks(text: str) -> list[str]:
    return [v for v in PLANTED if v in text]


def _reported(fmt: str, text: str) -> set[tuple[str, str, str]]:
    """(check, subject, message) of each failure in one output format."""
    if fmt == "json":
        return {(r["check"], "/".join(p for p in (r["namespace"], r["kind"], r["name"],
                                                  r["container"]) if p), r["message"])
                for r in json.loads(text)}
    if fmt == "sarif":
        return {(r["ruleId"],
                 r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
                 r["message"]["text"]) for r in json.loads(text)["runs"][0]["results"]}
    if fmt == "junit":
        root = ET.fromstring(text)
        return {(s.get("name"), c.get("name"), f.get("message"))
                for s in root.findall("testsuite") for c in s.findall("testcase")
                for f in c.findall("failure")}
    # the table: a row per failure, its cells wrapped over the lines that follow it
    rows: list[list[str]] = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) < 4 or cells[0] == "severity":
            continue
        if cells[0]:
            rows.append(["", "", ""])
        if rows:  # the object cell is one word (a long one folds); the message has words
            row = rows[-1]
            row[0] += cells[1]
            row[1] += cells[2]
            row[2] += " " + cells[3]
    return {(c, obj, " ".join(m.split())) for c, obj, m in rows}


@pytest.mark.parametrize("fmt", ["table", "json", "sarif", "junit"])
@pytest.mark.parametrize("where", ["snapshot", "manifests"])
def test_audit_outputs_hold_no_planted_secret(planted, fmt, where):
    flag = "--source" if where == "snapshot" else "--manifests"
    res = CliRunner().invoke(app, ["audit", flag, str(planted[where]), "--format", fmt])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert res.exit_code == 3  # planted-api runs :latest
    assert "planted-api" in res.stdout  # the planted objects were audited
    reported = _reported(fmt, res.stdout)
    for check, subject, key in REPORTED:  # the credentials are found and named by key
        found = [m for c, s, m in reported if c == check and s.startswith(subject)]
        assert found and any(key in m for m in found), (check, subject, reported)
    assert not any(c == "secret-in-env" and "LOG_LEVEL" in m for c, _, m in reported)
    assert _leaks(res.stdout) == [] and _leaks(res.stderr) == []


def _page_reports_the_credentials(page: str) -> None:
    rows = table_rows(section(page, "Every failing check"))
    for check, subject, key in REPORTED:
        assert find_row(rows, check, subject, key), (check, subject, key)


@pytest.mark.slow
def test_security_report_holds_no_planted_secret(planted, tmp_path):
    result = run_report("security", source=str(planted["snapshot"]), out_dir=tmp_path,
                        date="2026-11-23")
    page = Path(result.html).read_text(encoding="utf-8")
    assert "planted-api" in page  # audited and shown
    _page_reports_the_credentials(page)
    summary = json.loads(Path(result.summary).read_text(encoding="utf-8"))
    assert {f"{check} {subject}" for check, subject, _ in REPORTED} <= set(summary["failing"])
    for path in (result.html, result.notebook, result.summary):
        assert _leaks(Path(path).read_text(encoding="utf-8")) == [], path
    manifests = run_report("security", out_dir=tmp_path / "m", date="2026-11-23",
                           parameters={"manifests": str(planted["manifests"])})
    _page_reports_the_credentials(Path(manifests.html).read_text(encoding="utf-8"))
    for path in (manifests.html, manifests.notebook, manifests.summary):
        text = Path(path).read_text(encoding="utf-8")
        assert "planted-api" in text or path == manifests.summary
        assert _leaks(text) == [], path
