"""Plain manifests as an audit input (shift-left, in CI): files or directories of
multi-document YAML or JSON, e.g. the output of `helm template` or `kustomize build`.

Every object remembers its file and line (for SARIF and JUnit). What cannot be
audited (invalid YAML, unknown kinds and CRDs, objects without metadata) is
reported by file and document index, and the rest is still audited.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import yaml

from aiops.errors import SourceError
from aiops.kinds import BY_KIND
from aiops.model import ClusterState, LoadProblem
from aiops.redact import scrub_object

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SUFFIXES = (".yaml", ".yml", ".json")
Origin = dict[int, tuple[str, int | None]]


def load_manifests(path: str | os.PathLike[str]) -> tuple[ClusterState, Origin]:
    """The objects of a manifest file or directory tree, and where each came from.

    `-` reads standard input (e.g. `helm template . | aiops audit --manifests -`).
    """
    root = Path(path)
    state = ClusterState(source=f"manifests:{path}")
    origin: Origin = {}
    if str(path) == "-":
        import sys
        _load_text(sys.stdin.read(), "<stdin>", state, origin, json=False)
        return state, origin
    if not root.exists():
        raise SourceError(f"manifests path {root} does not exist",
                          "pass a YAML/JSON file or a directory of them to --manifests")
    files = [root] if root.is_file() else sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix in SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise SourceError(f"no .yaml, .yml or .json files under {root}",
                          "point --manifests at rendered manifests "
                          "(e.g. the output of `helm template` or `kustomize build`)")
    for f in files:
        try:
            text = f.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            state.problems.append(LoadProblem(str(f), f"cannot read file: {exc.strerror}"))
            continue
        _load_text(text, str(f), state, origin, json=f.suffix == ".json")
    return state, origin


def _load_text(text: str, where: str, state: ClusterState, origin: Origin, *,
               json: bool) -> None:
    if json:
        try:
            docs: Iterator[tuple[int, int | None, Any]] = iter([(0, 1, orjson.loads(text))])
        except orjson.JSONDecodeError as exc:
            state.problems.append(LoadProblem(where, f"invalid JSON ({exc}); not audited"))
            return
    else:
        docs = _documents(text, where, state)
    for index, line, doc in docs:
        if doc is None:
            continue
        _add(doc, where, index, line, state, origin)


def _documents(text: str, where: str,
               state: ClusterState) -> Iterator[tuple[int, int | None, Any]]:
    """(index, first line, object) of each YAML document; an invalid document ends
    the file (YAML cannot resync) but the documents before it are kept."""
    loader = _LOADER(text)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            line = node.start_mark.line + 1 if node is not None else None
            yield index, line, loader.construct_document(node) if node is not None else None
            index += 1
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        state.problems.append(LoadProblem(
            where, f"document {index}: invalid YAML{at} ({problem}); this document and "
            "the rest of the file are not audited"))
    finally:
        loader.dispose()


def _add(doc: Any, where: str, index: int, line: int | None, state: ClusterState,
         origin: Origin) -> None:
    label = f"document {index}"
    if not isinstance(doc, dict):
        state.problems.append(LoadProblem(where, f"{label}: not a Kubernetes object, skipped"))
        return
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        for i, item in enumerate(doc["items"]):
            _add_object(item, where, f"{label} item {i}", line, state, origin)
        return
    _add_object(doc, where, label, line, state, origin)


def _add_object(obj: Any, where: str, label: str, line: int | None, state: ClusterState,
                origin: Origin) -> None:
    if not isinstance(obj, dict):
        state.problems.append(LoadProblem(where, f"{label}: not a Kubernetes object, skipped"))
        return
    kind, api = obj.get("kind"), obj.get("apiVersion")
    md = obj.get("metadata")
    if not isinstance(kind, str) or not kind:
        state.problems.append(LoadProblem(where, f"{label}: no 'kind', skipped"))
        return
    if kind not in BY_KIND:
        state.problems.append(LoadProblem(
            where, f"{label}: kind {kind} ({api or 'no apiVersion'}) is not audited "
            "(a custom resource or a kind without posture checks)"))
        return
    if not isinstance(md, dict) or not isinstance(md.get("name"), str) or not md["name"]:
        state.problems.append(LoadProblem(
            where, f"{label}: {kind} without metadata.name, skipped (a template that was "
            "not rendered? run `helm template` or `kustomize build` first)"))
        return
    state.objects.setdefault(kind, []).append(scrub_object(obj) if kind == "Secret" else obj)
    origin[id(obj)] = (where, line)


# -- the other way: a cluster's objects as manifests ------------------------------
# what the API server adds and a manifest does not carry
_SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp",
                  "managedFields", "selfLink", "ownerReferences")
_NOT_MANIFESTS = ("Event", "Endpoints", "PodMetrics", "NodeMetrics", "Node",
                  "PersistentVolume", "ReplicaSet", "Pod", "Job")


def as_manifests(state: ClusterState) -> list[dict[str, Any]]:
    """The objects a user would have written (top-level, no status, no server
    fields): what `--manifests` audits, e.g. to compare with a manifest scanner.

    Pods, ReplicaSets and Jobs are kept only when no controller owns them."""
    out = []
    for kind, objs in state.objects.items():
        for o in objs:
            md = o.get("metadata") if isinstance(o, dict) else None
            if not isinstance(md, dict):
                continue
            owned = any(isinstance(r, dict) and r.get("controller")
                        for r in md.get("ownerReferences") or [])
            if kind in _NOT_MANIFESTS and (owned or kind in ("Event", "Endpoints", "Node",
                                                             "PodMetrics", "NodeMetrics",
                                                             "PersistentVolume")):
                continue
            m = {k: v for k, v in md.items() if k not in _SERVER_FIELDS}
            ann = {k: v for k, v in (m.get("annotations") or {}).items()
                   if k != "kubectl.kubernetes.io/last-applied-configuration"}
            if ann:
                m["annotations"] = ann
            else:
                m.pop("annotations", None)
            doc = {"apiVersion": o.get("apiVersion") or BY_KIND[kind].api_version,
                   "kind": kind, "metadata": m}
            doc.update({k: v for k, v in o.items()
                        if k not in ("apiVersion", "kind", "metadata", "status")})
            out.append(doc)
    return out


def write_manifests(objs: list[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """One multi-document YAML file per namespace under `path` (cluster-scoped
    objects in _cluster.yaml)."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    by_ns: dict[str, list[dict[str, Any]]] = {}
    for o in objs:
        by_ns.setdefault(o["metadata"].get("namespace") or "_cluster", []).append(o)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    for ns, docs in sorted(by_ns.items()):
        (root / f"{ns}.yaml").write_text(
            yaml.dump_all(docs, Dumper=dumper, sort_keys=False, default_flow_style=False),
            encoding="utf-8")
    return root
