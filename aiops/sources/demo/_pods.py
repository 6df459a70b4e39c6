"""Pods as the API server stores them: specs after defaulting and admission,
and the status a kubelet (cri-dockerd runtime) reports.

A pod template is what a controller holds (defaults applied, nothing else);
`pod_from_template` adds what admission adds to a real pod: the projected
`kube-api-access-*` token volume, the default service account, the
not-ready/unreachable tolerations, priority and service links.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ._common import NODE_IP, Ctx, Obj, meta, sorted_map, ts

SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"

try:  # a JSON round trip copies these plain trees several times faster than deepcopy
    import orjson

    def _clone(obj: Obj) -> Obj:
        return orjson.loads(orjson.dumps(obj))
except ImportError:  # pragma: no cover
    _clone: Callable[[Obj], Obj] = copy.deepcopy  # type: ignore[no-redef]

_SPEC_ORDER = (
    "volumes", "initContainers", "containers", "restartPolicy", "terminationGracePeriodSeconds",
    "activeDeadlineSeconds", "dnsPolicy", "nodeSelector", "serviceAccountName", "serviceAccount",
    "automountServiceAccountToken", "nodeName", "hostNetwork", "hostPID", "hostIPC",
    "securityContext", "imagePullSecrets", "hostname", "subdomain", "affinity", "schedulerName",
    "tolerations", "priorityClassName", "priority", "enableServiceLinks", "preemptionPolicy",
)
_PRIORITY = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}


def ordered(pairs: list[tuple[str, Any]]) -> Obj:
    """A dict of the pairs whose value is set: Go's omitempty, keeping field order."""
    return {k: v for k, v in pairs if v is not None}


# -- containers ------------------------------------------------------------
def resources(requests: dict[str, str] | None = None,
              limits: dict[str, str] | None = None) -> Obj:
    """corev1.ResourceRequirements (limits before requests, keys sorted)."""
    return ordered([("limits", sorted_map(limits) if limits else None),
                    ("requests", sorted_map(requests) if requests else None)])


def http_probe(path: str, port: int | str, *, initial: int | None = None, period: int = 10,
               timeout: int = 1, failure: int = 3) -> Obj:
    return ordered([
        ("httpGet", {"path": path, "port": port, "scheme": "HTTP"}),
        ("initialDelaySeconds", initial), ("timeoutSeconds", timeout),
        ("periodSeconds", period), ("successThreshold", 1), ("failureThreshold", failure),
    ])


def exec_probe(command: list[str], *, initial: int | None = None, period: int = 10,
               timeout: int = 1, failure: int = 3) -> Obj:
    return ordered([
        ("exec", {"command": command}), ("initialDelaySeconds", initial),
        ("timeoutSeconds", timeout), ("periodSeconds", period), ("successThreshold", 1),
        ("failureThreshold", failure),
    ])



def port(number: int, name: str | None = None, protocol: str = "TCP",
         host_port: int | None = None) -> Obj:
    return ordered([("name", name), ("hostPort", host_port), ("containerPort", number),
                    ("protocol", protocol)])


