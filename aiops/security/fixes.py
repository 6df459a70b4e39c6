"""Fixes as Actions: the exact JSON patch against the audited object, its inverse
and the risk tier of applying it, ready for the approval workflow.

Tiers follow the design notes: workload spec changes (security context,
probes, resources, images) are medium; RBAC, NetworkPolicies that can cut a
namespace's traffic, and anything cluster-wide are critical.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

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
    fields under one missing parent give one valid patch. A single change needs no
    scratch copy (audits build thousands of these)."""
    several = len(changes) > 1
    work = copy.deepcopy(obj) if several else obj
    ops: list[dict[str, Any]] = []
    inverse: list[dict[str, Any]] = []
    for path, value in changes.items():
        step, undo = remove_ops(work, path) if value is REMOVE else set_ops(work, path, value)
        if step and step[0]["op"] == "add" and _holds_null(work, step[0]["path"]):
            undo = [{"op": "replace", "path": step[0]["path"], "value": None}]
        if step:
            if several:
                work = jsonpatch.apply_patch(work, step, in_place=True)
            ops.extend(step)
            inverse[:0] = undo
    return Action("patch", _target(obj), description, tier, ops, inverse,
                  validate or _validate(obj))


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


def _holds_null(obj: Obj, pointer: str) -> bool:
    """Whether `pointer` names a member that is present with the value null: the
    `add` over it must be undone by restoring the null, not by removing the key."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    cur: Any = obj
    for p in parts[:-1]:
        if isinstance(cur, dict):
            cur = cur.get(p)
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            return False
    return bool(parts) and isinstance(cur, dict) and parts[-1] in cur and cur[parts[-1]] is None


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
