"""Prompt History Records: the append-only, hash-chained audit trail in git.

Every step of a change (recommendation, approval, execution, validation,
rollback, report, ...) is one Markdown file with YAML front matter under
`history/prompts/YYYY/MM/DD/<seq>-<id>-<type>.md`, written atomically under an
inter-process lock and committed on its own. Each record carries `seq` (its
position) and `prev_hash` (sha256 of the previous record's bytes), so
`PhrStore.verify` can tell an edited, deleted, inserted or reordered record
from the files alone, and git history tells a rewritten one.

Recovery: a record whose commit fails (git locked, a git error, the process
killed between write and commit) stays in the store, complete and chained; the
next `record()` commits it with its own file. Committed records changed or
deleted in the work tree block new records (nothing is written) until they are
restored with `git checkout`: a chain cannot be extended on top of an edit.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import git
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    model_validator,
)

from aiops.approvals import phr_files as files
from aiops.approvals.phr_git import GitStore, open_repo
from aiops.approvals.phr_ids import ID_PATTERN, id_ms, id_time, new_id, now_ms
from aiops.approvals.phr_redact import redact_text, redact_value
from aiops.errors import HistoryError, ParameterError, UncommittedRecordError

RecordType = Literal["recommendation", "proposal", "approval", "rejection", "expiry",
                     "execution", "validation", "rollback", "report", "detection", "refusal",
                     "correction"]
RECORD_TYPES: tuple[str, ...] = get_args(RecordType)
Tier = Literal["trivial", "low", "medium", "critical"]
HASH_PATTERN = r"^sha256:[0-9a-f]{64}$"
SCHEMA_VERSION = 1
DEFAULT_STORE = Path("history/prompts")


class Actor(BaseModel):
    """Who took the step; becomes the commit's author."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^<>\n\r]+$")
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s<>]+@[^@\s<>]+$")


