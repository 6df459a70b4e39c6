"""Workload controllers and the namespaced objects around them.

Each builder returns the object as the API returns it after its controller
has reconciled it: status fields and conditions follow the real controller's
rules (omitempty zeros, condition reasons and messages), so diagnosis code can
be tested against the same shapes a live cluster gives.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ._common import Ctx, Obj, meta, owner_ref, sorted_map, ts
from ._pods import ordered


# -- Deployment / ReplicaSet -----------------------------------------------
def dep_condition(kind: str, status: bool, updated: datetime, transition: datetime,
                  reason: str, message: str) -> Obj:
    return {"type": kind, "status": "True" if status else "False",
            "lastUpdateTime": ts(updated), "lastTransitionTime": ts(transition),
            "reason": reason, "message": message}


def available(ok: bool, at: datetime) -> Obj:
    if ok:
        return dep_condition("Available", True, at, at, "MinimumReplicasAvailable",
                             "Deployment has minimum availability.")
    return dep_condition("Available", False, at, at, "MinimumReplicasUnavailable",
                         "Deployment does not have minimum availability.")


def progressing(rs_name: str, state: str, updated: datetime, transition: datetime) -> Obj:
    """Progressing: 'done' (NewReplicaSetAvailable) or 'timeout' (ProgressDeadlineExceeded)."""
    if state == "timeout":
        return dep_condition("Progressing", False, updated, transition,
                             "ProgressDeadlineExceeded",
                             f'ReplicaSet "{rs_name}" has timed out progressing.')
    return dep_condition("Progressing", True, updated, transition, "NewReplicaSetAvailable",
                         f'ReplicaSet "{rs_name}" has successfully progressed.')


def deployment(ctx: Ctx, ns: str, name: str, *, created: datetime, updated: datetime,
               labels: dict[str, str], annotations: dict[str, str], selector: dict[str, str],
               tmpl: Obj, replicas: int, generation: int, revision: int, counts: dict[str, int],
               conditions: list[Obj], strategy: Obj | None = None) -> Obj:
    """A Deployment; `counts` holds replicas/updated/ready/available/unavailable."""
    ann = {**annotations, "deployment.kubernetes.io/revision": str(revision)}
    spec = {
        "replicas": replicas,
        "selector": {"matchLabels": sorted_map(selector)},
        "template": tmpl,
        "strategy": strategy or {"type": "RollingUpdate",
                                 "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
    }
    status = ordered([
        ("observedGeneration", generation),
        ("replicas", counts.get("replicas") or None),
        ("updatedReplicas", counts.get("updated") or None),
        ("readyReplicas", counts.get("ready") or None),
        ("availableReplicas", counts.get("available") or None),
        ("unavailableReplicas", counts.get("unavailable") or None),
        ("conditions", conditions),
    ])
    obj = {"metadata": meta(ctx, name, ns, created, updated=updated, generation=generation,
                            labels=labels, annotations=ann),
           "spec": spec, "status": status}
    return ctx.add(ns, "deployments", obj)


def replicaset(ctx: Ctx, ns: str, dep: Obj, *, pod_hash: str, created: datetime,
               updated: datetime, revision: int, replicas: int, ready: int, available_: int,
               generation: int = 1) -> Obj:
    """A ReplicaSet owned by `dep`, its template being the deployment's at `revision`."""
    dmd, dspec = dep["metadata"], dep["spec"]
    tmpl = _with_hash(dspec["template"], pod_hash)
    desired = dspec["replicas"]
    surge = -(-desired * 25 // 100) if dspec["strategy"]["type"] == "RollingUpdate" else 0
    ann = {k: v for k, v in dmd.get("annotations", {}).items()
           if k != "deployment.kubernetes.io/revision"}
    ann |= {"deployment.kubernetes.io/desired-replicas": str(desired),
            "deployment.kubernetes.io/max-replicas": str(desired + surge),
            "deployment.kubernetes.io/revision": str(revision)}
    labels = {**dspec["template"]["metadata"]["labels"], "pod-template-hash": pod_hash}
    md = meta(ctx, f"{dmd['name']}-{pod_hash}", ns, created, updated=updated,
              generation=generation, labels=labels, annotations=ann,
              owners=[owner_ref(dep, kind="Deployment", api_version="apps/v1")])
    status = ordered([
        ("replicas", replicas),
        ("fullyLabeledReplicas", replicas or None),
        ("readyReplicas", ready or None),
        ("availableReplicas", available_ or None),
        ("observedGeneration", generation),
    ])
    obj = {"metadata": md,
           "spec": {"replicas": replicas,
                    "selector": {"matchLabels": sorted_map(
                        {**dspec["selector"]["matchLabels"], "pod-template-hash": pod_hash})},
                    "template": tmpl},
           "status": status}
    return ctx.add(ns, "replicasets", obj)


def _with_hash(tmpl: Obj, pod_hash: str) -> Obj:
    md = dict(tmpl["metadata"])
    md["labels"] = sorted_map({**md["labels"], "pod-template-hash": pod_hash})
    return {"metadata": md, "spec": tmpl["spec"]}


# -- other workloads --------------------------------------------------------
def statefulset(ctx: Ctx, ns: str, name: str, *, created: datetime, labels: dict[str, str],
                annotations: dict[str, str], selector: dict[str, str], tmpl: Obj,
                service: str, claim: Obj, revision_hash: str, ready: int) -> Obj:
    spec = {
        "replicas": 1,
        "selector": {"matchLabels": sorted_map(selector)},
        "template": tmpl,
        "volumeClaimTemplates": [claim],
        "serviceName": service,
        "podManagementPolicy": "OrderedReady",
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "revisionHistoryLimit": 10,
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
    }
    status = {"observedGeneration": 1, "replicas": 1, "readyReplicas": ready,
              "currentReplicas": 1, "updatedReplicas": 1, "currentRevision": revision_hash,
              "updateRevision": revision_hash, "collisionCount": 0, "availableReplicas": ready}
    obj = {"metadata": meta(ctx, name, ns, created, updated=created + timedelta(seconds=40),
                            generation=1, labels=labels, annotations=annotations),
           "spec": spec, "status": status}
    return ctx.add(ns, "statefulsets", obj)


def daemonset(ctx: Ctx, ns: str, name: str, *, created: datetime, labels: dict[str, str],
              annotations: dict[str, str], selector: dict[str, str], tmpl: Obj,
              nodes: int) -> Obj:
    spec = {
        "selector": {"matchLabels": sorted_map(selector)},
        "template": tmpl,
        "updateStrategy": {"type": "RollingUpdate",
                           "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
        "revisionHistoryLimit": 10,
    }
    status = {"currentNumberScheduled": nodes, "numberMisscheduled": 0,
              "desiredNumberScheduled": nodes, "numberReady": nodes, "observedGeneration": 1,
              "updatedNumberScheduled": nodes, "numberAvailable": nodes}
    obj = {"metadata": meta(ctx, name, ns, created, updated=created + timedelta(seconds=20),
                            generation=1, labels=labels, annotations=annotations),
           "spec": spec, "status": status}
    return ctx.add(ns, "daemonsets", obj)


def job_condition(kind: str, at: datetime, reason: str, message: str) -> Obj:
    return {"type": kind, "status": "True", "lastProbeTime": ts(at),
            "lastTransitionTime": ts(at), "reason": reason, "message": message}


# -- networking ---------------------------------------------------------------
def service(ctx: Ctx, ns: str, name: str, *, created: datetime, labels: dict[str, str] | None,
            annotations: dict[str, str] | None, selector: dict[str, str] | None,
            ports: list[Obj], cluster_ip: str | None = None, headless: bool = False) -> Obj:
    ip = "None" if headless else (cluster_ip or ctx.service_ip())
    spec = ordered([
        ("ports", ports),
        ("selector", sorted_map(selector) if selector else None),
        ("clusterIP", ip), ("clusterIPs", [ip]),
        ("type", "ClusterIP"), ("sessionAffinity", "None"),
        ("ipFamilies", ["IPv4"]), ("ipFamilyPolicy", "SingleStack"),
        ("internalTrafficPolicy", "Cluster"),
    ])
    obj = {"metadata": meta(ctx, name, ns, created, labels=labels, annotations=annotations),
           "spec": spec, "status": {"loadBalancer": {}}}
    return ctx.add(ns, "services", obj)


def svc_port(name: str | None, number: int, target: int | str, protocol: str = "TCP") -> Obj:
    return ordered([("name", name), ("protocol", protocol), ("port", number),
                    ("targetPort", target)])


def _address(pod: Obj, service_name: str) -> Obj:
    md = pod["metadata"]
    # a hostname only for pods whose subdomain is this (governing) service
    own = pod["spec"].get("subdomain") == service_name
    return ordered([
        ("ip", pod["status"]["podIP"]),
        ("hostname", pod["spec"].get("hostname") if own else None),
        ("nodeName", pod["spec"]["nodeName"]),
        ("targetRef", {"kind": "Pod", "namespace": md["namespace"], "name": md["name"],
                       "uid": md["uid"]}),
    ])


def _ip_key(a: Obj) -> str:
    return a["ip"]  # the controller compares IP strings bytewise, not numerically


def endpoints_for(ctx: Ctx, svc: Obj, pods: list[Obj], *, changed: datetime) -> Obj:
    """Endpoints as the endpoint controller derives them from a Service and its pods.

    Selected pods with an IP are listed under `addresses` when Ready and under
    `notReadyAddresses` otherwise; a Service selecting nothing gets no subsets.
    """
    md, spec = svc["metadata"], svc["spec"]
    sel = spec.get("selector") or {}
    chosen = [p for p in pods if sel and p["status"].get("podIP")
              and p["status"].get("phase") in ("Running", "Pending")
              and all(p["metadata"].get("labels", {}).get(k) == v for k, v in sel.items())]
    ready, not_ready = [], []
    for p in chosen:
        cond = {c["type"]: c["status"] for c in p["status"].get("conditions", [])}
        (ready if cond.get("Ready") == "True" else not_ready).append(_address(p, md["name"]))
    subsets = []
    if chosen:
        ports = [ordered([("name", sp.get("name")), ("port", _target(sp, chosen[0])),
                          ("protocol", sp["protocol"])]) for sp in spec["ports"]]
        subsets = [ordered([("addresses", sorted(ready, key=_ip_key) or None),
                            ("notReadyAddresses", sorted(not_ready, key=_ip_key) or None),
                            ("ports", ports)])]
    ann = {"endpoints.kubernetes.io/last-change-trigger-time": ts(changed)} if sel else None
    labels = dict(md.get("labels") or {})
    if spec.get("clusterIP") == "None":
        labels["service.kubernetes.io/headless"] = ""
    obj = ordered([
        ("metadata", meta(ctx, md["name"], md["namespace"],
                          datetime.fromisoformat(md["creationTimestamp"].replace("Z", "+00:00")),
                          updated=changed, labels=labels or None, annotations=ann)),
        ("subsets", subsets or None),
    ])
    return ctx.add(md["namespace"], "endpoints", obj)


def _target(sp: Obj, pod: Obj) -> int:
    t = sp["targetPort"]
    if isinstance(t, int):
        return t
    for c in pod["spec"]["containers"]:
        for p in c.get("ports", []):
            if p.get("name") == t:
                return p["containerPort"]
    return sp["port"]


# -- config, storage, policy -----------------------------------------------------
def configmap(ctx: Ctx, ns: str, name: str, data: dict[str, str], *, created: datetime,
              labels: dict[str, str] | None = None,
              annotations: dict[str, str] | None = None) -> Obj:
    obj = {"metadata": meta(ctx, name, ns, created, labels=labels, annotations=annotations),
           "data": sorted_map(data)}
    return ctx.add(ns, "configmaps", obj)


def secret(ctx: Ctx, ns: str, name: str, keys: list[str], *, created: datetime,
           kind: str = "Opaque", labels: dict[str, str] | None = None,
           annotations: dict[str, str] | None = None) -> Obj:
    """A Secret with its values removed (keys kept, each value the empty string)."""
    obj = {"metadata": meta(ctx, name, ns, created, labels=labels, annotations=annotations),
           "data": dict.fromkeys(sorted(keys), ""), "type": kind}
    return ctx.add(ns, "secrets", obj)


def service_account(ctx: Ctx, ns: str, name: str, *, created: datetime,
                    labels: dict[str, str] | None = None,
                    annotations: dict[str, str] | None = None) -> Obj:
    obj = {"metadata": meta(ctx, name, ns, created, labels=labels, annotations=annotations)}
    return ctx.add(ns, "serviceaccounts", obj)


def rule(groups: list[str], resources: list[str], verbs: list[str]) -> Obj:
    return {"verbs": verbs, "apiGroups": groups, "resources": resources}


def subject(kind: str, name: str, namespace: str | None = None) -> Obj:
    s = {"kind": kind, "name": name}
    if kind == "Group" or kind == "User":
        s = {"kind": kind, "apiGroup": "rbac.authorization.k8s.io", "name": name}
    if namespace:
        s["namespace"] = namespace
    return s
