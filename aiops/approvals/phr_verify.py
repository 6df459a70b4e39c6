"""Check the audit trail: the hash chain in the files, and the files against git.

The chain (seq 1, 2, ... each `prev_hash` = sha256 of the record before) finds
records edited, deleted, inserted or reordered in the work tree. Git finds what
the chain alone cannot: a committed record later edited (even the last one, which
no successor protects), a record changed or deleted in a later commit while the
chain was rewritten to match, records committed out of seq order, and history
rewritten with `commit --amend`, rebase or reset (the reflog still remembers the
commits no branch reaches any more). Every problem names the record and file.

By default the chain fields (id, seq, type, created_at, prev_hash) are read
from the front matter's top-level lines, which is what 10,000 records in under
5 s needs; `full=True` also validates every record against the schema.

Limits: the reflog is local and can be expired; push the repository somewhere
others can see to make a rewrite of already-pushed history evident.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from aiops.approvals import phr_files as files
from aiops.approvals.phr_ids import ID_RE

if TYPE_CHECKING:
    from aiops.approvals.phr import PhrStore

_HASH_RE = re.compile(r"^sha256:[0-9a-f]{64}$")

KINDS = {
    "edited": "a committed record differs from its committed version",
    "deleted": "a committed record is missing",
    "inserted": "a record that was not appended at the end of the chain",
    "reordered": "records are not in the order they were written",
    "gap": "seq numbers are missing",
    "duplicate": "two records claim the same seq",
    "broken-link": "prev_hash is not the hash of the record before",
    "rewritten": "a record was changed or removed by a later commit",
    "history-rewritten": "git history holding a record was replaced (amend, rebase, reset)",
    "uncommitted": "a record written but not committed yet (the next record commits it)",
    "malformed": "a file that is not a valid record",
    "misnamed": "a file name or directory that disagrees with its front matter",
}


@dataclass(frozen=True)
class Problem:
    kind: str  # one of KINDS
    record: str | None  # the record id, when known
    path: str | None  # relative to the store root
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.record or '-'} ({self.path or '-'}): {self.message}"


@dataclass
class VerifyResult:
    root: Path
    records: int = 0
    commits: int = 0
    head: str | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def kinds(self) -> set[str]:
        return {p.kind for p in self.problems}

    def about(self, record_id: str) -> list[Problem]:
        return [p for p in self.problems if p.record == record_id]

    def to_dict(self) -> dict[str, Any]:
        return {"root": str(self.root), "ok": self.ok, "records": self.records,
                "commits": self.commits, "head": self.head,
                "problems": [asdict(p) for p in self.problems]}


@dataclass(frozen=True)
class _Meta:
    """What the chain needs from a record's front matter."""

    id: str
    seq: int
    type: str
    created_at: datetime
    prev_hash: str | None


@dataclass
class _Entry:
    rel: str  # repository-relative path
    name: str
    data: bytes
    hash: str
    meta: _Meta | None = None


def _chain_meta(data: bytes, full: bool) -> _Meta:
    """The chain fields, checked; with `full`, the whole front matter against PhrMeta."""
    from aiops.approvals.phr import RECORD_TYPES, PhrMeta

    if full:
        m = PhrMeta.model_validate(files.parse(data)[0])
        return _Meta(m.id, m.seq, m.type, m.created_at, m.prev_hash)
    f = files.chain_fields(data)
    missing = {"id", "seq", "type", "created_at", "prev_hash"} - set(f)
    if missing:
        raise ValueError(f"front matter lacks {', '.join(sorted(missing))}")
    prev = None if f["prev_hash"] in ("null", "~", "") else f["prev_hash"]
    if not ID_RE.match(f["id"]) or not f["seq"].isdigit() or f["type"] not in RECORD_TYPES \
            or (prev is not None and not _HASH_RE.match(prev)):
        raise ValueError("invalid id, seq, type or prev_hash in the front matter")
    created = datetime.fromisoformat(f["created_at"].replace("Z", "+00:00"))
    if created.tzinfo is None:
        raise ValueError("created_at has no time zone")
    return _Meta(f["id"], int(f["seq"]), f["type"], created, prev)


