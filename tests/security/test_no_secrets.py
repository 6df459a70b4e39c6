"""Secrets planted in the demo data never reach any audit output: the table, JSON,
SARIF and JUnit of `aiops audit` (on the snapshot and on the same objects as
manifests), and the rendered security report, its executed notebook and summary.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from aiops.cli import app
from aiops.reports.runner import run_report
from aiops.sources.demo import DATA_DIR

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


def _leaks(text: str) -> list[str]:
    return [v for v in PLANTED if v in text]


@pytest.mark.parametrize("fmt", ["table", "json", "sarif", "junit"])
@pytest.mark.parametrize("where", ["snapshot", "manifests"])
def test_audit_outputs_hold_no_planted_secret(planted, fmt, where):
    flag = "--source" if where == "snapshot" else "--manifests"
    res = CliRunner().invoke(app, ["audit", flag, str(planted[where]), "--format", fmt])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert res.exit_code == 3  # planted-api runs :latest
    assert "planted-api" in res.stdout  # the planted objects were audited
    assert _leaks(res.stdout) == [] and _leaks(res.stderr) == []


@pytest.mark.slow
def test_security_report_holds_no_planted_secret(planted, tmp_path):
    result = run_report("security", source=str(planted["snapshot"]), out_dir=tmp_path,
                        date="2026-11-23")
    page = Path(result.html).read_text(encoding="utf-8")
    assert "planted-api" in page  # audited and shown
    for path in (result.html, result.notebook, result.summary):
        assert _leaks(Path(path).read_text(encoding="utf-8")) == [], path
    manifests = run_report("security", out_dir=tmp_path / "m", date="2026-11-23",
                           parameters={"manifests": str(planted["manifests"])})
    for path in (manifests.html, manifests.notebook, manifests.summary):
        text = Path(path).read_text(encoding="utf-8")
        assert "planted-api" in text or path == manifests.summary
        assert _leaks(text) == [], path
