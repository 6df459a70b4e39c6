"""The before/after view of a proposed change, secrets masked.

An approver judges what the object will look like, not a JSON patch: this
applies the Action's patch to the object as loaded and diffs the YAML of the
two. Everything is redacted before it is rendered, because the review ends up
in notebooks, HTML reports and terminals; a masked value that changes is
marked as changed so the diff still says something happened to it.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field
from typing import Any

import jsonpatch
import jsonpointer
import yaml

from aiops.approvals.phr_redact import redact_value
from aiops.redact import REDACTED, credential_reason

CHANGED = f"{REDACTED} (changed)"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_MISSING = object()


def redact(value: Any, key: str | None = None) -> Any:
    """A deep copy of `value` fit to show: Secret data, the last-applied copy,
    credential-like keys and env values, and credential-shaped strings masked."""
    if isinstance(value, dict):
        secret = value.get("kind") == "Secret"
        out: dict[str, Any] = {}
        for k, v in value.items():
            if secret and k in ("data", "stringData") and isinstance(v, dict):
                out[k] = dict.fromkeys(v, REDACTED)
            elif k == "annotations" and isinstance(v, dict):
                out[k] = {a: REDACTED if a == LAST_APPLIED else redact(x, str(a))
                          for a, x in v.items()}
            else:
                out[k] = redact(v, str(k))
        # env entries and the like: {"name": "DB_PASSWORD", "value": "..."}
        name, val = value.get("name"), value.get("value")
        if isinstance(name, str) and isinstance(val, str) and credential_reason(name, val):
            out["value"] = REDACTED
        return out
    if isinstance(value, list | tuple):
        return [redact(v, key) for v in value]
    if isinstance(value, str):
        return redact_value(value, key)
    return value


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def redact_ops(ops: list[dict[str, Any]], kind: str = "") -> list[dict[str, Any]]:
    """A JSON patch fit to show: each value judged under the key its path ends in;
    on a Secret everything under /data and /stringData is masked."""
    out = []
    for op in ops:
        shown = dict(op)
        if "value" in op:
            parts = [_unescape(p) for p in str(op.get("path", "")).split("/")[1:]]
            key = parts[-1] if parts else None
            if kind == "Secret" and parts[:1] in (["data"], ["stringData"]):
                v = op["value"]
                shown["value"] = dict.fromkeys(v, REDACTED) if isinstance(v, dict) else REDACTED
            else:
                shown["value"] = redact(op["value"], key)
        out.append(shown)
    return out


def _mark_changes(raw_b: Any, raw_a: Any, red_b: Any, red_a: Any) -> Any:
    """`red_a` with every masked value whose raw value changed marked CHANGED."""
    if isinstance(red_a, dict) and isinstance(raw_a, dict):
        rb = raw_b if isinstance(raw_b, dict) else {}
        db = red_b if isinstance(red_b, dict) else {}
        return {k: _mark_changes(rb.get(k, _MISSING), raw_a.get(k, _MISSING),
                                 db.get(k, _MISSING), v) for k, v in red_a.items()}
    if isinstance(red_a, list) and isinstance(raw_a, list) and len(red_a) == len(raw_a):
        rb = raw_b if isinstance(raw_b, list) else []
        db = red_b if isinstance(red_b, list) else []
        return [_mark_changes(rb[i] if i < len(rb) else _MISSING, raw_a[i],
                              db[i] if i < len(db) else _MISSING, v)
                for i, v in enumerate(red_a)]
    if red_a == REDACTED and red_b == REDACTED and raw_a != raw_b:
        return CHANGED
    return red_a


def to_yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, width=100,
                          allow_unicode=True)


def _display(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without bookkeeping nobody reviews (managedFields)."""
    obj = copy.deepcopy(obj)
    (obj.get("metadata") or {}).pop("managedFields", None)
    return obj


@dataclass
class ObjectDiff:
    """The object before and after the patch (redacted) and their YAML diff."""

    name: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    diff: str  # unified diff of the redacted YAML; empty when nothing could be shown
    problem: str | None = None  # why there is no diff (object unknown, patch not applicable)
    changed: list[str] = field(default_factory=list)  # the paths the patch touches


def object_diff(obj: dict[str, Any] | None, patch: list[dict[str, Any]],
                name: str = "object", context: int = 3) -> ObjectDiff:
    """Apply `patch` to a copy of `obj` and diff the two, secrets masked."""
    paths = [str(op.get("path", "")) for op in patch]
    if obj is None:
        return ObjectDiff(name, None, None, "", problem=f"{name} is not in the loaded "
                          "cluster state, so only the patch can be shown", changed=paths)
    raw_b = _display(obj)
    raw_a: Any = copy.deepcopy(raw_b)
    for i, op in enumerate(patch, 1):
        try:
            raw_a = jsonpatch.apply_patch(raw_a, [op], in_place=False)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            # the library's message quotes the object, secrets included: name the op only
            why = "test failed" if isinstance(exc, jsonpatch.JsonPatchTestFailed) else \
                "its path does not exist" if isinstance(
                    exc, jsonpatch.JsonPatchConflict | jsonpointer.JsonPointerException) \
                else "it is malformed"
            if why != "it is malformed":
                why += "; the object changed since the Action was made"
            return ObjectDiff(name, redact(raw_b), None, "", changed=paths,
                              problem=f"the patch does not apply to {name} as loaded: "
                                      f"operation {i} ({op.get('op')} {op.get('path')}): {why}")
    red_b, red_a = redact(raw_b), redact(raw_a)
    red_a = _mark_changes(raw_b, raw_a, red_b, red_a)
    lines = difflib.unified_diff(to_yaml(red_b).splitlines(), to_yaml(red_a).splitlines(),
                                 fromfile=f"{name} (before)", tofile=f"{name} (after)",
                                 lineterm="", n=context)
    return ObjectDiff(name, red_b, red_a, "\n".join(lines), changed=paths)