def verify(store: PhrStore, full: bool = False) -> VerifyResult:
    g = store.git
    res = VerifyResult(root=store.root)
    seen: set[tuple[str, str | None, str | None]] = set()

    def problem(kind: str, rel: str | None, message: str, rec: str | None = None) -> None:
        if rec is None and rel:
            m = files.NAME_RE.match(rel.rsplit("/", 1)[-1])
            rec = m["id"] if m else None
        path = rel[len(g.rel) + 1:] if rel and rel.startswith(g.rel + "/") else rel
        if (kind, rec, path) not in seen:
            seen.add((kind, rec, path))
            res.problems.append(Problem(kind, rec, path, message))

    def parse(rel: str, data: bytes) -> _Meta | None:
        try:
            return _chain_meta(data, full)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            problem("malformed", rel, f"not a valid record: {where}: {first['msg']}")
        except (ValueError, UnicodeDecodeError) as exc:
            problem("malformed", rel, f"not a valid record: {str(exc).splitlines()[0]}")
        return None

    # -- the files --------------------------------------------------------------
    entries: list[_Entry] = []
    for day in files.day_dirs(store.root):
        day_rel = f"{g.rel}/{day.relative_to(store.root).as_posix()}"
        for f in files.other_files(day):
            problem("malformed", f"{day_rel}/{f.name}", "not a record file name "
                    "(<seq>-<id>-<type>.md) in a record directory")
        day_str = str(day)
        for name in files.record_names(day):
            with open(os.path.join(day_str, name), "rb") as fh:
                data = fh.read()
            entries.append(_Entry(f"{day_rel}/{name}", name, data, files.sha256(data)))
    res.records = len(entries)
    for e in entries:
        e.meta = parse(e.rel, e.data)
        m = e.meta
        if m is None:
            continue
        want = f"{files.day_dir(m.created_at)}/{files.record_name(m.seq, m.id, m.type)}"
        if not e.rel.endswith("/" + want):
            problem("misnamed", e.rel, f"front matter says {want}", m.id)

    # -- the files against the committed tree -------------------------------------
    committed = g.tree_blobs("HEAD") if g.has_head() else {}
    committed = {p: s for p, s in committed.items() if _is_record(p)}
    work = {e.rel: e for e in entries}
    originals: dict[str, str] = {}  # hash of a committed version -> its id
    for rel, sha in committed.items():
        e = work.get(rel)
        if e is not None and files.git_blob_sha(e.data) == sha:
            continue
        old = g.blob(sha)
        old_meta = parse(rel, old)
        if old_meta is not None:
            originals[files.sha256(old)] = old_meta.id
        if e is None:
            problem("deleted", rel, "committed but missing from the work tree "
                    f"(restore it: git checkout -- {rel})")
        else:
            problem("edited", rel, "differs from its committed version "
                    f"(see: git diff -- {rel})")
    uncommitted = [e for e in entries if e.rel not in committed]

    # -- the chain ----------------------------------------------------------------
    chain = sorted((e for e in entries if e.meta), key=lambda e: (e.meta.seq, e.meta.id))
    by_hash = {e.hash: e for e in chain}
    prev: _Entry | None = None
    for e in chain:
        m = e.meta
        expected = prev.meta.seq + 1 if prev else 1
        if prev and m.seq == prev.meta.seq:
            problem("duplicate", e.rel, f"seq {m.seq} is also claimed by {prev.meta.id}")
        elif m.seq > expected:
            missing = f"{expected}" if m.seq == expected + 1 else f"{expected}-{m.seq - 1}"
            problem("gap", e.rel, f"seq {missing} missing before this record (seq {m.seq})")
        want = prev.hash if prev else None
        if m.prev_hash != want:
            target = by_hash.get(m.prev_hash or "")
            where = f"{prev.meta.id} (seq {prev.meta.seq})" if prev else "the chain's start"
            if m.prev_hash in originals:
                oid = originals[m.prev_hash]
                if prev and oid == prev.meta.id:
                    msg = f"links to the committed version of {where}, which was changed"
                    problem("broken-link", e.rel, msg)
                else:
                    problem("reordered", e.rel, f"links to {oid} (originally before it, now "
                            f"seq {_seq_now(chain, oid)}) but follows {where}")
            elif target is not None and target is not prev:
                problem("reordered", e.rel, f"links to {target.meta.id} (seq "
                        f"{target.meta.seq}) but follows {where}")
            elif prev is None and m.prev_hash:
                problem("broken-link", e.rel, "the first record links to a record that is "
                        "not in the store")
            else:
                problem("broken-link", e.rel, f"prev_hash does not match {where}: a record "
                        "before it was changed or removed, or this one was inserted")
        if prev and m.id < prev.meta.id:  # ids grow with each record written
            problem("reordered", e.rel, f"written before {prev.meta.id} (seq "
                    f"{prev.meta.seq}), which precedes it in the chain")
            problem("reordered", prev.rel, f"written after {m.id} (seq {m.seq}), which "
                    "follows it in the chain")
        prev = e
    res.head = chain[-1].meta.id if chain else None

    # -- git history: records are only ever added, in seq order ----------------------
    history = g.history()
    res.commits = len(history)
    added: set[str] = set()
    top = 0
    for commit, changes in history:
        new_seqs = []
        for status, rel in changes:
            if not _is_record(rel):
                continue
            short = commit[:10]
            if status == "A":
                if rel in added:
                    problem("rewritten", rel, f"added again in commit {short} after it had "
                            "been removed")
                added.add(rel)
                new_seqs.append((int(rel.rsplit("/", 1)[-1].split("-", 1)[0]), rel))
            elif status == "M":
                problem("rewritten", rel, f"changed by commit {short} after it was "
                        "committed (records are never rewritten; a correction is a new record)")
            elif status == "D":
                problem("deleted", rel, f"deleted by commit {short}")
            else:
                problem("rewritten", rel, f"status {status} in commit {short}")
        for seq, rel in new_seqs:
            if seq <= top:
                problem("inserted", rel, f"committed in {commit[:10]} with seq {seq}, after "
                        f"seq {top} had already been committed")
        top = max([top, *(s for s, _ in new_seqs)])

    # -- records in the work tree only ----------------------------------------------
    chained_ok = {e.rel for e in chain}
    for e in uncommitted:
        m = e.meta
        if m is None or e.rel not in chained_ok:
            continue
        if m.seq > top and not any(p.record == m.id for p in res.problems):
            problem("uncommitted", e.rel, "written but not committed (a git failure or a "
                    "killed writer); the next record commits it")
        else:
            problem("inserted", e.rel, f"not in git, with seq {m.seq} inside the committed "
                    f"chain (committed up to seq {top})")

    # -- history rewritten: commits the reflog remembers but no branch reaches -------
    head_tree = g.store_tree("HEAD")
    trees: dict[str, dict[str, str]] = {}
    for commit in g.orphaned_commits():
        tree = g.store_tree(commit)
        if tree is None or tree == head_tree:
            continue
        if tree not in trees:
            trees[tree] = g.tree_blobs(commit)
        for rel, sha in trees[tree].items():
            if not _is_record(rel) or committed.get(rel) == sha:
                continue
            if rel in committed:
                why = "its committed content differs from"
            else:
                why = "it is missing from HEAD but was in"
            problem("history-rewritten", rel, f"{why} commit {commit[:10]}, which no branch "
                    "holds any more (commit --amend, rebase or reset)")
    return res


def _seq_now(chain: list[_Entry], rec_id: str) -> str:
    return next((str(e.meta.seq) for e in chain if e.meta and e.meta.id == rec_id), "?")


def _is_record(rel: str) -> bool:
    return bool(files.NAME_RE.match(rel.rsplit("/", 1)[-1]))
