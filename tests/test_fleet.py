"""Fleet reports: `aiops report NAME --source a,b,...` renders one report set per cluster
in parallel and a `fleet.html` summary with one row per cluster."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aiops.errors import ParameterError
from aiops.reports.fleet import (
    Member,
    MemberRun,
    cluster_name,
    fleet_rows,
    parse_sources,
    render_fleet,
)
from aiops.reports.runner import report_date
from aiops.security import audit
from aiops.security.report import summary as security_summary
from aiops.sources import open_source


def test_cluster_names_come_from_contexts_and_directories() -> None:
    assert cluster_name("kube:prod-eu") == "prod-eu"
    assert cluster_name("kube") == "kube"
    assert cluster_name("/snapshots/edge/") == "edge"
    assert cluster_name("demo") == "demo"
    eks = "kube:arn:aws:eks:eu-west-1:1:cluster/x"
    assert cluster_name(eks) == "arn-aws-eks-eu-west-1-1-cluster-x"
    assert [m.name for m in parse_sources("kube:a, kube:b,demo")] == ["a", "b", "demo"]
    assert parse_sources("kube:fleet,kube:index")[0].name == "fleet-cluster"


def test_sources_that_would_share_a_directory_are_refused() -> None:
    with pytest.raises(ParameterError, match="would both write"):
        parse_sources("kube:edge,/snapshots/edge")
    with pytest.raises(ParameterError, match="empty entry"):
        parse_sources("kube:a,,kube:b")


@pytest.fixture(scope="module")
def fleet_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """The health report of the demo, a snapshot copy of it named `edge`, and a
    snapshot path that does not exist, through the real command."""
    tmp = tmp_path_factory.mktemp("fleet")
    from aiops.sources.capture import capture

    capture(open_source("demo"), tmp / "edge")
    out = tmp / "reports"
    done = subprocess.run(
        [sys.executable, "-m", "aiops.cli", "report", "health", "--source",
         f"demo,{tmp / 'edge'},{tmp / 'gone'}", "--out", str(out)],
        capture_output=True, text=True, timeout=900, check=False)
    return out, done


@pytest.mark.slow
def test_each_cluster_gets_its_own_report_set(fleet_run) -> None:
    out, done = fleet_run
    assert done.returncode == 1, done.stdout + done.stderr  # `gone` failed
    day = report_date()
    for cluster in ("demo", "edge"):
        html = out / cluster / day / "health.html"
        assert html.is_file() and (out / cluster / "index.html").is_file()
        summary = json.loads((out / cluster / day / "health.summary.json").read_text())
        assert isinstance(summary["score"], int | float)
    edge = json.loads((out / "edge" / day / "health.summary.json").read_text())
    assert edge["source"].endswith("edge"), "the snapshot was read, not the demo again"
    assert "ok demo" in done.stdout and "ok edge" in done.stdout and "FAILED gone" in done.stdout
    assert not (out / "gone" / day / "health.html").exists()


@pytest.mark.slow
def test_fleet_page_has_one_row_per_cluster_with_links(fleet_run) -> None:
    out, _ = fleet_run
    page = (out / "fleet.html").read_text()
    rows = re.findall(r"<tr><td>(.*?)</tr>", page, re.S)
    assert len(rows) == 3
    demo, edge, gone = rows
    day = report_date()
    score = json.loads((out / "demo" / day / "health.summary.json").read_text())["score"]
    assert f">{score:.0f} <span class=\"grade\">" in demo
    assert f'href="demo/{day}/health.html"' in demo and 'href="edge/index.html"' in edge
    assert f'href="edge/{day}/health.html"' in edge
    assert "last run failed" in gone and "last run failed" not in demo + edge
    assert "<script" not in page and "http" not in page


def test_security_and_cost_columns_read_the_reports_summaries(tmp_path: Path) -> None:
    """The page takes each cluster's newest good run per report; a security summary as
    the security report writes it (from a real audit of the demo) fills its column."""
    day = "2026-11-23"
    state = open_source("demo")
    sec = security_summary(audit(state), day)
    d = tmp_path / "prod" / day
    d.mkdir(parents=True)
    (d / "security.summary.json").write_text(json.dumps(sec))
    (d / "security.html").write_text("<html></html>")
    (d / "cost.summary.json").write_text(json.dumps({"cluster_monthly": 1234.5,
                                                     "currency": "USD"}))
    (d / "cost.html").write_text("<html></html>")
    older = tmp_path / "prod" / "2026-11-16"
    older.mkdir()
    (older / "cost.summary.json").write_text(json.dumps({"cluster_monthly": 1.0}))
    (older / "cost.html").write_text("<html></html>")
    members = [Member("kube:prod", "prod"), Member("kube:dev", "dev")]
    (row, empty) = fleet_rows(tmp_path, members, [MemberRun(members[0], 0, "")])
    assert (row["security"], row["security_grade"]) == (sec["score"], sec["grade"])
    assert row["dangers"] == sec["dangers"] and row["cost"] == 1234.5 and row["status"] == "ok"
    assert row["health"] is None and empty["links"] == {} and empty["status"] == ""
    page = render_fleet(tmp_path, members)
    assert "1,234.50 USD" in page and f"{sec['score']:.0f} <span class=\"grade\">" in page
    assert f'href="prod/{day}/cost.html"' in page and "2026-11-16/cost.html" not in page
