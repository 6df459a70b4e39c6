"""core/v1 Events with the wording of the 1.33 kubelet, scheduler and controllers.

Two shapes exist side by side in a real cluster and both are reproduced:
the kubelet and kube-controller-manager still write through the old
recorder (firstTimestamp/lastTimestamp/count, `eventTime: null`), while the
scheduler writes through events.k8s.io (eventTime, series, action, and null
first/last timestamps). Names are `<object>.<hex of UnixNano>` like
client-go makes them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ._common import Ctx, Obj, mts, ts
from ._pods import ordered

_KIND_API = {
    "Pod": "v1", "Node": "v1", "Service": "v1", "PersistentVolumeClaim": "v1",
    "Deployment": "apps/v1", "ReplicaSet": "apps/v1", "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1", "Job": "batch/v1", "CronJob": "batch/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2", "Endpoints": "v1",
}


def _ref(obj: Obj, kind: str, rv: str, field_path: str | None) -> Obj:
    md = obj["metadata"]
    return ordered([
        ("kind", kind), ("namespace", md.get("namespace")), ("name", md["name"]),
        ("uid", md["uid"]), ("apiVersion", _KIND_API[kind]), ("resourceVersion", rv),
        ("fieldPath", field_path),
    ])


def _name(ctx: Ctx, obj_name: str, first: datetime) -> str:
    """client-go's `<name>.<UnixNano hex>`: sorting names sorts an object's events by time."""
    whole = int(first.replace(microsecond=0, tzinfo=UTC).timestamp())
    nanos = whole * 10**9 + first.microsecond * 1000 + ctx.rng.randrange(1000)
    if not first.microsecond:
        nanos += ctx.rng.randrange(10**9 - 1000)
    return f"{obj_name}.{nanos:x}"


def _ref_rv(ctx: Ctx, obj: Obj, first: datetime) -> str:
    """The object's resourceVersion as the recorder saw it: never newer than the event."""
    current = int(obj["metadata"]["resourceVersion"])
    floor = 412 + int((first - ctx.rv.origin).total_seconds() * 0.61)
    return str(min(current, max(floor, 1)))


def event(
    ctx: Ctx,
    obj: Obj,
    kind: str,
    reason: str,
    message: str,
    *,
    first: datetime,
    last: datetime | None = None,
    count: int = 1,
    warning: bool = False,
    component: str = "kubelet",
    field_path: str | None = None,
) -> Obj:
    """An Event from the old recorder (kubelet, controller-manager)."""
    last = last or first
    host = "minikube" if component == "kubelet" else None
    md = obj["metadata"]
    ns = md.get("namespace") or "default"
    ev = {
        "metadata": {
            "name": _name(ctx, md["name"], first),
            "namespace": ns,
            "uid": ctx.uid(),
            "resourceVersion": ctx.rv.at(last),
            "creationTimestamp": ts(first),
        },
        "involvedObject": _ref(obj, kind, _ref_rv(ctx, obj, first), field_path),
        "reason": reason,
        "message": message,
        "source": ordered([("component", component), ("host", host)]),
        "firstTimestamp": ts(first),
        "lastTimestamp": ts(last),
        "count": count,
        "type": "Warning" if warning else "Normal",
        "eventTime": None,
        "reportingComponent": component,
        "reportingInstance": host or "",
    }
    ctx.add(ns, "events", ev)
    return ev


def scheduler_event(ctx: Ctx, pod: Obj, reason: str, message: str, *, at: datetime,
                    count: int = 1, last: datetime | None = None) -> Obj:
    """An Event written by kube-scheduler through events.k8s.io/v1."""
    md = pod["metadata"]
    ev = ordered([
        ("metadata", {
            "name": _name(ctx, md["name"], at),
            "namespace": md["namespace"],
            "uid": ctx.uid(),
            "resourceVersion": ctx.rv.at(last or at),
            "creationTimestamp": ts(at),
        }),
        ("involvedObject", _ref(pod, "Pod", _ref_rv(ctx, pod, at), None)),
        ("reason", reason),
        ("message", message),
        ("source", {}),
    ])
    ev["firstTimestamp"] = None
    ev["lastTimestamp"] = None
    ev["type"] = "Normal" if reason == "Scheduled" else "Warning"
    ev["eventTime"] = mts(at)
    if count > 1 and last:
        ev["series"] = {"count": count, "lastObservedTime": mts(last)}
    ev["action"] = "Binding" if reason == "Scheduled" else "Scheduling"
    ev["reportingComponent"] = "default-scheduler"
    ev["reportingInstance"] = "default-scheduler-minikube"
    ctx.add(md["namespace"], "events", ev)
    return ev


def cpath(name: str) -> str:
    return f"spec.containers{{{name}}}"


def pod_ref_text(pod: Obj) -> str:
    """format.Pod(): name_namespace(uid), as kubelet messages print a pod."""
    md = pod["metadata"]
    return f"{md['name']}_{md['namespace']}({md['uid']})"


def start_events(ctx: Ctx, pod: Obj, at: datetime, *, pulled: dict[str, str] | None = None,
                 scheduled: bool = True) -> datetime:
    """Scheduled, then per container Pulled/Created/Started, as a fresh pod logs them.

    `pulled` maps a container to the text of a fresh pull ("1.234s|123456789");
    containers not in it had their image on the node already.
    Returns the time the last container started.
    """
    t = at
    if scheduled:
        md = pod["metadata"]
        scheduler_event(ctx, pod, "Scheduled",
                        f"Successfully assigned {md['namespace']}/{md['name']} to "
                        f"{pod['spec'].get('nodeName', 'minikube')}", at=at)
    for c in pod["spec"]["containers"]:
        t = t + timedelta(milliseconds=ctx.rng.randrange(300, 900))
        image, fp = c["image"], cpath(c["name"])
        if pulled and c["name"] in pulled:
            secs, size = pulled[c["name"]].split("|")
            event(ctx, pod, "Pod", "Pulling", f'Pulling image "{image}"', first=t, field_path=fp)
            t += timedelta(seconds=float(secs))
            event(ctx, pod, "Pod", "Pulled",
                  f'Successfully pulled image "{image}" in {secs}s ({secs}s including '
                  f"waiting). Image size: {size} bytes.", first=t, field_path=fp)
        else:
            event(ctx, pod, "Pod", "Pulled",
                  f'Container image "{image}" already present on machine', first=t,
                  field_path=fp)
        event(ctx, pod, "Pod", "Created", f"Created container: {c['name']}", first=t,
              field_path=fp)
        t += timedelta(milliseconds=ctx.rng.randrange(150, 600))
        event(ctx, pod, "Pod", "Started", f"Started container {c['name']}", first=t,
              field_path=fp)
    return t
