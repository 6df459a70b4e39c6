"""Write any `ClusterState` as a snapshot directory that `load_snapshot` reads back.

The layout is `kubectl cluster-info dump --output-directory`'s: cluster-scoped
Lists at the top, `<ns>/<plural>.json` per namespace, `<ns>/<pod>/logs.txt`
(and `logs-previous.txt`) with START/END markers, plus a `manifest.json`. Every
file is written to a hidden temporary name and renamed into place, and the
manifest comes last, so an interrupted capture never leaves a truncated file
that looks complete (the reader skips hidden files).
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

from aiops.atomic import write_text
from aiops.errors import ParameterError
from aiops.kinds import FILE_STEMS, KINDS, KindInfo, snapshot_file
from aiops.model import ClusterState, LogKey, Obj
from aiops.redact import scrub_object

Progress = Callable[[str], None]
GENERATOR = "aiops capture"
LOG_FILES = {False: "logs.txt", True: "logs-previous.txt"}


def capture(state: ClusterState, out_dir: Path, *, overwrite: bool = False,
            progress: Progress | None = None) -> dict[str, int]:
    """Write `state` under `out_dir`; return the number of objects written per kind."""
    note: Progress = progress or (lambda _msg: None)
    out = Path(out_dir).expanduser()
    _prepare(out, overwrite)
    counts: dict[str, int] = {}
    for info in KINDS:
        objs = state.kind(info.kind)
        if not objs:
            continue
        for ns, group in _by_namespace(info, objs).items():
            rel = Path(ns, snapshot_file(info)) if ns else Path(snapshot_file(info))
            note(f"writing {rel}")
            _write_json(out / rel, _typed_list(info, group))
        counts[info.kind] = len(objs)
    for previous, logs in ((False, state.logs), (True, state.previous_logs)):
        for (ns, pod), text in _log_files(state, logs).items():
            rel = Path(ns, pod, LOG_FILES[previous])
            note(f"writing {rel}")
            _write_text(out / rel, text)
    _write_json(out / "manifest.json", _manifest(state, counts))
    return counts


def _prepare(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty target unless told; on overwrite drop the old snapshot's files."""
    if out.exists() and not out.is_dir():
        raise ParameterError(f"capture target {out} is a file",
                             "give a new or empty directory")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ParameterError(f"capture target {out} is not empty",
                                 "choose a new directory or pass overwrite=True (--overwrite)")
        for f in _snapshot_files(out):
            f.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _snapshot_files(out: Path) -> list[Path]:
    """Files a previous capture wrote (so overwrite keeps anything else a user put there)."""
    names = {f"{stem}.json" for stem in FILE_STEMS} | {"manifest.json", *LOG_FILES.values()}
    return [p for p in out.rglob("*") if p.is_file() and p.name in names
            and len(p.relative_to(out).parts) <= 3]


def _by_namespace(info: KindInfo, objs: list[Obj]) -> dict[str, list[Obj]]:
    """Group objects by namespace; cluster-scoped ones (and strays) under ''."""
    groups: dict[str, list[Obj]] = defaultdict(list)
    for obj in objs:
        ns = ((obj.get("metadata") or {}).get("namespace") or "") if info.namespaced else ""
        groups[ns].append(obj)
    return dict(groups)


def _typed_list(info: KindInfo, objs: list[Obj]) -> dict[str, Any]:
    """A `<Kind>List` as kubectl prints it: items carry kind/apiVersion only if they differ."""
    items = []
    for obj in objs:
        if obj.get("kind") == "Secret":
            obj = scrub_object(copy.deepcopy(obj))
            _assert_no_secret_values(obj)
        items.append({k: v for k, v in obj.items()
                      if not (k == "kind" and v == info.kind)
                      and not (k == "apiVersion" and v == info.api_version)})
    return {"kind": f"{info.kind}List", "apiVersion": info.api_version,
            "metadata": {"resourceVersion": ""}, "items": items}


def _assert_no_secret_values(secret: Obj) -> None:
    for field in ("data", "stringData"):
        if any((secret.get(field) or {}).values()):
            raise AssertionError(f"Secret {secret['metadata'].get('name')} still has values")


def _log_files(state: ClusterState, logs: dict[LogKey, str]) -> dict[tuple[str, str], str]:
    """One text per pod: its containers' logs between START/END markers, in spec order."""
    per_pod: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for (ns, pod, container), text in logs.items():
        if ns and pod:
            per_pod[(ns, pod)][container] = text
    files: dict[tuple[str, str], str] = {}
    for (ns, pod), by_container in sorted(per_pod.items()):
        if list(by_container) == [""]:  # a plain `kubectl logs` file: keep it plain
            files[(ns, pod)] = by_container[""]
            continue
        blocks = []
        for container in _container_order(state, ns, pod, by_container):
            text = by_container[container]
            where = f"container {container} of pod {ns}/{pod}"
            body = f"{text}\n" if text else ""
            blocks.append(f"==== START logs for {where} ====\n{body}"
                          f"==== END logs for {where} ====\n")
        files[(ns, pod)] = "".join(blocks)
    return files


def _container_order(state: ClusterState, ns: str, pod: str,
                     by_container: dict[str, str]) -> list[str]:
    spec = (state.get("Pod", ns, pod) or {}).get("spec") or {}
    order = [c.get("name") for key in ("initContainers", "containers")
             for c in spec.get(key) or []]
    known = [c for c in order if c in by_container]
    return known + sorted(c for c in by_container if c not in known and c)


def _manifest(state: ClusterState, counts: dict[str, int]) -> dict[str, Any]:
    captured = state.captured_at
    captured = captured.astimezone(UTC) if captured.tzinfo else captured.replace(tzinfo=UTC)
    return {
        "generator": GENERATOR,
        "captured_at": captured.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "context": state.context,
        "source": state.source,
        "unavailable": dict(state.unavailable),
        "problems": [{"where": p.where, "message": p.message} for p in state.problems],
        "counts": counts,
        "logs": len(state.logs),
        "previous_logs": len(state.previous_logs),
    }


def _write_json(path: Path, doc: Any) -> None:
    _write_text(path, json.dumps(doc, indent=4, ensure_ascii=False) + "\n")


def _write_text(path: Path, text: str) -> None:
    """Write to a hidden temp file beside `path`, then rename: never a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, text)


__all__ = ["capture"]
