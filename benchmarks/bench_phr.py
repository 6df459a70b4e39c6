"""PHR store speed: recording one record (write + commit), and verifying 10,000.

Targets (issue 6): recording a PHR under 100 ms median; `phr verify` over 10,000
records under 5 s. Both run in throw-away git repositories under a temp dir,
never in the real audit trail.

* record: 200 `PhrStore.record()` calls in a fresh repository, each timed
  end to end (lock, git status, render, atomic write with fsync, git add + commit).
* verify: 10,000 records rendered with the store's own helpers (`PhrMeta`,
  `phr_files.render`, ids and hash chain exactly as `record()` makes them) and
  committed one commit per record, as `record()` would, but through one
  `git fast-import` stream so generating them takes seconds instead of minutes.
  They are spread over 100 days, 100 a day (a busy cluster's approval traffic),
  so each day directory holds 100 records, as the store's layout intends.
  Then `PhrStore.verify()` reads every file, recomputes the chain and compares
  with the committed tree, the 10,000-commit history and the reflog.
Run: .venv/bin/python benchmarks/bench_phr.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import git

from aiops.approvals import PhrStore
from aiops.approvals import phr_files as files
from aiops.approvals.phr import PhrMeta
from aiops.approvals.phr_ids import id_time, new_id, now_ms

RECORD_TARGET_S = 0.100
VERIFY_TARGET_S = 5.0
ACTOR = {"name": "Bench Approver", "email": "bench@example.com"}
PER_DAY = 100
OBJ = {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "todo", "name": "backend"}


def _repo(path: Path) -> git.Repo:
    repo = git.Repo.init(path)
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "bench").set_value("user", "email", "bench@example.com")
    (path / "README.md").write_text("bench\n")
    repo.index.add(["README.md"])
    repo.index.commit("initial")
    return repo


def bench_record(tmp: Path, n: int = 200) -> list[float]:
    store = PhrStore(Path(_repo(tmp / "record").working_tree_dir) / "history" / "prompts")
    times = []
    prev = None
    for i in range(n):
        t = time.perf_counter()
        rec = store.record("approval" if i % 2 else "recommendation", actor=ACTOR,
                           title=f"step {i}", body="Evidence: OOM-killed 12 times.",
                           tier="medium", object=OBJ, pre_metrics={"restarts": 12},
                           previous_step=prev)
        times.append(time.perf_counter() - t)
        prev = rec.id
    assert store.verify().ok
    return times


def make_records(repo: git.Repo, root: Path, n: int) -> None:
    """n chained records, one fast-import commit each, then checked out."""
    rel = root.relative_to(repo.working_tree_dir).as_posix()
    stream = []
    prev_id, prev_hash = None, None
    step = 86_400_000 // PER_DAY
    ms = now_ms() - n * step
    branch = repo.active_branch.name.encode()
    for seq in range(1, n + 1):
        rec_id = new_id(ms + seq * step, after=prev_id)
        meta = PhrMeta(id=rec_id, seq=seq, type="approval", created_at=id_time(rec_id),
                       actor=ACTOR, title=f"approve change {seq}", tier="low", object=OBJ,
                       pre_metrics={"p95_ms": 120 + seq % 7}, prev_hash=prev_hash)
        data = files.render(meta.model_dump(mode="json"), meta.title, "Approved after review.")
        name = files.record_name(seq, rec_id, "approval")
        path = f"{rel}/{files.day_dir(meta.created_at)}/{name}"
        msg = f"phr: approval #{seq}\n".encode()
        stamp = f"{ACTOR['name']} <{ACTOR['email']}> {(ms + seq * step) // 1000} +0000"
        stream += [b"commit refs/heads/%s\n" % branch,
                   f"author {stamp}\ncommitter {stamp}\n".encode(),
                   b"data %d\n%s" % (len(msg), msg)]
        if seq == 1:
            stream.append(b"from %s\n" % repo.head.commit.hexsha.encode())
        stream += [f"M 100644 inline {path}\n".encode(), b"data %d\n%s\n" % (len(data), data)]
        prev_id, prev_hash = rec_id, files.sha256(data)
    subprocess.run(["git", "fast-import", "--quiet", "--force"], input=b"".join(stream),
                   cwd=repo.working_tree_dir, check=True)
    repo.git.reset("--hard", "-q")


def bench_verify(tmp: Path, n: int = 10_000) -> tuple[float, float, object]:
    repo = _repo(tmp / "verify")
    root = Path(repo.working_tree_dir) / "history" / "prompts"
    t = time.perf_counter()
    make_records(repo, root, n)
    t_make = time.perf_counter() - t
    store = PhrStore(root)
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        res = store.verify()
        runs.append(time.perf_counter() - t)
    return t_make, statistics.median(runs), res


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-phr-") as d:
        tmp = Path(d)
        times = bench_record(tmp)
        med = statistics.median(times)
        p95 = sorted(times)[int(len(times) * 0.95)]
        ok_rec = med < RECORD_TARGET_S
        print(f"record (write + commit): {len(times)} records, median {med * 1000:.1f} ms, "
              f"p95 {p95 * 1000:.1f} ms, max {max(times) * 1000:.1f} ms; target median < "
              f"{RECORD_TARGET_S * 1000:.0f} ms: {'met' if ok_rec else 'MISSED'}", flush=True)
        t_make, t_verify, res = bench_verify(tmp)
        ok_ver = res.ok and res.records == 10_000 and t_verify < VERIFY_TARGET_S
        print(f"verify: {res.records} records, {res.commits} commits (generated in "
              f"{t_make:.1f} s), valid={res.ok}, median of 3: {t_verify:.2f} s; target < "
              f"{VERIFY_TARGET_S:.0f} s: {'met' if ok_ver else 'MISSED'}")
    return 0 if ok_rec and ok_ver else 1


if __name__ == "__main__":
    sys.exit(main())
