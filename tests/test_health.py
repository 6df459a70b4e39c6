"""Health scoring: Popeye-style sections and grades, the tables, comparisons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aiops.errors import ParameterError
from aiops.health import assess, compare, grade_for, load_previous_summary, save_summary
from aiops.sources import open_source


@pytest.fixture(scope="module")
def demo():
    return open_source("demo")


def test_grades_follow_popeye() -> None:
    assert [grade_for(s) for s in (95, 90, 85, 72, 61, 50, 49.9)] == \
        ["A", "A", "B", "C", "D", "E", "F"]


def test_demo_score_is_the_mean_of_sections(demo) -> None:
    rep = assess(demo)
    sec = rep.sections.set_index("section")
    assert (sec["total"] == sec["ok"] + sec["warn"] + sec["error"]).all()
    assert rep.score == pytest.approx((100 * sec["ok"] / sec["total"]).mean())
    assert rep.grade == grade_for(rep.score)
    assert sec.loc["nodes", "score"] == 100
    assert "100 x ok / total" in rep.formula


def test_demo_problems_and_tables(demo) -> None:
    rep = assess(demo)
    issues = {(r.kind, r.name.split("-")[0] + "-" + r.name.split("-")[1], r.reason)
              for r in rep.issues.itertuples()}
    assert ("Pod", "todo-chatbot", "CrashLoopBackOff") in issues
    assert ("Service", "todo-redis", "SelectorMatchesNothing") in issues
    assert rep.issues.iloc[0]["severity"] == "error"  # errors first
    node = rep.nodes.iloc[0]
    assert 0 < node["cpu_pct"] < 100 and node["pods"] > 10
    assert rep.restarts.iloc[0]["restarts"] >= rep.restarts.iloc[-1]["restarts"]
    assert "BackOff" in set(rep.warning_events["reason"])


def test_namespace_scope_and_window(demo) -> None:
    rep = assess(demo, namespaces=["kube-system"])
    assert set(rep.issues["namespace"]) <= {"", "kube-system"}
    assert rep.score > assess(demo).score
    short = assess(demo, window="1m")
    assert short.warning_events["events"].sum() <= assess(demo).warning_events["events"].sum()
    with pytest.raises(ParameterError, match="invalid time window"):
        assess(demo, window="-3d")


def test_unavailable_sections_are_reported(demo) -> None:
    demo.unavailable["Secret"] = "forbidden: secrets is forbidden"
    try:
        assert assess(demo).unavailable == {"Secret": "forbidden: secrets is forbidden"}
    finally:
        demo.unavailable.clear()


def test_changes_since_previous(demo, tmp_path: Path) -> None:
    rep = assess(demo)
    prev = rep.summary() | {"score": rep.score - 5, "issues": ["Pod todo/gone: Error"],
                            "restarts": {"todo/todo-chatbot": 1}}
    ch = compare(prev, rep.summary()).set_index("item")
    assert ch.loc["score", "change"] == "+5.0"
    assert ch.loc["issue: Pod todo/gone: Error", "change"] == "resolved"
    assert any(i.startswith("issue: ") and v == "new" for i, v in ch["change"].items())
    assert ch.loc["restarts: todo/todo-chatbot", "previous"] == 1
    # summaries on disk: the newest on or before the date is the previous one
    save_summary(rep, tmp_path / "2026-11-16" / "health.summary.json")
    (tmp_path / "2026-11-30").mkdir()
    (tmp_path / "2026-11-30" / "health.summary.json").write_text(json.dumps({"score": 1}))
    found = load_previous_summary(tmp_path, "health", before="2026-11-23")
    assert found and found["grade"] == rep.grade
    assert load_previous_summary(tmp_path, "health", before="2026-11-01") is None
