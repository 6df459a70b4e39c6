"""Builders for the Actions remediations propose: JSON patches with their exact
inverse, the risk tier the design notes assign, and how to validate.

Tiers: trivial (restart one pod), low (scale by 1-2, roll back an image),
medium (resources, probes, selectors, HPA, ConfigMaps), critical (Secrets,
RBAC, namespaces, anything cluster-wide).
"""

from __future__ import annotations

from typing import Any

from aiops.diagnose.finding import Action
from aiops.kinds import BY_KIND
from aiops.patches import pointer, value_at

Obj = dict[str, Any]



def target_of(obj: Obj) -> dict[str, str]:
    md = obj.get("metadata") or {}
    kind = obj.get("kind") or ""
    known = BY_KIND[kind].api_version if kind in BY_KIND else "v1"
    return {"apiVersion": obj.get("apiVersion") or known, "kind": kind,
            "namespace": md.get("namespace") or "", "name": md.get("name") or ""}


def pod_template_path(kind: str) -> tuple[str, ...]:
    """Where a workload keeps its pod spec."""
    if kind == "CronJob":
        return ("spec", "jobTemplate", "spec", "template", "spec")
    if kind == "Pod":
        return ("spec",)
    return ("spec", "template", "spec")


def pod_spec_of(obj: Obj) -> Obj:
    cur: Any = obj
    for p in pod_template_path(obj.get("kind") or ""):
        cur = cur.get(p) if isinstance(cur, dict) else None
    return cur if isinstance(cur, dict) else {}


