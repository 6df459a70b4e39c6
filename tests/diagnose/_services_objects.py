"""Realistic Kubernetes objects for the services, autoscaling, nodes and logs rule
tests (the name follows the first family that needed them).

Objects carry kind/apiVersion, ownerReferences and the status fields the API
serves; events look like kubelet/controller events.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from jsonpatch import apply_patch

from aiops.diagnose.context import Context
from aiops.diagnose.finding import Action, Finding
from aiops.diagnose.registry import RULES, load_rules
from aiops.model import ClusterState

Obj = dict[str, Any]
NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
NS = "todo"

load_rules()


def ts(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


def at(minutes_ago: float) -> datetime:
    return NOW - timedelta(minutes=minutes_ago)


def meta(name: str, ns: str | None = NS, labels: dict[str, str] | None = None,
         created: float = 600, **extra: Any) -> Obj:
    m: Obj = {"name": name, "uid": f"uid-{name}", "creationTimestamp": ts(created)}
    if ns is not None:
        m["namespace"] = ns
    if labels:
        m["labels"] = dict(labels)
    m.update(extra)
    return m


def container(name: str = "app", image: str = "ghcr.io/acme/app:1.0.0", *,
              port: int | None = 8080, requests: dict[str, str] | None = None,
              limits: dict[str, str] | None = None, env: list[Obj] | None = None) -> Obj:
    c: Obj = {"name": name, "image": image, "imagePullPolicy": "IfNotPresent"}
    if port:
        c["ports"] = [{"containerPort": port, "name": "http", "protocol": "TCP"}]
    res: Obj = {}
    if requests:
        res["requests"] = dict(requests)
    if limits:
        res["limits"] = dict(limits)
    c["resources"] = res
    if env:
        c["env"] = env
    return c


def deployment(name: str, labels: dict[str, str], containers: list[Obj], *,
               ns: str = NS, replicas: int = 1,
               match: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(name, ns, labels),
            "spec": {"replicas": replicas,
                     "selector": {"matchLabels": dict(match or labels)},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"containers": copy.deepcopy(containers)}}},
            "status": {"replicas": replicas, "readyReplicas": replicas}}


def replicaset(dep: Obj, hash_: str = "7d9c5b") -> Obj:
    name = f"{dep['metadata']['name']}-{hash_}"
    labels = {**dep["spec"]["template"]["metadata"]["labels"], "pod-template-hash": hash_}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": meta(name, dep["metadata"]["namespace"], labels,
                             ownerReferences=[{"apiVersion": "apps/v1", "kind": "Deployment",
                                               "name": dep["metadata"]["name"],
                                               "uid": dep["metadata"]["uid"],
                                               "controller": True}]),
            "spec": {"replicas": dep["spec"]["replicas"],
                     "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": copy.deepcopy(dep["spec"]["template"]["spec"])}}}


def pod(name: str, *, owner: Obj | None = None, labels: dict[str, str] | None = None,
        containers: list[Obj] | None = None, ready: bool = True, ns: str = NS,
        node: str = "minikube", ip: str = "10.244.0.10", statuses: list[Obj] | None = None,
        phase: str = "Running") -> Obj:
    """A pod; with `owner` (a ReplicaSet) it takes the template's labels and spec."""
    if owner is not None:
        labels = labels or owner["spec"]["template"]["metadata"]["labels"]
        containers = containers or owner["spec"]["template"]["spec"]["containers"]
    containers = copy.deepcopy(containers or [container()])
    refs = [{"apiVersion": "apps/v1", "kind": owner["kind"], "name": owner["metadata"]["name"],
             "uid": owner["metadata"]["uid"], "controller": True}] if owner else None
    m = meta(name, ns, labels, created=120)
    if refs:
        m["ownerReferences"] = refs
    cstat = statuses if statuses is not None else [
        {"name": c["name"], "ready": ready, "restartCount": 0, "started": True,
         "image": c["image"], "state": {"running": {"startedAt": ts(100)}}}
        for c in containers]
    rs = "True" if ready else "False"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": m,
            "spec": {"nodeName": node, "containers": containers,
                     "serviceAccountName": "default"},
            "status": {"phase": phase, "podIP": ip, "hostIP": "192.168.49.2",
                       "qosClass": "Burstable",
                       "conditions": [
                           {"type": "PodScheduled", "status": "True",
                            "lastTransitionTime": ts(120)},
                           {"type": "Ready", "status": rs, "lastTransitionTime": ts(90),
                            **({} if ready else {"reason": "ContainersNotReady",
                                                 "message": "containers with unready "
                                                            "status: [app]"})},
                           {"type": "ContainersReady", "status": rs,
                            "lastTransitionTime": ts(90)}],
                       "containerStatuses": cstat}}


