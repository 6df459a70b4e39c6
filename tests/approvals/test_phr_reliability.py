"""Concurrent writers, killed writers, git locks and a dirty store, with real
processes and real git repositories."""

from __future__ import annotations

import fcntl
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from aiops.approvals import PhrStore
from aiops.approvals import phr_files as files
from aiops.errors import HistoryError, UncommittedRecordError

from .conftest import ALICE, fill, set_field

ROOT = Path(__file__).resolve().parents[2]


def _writer(store: PhrStore, count: int, tag: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.approvals.writer", str(store.root),
                             str(count), tag, *extra], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _half_written(store: PhrStore) -> list[Path]:
    """Record files that do not parse as a whole record."""
    bad = []
    for f in files.all_record_files(store.root):
        try:
            files.parse(f.read_bytes())
        except ValueError:
            bad.append(f)
    return bad


@pytest.mark.slow
def test_eight_processes_fifty_records_each(store, repo):
    procs = [_writer(store, 50, f"w{i}") for i in range(8)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()
    recs = store.records()
    assert [r.meta.seq for r in recs] == list(range(1, 401))
    assert Counter(r.meta.data["writer"] for r in recs) == {f"w{i}": 50 for i in range(8)}
    res = store.verify()
    assert res.ok, res.problems[:5]
    assert res.commits == 400
    assert int(repo.git.rev_list("--count", "HEAD")) == 401  # + the initial commit


def test_killed_between_write_and_replace_leaves_no_half_record(store, tmp_path):
    before = fill(store, 3)
    marker = tmp_path / "paused"
    proc = _writer(store, 1, "victim", "--pause-before-replace", str(marker))
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    tmp, final = marker.read_text().split()
    assert Path(tmp).exists() and not Path(final).exists()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not Path(final).exists()
    assert [r.id for r in store.records()] == [r.id for r in before]
    assert store.verify().ok
    after = store.record("approval", actor=ALICE, title="after the crash")  # lock was freed
    assert after.meta.seq == 4 and not Path(tmp).exists()  # the stale temp file is gone
    assert store.verify().ok


@pytest.mark.slow
def test_writers_killed_at_random_moments(store):
    rng = random.Random(7)
    for round_ in range(6):
        seen = len(files.all_record_files(store.root))
        proc = _writer(store, 1000, f"k{round_}")
        deadline = time.monotonic() + 60
        while len(files.all_record_files(store.root)) == seen:  # started writing
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.3))  # then die anywhere: in a write, a commit, between
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert _half_written(store) == []
    time.sleep(1)  # a git child of a killed writer may still be finishing its commit
    store.record("report", actor=ALICE, title="after the crashes")  # commits any leftover
    res = store.verify()
    assert res.ok, res.problems[:5]
    assert res.records == len(store.records()) > 6


def test_foreign_index_lock_is_a_clear_error_and_keeps_the_record(store, repo):
    first = fill(store, 1)[0]
    lock = Path(repo.git_dir) / "index.lock"
    lock.write_text("")
    store.git.lock_timeout = 0.5
    t0 = time.monotonic()
    with pytest.raises(UncommittedRecordError) as exc:
        store.record("approval", actor=ALICE, title="while git is busy", previous_step=first.id)
    assert time.monotonic() - t0 >= 0.5
    err = exc.value
    assert str(lock) in err.message and "not committed" in err.message
    assert "next record commits it" in err.hint and "lock" in err.hint
    kept = err.record
    assert kept.path.exists() and store.get(kept.id).to_dict() == kept.to_dict()
    res = store.verify()
    assert [(p.kind, p.record) for p in res.problems] == [("uncommitted", kept.id)]
    lock.unlink()
    third = store.record("execution", actor=ALICE, title="git is free again")
    committed = repo.head.commit.stats.files
    assert {kept.path.name, third.path.name} <= {Path(f).name for f in committed}
    assert store.verify().ok and third.meta.prev_hash == kept.hash


def test_changed_committed_record_blocks_new_records(store):
    recs = fill(store, 3)
    set_field(recs[1].path, "title", "edited by hand")
    with pytest.raises(HistoryError, match=recs[1].path.name) as exc:
        store.record("approval", actor=ALICE, title="next")
    assert "git checkout" in exc.value.hint and "nothing was written" in exc.value.hint
    assert len(files.all_record_files(store.root)) == 3


def test_uncommitted_file_that_breaks_the_chain_blocks_new_records(store):
    recs = fill(store, 2)
    stray = recs[1].path.parent / files.record_name(3, recs[1].id[:-1] + "Z", "approval")
    stray.write_bytes(recs[0].path.read_bytes())
    with pytest.raises(HistoryError, match=stray.name):
        store.record("approval", actor=ALICE, title="next")
    assert len(files.all_record_files(store.root)) == 3


def test_store_lock_held_too_long_is_a_clear_error(store):
    fill(store, 1)
    fd = os.open(store.root / files.LOCK_NAME, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        store.lock_timeout = 0.3
        with pytest.raises(HistoryError, match="locked by another writer"):
            store.record("approval", actor=ALICE, title="blocked")
    finally:
        os.close(fd)
    assert len(store.records()) == 1
