"""`verify` detects each kind of tampering and names the record, on real git repos."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aiops.approvals import phr_files as files

from .conftest import ALICE, commit_all, fill, set_field


@pytest.fixture
def chain(store):
    return fill(store, 5)


def _problems(store, kind):
    res = store.verify()
    assert not res.ok
    return [p for p in res.problems if p.kind == kind]


def test_intact_chain_verifies(store, chain):
    res = store.verify()
    assert res.ok, res.problems
    assert (res.records, res.commits, res.head) == (5, 5, chain[-1].id)


def test_empty_store_verifies(store):
    assert store.verify().ok


@pytest.mark.parametrize("index", [2, 4])  # a middle record, and the head (no successor)
def test_edit_in_the_work_tree(store, chain, index):
    set_field(chain[index].path, "title", "something else")
    edited = _problems(store, "edited")
    assert [p.record for p in edited] == [chain[index].id]
    assert edited[0].path.endswith(chain[index].path.name)
    if index == 2:  # the next record's link no longer matches
        assert [p.record for p in _problems(store, "broken-link")] == [chain[3].id]


def test_delete_in_the_work_tree(store, chain):
    chain[2].path.unlink()
    assert [p.record for p in _problems(store, "deleted")] == [chain[2].id]
    gap = _problems(store, "gap")
    assert gap[0].record == chain[3].id and "seq 3 missing" in gap[0].message


def test_delete_committed(store, chain, repo):
    repo.git.rm("-q", str(chain[1].path))
    repo.git.commit("-q", "-m", "tidy up")
    deleted = _problems(store, "deleted")
    assert [p.record for p in deleted] == [chain[1].id] and "by commit" in deleted[0].message
    assert _problems(store, "gap")[0].record == chain[2].id


def _forge(store, after, seq):
    """A record made by hand: seq `seq`, linked to `after`, a fresh id."""
    from aiops.approvals.phr_ids import new_id, now_ms

    rec_id = new_id(now_ms())
    meta = after.meta.model_copy(update={"id": rec_id, "seq": seq, "prev_hash": after.hash,
                                         "title": "approved by nobody"}).model_dump(mode="json")
    meta["created_at"] = after.meta.model_dump(mode="json")["created_at"]
    path = after.path.parent / files.record_name(seq, rec_id, after.meta.type)
    path.write_bytes(files.render(meta, meta["title"], "forged"))
    return rec_id, path


def test_insert_with_a_forged_seq(store, chain):
    forged, _ = _forge(store, chain[1], 3)  # claims seq 3, which chain[2] holds
    assert [p.record for p in _problems(store, "inserted")] == [forged]
    dup = _problems(store, "duplicate")
    assert {p.record for p in dup} & {forged, chain[2].id}


def test_insert_committed_with_a_forged_seq(store, chain, repo):
    forged, _ = _forge(store, chain[1], 3)
    commit_all(repo, "add approval")
    inserted = _problems(store, "inserted")
    assert [p.record for p in inserted] == [forged] and "after seq 5" in inserted[0].message


def _swap(a, b):
    """Give a and b each other's seq (front matter and file name), like a reorder would."""
    sa, sb = a.meta.seq, b.meta.seq
    set_field(a.path, "seq", str(sb))
    set_field(b.path, "seq", str(sa))
    os.rename(a.path, a.path.parent / files.record_name(sb, a.id, a.meta.type))
    os.rename(b.path, b.path.parent / files.record_name(sa, b.id, b.meta.type))


def test_reorder_two_records(store, chain):
    _swap(chain[1], chain[2])
    named = {p.record for p in _problems(store, "reordered")}
    assert {chain[1].id, chain[2].id} <= named


def test_reorder_committed(store, chain, repo):
    _swap(chain[1], chain[2])
    commit_all(repo, "reorder")
    res = store.verify()
    assert {chain[1].id, chain[2].id} <= {p.record for p in res.problems
                                          if p.kind == "reordered"}
    assert {chain[1].id, chain[2].id} <= {p.record for p in res.problems
                                          if p.kind in ("deleted", "inserted")}


def test_edit_and_recommit_with_the_chain_rewritten(store, chain, repo):
    """Edit record 3, then recompute every later prev_hash so the files chain again."""
    set_field(chain[2].path, "title", "approved by the security team")
    prev = chain[2].path
    for rec in chain[3:]:
        set_field(rec.path, "prev_hash", files.sha256(prev.read_bytes()))
        prev = rec.path
    commit_all(repo, "fix typo")
    res = store.verify()
    assert not [p for p in res.problems if p.kind in ("broken-link", "edited")]  # files chain
    rewritten = {p.record for p in res.problems if p.kind == "rewritten"}
    assert rewritten == {r.id for r in chain[2:]}


def test_amend_of_the_last_commit(store, chain, repo):
    """The head record has no successor: only git can tell it was rewritten."""
    set_field(chain[4].path, "title", "executed with approval")
    commit_all(repo, "phr: execution", amend=True)
    res = store.verify()
    assert [(p.kind, p.record) for p in res.problems] == [("history-rewritten", chain[4].id)]
    assert "amend" in res.problems[0].message


def test_reset_dropping_a_record(store, chain, repo):
    repo.git.reset("-q", "--hard", "HEAD~1")
    res = store.verify()
    assert [(p.kind, p.record) for p in res.problems] == [("history-rewritten", chain[4].id)]


def test_unrelated_history_rewrites_are_not_problems(store, chain, repo):
    work = Path(repo.working_tree_dir)
    (work / "notes.txt").write_text("a\n")
    commit_all(repo, "notes")
    (work / "notes.txt").write_text("b\n")
    commit_all(repo, "notes, fixed", amend=True)
    store.record("report", actor=ALICE, title="after the amend")
    assert store.verify().ok


def test_malformed_and_misnamed_files(store, chain):
    stray = chain[0].path.parent / "notes.md"
    stray.write_text("hello\n")
    broken = chain[0].path.parent / files.record_name(6, chain[4].id[:-1] + "Z", "approval")
    broken.write_text("no front matter\n")
    res = store.verify()
    kinds = {(p.kind, p.path.rsplit("/", 1)[-1]) for p in res.problems}
    assert ("malformed", "notes.md") in kinds and ("malformed", broken.name) in kinds


def test_full_verify_checks_the_whole_schema(store, chain, repo):
    """A hand-made record that chains correctly but breaks the schema (bad tier)."""
    from aiops.approvals.phr_ids import new_id, now_ms

    head = chain[-1]
    rec_id = new_id(now_ms(), after=head.id)
    meta = head.meta.model_dump(mode="json") | {"id": rec_id, "seq": 6,
                                                "prev_hash": head.hash, "tier": "whenever"}
    path = head.path.parent / files.record_name(6, rec_id, head.meta.type)
    path.write_bytes(files.render(meta, "approved", ""))
    commit_all(repo, "phr")
    assert store.verify().ok  # the chain itself is intact
    full = store.verify(full=True)
    assert [(p.kind, p.record) for p in full.problems] == [("malformed", rec_id)]
    assert "tier" in full.problems[0].message