def service(name: str, selector: dict[str, str] | None, *, ns: str = NS, port: int = 80,
            target: int | str = 8080, cluster_ip: str = "10.96.10.10",
            port_name: str | None = "http") -> Obj:
    p: Obj = {"port": port, "targetPort": target, "protocol": "TCP"}
    if port_name:
        p["name"] = port_name
    spec: Obj = {"type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                 "ports": [p]}
    if selector is not None:
        spec["selector"] = dict(selector)
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, ns), "spec": spec}


def endpoints(name: str, *, ready: list[Obj] | None = None, not_ready: list[Obj] | None = None,
              ns: str = NS, port: int = 8080, changed: float = 95) -> Obj:
    """Endpoints as the controller writes them; pods given are listed by IP."""
    def addr(p: Obj) -> Obj:
        return {"ip": p["status"]["podIP"], "nodeName": p["spec"]["nodeName"],
                "targetRef": {"kind": "Pod", "namespace": ns, "name": p["metadata"]["name"],
                              "uid": p["metadata"]["uid"]}}

    ep: Obj = {"apiVersion": "v1", "kind": "Endpoints",
               "metadata": meta(name, ns, annotations={
                   "endpoints.kubernetes.io/last-change-trigger-time": ts(changed)})}
    if ready or not_ready:
        subset: Obj = {"ports": [{"name": "http", "port": port, "protocol": "TCP"}]}
        if ready:
            subset["addresses"] = [addr(p) for p in ready]
        if not_ready:
            subset["notReadyAddresses"] = [addr(p) for p in not_ready]
        ep["subsets"] = [subset]
    return ep


def event(obj: Obj, reason: str, message: str, *, type: str = "Warning", count: int = 1,
          first: float = 30, last: float = 1, component: str = "kubelet",
          field_path: str | None = None) -> Obj:
    m = obj["metadata"]
    io: Obj = {"kind": obj["kind"], "name": m["name"], "uid": m.get("uid", ""),
               "apiVersion": obj.get("apiVersion", "v1")}
    if m.get("namespace"):
        io["namespace"] = m["namespace"]
    if field_path:
        io["fieldPath"] = field_path
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": meta(f"{m['name']}.{reason.lower()}{count}", m.get("namespace") or
                             "default"),
            "involvedObject": io, "reason": reason, "message": message, "type": type,
            "count": count, "firstTimestamp": ts(first), "lastTimestamp": ts(last),
            "source": {"component": component}}


def world(*objs: Obj, logs: dict[tuple[str, str, str], Any] | None = None,
          previous_logs: dict[tuple[str, str, str], Any] | None = None) -> ClusterState:
    state = ClusterState(source="test", captured_at=NOW)
    for o in objs:
        state.objects.setdefault(o["kind"], []).append(o)
    state.logs = dict(logs or {})
    state.previous_logs = dict(previous_logs or {})
    return state


def fire(rule_id: str, state: ClusterState, **target: Any) -> list[Finding]:
    """The raw findings of one rule (before suppression and grouping)."""
    from aiops.diagnose.context import Target

    return list(RULES[rule_id].fn(Context(state, Target(**target))))


def one(rule_id: str, state: ClusterState) -> Finding:
    found = fire(rule_id, state)
    assert len(found) == 1, [f.summary for f in found]
    return found[0]


# -- RFC 6902 (the subset the actions use) ----------------------------------------------

def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def assert_reversible(action: Action, obj: Obj) -> Obj:
    """Patch then inverse restores `obj` exactly; returns the patched object."""
    assert action.patch and action.inverse
    patched = apply_patch(obj, action.patch)
    assert patched != obj
    assert apply_patch(patched, action.inverse) == obj
    return patched
