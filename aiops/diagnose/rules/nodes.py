"""Node rules: a node that stopped being Ready, and a node under resource pressure.

Both explain many pod symptoms at once (pods on a NotReady node go unready and
are evicted after the unreachable/not-ready toleration; a node under memory
pressure evicts pods), so they rank first and name the pods they affect.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from aiops.diagnose.actions import manual
from aiops.diagnose.context import (
    Context,
    Obj,
    earliest,
    event_evidence,
    event_first_seen,
    md,
    parse_time,
)
from aiops.diagnose.finding import Evidence, Finding, Remediation
from aiops.diagnose.registry import rule
from aiops.diagnose.rules._common import as_dict as _dict
from aiops.diagnose.rules._common import as_list as _list
from aiops.quantity import format_bytes, format_cores, to_float

FAMILY = "nodes"
DOCS_NODE = "https://kubernetes.io/docs/concepts/architecture/nodes/#condition"
DOCS_PRESSURE = ("https://kubernetes.io/docs/concepts/scheduling-eviction/"
                 "node-pressure-eviction/")
NOT_READY_TAINTS = ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")
PRESSURES = {  # condition -> (resource it is about, taint the node controller adds)
    "MemoryPressure": ("memory", "node.kubernetes.io/memory-pressure"),
    "DiskPressure": ("ephemeral-storage", "node.kubernetes.io/disk-pressure"),
    "PIDPressure": ("pods", "node.kubernetes.io/pid-pressure"),
    "NetworkUnavailable": ("", "node.kubernetes.io/network-unavailable"),
}
PRESSURE_EVENTS = ("EvictionThresholdMet", "NodeHasInsufficientMemory", "NodeHasDiskPressure",
                   "NodeHasInsufficientPID", "FreeDiskSpaceFailed", "ImageGCFailed")
MAX_PODS_QUOTED = 10


def _conditions(node: Obj) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in _list(_dict(node.get("status")).get("conditions"))
            if isinstance(c, dict) and isinstance(c.get("type"), str)}


def _cond_text(c: dict[str, Any]) -> str:
    return (f"{c.get('type')}={c.get('status')} reason={c.get('reason')}: "
            f"{c.get('message') or ''}").strip()


def _cond_evidence(name: str, c: dict[str, Any]) -> Evidence:
    hb = c.get("lastHeartbeatTime")
    text = _cond_text(c) + (f" (last heartbeat {hb})" if hb else "")
    return Evidence("status", text, f"Node/{name} status.conditions[{c.get('type')}]",
                    parse_time(c.get("lastTransitionTime")))


def _pods_on(ctx: Context) -> dict[str, list[Obj]]:
    """Pods by node name. Built from every pod, once per rule run and only when a
    node is unhealthy: a node's load and its victims are cluster-wide facts."""
    by_node: dict[str, list[Obj]] = defaultdict(list)
    for p in ctx.state.kind("Pod"):
        node = _dict(p.get("spec")).get("nodeName")
        if isinstance(node, str) and node:
            by_node[node].append(p)
    return by_node


def _active(pod: Obj) -> bool:
    return _dict(pod.get("status")).get("phase") not in ("Succeeded", "Failed")


def _pod_line(pod: Obj) -> str:
    m, st = md(pod), _dict(pod.get("status"))
    ready = next((c.get("status") for c in _list(st.get("conditions"))
                  if isinstance(c, dict) and c.get("type") == "Ready"), "?")
    extra = " terminating" if m.get("deletionTimestamp") else ""
    return f"{m.get('namespace')}/{m.get('name')} ({st.get('phase', '?')}, Ready={ready}{extra})"


def _pods_evidence(name: str, pods: list[Obj]) -> Evidence:
    shown = "; ".join(_pod_line(p) for p in pods[:MAX_PODS_QUOTED])
    more = f"; +{len(pods) - MAX_PODS_QUOTED} more" if len(pods) > MAX_PODS_QUOTED else ""
    return Evidence("object", f"{len(pods)} pod(s) on {name}: {shown}{more}",
                    f"pods with spec.nodeName={name}")


