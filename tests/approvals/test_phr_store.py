"""Recording, reading and the DataFrame view, on real git repositories."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import git
import pandas as pd
import pytest

from aiops.approvals import PhrStore
from aiops.approvals.phr import default_root
from aiops.diagnose.finding import Action
from aiops.errors import HistoryError, ParameterError

from .conftest import ALICE, BOB, OBJ, fill, new_repo

NAME = re.compile(r"^\d{4}/\d{2}/\d{2}/\d{6}-[0-9A-Z]{26}-[a-z]+\.md$")


def test_record_is_markdown_with_front_matter_committed_alone(store, repo):
    rec = store.record("recommendation", actor=BOB, title="Raise memory", body="Why: OOM.",
                       tier="medium", object=OBJ, pre_metrics={"restarts": 12},
                       data={"rule": "oom-killed"})
    rel = rec.path.relative_to(store.root).as_posix()
    assert NAME.match(rel) and rel.endswith(f"000001-{rec.id}-recommendation.md")
    text = rec.path.read_text()
    assert text.startswith("---\nversion: 1\n") and "\n# Raise memory\n\nWhy: OOM.\n" in text
    assert rec.meta.seq == 1 and rec.meta.prev_hash is None
    assert rec.meta.created_at.tzinfo is not None
    head = repo.head.commit
    assert (head.author.name, head.author.email) == (BOB["name"], BOB["email"])
    assert f"PHR-Id: {rec.id}" in head.message and f"PHR-Hash: {rec.hash}" in head.message
    # the record and the store's .gitignore (lock and temporaries), nothing else
    assert sorted(head.stats.files) == sorted([f"history/prompts/{rel}",
                                               "history/prompts/.gitignore"])
    second = store.record("approval", actor=ALICE, title="ok", previous_step=rec.id)
    assert list(repo.head.commit.stats.files) == [
        f"history/prompts/{second.path.relative_to(store.root).as_posix()}"]
    assert second.meta.seq == 2 and second.meta.prev_hash == rec.hash
    assert second.id > rec.id and second.meta.links.previous_step == rec.id


def test_records_get_frame_round_trip(store):
    recs = fill(store, 5)
    assert [r.to_dict() for r in store.records()] == [r.to_dict() for r in recs]
    assert store.get(recs[2].id).to_dict() == recs[2].to_dict()
    assert store.get(recs[2].id.lower()).id == recs[2].id
    assert store.get(recs[2].id[:20]).id == recs[2].id  # a unique prefix
    assert [r.id for r in store.records("approval")] == [recs[1].id, recs[3].id]
    future = datetime.now(tz=UTC) + timedelta(hours=1)
    assert store.records(since=future) == []
    df = store.frame()
    assert list(df["seq"]) == [1, 2, 3, 4, 5] and list(df["id"]) == [r.id for r in recs]
    assert isinstance(df["created_at"].dtype, pd.DatetimeTZDtype)
    assert str(df["created_at"].dt.tz) == "UTC"
    assert df.loc[0, "kind"] == "Deployment" and df.loc[0, "pre_metrics"] == {"restarts": 12}
    assert df.loc[1, "previous_step"] == recs[0].id and df.loc[4, "actor_email"] == ALICE["email"]
    assert list(df["prev_hash"][1:]) == list(df["hash"][:-1])
    with pytest.raises(ParameterError, match="no record"):
        store.get("0" * 26)


def test_record_commits_only_its_own_file(store, repo):
    work = Path(repo.working_tree_dir)
    (work / "staged.txt").write_text("user's work\n")
    repo.git.add("staged.txt")
    (work / "untracked.txt").write_text("scratch\n")
    (work / "README.md").write_text("edited, not staged\n")
    rec = store.record("report", actor=ALICE, title="weekly health report")
    assert "staged.txt" not in repo.head.commit.stats.files
    status = repo.git.status("--porcelain")
    assert "A  staged.txt" in status and "?? untracked.txt" in status
    assert " M README.md" in status
    assert store.verify().ok and rec.path.exists()


def test_action_fills_hash_tier_object_and_data(store):
    action = Action(kind="patch", target=OBJ, description="raise memory limit", tier="low",
                    patch=[{"op": "replace", "path": "/a", "value": 2}],
                    inverse=[{"op": "replace", "path": "/a", "value": 1}])
    rec = store.record("proposal", actor=ALICE, title="raise memory", action=action)
    assert rec.meta.action_hash == action.hash() and rec.meta.tier == "low"
    assert rec.meta.object.name == "todo-backend"
    assert rec.meta.data["action"]["hash"] == action.hash()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"type": "approved"}, "unknown PHR type"),
    ({"seq": 7}, "set by the store"),
    ({"action_hash": "md5:abc"}, "action_hash"),
    ({"tier": "urgent"}, "tier"),
    ({"actor": {"name": "x", "email": "not-an-email"}}, "actor.email"),
    ({"type": "correction"}, "corrects"),
    ({"previous_step": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, "not in"),
    ({"object": {"kind": "Pod"}}, "object.name"),
])
def test_invalid_records_are_refused_and_nothing_is_written(store, kwargs, match):
    args = {"type": "approval", "actor": ALICE, "title": "t"} | kwargs
    rec_type = args.pop("type")
    with pytest.raises(ParameterError, match=match):
        store.record(rec_type, **args)
    assert store.records() == []


def test_correction_is_a_new_record(store):
    recs = fill(store, 2)
    fix = store.record("correction", actor=ALICE, title="approver was Bob, not Alice",
                       corrects=recs[1].id, data={"actor": BOB})
    assert fix.meta.links.corrects == recs[1].id and fix.meta.seq == 3
    assert store.get(recs[1].id).to_dict() == recs[1].to_dict()  # the original is untouched
    assert store.verify().ok


def test_store_outside_a_git_repository_is_a_clear_error(tmp_path):
    with pytest.raises(HistoryError, match="not in a git repository") as exc:
        PhrStore(tmp_path / "nowhere" / "history")
    assert "git init" in exc.value.hint


def test_default_root_is_env_then_the_repository_of_the_cwd(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("AIOPS_HISTORY", str(tmp_path / "own"))
    assert default_root() == tmp_path / "own"
    monkeypatch.delenv("AIOPS_HISTORY")
    sub = Path(repo.working_tree_dir) / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert default_root() == Path(repo.working_tree_dir) / "history" / "prompts"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HistoryError, match="AIOPS_HISTORY"):
        default_root()


def test_tests_never_default_to_the_real_audit_trail():
    """The session guard points AIOPS_HISTORY away from the repository's history/."""
    real = Path(__file__).resolve().parents[2] / "history" / "prompts"
    assert default_root().resolve() != real


def test_first_record_in_a_repository_without_commits(tmp_path):
    repo = git.Repo.init(tmp_path / "fresh")
    store = PhrStore(tmp_path / "fresh" / "audit")
    rec = store.record("detection", actor=ALICE, title="backend crash-looping")
    assert repo.head.commit.author.email == ALICE["email"]
    assert store.verify().ok and store.get(rec.id).meta.type == "detection"


def test_a_new_repo_store_without_committer_identity_uses_the_actor(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no global git identity
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    repo = git.Repo.init(tmp_path / "r")
    store = PhrStore(tmp_path / "r" / "h")
    store.record("report", actor=BOB, title="cost report")
    assert repo.head.commit.committer.email == BOB["email"]


def test_store_in_a_second_repository_is_independent(tmp_path):
    a = PhrStore(Path(new_repo(tmp_path / "a").working_tree_dir) / "h")
    b = PhrStore(Path(new_repo(tmp_path / "b").working_tree_dir) / "h")
    fill(a, 3)
    fill(b, 1)
    assert len(a.records()) == 3 and len(b.records()) == 1
