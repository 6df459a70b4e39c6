"""Resolve what the user asked about (`--pod`, `--workload KIND/NAME`) against
the loaded cluster, with errors that list what does exist."""

from __future__ import annotations

from aiops.errors import ParameterError
from aiops.model import ClusterState

KIND_ALIASES = {
    "deploy": "Deployment", "deployment": "Deployment", "deployments": "Deployment",
    "sts": "StatefulSet", "statefulset": "StatefulSet", "statefulsets": "StatefulSet",
    "ds": "DaemonSet", "daemonset": "DaemonSet", "daemonsets": "DaemonSet",
    "job": "Job", "jobs": "Job", "cj": "CronJob", "cronjob": "CronJob", "cronjobs": "CronJob",
    "rs": "ReplicaSet", "replicaset": "ReplicaSet", "pod": "Pod", "po": "Pod",
}


def parse_workload(text: str) -> tuple[str, str]:
    kind, sep, name = text.partition("/")
    if not sep or not name or kind.lower() not in KIND_ALIASES:
        raise ParameterError(f"invalid --workload {text!r}",
                             "use KIND/NAME, e.g. deployment/todo-backend or sts/todo-postgres")
    return KIND_ALIASES[kind.lower()], name


def resolve_pod(state: ClusterState, name: str, namespace: str | None) -> tuple[str, str]:
    """(namespace, pod); the namespace may be omitted when the name is unique."""
    hits = [(p["metadata"].get("namespace") or "", p["metadata"]["name"])
            for p in state.kind("Pod")
            if p["metadata"].get("name") == name
            and (namespace is None or p["metadata"].get("namespace") == namespace)]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        near = sorted(p["metadata"]["name"] for p in state.kind("Pod")
                      if name in p["metadata"]["name"])[:5]
        hint = f"did you mean: {', '.join(near)}" if near else "list pods with `aiops info`"
        where = f" in namespace {namespace}" if namespace else ""
        raise ParameterError(f"no pod named {name!r}{where}", hint)
    raise ParameterError(f"pod name {name!r} exists in several namespaces",
                         "add --namespace: " + ", ".join(ns for ns, _ in hits))


def resolve_workload(state: ClusterState, text: str,
                     namespace: str | None) -> tuple[str, str, str]:
    kind, name = parse_workload(text)
    hits = [(o["metadata"].get("namespace") or "", kind, name) for o in state.kind(kind)
            if o["metadata"].get("name") == name
            and (namespace is None or o["metadata"].get("namespace") == namespace)]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        names = sorted(o["metadata"]["name"] for o in state.kind(kind))
        near = [n for n in names if name in n] or names
        raise ParameterError(f"no {kind} named {name!r}",
                             f"{kind}s here: {', '.join(near[:8]) or 'none'}")
    raise ParameterError(f"{kind} {name!r} exists in several namespaces",
                         "add --namespace: " + ", ".join(ns for ns, _, _ in hits))
