"""A small RFC 6902 applier (add, remove, replace, test) so tests can check that
an Action's patch followed by its inverse restores the object exactly."""

from __future__ import annotations

import copy
from typing import Any


def _decode(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def apply_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """Apply `ops` to a deep copy of `doc`; a replace of a missing member fails."""
    out = copy.deepcopy(doc)
    for op in ops:
        parts = _decode(op["path"])
        if not parts:
            out = copy.deepcopy(op["value"])
            continue
        parent: Any = out
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1]
        kind = op["op"]
        if kind == "test":
            cur = parent[int(last)] if isinstance(parent, list) else parent[last]
            assert cur == op["value"], f"test failed at {op['path']}"
        elif isinstance(parent, list):
            i = len(parent) if last == "-" else int(last)
            if kind == "add":
                parent.insert(i, copy.deepcopy(op["value"]))
            elif kind == "remove":
                del parent[i]
            else:
                parent[i] = copy.deepcopy(op["value"])
        elif kind == "remove":
            del parent[last]
        elif kind == "replace":
            assert last in parent, f"replace of a missing member {op['path']}"
            parent[last] = copy.deepcopy(op["value"])
        else:
            parent[last] = copy.deepcopy(op["value"])
    return out
