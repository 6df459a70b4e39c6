"""Which changes may start, change or end a failure, and what to diagnose for them.

Most watch events are noise for us (a heartbeat, a ready replica count); a
diagnosis runs only when an object's failure signature changes: the set of
waiting/terminated reasons, restarts, a Pending pod's scheduling, a Warning
event, a node condition, a deployment's Progressing/Available. A recovery is a
change too, so the diagnosis that follows can close the episode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiops.model import Obj

# (namespace, kind, name): kind None = the whole namespace, namespace None = the cluster
Scope = tuple[str | None, str | None, str | None]
CLUSTER: Scope = (None, None, None)
BENIGN_WAITING = frozenset({"ContainerCreating", "PodInitializing"})
NODE_OK = {"Ready": "True"}  # any other condition is healthy when False
Lookup = Callable[[str, str | None, str], Obj | None]  # kind, namespace, name -> object


def _md(obj: Obj | None) -> dict[str, Any]:
    md = (obj or {}).get("metadata")
    return md if isinstance(md, dict) else {}


def signature(kind: str, obj: Obj | None) -> tuple[Any, ...]:
    """The failure-relevant part of an object; () when it looks healthy."""
    if obj is None:
        return ()
    status = obj.get("status") or {}
    if kind == "Pod":
        sig: list[Any] = []
        for key in ("initContainerStatuses", "containerStatuses"):
            for c in status.get(key) or []:
                state = c.get("state") or {}
                waiting = (state.get("waiting") or {}).get("reason")
                term = state.get("terminated") or {}
                if waiting and waiting not in BENIGN_WAITING:
                    sig.append((c.get("name"), "waiting", waiting))
                if term and (term.get("exitCode") or 0) != 0:
                    sig.append((c.get("name"), "terminated", term.get("reason")))
                if c.get("restartCount"):
                    sig.append((c.get("name"), "restarts", c.get("restartCount")))
        phase = status.get("phase")
        if phase in ("Failed", "Unknown"):
            sig.append(("phase", phase, status.get("reason")))
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                sig.append(("unschedulable", cond.get("reason")))
        return tuple(sig)
    if kind == "Node":
        return tuple((c.get("type"), c.get("status")) for c in status.get("conditions") or []
                     if c.get("status") != NODE_OK.get(c.get("type"), "False"))
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        sig = [(c.get("type"), c.get("reason")) for c in status.get("conditions") or []
               if c.get("type") in ("Progressing", "Available", "ReplicaFailure")
               and c.get("status") != "True"]
        if status.get("unavailableReplicas"):
            sig.append(("unavailable", status["unavailableReplicas"]))
        return tuple(sig)
    if kind == "Event":
        if obj.get("type") != "Warning":
            return ()
        return (obj.get("reason"), obj.get("count"), obj.get("lastTimestamp")
                or obj.get("eventTime"))
    return ()


def changed(kind: str, old: Obj | None, new: Obj | None) -> bool:
    """True when the change may start, change or end a failure."""
    return signature(kind, old) != signature(kind, new)


def top_owner(get: Lookup, obj: Obj) -> tuple[str, str]:
    """(kind, name) of the top controller (Pod -> ReplicaSet -> Deployment), as
    `ClusterState.top_owner`, over the watcher's current objects."""
    cur, kind, name = obj, obj.get("kind") or "", _md(obj).get("name") or ""
    ns = _md(obj).get("namespace") or ""
    for _ in range(5):
        refs = [r for r in _md(cur).get("ownerReferences") or [] if isinstance(r, dict)]
        ref = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
        if not ref or ref.get("kind") == "Node" or not ref.get("kind") or not ref.get("name"):
            break
        kind, name = str(ref["kind"]), str(ref["name"])
        parent = get(kind, ns, name)
        if parent is None:
            break
        cur = parent
    return kind, name


def scope_of(get: Lookup, kind: str, obj: Obj) -> Scope:
    """What to diagnose for a change of `obj`: its workload, else its namespace."""
    md = _md(obj)
    ns = md.get("namespace") or None
    if kind == "Node":
        return CLUSTER
    if kind == "Event":
        inv = obj.get("involvedObject") or {}
        inv_kind, inv_name = inv.get("kind"), inv.get("name")
        ns = inv.get("namespace") or ns
        if inv_kind == "Node":
            return CLUSTER
        target = get(inv_kind, ns, inv_name) if inv_kind and inv_name else None
        if target is None:
            return (ns, None, None)
        return scope_of(get, inv_kind, target)
    if kind == "Pod":
        owner_kind, owner_name = top_owner(get, obj)
        return (ns, owner_kind or "Pod", owner_name or md.get("name"))
    return (ns, kind, md.get("name"))


def covers(outer: Scope, inner: Scope) -> bool:
    """A diagnosis of `outer` also diagnoses `inner`."""
    if outer == inner or outer[0] is None:
        return True
    return outer[1] is None and outer[0] == inner[0]
