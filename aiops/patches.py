"""RFC 6902 JSON-patch building blocks shared by every producer of Actions.

Each builder returns the patch and its exact inverse, so an approved change can
always be rolled back; `add` creates missing parent objects in one operation
because a JSON patch cannot add below a path that does not exist.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

Op = dict[str, Any]
Path = tuple[str | int, ...]


def pointer(*parts: object) -> str:
    """RFC 6901 JSON pointer from path parts ('/' and '~' escaped)."""
    return _pointer(parts)


@lru_cache(maxsize=4096)
def _pointer(parts: tuple[object, ...]) -> str:
    # the same few paths (a container's securityContext...) recur across workloads
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


MISSING = object()  # a path that does not exist (unlike one holding null)


def value_at(obj: Any, path: Path, default: Any = None) -> Any:
    """The value at a path of keys and list indexes, or `default` when absent."""
    cur = obj
    for p in path:
        in_dict = isinstance(cur, dict) and isinstance(p, str) and p in cur
        in_list = isinstance(cur, list) and isinstance(p, int) and -len(cur) <= p < len(cur)
        if not (in_dict or in_list):
            return default
        cur = cur[p]
    return cur


def set_ops(obj: Any, path: Path, value: Any) -> tuple[list[Op], list[Op]]:
    """Set `path` in `obj` to `value`: (patch, inverse).

    The first missing parent on the way is added whole, holding the rest of the
    path, so the patch applies to the object as it is now. A parent holding null
    is replaced (and restored to null by the inverse)."""
    cur = obj
    for depth, key in enumerate(path):
        if type(cur) is dict:  # the common case, inlined: this runs for every fix
            nxt = cur.get(key, MISSING) if isinstance(key, str) else MISSING
        else:
            nxt = value_at(cur, (key,), MISSING)
        last = depth == len(path) - 1
        if nxt is MISSING or (nxt is None and not last):
            at = _pointer(path[:depth + 1])
            tree: Any = value
            for k in reversed(path[depth + 1:]):
                tree = {k: tree}
            if nxt is MISSING:
                return [{"op": "add", "path": at, "value": tree}], [{"op": "remove", "path": at}]
            return ([{"op": "replace", "path": at, "value": tree}],
                    [{"op": "replace", "path": at, "value": None}])
        if last:
            at = _pointer(path)
            return ([{"op": "replace", "path": at, "value": value}],
                    [{"op": "replace", "path": at, "value": nxt}])
        cur = nxt
    return [], []


def remove_ops(obj: Any, path: Path) -> tuple[list[Op], list[Op]]:
    """Remove `path` from `obj` (nothing to do when it is absent)."""
    old = value_at(obj, path, MISSING)
    if old is MISSING:
        return [], []
    at = pointer(*path)
    return [{"op": "remove", "path": at}], [{"op": "add", "path": at, "value": old}]


def append_ops(obj: Any, path: Path, item: Any) -> tuple[list[Op], list[Op]]:
    """Append `item` to the list at `path`, creating the list when absent."""
    current = value_at(obj, path)
    if not isinstance(current, list):
        return set_ops(obj, path, [item])
    at = pointer(*path)
    return ([{"op": "add", "path": at + "/-", "value": item}],
            [{"op": "remove", "path": pointer(*path, len(current))}])