def _set(path: str, old: Any, new: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """One patch op and its inverse (add/remove when the field is absent)."""
    if old is None:
        return {"op": "add", "path": path, "value": new}, {"op": "remove", "path": path}
    return ({"op": "replace", "path": path, "value": new},
            {"op": "replace", "path": path, "value": old})


def set_container_fields(workload: Obj, container: str, changes: dict[tuple[str, ...], Any],
                         *, description: str, tier: str = "medium",
                         validate: list[str] | None = None) -> Action | None:
    """Patch fields of one container in a workload's pod template.

    `changes` maps a path inside the container (e.g. ("resources", "limits",
    "memory")) to the new value. Missing parents are added as objects.
    Returns None when the container is not in the template.
    """
    spec = pod_spec_of(workload)
    base = pod_template_path(workload.get("kind") or "")
    for section in ("containers", "initContainers"):
        for i, c in enumerate(spec.get(section) or []):
            if isinstance(c, dict) and c.get("name") == container:
                ops, inverse = [], []
                for rel, value in changes.items():
                    cur: Any = c
                    for depth, key in enumerate(rel):
                        nxt = cur.get(key) if isinstance(cur, dict) else None
                        if nxt is None and depth < len(rel) - 1:
                            # create the missing parent with the whole remaining value
                            tree: Any = value
                            for k in reversed(rel[depth + 1:]):
                                tree = {k: tree}
                            path = pointer(*base, section, i, *rel[: depth + 1])
                            ops.append({"op": "add", "path": path, "value": tree})
                            inverse.insert(0, {"op": "remove", "path": path})
                            break
                        if depth == len(rel) - 1:
                            op, inv = _set(pointer(*base, section, i, *rel), nxt, value)
                            ops.append(op)
                            inverse.insert(0, inv)
                        cur = nxt
                return Action("patch", target_of(workload), description, tier, ops, inverse,
                              validate or _rollout_checks(workload))
    return None


def _rollout_checks(workload: Obj) -> list[str]:
    t = target_of(workload)
    ref = f"{t['kind'].lower()}/{t['name']}"
    return [f"kubectl rollout status {ref} -n {t['namespace']} --timeout=300s succeeds",
            "all pods Ready and restart counts not increasing for 10 minutes"]


def patch_field(obj: Obj, path: tuple[str | int, ...], new: Any, *, description: str,
                tier: str, validate: list[str]) -> Action:
    """Replace (or add) one field anywhere in an object; ints index into lists."""
    op, inv = _set(pointer(*path), value_at(obj, path), new)
    return Action("patch", target_of(obj), description, tier, [op], [inv], validate)


def scale(workload: Obj, replicas: int, *, description: str) -> Action:
    current = (workload.get("spec") or {}).get("replicas", 1)
    tier = "low" if abs(replicas - int(current or 0)) <= 2 else "medium"
    op, inv = _set("/spec/replicas", current, replicas)
    return Action("scale", target_of(workload), description, tier, [op], [inv],
                  _rollout_checks(workload))


def rollout_restart(workload: Obj, at: str, *, description: str) -> Action:
    """What `kubectl rollout restart` does: stamp the pod template."""
    ann = ((workload.get("spec") or {}).get("template") or {}).get("metadata", {}) \
        .get("annotations")
    key = "kubectl.kubernetes.io/restartedAt"
    if ann is None:
        ops = [{"op": "add", "path": "/spec/template/metadata/annotations",
                "value": {key: at}}]
        inverse = [{"op": "remove", "path": "/spec/template/metadata/annotations"}]
    else:
        op, inv = _set(pointer("spec", "template", "metadata", "annotations", key),
                       ann.get(key), at)
        ops, inverse = [op], [inv]
    return Action("rollout-restart", target_of(workload), description, "low", ops, inverse,
                  _rollout_checks(workload))


def rollout_undo(deployment: Obj, container: str, good_image: str, revision: str | None,
                 *, description: str) -> Action | None:
    """Roll a Deployment back to the image of its last good ReplicaSet."""
    action = set_container_fields(deployment, container, {("image",): good_image},
                                  description=description, tier="low")
    if action is None:
        return None
    return Action("rollout-undo", action.target, description, "low", action.patch,
                  action.inverse, action.validate
                  + ([f"deployment.kubernetes.io/revision advances past {revision}"]
                     if revision else []))


def delete_pod(pod: Obj, *, description: str) -> Action:
    """Deleting a controlled pod makes its controller create a fresh one."""
    t = target_of(pod)
    return Action("delete-pod", t, description, "trivial", [], [],
                  [f"a replacement pod of {t['name'].rsplit('-', 2)[0]} becomes Ready"])


def manual(obj: Obj, description: str, tier: str = "medium") -> Action:
    """A change only a human can make (e.g. push the missing image)."""
    return Action("manual", target_of(obj), description, tier, [], [], [])


def rollout_pause(deployment: Obj, paused: bool, *, description: str) -> Action:
    """`kubectl rollout pause|resume`: set spec.paused. Low tier: it stops (or lets
    go on) the controller's progress and changes no running pod."""
    op, inv = _set("/spec/paused", (deployment.get("spec") or {}).get("paused"), paused)
    t = target_of(deployment)
    ref = f"deployment/{t['name']} -n {t['namespace']}"
    return Action("patch", t, description, "low", [op], [inv],
                  [f"kubectl get {ref} -o jsonpath='{{.spec.paused}}' prints {str(paused).lower()}",
                   "status.observedGeneration catches up with metadata.generation"])


def rollout_undo_to(deployment: Obj, replicaset: Obj, revision: str | None, *,
                    description: str) -> Action | None:
    """Roll a Deployment back to a ReplicaSet's pod template: each container's image
    and resources where they differ (a small, reviewable patch), else the whole
    template as `kubectl rollout undo` does. A paused Deployment is resumed too, or
    the rollback would never roll out. None when the templates already agree."""
    cur = (deployment.get("spec") or {}).get("template") or {}
    old = dict((replicaset.get("spec") or {}).get("template") or {})
    labels = {k: v for k, v in ((old.get("metadata") or {}).get("labels") or {}).items()
              if k != "pod-template-hash"}
    old["metadata"] = {**(old.get("metadata") or {}), "labels": labels}
    ops: list[dict[str, Any]] = []
    inverse: list[dict[str, Any]] = []
    old_containers = {c.get("name"): c for c in (old.get("spec") or {}).get("containers") or []}
    for i, c in enumerate((cur.get("spec") or {}).get("containers") or []):
        was = old_containers.get(c.get("name"))
        if not isinstance(was, dict):
            continue
        for field in ("image", "resources"):
            if was.get(field) is not None and was.get(field) != c.get(field):
                op, inv = _set(pointer("spec", "template", "spec", "containers", i, field),
                               c.get(field), was[field])
                ops.append(op)
                inverse.insert(0, inv)
    if not ops and old != cur:
        op, inv = _set("/spec/template", cur, old)
        ops, inverse = [op], [inv]
    if not ops:
        return None
    if (deployment.get("spec") or {}).get("paused"):
        ops.append({"op": "replace", "path": "/spec/paused", "value": False})
        inverse.insert(0, {"op": "replace", "path": "/spec/paused", "value": True})
    return Action("rollout-undo", target_of(deployment), description, "low", ops, inverse,
                  _rollout_checks(deployment)
                  + ([f"the pods run the template of revision {revision} again"]
                     if revision else []))
