"""Small, realistic Kubernetes objects for the scheduling, storage and workloads
rule tests (shapes as the 1.28-1.33 API serves them), and a JSON-patch applier
to check that an Action's inverse undoes its patch."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from jsonpatch import apply_patch

from aiops.model import ClusterState

Obj = dict[str, Any]
NOW = datetime(2026, 11, 23, 8, 0, 0, tzinfo=UTC)
NS = "shop"


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def ts(minutes: float) -> str:
    return ago(minutes).strftime("%Y-%m-%dT%H:%M:%SZ")


def mts(minutes: float) -> str:
    return ago(minutes).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def owner(kind: str, name: str) -> list[Obj]:
    api = "batch/v1" if kind in ("Job", "CronJob") else "apps/v1"
    return [{"apiVersion": api, "kind": kind, "name": name, "uid": f"uid-{name}",
             "controller": True, "blockOwnerDeletion": True}]


def meta(name: str, ns: str | None = NS, *, created: float = 60, labels: Obj | None = None,
         annotations: Obj | None = None, owners: list[Obj] | None = None) -> Obj:
    m: Obj = {"name": name, "uid": f"uid-{name}", "resourceVersion": "1234",
              "creationTimestamp": ts(created)}
    if ns:
        m["namespace"] = ns
    if labels:
        m["labels"] = labels
    if annotations:
        m["annotations"] = annotations
    if owners:
        m["ownerReferences"] = owners
    return m


# -- cluster-scoped ---------------------------------------------------------------------------
def node(name: str = "minikube", *, cpu: str = "4", memory: str = "8Gi",
         labels: Obj | None = None, taints: list[Obj] | None = None,
         unschedulable: bool = False, pods: str = "110") -> Obj:
    spec: Obj = {"podCIDR": "10.244.0.0/24"}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    base = {"kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux"}
    return {"kind": "Node", "apiVersion": "v1",
            "metadata": meta(name, None, created=60 * 24 * 40, labels={**base, **(labels or {})}),
            "spec": spec,
            "status": {"capacity": {"cpu": cpu, "memory": memory, "pods": pods},
                       "allocatable": {"cpu": cpu, "memory": memory, "pods": pods,
                                       "ephemeral-storage": "95Gi"},
                       "conditions": [{"type": "Ready", "status": "True",
                                       "reason": "KubeletReady"}]}}


def storageclass(name: str = "standard", *, default: bool = False,
                 binding: str = "Immediate",
                 provisioner: str = "k8s.io/minikube-hostpath") -> Obj:
    ann = {"storageclass.kubernetes.io/is-default-class": "true"} if default else None
    return {"kind": "StorageClass", "apiVersion": "storage.k8s.io/v1",
            "metadata": meta(name, None, created=60 * 24 * 40, annotations=ann),
            "provisioner": provisioner, "reclaimPolicy": "Delete",
            "volumeBindingMode": binding}


# -- pods --------------------------------------------------------------------------------------
def container(name: str = "app", image: str = "registry.example.com/shop/web:1.4.0", *,
              requests: Obj | None = None, limits: Obj | None = None) -> Obj:
    c: Obj = {"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
              "terminationMessagePath": "/dev/termination-log",
              "terminationMessagePolicy": "File"}
    res: Obj = {}
    if limits:
        res["limits"] = limits
    if requests:
        res["requests"] = requests
    c["resources"] = res
    return c


DEFAULT_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
]


def pod_spec(containers: list[Obj] | None = None, **extra: Any) -> Obj:
    spec: Obj = {"containers": containers or [container()], "restartPolicy": "Always",
                 "dnsPolicy": "ClusterFirst", "serviceAccountName": "default",
                 "schedulerName": "default-scheduler"}
    spec.update({k: v for k, v in extra.items() if v is not None})
    return spec


def pending_pod(name: str, message: str, *, ns: str = NS, owners: list[Obj] | None = None,
                containers: list[Obj] | None = None, minutes: float = 30,
                with_condition: bool = True, **spec_extra: Any) -> Obj:
    """A pod the scheduler could not place."""
    conds = [{"type": "PodScheduled", "status": "False", "lastProbeTime": None,
              "lastTransitionTime": ts(minutes), "reason": "Unschedulable",
              "message": message}] if with_condition else []
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": meta(name, ns, created=minutes, owners=owners,
                             labels={"app": name.split("-")[0]}),
            "spec": pod_spec(containers, tolerations=spec_extra.pop(
                "tolerations", copy.deepcopy(DEFAULT_TOLERATIONS)), **spec_extra),
            "status": {"phase": "Pending", "conditions": conds, "qosClass": "Burstable"}}


def running_pod(name: str, *, ns: str = NS, owners: list[Obj] | None = None,
                ready: bool = True, statuses: list[Obj] | None = None,
                containers: list[Obj] | None = None, node_name: str = "minikube",
                minutes: float = 60, phase: str = "Running", labels: Obj | None = None,
                **spec_extra: Any) -> Obj:
    flag = "True" if ready else "False"
    conds = [{"type": t, "status": s, "lastTransitionTime": ts(minutes)} for t, s in
             (("Initialized", "True"), ("Ready", flag), ("ContainersReady", flag),
              ("PodScheduled", "True"))]
    cs = containers or [container()]
    sts = statuses if statuses is not None else [
        {"name": c["name"], "ready": ready, "restartCount": 0, "image": c["image"],
         "state": {"running": {"startedAt": ts(minutes)}}} for c in cs]
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": meta(name, ns, created=minutes, owners=owners,
                             labels=labels or {"app": name.split("-")[0]}),
            "spec": pod_spec(cs, nodeName=node_name, **spec_extra),
            "status": {"phase": phase, "conditions": conds, "hostIP": "192.168.49.2",
                       "podIP": "10.244.0.17", "startTime": ts(minutes),
                       "containerStatuses": sts}}


def waiting(name: str, reason: str, message: str = "", *, restarts: int = 0,
            last: Obj | None = None, image: str = "registry.example.com/shop/web:1.4.1") -> Obj:
    st: Obj = {"name": name, "ready": False, "restartCount": restarts, "image": image,
               "imageID": "", "started": False,
               "state": {"waiting": {"reason": reason, **({"message": message}
                                                          if message else {})}}}
    if last:
        st["lastState"] = {"terminated": last}
    return st


def terminated(name: str, code: int, reason: str = "Error", *, finished: float = 10,
               started: float = 11) -> Obj:
    return {"name": name, "ready": False, "restartCount": 0, "image": "busybox:1.36",
            "started": False,
            "state": {"terminated": {"exitCode": code, "reason": reason,
                                     "startedAt": ts(started), "finishedAt": ts(finished),
                                     "containerID": "containerd://abc"}}}


# -- events ------------------------------------------------------------------------------------
def event(obj: Obj, reason: str, message: str, *, type: str = "Warning", count: int = 1,
          first: float = 30, last: float = 1, component: str = "kubelet") -> Obj:
    """An Event from the old recorder (kubelet, controller-manager)."""
    m = obj["metadata"]
    return {"kind": "Event", "apiVersion": "v1",
            "metadata": {"name": f"{m['name']}.{reason.lower()}{count}",
                         "namespace": m.get("namespace") or "default",
                         "creationTimestamp": ts(first)},
            "involvedObject": {"kind": obj["kind"], "namespace": m.get("namespace"),
                               "name": m["name"], "uid": m.get("uid"),
                               "apiVersion": obj.get("apiVersion")},
            "reason": reason, "message": message, "source": {"component": component},
            "firstTimestamp": ts(first), "lastTimestamp": ts(last), "count": count,
            "type": type, "eventTime": None, "reportingComponent": component}


def sched_event(pod: Obj, message: str, *, at: float = 30, last: float = 2,
                count: int = 12) -> Obj:
    """A FailedScheduling event written by kube-scheduler through events.k8s.io."""
    m = pod["metadata"]
    return {"kind": "Event", "apiVersion": "v1",
            "metadata": {"name": f"{m['name']}.sched", "namespace": m["namespace"],
                         "creationTimestamp": ts(at)},
            "involvedObject": {"kind": "Pod", "namespace": m["namespace"], "name": m["name"],
                               "uid": m["uid"], "apiVersion": "v1"},
            "reason": "FailedScheduling", "message": message, "source": {},
            "firstTimestamp": None, "lastTimestamp": None, "type": "Warning",
            "eventTime": mts(at), "series": {"count": count, "lastObservedTime": mts(last)},
            "action": "Scheduling", "reportingComponent": "default-scheduler",
            "reportingInstance": "default-scheduler-minikube"}


# -- controllers -----------------------------------------------------------------------------
def template(containers: list[Obj], labels: Obj | None = None, **spec_extra: Any) -> Obj:
    return {"metadata": {"labels": labels or {"app": "web"}},
            "spec": pod_spec(copy.deepcopy(containers), **spec_extra)}


def deployment(name: str = "web", *, replicas: int = 2, containers: list[Obj] | None = None,
               revision: int = 1, available: int | None = None, ready: int | None = None,
               conditions: list[Obj] | None = None, **spec_extra: Any) -> Obj:
    avail = replicas if available is None else available
    status: Obj = {"observedGeneration": revision, "replicas": replicas,
                   "updatedReplicas": replicas,
                   "readyReplicas": avail if ready is None else ready,
                   "availableReplicas": avail or None,
                   "unavailableReplicas": (replicas - avail) or None,
                   "conditions": conditions or []}
    status = {k: v for k, v in status.items() if v is not None}
    return {"kind": "Deployment", "apiVersion": "apps/v1",
            "metadata": meta(name, created=60 * 24 * 10, labels={"app": name},
                             annotations={"deployment.kubernetes.io/revision": str(revision)}),
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": template(containers or [container()], {"app": name},
                                          **spec_extra),
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {
                         "maxUnavailable": "25%", "maxSurge": "25%"}},
                     "progressDeadlineSeconds": 600},
            "status": status}


def condition(ctype: str, status: str, reason: str, message: str, minutes: float = 20) -> Obj:
    return {"type": ctype, "status": status, "lastUpdateTime": ts(minutes),
            "lastTransitionTime": ts(minutes), "reason": reason, "message": message}


def replicaset(dep: Obj, pod_hash: str, *, revision: int, containers: list[Obj],
               replicas: int, ready: int = 0, created: float = 60,
               conditions: list[Obj] | None = None) -> Obj:
    name = dep["metadata"]["name"]
    status: Obj = {"replicas": replicas, "observedGeneration": 1}
    if ready:
        status.update(readyReplicas=ready, availableReplicas=ready,
                      fullyLabeledReplicas=replicas)
    if conditions:
        status["conditions"] = conditions
    labels = {"app": name, "pod-template-hash": pod_hash}
    return {"kind": "ReplicaSet", "apiVersion": "apps/v1",
            "metadata": meta(f"{name}-{pod_hash}", created=created, labels=labels,
                             owners=owner("Deployment", name),
                             annotations={"deployment.kubernetes.io/revision": str(revision)}),
            "spec": {"replicas": replicas,
                     "selector": {"matchLabels": labels},
                     "template": template(containers, labels)},
            "status": status}


def pvc(name: str = "data", *, ns: str = NS, sc: str | None = "standard",
        phase: str = "Pending", created: float = 30) -> Obj:
    spec: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {
        "storage": "1Gi"}}, "volumeMode": "Filesystem"}
    if sc is not None:
        spec["storageClassName"] = sc
    if phase == "Bound":
        spec["volumeName"] = f"pvc-{name}"
    return {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
            "metadata": meta(name, ns, created=created), "spec": spec,
            "status": {"phase": phase}}


def claim_volume(claim: str, name: str = "data") -> Obj:
    return {"name": name, "persistentVolumeClaim": {"claimName": claim}}


def job(name: str, *, owners: list[Obj] | None = None, conditions: list[Obj] | None = None,
        failed: int = 0, succeeded: int = 0, created: float = 60,
        containers: list[Obj] | None = None, backoff: int = 2) -> Obj:
    status: Obj = {"startTime": ts(created)}
    if failed:
        status["failed"] = failed
    if succeeded:
        status["succeeded"] = succeeded
    if conditions:
        status["conditions"] = conditions
    cs = containers or [container("backup", "postgres:16", requests={"cpu": "100m"})]
    return {"kind": "Job", "apiVersion": "batch/v1",
            "metadata": meta(name, created=created, owners=owners,
                             labels={"batch.kubernetes.io/job-name": name}),
            "spec": {"backoffLimit": backoff, "completions": 1, "parallelism": 1,
                     "template": template(cs, {"batch.kubernetes.io/job-name": name},
                                          restartPolicy="Never")},
            "status": status}


def job_condition(ctype: str, reason: str, message: str, minutes: float) -> Obj:
    return {"type": ctype, "status": "True", "lastProbeTime": ts(minutes),
            "lastTransitionTime": ts(minutes), "reason": reason, "message": message}


def cronjob(name: str, *, last_schedule: float | None = 5, last_success: float | None = None,
            suspend: bool = False, active: list[Obj] | None = None) -> Obj:
    status: Obj = {}
    if last_schedule is not None:
        status["lastScheduleTime"] = ts(last_schedule)
    if last_success is not None:
        status["lastSuccessfulTime"] = ts(last_success)
    if active:
        status["active"] = active
    cs = [container("backup", "postgres:16", requests={"cpu": "100m"})]
    return {"kind": "CronJob", "apiVersion": "batch/v1",
            "metadata": meta(name, created=60 * 24 * 20),
            "spec": {"schedule": "0 * * * *", "suspend": suspend, "concurrencyPolicy": "Forbid",
                     "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                     "jobTemplate": {"spec": {"backoffLimit": 2, "template": template(
                         cs, {"app": name}, restartPolicy="OnFailure")}}},
            "status": status}


def state(*objs: Obj, logs: dict | None = None, previous_logs: dict | None = None
          ) -> ClusterState:
    objects: dict[str, list[Obj]] = {}
    for o in objs:
        objects.setdefault(o["kind"], []).append(o)
    return ClusterState(source="test", objects=objects, logs=logs or {},
                        previous_logs=previous_logs or {}, captured_at=NOW)


# -- JSON patch (RFC 6902 add/remove/replace), to check Action inverses ----------------------------

def roundtrip(obj: Obj, action: Any) -> Obj:
    """Apply the action's patch, check the inverse restores `obj`; return the patched one."""
    patched = apply_patch(obj, action.patch)
    assert patched != obj
    assert apply_patch(patched, action.inverse) == obj
    return patched
