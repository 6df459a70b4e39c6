"""Fixes as Actions: the exact JSON patch against the audited object, its inverse
and the risk tier of applying it, ready for the approval workflow.

Tiers follow the design notes: workload spec changes (security context,
probes, resources, images) are medium; RBAC, NetworkPolicies that can cut a
namespace's traffic, and anything cluster-wide are critical.
"""

from __future__ import annotations

from typing import Any

from aiops.diagnose.actions import target_of
from aiops.diagnose.finding import Action
from aiops.patches import Path, remove_ops, set_ops
from aiops.security.subjects import Container, Workload, meta, namespace_of

Obj = dict[str, Any]
REMOVE = object()  # a change that deletes the field


def patch(obj: Obj, changes: dict[Path, Any], *, description: str, tier: str = "medium",
          validate: list[str] | None = None) -> Action:
    """One Action setting (or, with REMOVE, deleting) several paths of `obj`.

    Each change is computed against the object as the earlier ones left it, so two
    fields under one missing parent give one valid patch. The object itself is
    never modified: only the nodes on a changed path are copied. The operations
    are worked out when first read (see `_DeferredPatch`)."""
    target, checks = _about(obj)
    return _DeferredPatch(obj, dict(changes), target, description, tier, validate or checks)


def json_patch(obj: Obj, changes: dict[Path, Any]) -> tuple[list[dict[str, Any]],
                                                             list[dict[str, Any]]]:
    """The RFC 6902 operations of `changes` on `obj`, and their exact inverse."""
    work: Any = obj
    ops: list[dict[str, Any]] = []
    inverse: list[dict[str, Any]] = []
    for i, (path, value) in enumerate(changes.items()):
        step, undo = remove_ops(work, path) if value is REMOVE else set_ops(work, path, value)
        if step:
            if i < len(changes) - 1:
                work = _with(work, path, value)
            ops.extend(step)
            inverse[:0] = undo
    return ops, inverse


class _DeferredPatch(Action):
    """An Action whose `patch` and `inverse` are worked out on first read.

    An audit of a large cluster proposes tens of thousands of fixes and most are
    never shown; each is computed once, when an output, a review or the executor
    reads it, from the audited object (states are never modified after loading).
    Everything else is an ordinary Action (to_dict, hash, equality of fields)."""

    def __init__(self, obj: Obj, changes: dict[Path, Any], target: dict[str, str],
                 description: str, tier: str, validate: list[str]) -> None:
        for name, value in (("kind", "patch"), ("target", target),
                            ("description", description), ("tier", tier),
                            ("validate", validate), ("_source", (obj, changes)),
                            ("_ops", None)):
            object.__setattr__(self, name, value)

    def _resolved(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if self._ops is None:
            object.__setattr__(self, "_ops", json_patch(*self._source))
        return self._ops

    @property  # type: ignore[override]
    def patch(self) -> list[dict[str, Any]]:
        return self._resolved()[0]

    @property  # type: ignore[override]
    def inverse(self) -> list[dict[str, Any]]:
        return self._resolved()[1]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Action):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


_last: list[Any] = [None, None, None]  # obj, target, validate of the latest fixed object


def _about(obj: Obj) -> tuple[dict[str, str], list[str]]:
    """The Action target and validation steps for `obj` (fresh copies). The engine
    runs every check of one subject in a row, so the object fixed last is usually
    the one asked for again: it is remembered."""
    if _last[0] is not obj:
        _last[:] = [obj, _target(obj), _validate(obj)]
    return dict(_last[1]), list(_last[2])


def _with(node: Any, path: Path, value: Any) -> Any:
    """A copy of `node` with `path` set to `value` (or removed, for REMOVE), sharing
    every subtree off the path; missing parents become objects."""
    if not path:
        return value
    key, rest = path[0], path[1:]
    if isinstance(node, list) and isinstance(key, int):
        out_list = list(node)
        out_list[key] = _with(node[key], rest, value)
        return out_list
    out = dict(node) if isinstance(node, dict) else {}
    if not rest and value is REMOVE:
        out.pop(key, None)  # type: ignore[arg-type]
    else:
        out[key] = _with(out.get(key), rest, value)  # type: ignore[index]
    return out


def container_patch(c: Container, changes: dict[Path, Any], *, description: str,
                    tier: str = "medium") -> Action:
    """Set fields inside one container (paths relative to the container)."""
    return patch(c.workload.obj, {c.path(*p): v for p, v in changes.items()},
                 description=description, tier=tier)


def pod_patch(w: Workload, changes: dict[Path, Any], *, description: str,
              tier: str = "medium") -> Action:
    """Set fields of the pod spec (paths relative to it)."""
    return patch(w.obj, {w.path(*p): v for p, v in changes.items()},
                 description=description, tier=tier)


def create(manifest: Obj, *, description: str, tier: str) -> Action:
    """A new object (a NetworkPolicy, a PodDisruptionBudget); rollback deletes it."""
    t = _target(manifest)
    ns = f" -n {t['namespace']}" if t["namespace"] else ""
    return Action("create", t, description, tier,
                  [{"op": "add", "path": "", "value": manifest}], [],
                  [f"kubectl get {t['kind'].lower()} {t['name']}{ns} succeeds",
                   f"rollback: kubectl delete {t['kind'].lower()} {t['name']}{ns}"])


def _target(obj: Obj) -> dict[str, str]:
    t = target_of(obj)
    if not t["namespace"]:
        t["namespace"] = namespace_of(obj)
    return t


def _validate(obj: Obj) -> list[str]:
    kind = (obj.get("kind") or "").lower()
    name = meta(obj).get("name") or ""
    ns = namespace_of(obj)
    where = f" -n {ns}" if ns else ""
    if kind in ("deployment", "statefulset", "daemonset"):
        return [f"kubectl rollout status {kind}/{name}{where} --timeout=300s succeeds",
                f"kubectl apply --dry-run=server accepts the patched {kind}/{name}",
                "aiops audit passes the check on the object"]
    return [f"kubectl apply --dry-run=server accepts the patched {kind}/{name}",
            "aiops audit passes the check on the object"]
