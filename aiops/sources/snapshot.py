"""Read a cluster from files: `kubectl cluster-info dump` directories and
`kubectl get -o json|yaml` output, in any mix.

A file that cannot be read becomes a `LoadProblem` naming it; everything else
is still loaded. Only a source with nothing usable at all raises.
"""

from __future__ import annotations

import gc
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml

from aiops.errors import SnapshotError
from aiops.kinds import BY_KIND, FILE_STEMS, kind_of_list
from aiops.model import ClusterState, LoadProblem, LogKey
from aiops.redact import scrub_object

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_START = re.compile(r"^==== START logs for container (\S+) of pod ([^/\s]+)/(\S+) ====$")
LOG_FILES = {"logs.txt": False, "logs-previous.txt": True}
SKIP_FILES = {"manifest.json"}


def load_snapshot(path: str | os.PathLike[str], source: str | None = None) -> ClusterState:
    """Load a snapshot directory or a single object file into a `ClusterState`.

    Parsed API objects are acyclic and live as long as the state, so the cyclic
    garbage collector is paused while they are built (it would otherwise rescan
    the growing heap again and again: 6 s instead of 3.5 s for 10,000 pods) and
    they are frozen out of its reach afterwards. Reference counting still frees
    them when the state goes away.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        state = _load(path, source)
    finally:
        if paused:
            gc.enable()
    gc.freeze()
    return state


def _load(path: str | os.PathLike[str], source: str | None) -> ClusterState:
    root = Path(path).expanduser()
    if not root.exists():
        raise SnapshotError(
            f"snapshot {root} does not exist",
            "pass a directory written by `kubectl cluster-info dump --output-directory DIR`"
            " or `aiops capture`, a .json/.yaml file, or --source demo",
        )
    state = ClusterState(source=source or str(root))
    files = [root] if root.is_file() else list(_walk(root))
    if not files:
        raise SnapshotError(
            f"snapshot directory {root} is empty",
            "fill it with `kubectl cluster-info dump --all-namespaces --output-directory "
            f"{root}` or `aiops capture --source kube {root}`",
        )
    for f in files:
        # indexed while the file's objects are fresh in memory (see `index_kinds`)
        state.index_kinds(_load_file(f, root, state))
        state.index_events()
    state.index_kinds(list(state.objects))  # complete, whatever a file held
    state.index_logs(None)  # all logs are in
    if not state.objects:
        detail = "; ".join(str(p) for p in state.problems[:3])
        raise SnapshotError(
            f"no Kubernetes objects could be read from {root}"
            + (f" ({detail})" if detail else ""),
            "check that the files hold `kubectl get -o json|yaml` output or a cluster-info dump",
        )
    meta = root / "manifest.json" if root.is_dir() else None
    state.captured_at = _captured_at(state, meta)
    if meta and meta.exists():
        _apply_manifest(meta, state)
    hist = root / "usage.parquet" if root.is_dir() else None
    if hist and hist.exists():
        state.history_loader = lambda: _read_history(hist)
    return state


def _walk(root: Path):
    """Snapshot files under root, as path strings, in a stable order."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        prefix = dirpath + os.sep
        for name in sorted(filenames):
            if name in SKIP_FILES or name.startswith("."):
                continue
            if name.endswith((".json", ".yaml", ".yml")) or name in LOG_FILES:
                yield prefix + name


def _load_file(f: Path | str, root: Path, state: ClusterState) -> set[str]:
    """Read one file into `state`; the kinds of the objects it added."""
    where = str(f)
    name = os.path.basename(where)
    try:
        with open(where, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        state.problems.append(LoadProblem(where, f"cannot read file: {exc.strerror}"))
        return set()
    if name in LOG_FILES:
        _load_logs(raw, Path(where), state, previous=LOG_FILES[name])
        return set()
    stem, suffix = os.path.splitext(name)
    try:
        docs = _parse(raw, suffix)
    except ValueError as exc:
        state.problems.append(LoadProblem(where, f"{exc}; fix or remove this file"))
        return set()
    stem_kind = FILE_STEMS.get(stem)
    kinds: set[str] = set()
    for index, doc in enumerate(docs):
        if doc is None:
            continue
        # the label names the document inside a multi-document file
        kinds |= _add_document(doc, stem_kind, f"document {index}" if len(docs) > 1
                               else name, where, state)
    return kinds


def _parse(raw: bytes, suffix: str) -> list[Any]:
    if not raw.strip():
        raise ValueError("file is empty")
    if suffix == ".json":
        try:
            return [orjson.loads(raw)]
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"invalid or truncated JSON ({exc})") from None
    try:
        return list(yaml.load_all(raw, Loader=_YAML_LOADER))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ValueError(f"invalid YAML{at}") from None


