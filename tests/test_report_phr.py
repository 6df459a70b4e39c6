"""Each generated report is a PHR: the demo's into a store of its own under the
reports directory, never into the repository's audit trail."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiops.approvals.phr import PhrStore
from aiops.cli import main

REPO_TRAIL = Path(__file__).resolve().parent.parent / "history" / "prompts"


def _trail_files() -> set[Path]:
    return set(REPO_TRAIL.rglob("*.md")) if REPO_TRAIL.exists() else set()


@pytest.mark.slow
def test_report_is_recorded_in_the_demo_store(tmp_path, capsys):
    before = _trail_files()
    assert main(["report", "health", "--source", "demo", "--out", str(tmp_path)]) == 0
    store = PhrStore(tmp_path / ".schedule" / "history" / "prompts")
    [rec] = store.records(type="report")
    assert rec.meta.data["report"] == "health" and rec.meta.data["ok"] is True
    assert rec.meta.data["source"] == "demo" and rec.meta.data["html"].endswith(".html")
    assert store.verify().ok
    assert "recorded 1 report PHR" in capsys.readouterr().err
    assert _trail_files() == before, "the repository's audit trail is untouched"


@pytest.mark.slow
def test_no_record_and_an_unwritable_store(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["report", "health", "--source", "demo", "--out", str(out),
                 "--no-record"]) == 0
    assert not (out / ".schedule").exists()
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    # a real source outside any git repository: the reports stand, a warning says why
    assert main(["report", "health", "--source", "demo", "--out", str(tmp_path / "o2"),
                 "--phr-store", str(outside / "prompts")]) == 0
    assert "not recorded in the audit trail" in capsys.readouterr().err