def env(name: str, value: str | None = None, *, secret: tuple[str, str] | None = None,
        field_path: str | None = None) -> Obj:
    """An EnvVar: a literal, a secretKeyRef (name, key) or a fieldRef."""
    if secret:
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret[0], "key": secret[1]}}}
    if field_path:
        return {"name": name,
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": field_path}}}
    return {"name": name, "value": value if value is not None else ""}


def mount(name: str, path: str, *, read_only: bool = False, sub_path: str | None = None) -> Obj:
    return ordered([("name", name), ("readOnly", True if read_only else None),
                    ("mountPath", path), ("subPath", sub_path)])


def container(
    name: str,
    image: str,
    *,
    command: list[str] | None = None,
    args: list[str] | None = None,
    ports: list[Obj] | None = None,
    env_from: list[Obj] | None = None,
    env_vars: list[Obj] | None = None,
    res: Obj | None = None,
    mounts: list[Obj] | None = None,
    liveness: Obj | None = None,
    readiness: Obj | None = None,
    startup: Obj | None = None,
    pull_policy: str | None = None,
    security: Obj | None = None,
) -> Obj:
    """corev1.Container with the API defaults (message path/policy, pull policy)."""
    if pull_policy is None:
        tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else "latest"
        pull_policy = "Always" if tag == "latest" else "IfNotPresent"
    return ordered([
        ("name", name), ("image", image), ("command", command), ("args", args),
        ("ports", ports), ("envFrom", env_from), ("env", env_vars),
        ("resources", res if res is not None else {}), ("volumeMounts", mounts),
        ("livenessProbe", liveness), ("readinessProbe", readiness), ("startupProbe", startup),
        ("terminationMessagePath", "/dev/termination-log"),
        ("terminationMessagePolicy", "File"), ("imagePullPolicy", pull_policy),
        ("securityContext", security),
    ])


def pod_spec(
    containers: list[Obj],
    *,
    volumes: list[Obj] | None = None,
    restart: str = "Always",
    grace: int = 30,
    dns: str = "ClusterFirst",
    node_selector: dict[str, str] | None = None,
    service_account: str | None = None,
    host_network: bool | None = None,
    security: Obj | None = None,
    hostname: str | None = None,
    subdomain: str | None = None,
    affinity: Obj | None = None,
    tolerations: list[Obj] | None = None,
    priority_class: str | None = None,
) -> Obj:
    """A defaulted PodSpec as a controller's template holds it."""
    return ordered([
        ("volumes", volumes), ("containers", containers), ("restartPolicy", restart),
        ("terminationGracePeriodSeconds", grace), ("dnsPolicy", dns),
        ("nodeSelector", sorted_map(node_selector) if node_selector else None),
        ("serviceAccountName", service_account), ("serviceAccount", service_account),
        ("hostNetwork", host_network), ("securityContext", security or {}),
        ("hostname", hostname), ("subdomain", subdomain), ("affinity", affinity),
        ("schedulerName", "default-scheduler"), ("tolerations", tolerations),
        ("priorityClassName", priority_class),
    ])


def template(labels: dict[str, str], spec: Obj, annotations: dict[str, str] | None = None) -> Obj:
    """A PodTemplateSpec; its zero creationTimestamp prints as null, as in real dumps."""
    md: Obj = {"creationTimestamp": None, "labels": sorted_map(labels)}
    if annotations:
        md["annotations"] = sorted_map(annotations)
    return {"metadata": md, "spec": spec}


def api_access_volume(name: str) -> Obj:
    """The projected volume the ServiceAccount admission plugin adds to every pod."""
    return {
        "name": name,
        "projected": {
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt",
                               "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                    "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
            "defaultMode": 420,
        },
    }


DEFAULT_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
]


def pod_from_template(ctx: Ctx, tspec: Obj, *, node: str | None,
                      extra_tolerations: list[Obj] | None = None,
                      affinity: Obj | None = None) -> Obj:
    """The spec admission and scheduling make of a template for one pod."""
    spec = _clone(tspec)
    token = f"kube-api-access-{ctx.suffix(5)}"
    spec["volumes"] = [*spec.get("volumes", []), api_access_volume(token)]
    for c in spec["containers"]:
        c["volumeMounts"] = [*c.get("volumeMounts", []), mount(token, SA_MOUNT, read_only=True)]
        _reorder_container(c)
    sa = spec.get("serviceAccountName") or "default"
    spec["serviceAccountName"] = spec["serviceAccount"] = sa
    if node:
        spec["nodeName"] = node
    # The DaemonSet controller adds its tolerations first; DefaultTolerationSeconds
    # then adds not-ready/unreachable unless something already tolerates them.
    tol = [*(spec.get("tolerations") or []), *(extra_tolerations or [])]
    tolerates_all = any("key" not in t and t.get("operator") == "Exists" for t in tol)
    keys = {t.get("key") for t in tol}
    if not tolerates_all:
        tol += [t for t in DEFAULT_TOLERATIONS if t["key"] not in keys]
    spec["tolerations"] = tol
    if affinity:
        spec["affinity"] = affinity
    spec["priority"] = _PRIORITY.get(spec.get("priorityClassName", ""), 0)
    spec["enableServiceLinks"] = True
    spec["preemptionPolicy"] = "PreemptLowerPriority"
    return {k: spec[k] for k in _SPEC_ORDER if k in spec}


