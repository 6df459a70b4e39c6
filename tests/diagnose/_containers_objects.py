"""Small, realistic Kubernetes objects for the containers/images/config rule tests.

Objects look like what the API serves (kind/apiVersion filled, ownerReferences,
kubelet events with fieldPath), so the rules are exercised on real shapes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from jsonpatch import apply_patch

from aiops.diagnose.finding import Action, Finding
from aiops.model import ClusterState

Obj = dict[str, Any]
NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


def ts(minutes_ago: float) -> str:
    """RFC 3339 time `minutes_ago` before NOW."""
    return (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


def at(minutes_ago: float) -> datetime:
    return NOW - timedelta(minutes=minutes_ago)


def container(name: str = "app", image: str = "ghcr.io/acme/web:1.2.0", **extra: Any) -> Obj:
    c: Obj = {"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
              "terminationMessagePath": "/dev/termination-log",
              "terminationMessagePolicy": "File"}
    c.update(extra)
    return c


def running(name: str = "app", *, ready: bool = True, restarts: int = 0,
            last: Obj | None = None, image: str = "ghcr.io/acme/web:1.2.0") -> Obj:
    s: Obj = {"name": name, "ready": ready, "restartCount": restarts, "image": image,
              "started": True, "state": {"running": {"startedAt": ts(30)}}}
    s["lastState"] = {"terminated": last} if last else {}
    return s


def waiting(name: str, reason: str, message: str | None = None, *, restarts: int = 0,
            last: Obj | None = None, image: str = "ghcr.io/acme/web:1.2.0") -> Obj:
    w: Obj = {"reason": reason}
    if message is not None:
        w["message"] = message
    s: Obj = {"name": name, "ready": False, "restartCount": restarts, "image": image,
              "started": False, "state": {"waiting": w}}
    s["lastState"] = {"terminated": last} if last else {}
    return s


def terminated(exit_code: int, reason: str = "Error", *, started: float = 3,
               finished: float = 2, message: str | None = None) -> Obj:
    t: Obj = {"exitCode": exit_code, "reason": reason, "startedAt": ts(started),
              "finishedAt": ts(finished),
              "containerID": "containerd://4f1c2d7e9a0b"}
    if message is not None:
        t["message"] = message
    return t


def pod(name: str = "web-7d9c8b6f5d-x2x7q", ns: str = "shop", *,
        containers: list[Obj] | None = None, statuses: list[Obj] | None = None,
        init: list[Obj] | None = None, init_statuses: list[Obj] | None = None,
        owner: tuple[str, str] | None = ("ReplicaSet", "web-7d9c8b6f5d"),
        phase: str = "Running", node: str = "node-a", labels: dict[str, str] | None = None,
        status_extra: Obj | None = None, spec_extra: Obj | None = None) -> Obj:
    md: Obj = {"name": name, "namespace": ns, "uid": f"uid-{name}",
               "creationTimestamp": ts(60),
               "labels": labels or {"app": "web", "pod-template-hash": "7d9c8b6f5d"}}
    if owner:
        md["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1],
                                  "uid": f"uid-{owner[1]}", "controller": True,
                                  "blockOwnerDeletion": True}]
    spec: Obj = {"containers": containers or [container()], "nodeName": node,
                 "restartPolicy": "Always", "serviceAccountName": "default"}
    if init:
        spec["initContainers"] = init
    spec.update(spec_extra or {})
    status: Obj = {"phase": phase, "startTime": ts(60),
                   "containerStatuses": statuses if statuses is not None else [running()]}
    if init_statuses is not None:
        status["initContainerStatuses"] = init_statuses
    status.update(status_extra or {})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec,
            "status": status}


def deployment(name: str = "web", ns: str = "shop", *, containers: list[Obj] | None = None,
               revision: int = 2, available: int = 2, replicas: int = 2,
               spec_extra: Obj | None = None) -> Obj:
    spec = {"containers": containers or [container()], "restartPolicy": "Always"}
    spec.update(spec_extra or {})
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}",
                     "annotations": {"deployment.kubernetes.io/revision": str(revision)}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": spec}},
        "status": {"replicas": replicas, "availableReplicas": available,
                   "readyReplicas": available, "updatedReplicas": 1},
    }


def replicaset(name: str, deploy: str = "web", ns: str = "shop", *,
               containers: list[Obj] | None = None, revision: int = 2,
               ready: int = 0, replicas: int = 1) -> Obj:
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}",
                     "annotations": {"deployment.kubernetes.io/revision": str(revision)},
                     "labels": {"app": deploy, "pod-template-hash": name.rsplit("-", 1)[-1]},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                          "name": deploy, "uid": f"uid-{deploy}",
                                          "controller": True}]},
        "spec": {"replicas": replicas,
                 "template": {"spec": {"containers": containers or [container()]}}},
        "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready},
    }


def event(obj: Obj, reason: str, message: str, *, type: str = "Warning", count: int = 1,
          first: float = 10, last: float = 1, field_path: str | None = None,
          component: str = "kubelet") -> Obj:
    md = obj.get("metadata") or {}
    io: Obj = {"kind": obj.get("kind"), "namespace": md.get("namespace", ""),
               "name": md.get("name"), "uid": md.get("uid"),
               "apiVersion": obj.get("apiVersion")}
    if field_path:
        io["fieldPath"] = field_path
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{md.get('name')}.{abs(hash((reason, message))):x}",
                         "namespace": md.get("namespace") or "default"},
            "involvedObject": io, "reason": reason, "message": message, "type": type,
            "count": count, "firstTimestamp": ts(first), "lastTimestamp": ts(last),
            "source": {"component": component, "host": "node-a"}}


def fp(name: str = "app", init: bool = False) -> str:
    return f"spec.{'initContainers' if init else 'containers'}{{{name}}}"


def state(*objs: Obj, logs: dict[tuple[str, str, str], str] | None = None,
          previous_logs: dict[tuple[str, str, str], str] | None = None) -> ClusterState:
    objects: dict[str, list[Obj]] = {}
    for o in objs:
        objects.setdefault(o["kind"], []).append(o)
    return ClusterState(source="test", objects=objects, logs=logs or {},
                        previous_logs=previous_logs or {}, captured_at=NOW)


# -- RFC 6902 (add/remove/replace) to check an Action's patch and inverse ------------


def assert_round_trip(action: Action, obj: Obj) -> Obj:
    """Apply the patch then its inverse: the object must come back unchanged."""
    patched = apply_patch(obj, action.patch)
    assert patched != obj, "the patch changes nothing"
    assert apply_patch(patched, action.inverse) == obj
    return patched


def by_rule(findings: list[Finding], rule_id: str) -> list[Finding]:
    return [f for f in findings if f.rule == rule_id]


def texts(f: Finding) -> str:
    return "\n".join(f"{e.source}|{e.ref}|{e.text}" for e in f.evidence)
