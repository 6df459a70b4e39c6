"""The PHR files on disk: names, the Markdown + YAML front matter format, the
atomic write and the store's inter-process lock.

A record is `<root>/YYYY/MM/DD/<seq>-<id>-<type>.md`. It appears only by
`os.replace` of a complete, fsynced temporary file, so a process killed while
writing leaves at most a `.*.tmp` file (ignored by readers, removed by the next
writer), never half a record.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from aiops.approvals.phr_ids import ID_PATTERN
from aiops.errors import HistoryError

NAME_RE = re.compile(rf"^(?P<seq>\d{{6,}})-(?P<id>{ID_PATTERN})-(?P<type>[a-z]+)\.md$")
DAY_RE = re.compile(r"^\d{4}/\d{2}/\d{2}$")
LOCK_NAME = ".phr.lock"
GITIGNORE = f"{LOCK_NAME}\n.*.tmp\n"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

# Called between the temporary file's fsync and the os.replace that publishes
# it. None in normal use; the crash tests set it in a child process they kill.
BEFORE_REPLACE: Callable[[Path, Path], None] | None = None


def record_name(seq: int, rec_id: str, rec_type: str) -> str:
    return f"{seq:06d}-{rec_id}-{rec_type}.md"


def day_dir(created_at: datetime) -> str:
    return f"{created_at:%Y/%m/%d}"


def sha256(data: bytes) -> str:
    """The chain's hash of a record: sha256 over the file's exact bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def git_blob_sha(data: bytes) -> str:
    """The id git gives these bytes as a blob, to compare with a commit's tree."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def render(meta: dict[str, Any], title: str, body: str) -> bytes:
    """Front matter, then the title as a heading, then the body."""
    front = yaml.dump(meta, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                      default_flow_style=False, width=100)
    text = f"---\n{front}---\n\n# {title}\n"
    if body.strip():
        text += f"\n{body.rstrip()}\n"
    return text.encode("utf-8")


def parse(data: bytes) -> tuple[dict[str, Any], str]:
    """(front matter, body without the title heading); ValueError when malformed."""
    text = data.decode("utf-8")
    if not text.startswith("---\n"):
        raise ValueError("no YAML front matter (the file must start with ---)")
    end = text.find("\n---\n", 3)
    if end < 0:
        raise ValueError("the front matter is not closed by ---")
    meta = yaml.load(text[4:end + 1], Loader=_Loader)
    if not isinstance(meta, dict):
        raise ValueError("the front matter is not a mapping")
    rest = text[end + 5:].lstrip("\n")
    if rest.startswith("# "):
        rest = rest.split("\n", 1)[1] if "\n" in rest else ""
    return meta, rest.strip("\n")


_CHAIN_LINE = re.compile(r"^(id|seq|type|created_at|prev_hash): *(.*?) *$", re.MULTILINE)


def chain_fields(data: bytes) -> dict[str, str]:
    """The top-level front matter lines the chain needs, without a full YAML parse
    (verify reads 10,000 records; PyYAML would spend a millisecond on each).
    Raw strings; ValueError when the front matter is missing."""
    if not data.startswith(b"---\n"):
        raise ValueError("no YAML front matter (the file must start with ---)")
    end = data.find(b"\n---\n", 3)
    if end < 0:
        raise ValueError("the front matter is not closed by ---")
    return {k: v.strip("'\"") for k, v in _CHAIN_LINE.findall(data[4:end + 1].decode("utf-8"))}


def write_atomic(path: Path, data: bytes) -> None:
    """Publish `data` at `path` whole or not at all, and make it durable.

    Refuses to replace an existing file: records are never rewritten.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        raise HistoryError(f"{path} already exists", "records are never rewritten; "
                           "write a correction record instead")
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    if BEFORE_REPLACE is not None:
        BEFORE_REPLACE(tmp, path)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temps(directory: Path) -> list[Path]:
    """Delete temporary files left by killed writers (call under the store lock)."""
    removed = []
    if directory.is_dir():
        for tmp in directory.glob(".*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


@contextlib.contextmanager
def store_lock(root: Path, timeout: float) -> Iterator[None]:
    """Exclusive lock of the store across processes (fcntl.flock on `.phr.lock`).

    The chain's head is read under it, so concurrent writers serialize and each
    links to the record written just before. The kernel drops the lock when the
    holder dies, so a killed writer never blocks the others.
    """
    root.mkdir(parents=True, exist_ok=True)
    lock = root / LOCK_NAME
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise HistoryError(
                        f"the PHR store {root} is locked by another writer ({lock}, "
                        f"waited {timeout:.0f} s)",
                        "a process holding it is stuck: stop it; the lock is released "
                        "when it exits") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def day_dirs(root: Path) -> list[Path]:
    """The store's YYYY/MM/DD directories, oldest first."""
    out = []
    for year in sorted(p for p in _subdirs(root) if len(p.name) == 4):
        for month in sorted(p for p in _subdirs(year) if len(p.name) == 2):
            out.extend(sorted(p for p in _subdirs(month) if len(p.name) == 2))
    return out


def _subdirs(path: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(path) if e.is_dir() and e.name.isdigit()]
    except FileNotFoundError:
        return []


def record_names(directory: Path) -> list[str]:
    """Names of the record files in one day directory."""
    try:
        return [e.name for e in os.scandir(directory)
                if e.name.endswith(".md") and NAME_RE.match(e.name)]
    except FileNotFoundError:
        return []


def record_files(directory: Path) -> list[Path]:
    return [directory / name for name in record_names(directory)]


def other_files(directory: Path) -> list[Path]:
    """Files in a day directory that are not records (nor temporaries)."""
    try:
        return [Path(e.path) for e in os.scandir(directory)
                if not NAME_RE.match(e.name) and not e.name.startswith(".")]
    except FileNotFoundError:
        return []


def all_record_files(root: Path) -> list[Path]:
    """Every record file, ordered by seq (then name)."""
    files = [f for d in day_dirs(root) for f in record_files(d)]
    return sorted(files, key=lambda p: (int(p.name.split("-", 1)[0]), p.name))


def seq_of(path: Path) -> int:
    return int(path.name.split("-", 1)[0])