class ObjectRef(BaseModel):
    """The Kubernetes object the step is about."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    apiVersion: str = ""
    kind: str
    namespace: str = ""
    name: str


class Links(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    previous_step: str | None = Field(None, pattern=f"^{ID_PATTERN}$")
    corrects: str | None = Field(None, pattern=f"^{ID_PATTERN}$")


class PhrMeta(BaseModel):
    """The front matter of one record (schema version 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: Literal[1] = SCHEMA_VERSION
    id: str = Field(pattern=f"^{ID_PATTERN}$")
    seq: int = Field(ge=1)
    type: RecordType
    created_at: datetime
    actor: Actor
    title: str = Field(min_length=1)
    tier: Tier | None = None
    action_hash: str | None = Field(None, pattern=HASH_PATTERN)
    object: ObjectRef | None = None
    pre_metrics: dict[str, Any] = Field(default_factory=dict)
    post_metrics: dict[str, Any] = Field(default_factory=dict)
    links: Links = Field(default_factory=Links)
    data: dict[str, Any] = Field(default_factory=dict)
    prev_hash: str | None = Field(None, pattern=HASH_PATTERN)

    @model_validator(mode="after")
    def _consistent(self) -> PhrMeta:
        if self.created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware (UTC)")
        if self.type == "correction" and not self.links.corrects:
            raise ValueError("a correction must name the record it corrects (links.corrects)")
        return self

    @field_serializer("created_at")
    def _iso(self, value: datetime) -> str:
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Record:
    """One record as stored: its front matter, body, file and hash."""

    meta: PhrMeta
    body: str
    path: Path
    hash: str  # sha256 of the file's bytes: the next record's prev_hash

    @property
    def id(self) -> str:
        return self.meta.id

    def to_dict(self) -> dict[str, Any]:
        return self.meta.model_dump(mode="json") | {"body": self.body, "path": str(self.path),
                                                   "hash": self.hash}


_RESERVED = {"version", "id", "seq", "created_at", "prev_hash", "type", "title", "actor"}


def default_root() -> Path:
    """AIOPS_HISTORY, else `history/prompts` of the git repository around the cwd."""
    env = os.environ.get("AIOPS_HISTORY")
    if env:
        return Path(env)
    try:
        repo = git.Repo(Path.cwd(), search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise HistoryError(f"{Path.cwd()} is not in a git repository, so there is no "
                           "default PHR store", "pass --store DIR or set AIOPS_HISTORY") from None
    return Path(repo.working_tree_dir or ".") / DEFAULT_STORE


class PhrStore:
    """The audit trail under `root` (default: see `default_root`).

    `lock_timeout` bounds both waits: for the store's own lock and for a foreign
    git `index.lock`.
    """

    def __init__(self, root: str | Path | None = None, *, lock_timeout: float = 10.0) -> None:
        self.root = Path(root).expanduser().absolute() if root else default_root().absolute()
        self.repo = open_repo(self.root)
        self.git = GitStore(self.repo, self.root, lock_timeout)
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"PhrStore({str(self.root)!r})"

    # -- writing --------------------------------------------------------------
    def record(self, type: str, *, actor: Actor | dict[str, str], title: str, body: str = "",
               action: Any = None, **fields: Any) -> Record:
        """Append one record and commit it; returns it as written.

        `fields` are front matter fields (tier, action_hash, object, pre_metrics,
        post_metrics, data, links) plus the shortcuts `previous_step` and
        `corrects`. `action` (a diagnose `Action`) fills action_hash, tier,
        object and data["action"]. Every string is redacted first.
        Raises UncommittedRecordError (with `.record`) when the file is written
        but the commit failed; the next record commits it.
        """
        draft = self._draft(type, actor, title, body, action, fields)
        with files.store_lock(self.root, self.lock_timeout):
            status = self.git.status()
            changed = [(s, p) for s, p in status.changed if _is_record(p)]
            if changed:
                listed = ", ".join(f"{p} ({s})" for s, p in changed[:5])
                raise HistoryError(
                    f"committed records in the PHR store were changed outside it: {listed}",
                    "records are never rewritten: restore them with `git checkout -- "
                    f"{self.git.rel}` and add a correction record instead; nothing was "
                    "written")
            head, pending = self._head(status.pending)
            for link in (draft["links"].previous_step, draft["links"].corrects):
                if link and not self._exists(link):
                    raise ParameterError(f"linked record {link} is not in {self.root}",
                                         "link to an existing record id")
            ms = max(now_ms(), id_ms(head.id) if head else 0)
            rec_id = new_id(ms, after=head.id if head else None)
            meta = PhrMeta(id=rec_id, seq=head.meta.seq + 1 if head else 1,
                           created_at=id_time(rec_id), prev_hash=head.hash if head else None,
                           **draft)
            body = redact_text(body).rstrip().lstrip("\n")
            data = files.render(meta.model_dump(mode="json"), meta.title, body)
            path = (self.root / files.day_dir(meta.created_at)
                    / files.record_name(meta.seq, meta.id, meta.type))
            files.remove_stale_temps(path.parent)
            to_commit = pending
            gitignore = self.root / ".gitignore"
            if not gitignore.exists():
                files.write_atomic(gitignore, files.GITIGNORE.encode())
                to_commit = [*to_commit, self.git.rel_of(gitignore)]
            elif self.git.rel_of(gitignore) in status.pending:  # its commit failed before
                to_commit = [*to_commit, self.git.rel_of(gitignore)]
            files.write_atomic(path, data)
            rec = Record(meta, body, path, files.sha256(data))
            try:
                self.git.commit([*to_commit, self.git.rel_of(path)], _message(meta, rec.hash),
                                meta.actor.name, meta.actor.email)
            except HistoryError as exc:
                raise UncommittedRecordError(
                    f"record {meta.id} was written to {path} but not committed: {exc.message}",
                    f"{exc.hint}; the record is kept and the next record commits it",
                    record=rec) from None
        return rec

    def _draft(self, type: str, actor: Any, title: str, body: str, action: Any,
               fields: dict[str, Any]) -> dict[str, Any]:
        """Validate and redact the caller's part of the front matter."""
        if type not in RECORD_TYPES:
            raise ParameterError(f"unknown PHR type {type!r}", f"use one of {RECORD_TYPES}")
        bad = _RESERVED & set(fields)
        if bad:
            raise ParameterError(f"{sorted(bad)} are set by the store", "leave them out")
        links = dict(fields.pop("links", None) or {})
        for key in ("previous_step", "corrects"):
            if key in fields:
                links[key] = fields.pop(key)
        if action is not None:
            fields.setdefault("action_hash", action.hash())
            fields.setdefault("tier", action.tier)
            fields.setdefault("object", dict(action.target))
            fields.setdefault("data", {})
            fields["data"] = {"action": action.to_dict(), **fields["data"]}
        if isinstance(actor, Actor):
            actor = actor.model_dump()
        draft = {"type": type, "actor": actor, "title": title, "links": links, **fields}
        for key, value in list(draft.items()):
            if key not in ("type", "tier", "action_hash", "links"):
                draft[key] = redact_value(value)
        draft["title"] = " ".join(str(draft["title"]).split())  # one line
        try:  # validate now, with placeholders for what the store fills in
            probe = PhrMeta(id="0" * 26, seq=1, created_at=datetime.now(tz=UTC), **draft)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "record"
            raise ParameterError(f"invalid PHR field {where}: {first['msg']}",
                                 "see aiops.approvals.phr.PhrMeta") from None
        return {k: getattr(probe, k) for k in draft}

    def _head(self, pending_paths: list[str]) -> tuple[Record | None, list[str]]:
        """The chain's last record, and the uncommitted record files to commit now.

        Normally one day directory is read. Uncommitted record files (a failed
        commit) must continue the chain, else nothing is written.
        """
        pending = [p for p in pending_paths if _is_record(p)]
        if not pending:
            for day in reversed(files.day_dirs(self.root)):
                recs = files.record_files(day)
                if recs:
                    return self._load(max(recs, key=files.seq_of)), []
            return None, []
        chain = files.all_record_files(self.root)
        pending_set = {self.git.path_of(p).resolve() for p in pending}
        first = next(i for i, f in enumerate(chain) if f.resolve() in pending_set)
        tail = chain[first:]
        prev = self._load(chain[first - 1]) if first else None
        for f in tail:
            rec = self._load(f)
            want_seq = prev.meta.seq + 1 if prev else 1
            if (f.resolve() not in pending_set or rec.meta.seq != want_seq
                    or rec.meta.prev_hash != (prev.hash if prev else None)):
                raise HistoryError(
                    f"uncommitted file {f} in the PHR store does not continue the chain",
                    "it was not written by the store: move it out of the store; nothing "
                    "was written")
            prev = rec
        return prev, [self.git.rel_of(f) for f in tail]

    # -- reading --------------------------------------------------------------
    def _load(self, path: Path) -> Record:
        data = path.read_bytes()
        try:
            meta, body = files.parse(data)
            return Record(PhrMeta.model_validate(meta), body, path, files.sha256(data))
        except (ValueError, ValidationError) as exc:
            raise HistoryError(f"{path} is not a valid PHR: {str(exc).splitlines()[0]}",
                               "run `aiops phr verify`") from None

    def records(self, type: str | None = None, since: datetime | None = None) -> list[Record]:
        """All records in chain order (optionally one type, or created since a time)."""
        out = []
        for path in files.all_record_files(self.root):
            if type and not path.name.endswith(f"-{type}.md"):
                continue
            if since and id_time(files.NAME_RE.match(path.name)["id"]) < since:
                continue
            out.append(self._load(path))
        return out

    def _exists(self, rec_id: str) -> bool:
        return any(self.root.glob(f"*/*/*/*-{rec_id}-*.md"))

    def get(self, rec_id: str) -> Record:
        """The record with this id (or a unique prefix of it)."""
        if not re.fullmatch(r"[0-9A-Za-z]{4,26}", rec_id or ""):
            raise ParameterError(f"invalid record id {rec_id!r}", "give a record id, e.g. "
                                 "from `aiops phr list`")
        hits = sorted(self.root.glob(f"*/*/*/*-{rec_id.upper()}*-*.md"))
        hits = [h for h in hits if files.NAME_RE.match(h.name)]
        if not hits:
            raise ParameterError(f"no record {rec_id} in {self.root}", "see `aiops phr list`")
        if len(hits) > 1:
            raise ParameterError(f"record id {rec_id} is ambiguous ({len(hits)} records)",
                                 "give more characters")
        return self._load(hits[0])

    def frame(self, type: str | None = None, since: datetime | None = None) -> pd.DataFrame:
        """One row per record, for notebooks (created_at as UTC timestamps)."""
        return records_frame(self.records(type, since))

    def verify(self, full: bool = False):
        """Recompute the chain from the files and compare with git history
        (`full`: also validate every record's whole front matter)."""
        from aiops.approvals.phr_verify import verify

        return verify(self, full=full)


FRAME_COLUMNS = ("seq", "id", "type", "created_at", "actor_name", "actor_email", "title",
                 "tier", "action_hash", "api_version", "kind", "namespace", "name",
                 "previous_step", "corrects", "pre_metrics", "post_metrics", "data",
                 "prev_hash", "hash", "path")


def records_frame(records: list[Record]) -> pd.DataFrame:
    rows = []
    for r in records:
        m, obj = r.meta, r.meta.object
        rows.append({
            "seq": m.seq, "id": m.id, "type": m.type, "created_at": m.created_at,
            "actor_name": m.actor.name, "actor_email": m.actor.email, "title": m.title,
            "tier": m.tier, "action_hash": m.action_hash,
            "api_version": obj.apiVersion if obj else None, "kind": obj.kind if obj else None,
            "namespace": obj.namespace if obj else None, "name": obj.name if obj else None,
            "previous_step": m.links.previous_step, "corrects": m.links.corrects,
            "pre_metrics": m.pre_metrics, "post_metrics": m.post_metrics, "data": m.data,
            "prev_hash": m.prev_hash, "hash": r.hash, "path": str(r.path)})
    df = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
    df["seq"] = df["seq"].astype("int64")
    return df


def _is_record(rel_path: str) -> bool:
    return bool(files.NAME_RE.match(rel_path.rsplit("/", 1)[-1]))


def _message(meta: PhrMeta, digest: str) -> str:
    title = meta.title if len(meta.title) <= 60 else meta.title[:57] + "..."
    return (f"phr: {meta.type} #{meta.seq}: {title}\n\nPHR-Id: {meta.id}\n"
            f"PHR-Seq: {meta.seq}\nPHR-Hash: {digest}\n")