_CONTAINER_ORDER = (
    "name", "image", "command", "args", "ports", "envFrom", "env", "resources", "volumeMounts",
    "livenessProbe", "readinessProbe", "startupProbe", "terminationMessagePath",
    "terminationMessagePolicy", "imagePullPolicy", "securityContext",
)


def _reorder_container(c: Obj) -> None:
    items = {k: c[k] for k in _CONTAINER_ORDER if k in c}
    c.clear()
    c.update(items)


# -- status ----------------------------------------------------------------
def running(started: datetime) -> Obj:
    return {"running": {"startedAt": ts(started)}}


def waiting(reason: str, message: str | None = None) -> Obj:
    return {"waiting": ordered([("reason", reason), ("message", message)])}


def terminated(exit_code: int, reason: str, started: datetime, finished: datetime,
               container_id: str, message: str | None = None) -> Obj:
    return {"terminated": ordered([
        ("exitCode", exit_code), ("reason", reason), ("message", message),
        ("startedAt", ts(started)), ("finishedAt", ts(finished)), ("containerID", container_id),
    ])}


@dataclass
class Run:
    """What the kubelet reports for one container: its state now and before."""

    state: Obj
    ready: bool = False
    restarts: int = 0
    last: Obj = field(default_factory=dict)
    created: bool = True  # a container exists in the runtime (false while pulling)
    container_id: str | None = None


def _status_mounts(c: Obj) -> list[Obj]:
    out = []
    for m in c.get("volumeMounts", []):
        s = {"name": m["name"], "mountPath": m["mountPath"]}
        if m.get("readOnly"):
            s |= {"readOnly": True, "recursiveReadOnly": "Disabled"}
        out.append(s)
    return out


def container_status(ctx: Ctx, c: Obj, run: Run) -> Obj:
    """corev1.ContainerStatus as kubelet 1.33 fills it for a docker runtime."""
    created = run.created
    cid = run.container_id or (ctx.container_id() if created else None)
    if "terminated" in run.state and created:
        run.state["terminated"]["containerID"] = cid
    started: bool | None = "running" in run.state
    return ordered([
        ("name", c["name"]), ("state", run.state), ("lastState", run.last),
        ("ready", run.ready), ("restartCount", run.restarts), ("image", c["image"]),
        ("imageID", ctx.image_id(c["image"]) if created else ""),
        ("containerID", cid), ("started", started),
        ("resources", c["resources"] if created and c["resources"] else None),
        ("volumeMounts", _status_mounts(c) if created else None),
    ])


def condition(kind: str, status: bool, at: datetime, reason: str | None = None,
              message: str | None = None) -> Obj:
    # lastProbeTime is a metav1.Time struct: omitempty cannot drop it, so it prints null
    cond: Obj = {"type": kind, "status": "True" if status else "False", "lastProbeTime": None,
                 "lastTransitionTime": ts(at)}
    return cond | ordered([("reason", reason), ("message", message)])


def qos_class(containers: list[Obj]) -> str:
    """Guaranteed, Burstable or BestEffort from requests/limits, as the API computes it."""
    any_set, guaranteed = False, True
    for c in containers:
        req = c.get("resources", {}).get("requests", {})
        lim = c.get("resources", {}).get("limits", {})
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or req.get(r, lim[r]) != lim[r]:
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


@dataclass
class PodPlan:
    """Everything about one pod's life the status is computed from."""

    created: datetime
    runs: list[Run]
    node: str | None = "minikube"
    ip: str | None = None
    phase: str = "Running"
    host_network: bool = False
    unschedulable: str | None = None  # scheduler message when Pending
    finished: datetime | None = None  # completed/failed pods
    ready_at: datetime | None = None
    not_ready_since: datetime | None = None
    reason: str | None = None

    def started(self) -> datetime:
        return self.created + timedelta(seconds=1)


