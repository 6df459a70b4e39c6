"""Real git repositories in tmp_path, and helpers to write and tamper with records."""

from __future__ import annotations

import re
from pathlib import Path

import git
import pytest

from aiops.approvals import PhrStore, Record

ALICE = {"name": "Alice Approver", "email": "alice@example.com"}
BOB = {"name": "Bob Operator", "email": "bob@example.com"}
OBJ = {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "todo", "name": "todo-backend"}


def new_repo(path: Path) -> git.Repo:
    repo = git.Repo.init(path)
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "Test Committer")
        cfg.set_value("user", "email", "committer@example.com")
    (path / "README.md").write_text("project\n")
    repo.index.add(["README.md"])
    repo.index.commit("initial")
    return repo


@pytest.fixture
def repo(tmp_path: Path) -> git.Repo:
    return new_repo(tmp_path / "repo")


@pytest.fixture
def store(repo: git.Repo) -> PhrStore:
    return PhrStore(Path(repo.working_tree_dir) / "history" / "prompts", lock_timeout=2.0)


def fill(store: PhrStore, n: int, actor: dict[str, str] = ALICE) -> list[Record]:
    """n records: a recommendation, then steps linked to it."""
    first = store.record("recommendation", actor=actor, title="Raise memory of todo-backend",
                         body="OOM-killed 12 times in 24 h.", tier="medium", object=OBJ,
                         pre_metrics={"restarts": 12})
    recs = [first]
    for i in range(1, n):
        recs.append(store.record("approval" if i % 2 else "execution", actor=actor,
                                 title=f"step {i}", previous_step=recs[-1].id))
    return recs


def set_field(path: Path, key: str, value: str) -> None:
    """Rewrite one top-level front matter line, as someone editing the file would."""
    text = path.read_text()
    new = re.sub(rf"(?m)^{key}: .*$", f"{key}: {value}", text, count=1)
    assert new != text
    path.write_text(new)


def commit_all(repo: git.Repo, message: str, amend: bool = False) -> None:
    repo.git.add("-A")
    repo.git.commit("-q", "-m", message, *(["--amend"] if amend else []))