def _taints(node: Obj, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    return [t for t in _list(_dict(node.get("spec")).get("taints"))
            if isinstance(t, dict) and t.get("key") in keys]


def _taint_evidence(name: str, t: dict[str, Any]) -> Evidence:
    text = f"taint {t.get('key')}:{t.get('effect')}" + \
        (f" added {t.get('timeAdded')}" if t.get("timeAdded") else "")
    return Evidence("spec", text, f"Node/{name} spec.taints", parse_time(t.get("timeAdded")))


# -- node-not-ready -------------------------------------------------------------

def _not_ready_hint(reason: str, message: str) -> str:
    m = message.lower()
    if "stopped posting node status" in m or reason == "NodeStatusUnknown":
        return ("the kubelet stopped reporting: the node is down, unreachable, or its "
                "kubelet crashed")
    if "cni" in m or "network plugin" in m or "networkready=false" in m:
        return "the CNI network plugin is not ready on the node"
    if "pleg" in m:
        return "the container runtime is too slow to answer the kubelet (PLEG not healthy)"
    if "runtime" in m:
        return "the container runtime is down"
    return "the kubelet reports the node as not ready"


@rule("node-not-ready", family=FAMILY, title="Node is not Ready", severity="critical",
      docs=DOCS_NODE, rank=5)
def node_not_ready(ctx: Context) -> Iterator[Finding]:
    """Everything on a NotReady node stops being served and is evicted after the
    toleration (300 s by default): the node is the root cause of its pods' trouble."""
    by_node: dict[str, list[Obj]] | None = None
    for node in ctx.objects("Node"):
        ready = _conditions(node).get("Ready")
        if not ready or ready.get("status") not in ("False", "Unknown"):
            continue
        if by_node is None:
            by_node = _pods_on(ctx)
        yield _not_ready_finding(ctx, node, ready, by_node.get(str(md(node).get("name")), []))


def _not_ready_finding(ctx: Context, node: Obj, ready: dict[str, Any],
                       pods: list[Obj]) -> Finding:
    name = str(md(node).get("name") or "")
    reason, message = str(ready.get("reason") or ""), str(ready.get("message") or "")
    taints = _taints(node, NOT_READY_TAINTS)
    events = [e for e in ctx.events(node) if e.get("reason") in
              ("NodeNotReady", "NodeNotSchedulable", "Rebooted", "NodeHasInsufficientMemory")]
    evidence = [_cond_evidence(name, ready), *(_taint_evidence(name, t) for t in taints)]
    evidence += [event_evidence(e) for e in events[-3:]]
    active = [p for p in pods if _active(p)]
    if active:
        evidence.append(_pods_evidence(name, active))
    hint = _not_ready_hint(reason, message)
    summary = (f"Node {name} is NotReady (Ready={ready.get('status')}, {reason or 'no reason'}): "
               f"{hint}; {len(active)} pod(s) on it are affected.")
    commands = [f"kubectl describe node {name}",
                f"kubectl get pods -A -o wide --field-selector spec.nodeName={name}",
                f"kubectl get events -A --field-selector involvedObject.kind=Node,"
                f"involvedObject.name={name}",
                f"minikube ssh -n {name} -- sudo journalctl -u kubelet --no-pager -n 100",
                f"kubectl drain {name} --ignore-daemonsets --delete-emptydir-data"]
    fix = (f"Bring node {name} back: {hint}. Check the machine and its kubelet "
           "(systemctl status kubelet; journalctl -u kubelet) and container runtime; if "
           "it cannot recover soon, drain it so its pods are recreated elsewhere.")
    action = manual(node, f"Repair or replace node {name} (kubelet/runtime/network); "
                          "drain it if it stays NotReady", "critical")
    first = earliest(parse_time(ready.get("lastTransitionTime")),
                     *(parse_time(t.get("timeAdded")) for t in taints),
                     event_first_seen([e for e in events if e.get("reason") == "NodeNotReady"]))
    return ctx.finding("node-not-ready", node, summary, evidence,
                       Remediation(fix, tuple(commands), action),
                       confidence=0.95 if reason or message else 0.85, first_seen=first)


# -- node-pressure -------------------------------------------------------------------

def _pod_requests(pod: Obj, resource: str) -> tuple[float, float]:
    """Effective (requests, limits) of a pod: max(sum of containers, largest init)."""
    spec = _dict(pod.get("spec"))

    def total(section: str, key: str, combine: str) -> float:
        vals = []
        for c in _list(spec.get(section)):
            v = to_float(_dict(_dict(_dict(c).get("resources")).get(key)).get(resource))
            vals.append(0.0 if math.isnan(v) else v)
        if not vals:
            return 0.0
        return sum(vals) if combine == "sum" else max(vals)

    overhead = to_float(_dict(spec.get("overhead")).get(resource))
    overhead = 0.0 if math.isnan(overhead) else overhead
    req, lim = (max(total("containers", k, "sum"), total("initContainers", k, "max"))
                + overhead for k in ("requests", "limits"))
    return req, lim


def _fmt(resource: str, value: float) -> str:
    if resource == "memory" or resource == "ephemeral-storage":
        return format_bytes(value)
    if resource == "cpu":
        return format_cores(value)
    return f"{value:g}"


def _load_evidence(ctx: Context, node: Obj, resource: str, pods: list[Obj]) -> list[Evidence]:
    """Requested (and for memory, limits) against allocatable, plus usage if known."""
    name = str(md(node).get("name") or "")
    alloc = to_float(_dict(_dict(node.get("status")).get("allocatable")).get(resource))
    active = [p for p in pods if _active(p)]
    if resource == "pods":
        return [Evidence("status", f"{len(active)} pods running; allocatable pods: "
                                   f"{_fmt('pods', alloc) if not math.isnan(alloc) else '?'}",
                         f"Node/{name} status.allocatable.pods")]
    req = sum(_pod_requests(p, resource)[0] for p in active)
    lim = sum(_pod_requests(p, resource)[1] for p in active)
    shown = _fmt(resource, alloc) if not math.isnan(alloc) else "?"
    pct = f" ({req / alloc:.0%})" if alloc and not math.isnan(alloc) else ""
    text = f"{resource} requested {_fmt(resource, req)}{pct} of allocatable {shown}"
    if resource == "memory" and lim:
        text += f"; limits {_fmt(resource, lim)}"
    out = [Evidence("status", text, f"Node/{name} status.allocatable.{resource} vs pod "
                                    "requests")]
    nm = ctx.get("NodeMetrics", None, name)
    used = to_float(_dict((nm or {}).get("usage")).get(resource))
    if not math.isnan(used):
        out.append(Evidence("object", f"{resource} in use {_fmt(resource, used)} of "
                                      f"allocatable {shown}", f"NodeMetrics/{name} usage"))
    besteffort = [p for p in active
                  if _dict(p.get("status")).get("qosClass") == "BestEffort"]
    if besteffort and resource == "memory":
        names = ", ".join(f"{md(p).get('namespace')}/{md(p).get('name')}"
                          for p in besteffort[:5])
        out.append(Evidence("object", f"BestEffort pods (evicted first): {names}",
                            "status.qosClass"))
    return out


def _evicted(ctx: Context, pods: list[Obj]) -> tuple[list[Obj], list[Obj]]:
    """Pods the kubelet evicted from this node and their Evicted events."""
    gone = [p for p in pods if _dict(p.get("status")).get("reason") == "Evicted"]
    events = [e for p in gone for e in ctx.events(p, reason="Evicted")]
    return gone, events


@rule("node-pressure", family=FAMILY, title="Node under resource pressure",
      severity="warning", docs=DOCS_PRESSURE, rank=6)
def node_pressure(ctx: Context) -> Iterator[Finding]:
    """Memory/disk/PID pressure makes the kubelet evict pods and refuse new ones;
    NetworkUnavailable leaves pods without a network. Quote the kubelet's own
    words, the evictions, and how full the node is by requests."""
    by_node: dict[str, list[Obj]] | None = None
    for node in ctx.objects("Node"):
        conds = _conditions(node)
        hot = [conds[t] for t in PRESSURES if conds.get(t, {}).get("status") == "True"]
        if not hot:
            continue
        if by_node is None:
            by_node = _pods_on(ctx)
        yield _pressure_finding(ctx, node, hot, by_node.get(str(md(node).get("name")), []))


def _pressure_finding(ctx: Context, node: Obj, hot: list[dict[str, Any]],
                      pods: list[Obj]) -> Finding:
    name = str(md(node).get("name") or "")
    types = [str(c.get("type")) for c in hot]
    evidence = [_cond_evidence(name, c) for c in hot]
    taints = _taints(node, tuple(PRESSURES[t][1] for t in types))
    evidence += [_taint_evidence(name, t) for t in taints]
    node_events = [e for e in ctx.events(node) if e.get("reason") in PRESSURE_EVENTS]
    evidence += [event_evidence(e) for e in node_events[-3:]]
    gone, evict_events = _evicted(ctx, pods)
    evidence += [event_evidence(e) for e in evict_events[-3:]]
    if gone and not evict_events:
        evidence += [Evidence("status", f"{md(p).get('name')}: Evicted: "
                                        f"{_dict(p.get('status')).get('message', '')}",
                              f"Pod/{md(p).get('namespace')}/{md(p).get('name')} status")
                     for p in gone[:3]]
    for t in types:
        if PRESSURES[t][0]:
            evidence += _load_evidence(ctx, node, PRESSURES[t][0], pods)
    what = " and ".join(types)
    evictions = f"; {len(gone)} pod(s) evicted" if gone else ""
    summary = (f"Node {name} reports {what} ({hot[0].get('message') or hot[0].get('reason')})"
               f"{evictions}: it evicts pods and admits no new ones until it recovers.")
    if types == ["NetworkUnavailable"]:
        summary = (f"Node {name} reports NetworkUnavailable ({hot[0].get('reason')}: "
                   f"{hot[0].get('message')}): pods on it have no working network.")
    commands = [f"kubectl describe node {name}", f"kubectl top node {name}",
                f"kubectl get pods -A -o wide --field-selector spec.nodeName={name}",
                "kubectl top pods -A --sort-by=memory",
                f"kubectl get events -A --field-selector involvedObject.kind=Node,"
                f"involvedObject.name={name}"]
    if "DiskPressure" in types:
        commands.append(f"minikube ssh -n {name} -- df -h /var/lib")
        commands.append(f"minikube ssh -n {name} -- sudo crictl rmi --prune")
    if "NetworkUnavailable" in types:
        commands.append("kubectl get pods -n kube-system -o wide")
    fix = (f"Relieve node {name}: set requests/limits on the heaviest pods (BestEffort "
           "pods go first), move workloads off it (kubectl cordon/drain), free disk "
           "(prune unused images, rotate logs) or add capacity.")
    if "NetworkUnavailable" in types:
        fix += " For NetworkUnavailable, repair the CNI plugin pods on the node."
    action = manual(node, f"Free {what} on node {name} or move workloads away", "critical")
    first = earliest(*(parse_time(c.get("lastTransitionTime")) for c in hot),
                     event_first_seen(node_events + evict_events))
    severity = "critical" if gone or evict_events or "NetworkUnavailable" in types \
        else "warning"
    return ctx.finding("node-pressure", node, summary, evidence,
                       Remediation(fix, tuple(commands), action),
                       confidence=0.9, first_seen=first, severity=severity)