def pod_status(ctx: Ctx, spec: Obj, plan: PodPlan) -> Obj:
    """PodStatus: conditions, IPs, container statuses and QoS consistent with `plan`."""
    qos = qos_class(spec["containers"])
    if plan.unschedulable:
        return ordered([
            ("phase", "Pending"),
            ("conditions", [condition("PodScheduled", False, plan.created + timedelta(
                seconds=1), "Unschedulable", plan.unschedulable)]),
            ("qosClass", qos),
        ])
    t0 = plan.created
    sched, init_at = t0, t0 + timedelta(seconds=1)
    sandbox_at = t0 + timedelta(seconds=2)
    statuses = [container_status(ctx, c, r) for c, r in zip(spec["containers"], plan.runs,
                                                            strict=True)]
    unready = [s["name"] for s in statuses if not s["ready"]]
    conds: list[Obj]
    if plan.phase in ("Succeeded", "Failed"):
        why = "PodCompleted" if plan.phase == "Succeeded" else "PodFailed"
        done = plan.finished or t0
        conds = [condition("PodReadyToStartContainers", False, done + timedelta(seconds=1)),
                 condition("Initialized", True, init_at, why if plan.phase == "Succeeded"
                           else None),
                 condition("Ready", False, done, why),
                 condition("ContainersReady", False, done, why)]
    elif unready:
        msg = f"containers with unready status: [{' '.join(unready)}]"
        since = plan.not_ready_since or sandbox_at
        conds = [condition("PodReadyToStartContainers", True, sandbox_at),
                 condition("Initialized", True, init_at),
                 condition("Ready", False, since, "ContainersNotReady", msg),
                 condition("ContainersReady", False, since, "ContainersNotReady", msg)]
    else:
        ready_at = plan.ready_at or t0 + timedelta(seconds=4)
        conds = [condition("PodReadyToStartContainers", True, sandbox_at),
                 condition("Initialized", True, init_at),
                 condition("Ready", True, ready_at),
                 condition("ContainersReady", True, ready_at)]
    conds.append(condition("PodScheduled", True, sched))
    host = ctx.node_ips.get(plan.node or "", NODE_IP)
    ip = host if plan.host_network else plan.ip
    return ordered([
        ("phase", plan.phase), ("conditions", conds), ("reason", plan.reason),
        ("hostIP", host), ("hostIPs", [{"ip": host}]),
        ("podIP", ip), ("podIPs", [{"ip": ip}] if ip else None),
        ("startTime", ts(t0)),
        ("containerStatuses", statuses), ("qosClass", qos),
    ])


def make_pod(ctx: Ctx, ns: str, name: str, spec: Obj, plan: PodPlan, *,
             labels: dict[str, str], owner: Obj | None = None,
             generate_name: str | None = None, annotations: dict[str, str] | None = None,
             updated: datetime | None = None, finalizers: list[str] | None = None) -> Obj:
    """A full Pod object (metadata, spec, status) registered for pods.json."""
    md = meta(ctx, name, ns, plan.created, updated=updated or last_change(plan),
              generate_name=generate_name, labels=labels, annotations=annotations,
              owners=[owner] if owner else None, finalizers=finalizers)
    pod = {"metadata": md, "spec": spec, "status": pod_status(ctx, spec, plan)}
    ctx.add(ns, "pods", pod)
    return pod


def last_change(plan: PodPlan) -> datetime:
    """When the kubelet last wrote this pod's status (the latest time in its story)."""
    times = [plan.created]
    for r in plan.runs:
        for st in (r.state, r.last):
            for v in st.values():
                for k in ("startedAt", "finishedAt"):
                    if k in v:
                        times.append(_parse(v[k]))
    if plan.finished:
        times.append(plan.finished)
    if plan.not_ready_since:
        times.append(plan.not_ready_since)
    return max(times)


def _parse(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))