def _add_document(doc: Any, stem_kind: str | None, label: str, where: str,
                  state: ClusterState) -> set[str]:
    """Add one document (an object or a list); the kinds it may have added."""
    if not isinstance(doc, dict):
        state.problems.append(LoadProblem(where, f"{label}: not a Kubernetes object"))
        return set()
    kind = doc.get("kind")
    if "items" in doc and (kind is None or kind.endswith("List")):
        item_kind = kind_of_list(kind) or stem_kind
        api_version = (BY_KIND[item_kind].api_version if item_kind in BY_KIND
                       else doc.get("apiVersion", ""))
        items = doc.get("items") or []
        for i, item in enumerate(items if isinstance(items, list) else []):
            if item_kind and isinstance(item, dict) and not item.get("kind"):
                item["kind"] = item_kind
                item.setdefault("apiVersion", api_version)
            _add_object(item, label, i, where, state)
        return {i.get("kind") for i in (items if isinstance(items, list) else [])
                if isinstance(i, dict) and isinstance(i.get("kind"), str)}
    _add_object(doc, label, None, where, state)
    return {kind} if isinstance(kind, str) else set()


def _add_object(obj: Any, label: str, item: int | None, where: str,
                state: ClusterState) -> None:
    kind = obj.get("kind") if isinstance(obj, dict) else None
    md = obj.get("metadata") if kind else None
    if kind in BY_KIND and isinstance(md, dict) and md.get("name") and (
            kind != "Pod" or obj.get("status")):
        # the common case, kept cheap: 100,000s of objects go through here
        state.objects.setdefault(kind, []).append(scrub_object(obj) if kind == "Secret" else obj)
        return
    at = label if item is None else f"{label} item {item}"
    if not kind:
        state.problems.append(LoadProblem(
            where, f"{at}: object without 'kind'; expected `kubectl get -o json` output"))
    elif kind not in BY_KIND:
        state.problems.append(LoadProblem(
            where, f"{at}: unknown kind {kind!r} ({obj.get('apiVersion', '?')}), skipped"))
    elif not isinstance(md, dict) or not md.get("name"):
        state.problems.append(LoadProblem(where, f"{at}: {kind} without metadata.name, skipped"))
    else:  # a Pod without status: a manifest, not live state
        state.problems.append(LoadProblem(
            where, f"{at}: Pod {md.get('namespace', '')}/{md['name']} has no status "
            "(a manifest, not live state); loaded, but its health is unknown"))
        state.objects.setdefault(kind, []).append(obj)


_START_TEXT = "==== START logs for container "
_END_TEXT = "==== END logs for container "


def _load_logs(raw: bytes, f: Path, state: ClusterState, previous: bool) -> None:
    """Split a cluster-info-dump log file into one text per container.

    Markers are found with `str.find` over the whole text rather than a regex per
    line: a 10,000-pod dump holds millions of log lines.
    """
    text = raw.decode("utf-8", errors="replace")
    target = state.previous_logs if previous else state.logs
    found = False
    added: list[tuple[bool, LogKey]] = []
    pos = text.find(_START_TEXT)
    while pos != -1:
        eol = text.find("\n", pos)
        header = text[pos:eol if eol != -1 else len(text)]
        m = _START.match(header)
        body_start = eol + 1 if eol != -1 else len(text)
        end = text.find(_END_TEXT, body_start)
        nxt = text.find(_START_TEXT, body_start)
        if nxt != -1 and (end == -1 or nxt < end):  # no END before the next START
            end = nxt
        stop = end if end != -1 else len(text)  # truncated file: keep what is there
        if m:
            found = True
            key = (m.group(2), m.group(3), m.group(1))
            target[key] = text[body_start:stop].rstrip("\n")
            added.append((previous, key))
        if end == -1:
            break
        pos = text.find(_START_TEXT, end if end == nxt else end + len(_END_TEXT))
    if not found and text.strip():
        # a plain `kubectl logs` capture saved as <ns>/<pod>/logs.txt
        key = (f.parent.parent.name, f.parent.name, "")
        target[key] = text
        added.append((previous, key))
    if added:
        state.index_logs(added)


def _apply_manifest(meta: Path, state: ClusterState) -> None:
    """Restore what the capture knew: context, and kinds it could not read."""
    try:
        doc = orjson.loads(meta.read_bytes())
        state.context = doc.get("context")
        unavailable = doc.get("unavailable") or {}
        if isinstance(unavailable, dict):
            state.unavailable.update({str(k): str(v) for k, v in unavailable.items()})
    except (orjson.JSONDecodeError, AttributeError):
        state.problems.append(LoadProblem(str(meta), "unreadable manifest, ignored"))


def _captured_at(state: ClusterState, meta: Path | None) -> datetime:
    if meta and meta.exists():
        try:
            ts = orjson.loads(meta.read_bytes()).get("captured_at")
            if ts:
                return datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except (orjson.JSONDecodeError, ValueError, AttributeError):
            pass
    latest = ""
    for ev in state.kind("Event"):
        t = ev.get("lastTimestamp") or ev.get("eventTime") or ""
        if isinstance(t, str) and t > latest:
            latest = t
    if latest:
        try:
            return datetime.fromisoformat(latest.replace("Z", "+00:00"))
        except ValueError:
            pass
    return datetime.now(UTC)


def _read_history(path: Path):
    import pandas as pd

    return pd.read_parquet(path)
