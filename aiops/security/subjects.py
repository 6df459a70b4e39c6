"""What the checks look at: workloads (anything holding a pod spec, audited once
at its top controller), their containers, plain objects and namespaces, with
the look-ups cross-object checks need (policies, PDBs, HPAs, service accounts).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from aiops.kinds import BY_KIND
from aiops.model import ClusterState

Obj = dict[str, Any]
Path = tuple[str | int, ...]

# kinds holding a pod spec, and where they hold it
POD_SPEC_PATHS: dict[str, Path] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_SECTIONS = ("initContainers", "containers", "ephemeralContainers")


def _dict(v: Any) -> Obj:
    return v if isinstance(v, dict) else {}


def meta(obj: Obj) -> Obj:
    return _dict(obj.get("metadata"))


def namespace_of(obj: Obj) -> str:
    """An object's namespace; a namespaced object without one (a manifest) lands in
    `default`, as `kubectl apply` would put it without -n."""
    kind = obj.get("kind") or ""
    info = BY_KIND.get(kind)
    if info is not None and not info.namespaced:
        return ""
    ns = meta(obj).get("namespace")
    return ns if isinstance(ns, str) and ns else "default"


def annotations(obj: Obj) -> dict[str, str]:
    a = meta(obj).get("annotations")
    return {k: v for k, v in a.items() if isinstance(v, str)} if isinstance(a, dict) else {}


@dataclass
class Workload:
    """A top-level pod-spec holder (Deployment, CronJob, bare Pod, ...)."""

    obj: Obj

    @property
    def kind(self) -> str:
        return self.obj.get("kind") or ""

    @property
    def name(self) -> str:
        return str(meta(self.obj).get("name") or "")

    @property
    def namespace(self) -> str:
        return namespace_of(self.obj)

    @property
    def spec_path(self) -> Path:
        return POD_SPEC_PATHS[self.kind]

    @cached_property
    def spec(self) -> Obj:
        cur: Any = self.obj
        for p in self.spec_path:
            cur = cur.get(p) if isinstance(cur, dict) else None
        return _dict(cur)

    @property
    def template_meta(self) -> Obj:
        """The pods' metadata (labels, annotations) as the pods will carry it."""
        if self.kind == "Pod":
            return meta(self.obj)
        return _dict(_dict(self._template()).get("metadata"))

    def _template(self) -> Any:
        cur: Any = self.obj
        for p in self.spec_path[:-1]:
            cur = cur.get(p) if isinstance(cur, dict) else None
        return cur

    @property
    def replicas(self) -> int | None:
        """Desired replicas of a Deployment/StatefulSet/ReplicaSet (1 when unset)."""
        if self.kind not in ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"):
            return None
        r = _dict(self.obj.get("spec")).get("replicas", 1)
        return r if isinstance(r, int) else 1

    @cached_property
    def containers(self) -> list[Container]:
        out = []
        for section in CONTAINER_SECTIONS:
            items = self.spec.get(section)
            for i, c in enumerate(items if isinstance(items, list) else []):
                if isinstance(c, dict):
                    out.append(Container(self, c, section, i))
        return out

    @property
    def pod_security_context(self) -> Obj:
        return _dict(self.spec.get("securityContext"))

    def path(self, *rel: str | int) -> Path:
        """A path inside the pod spec, for patches against the workload object."""
        return (*self.spec_path, *rel)


@dataclass
class Container:
    """One container of a workload's pod spec, with its effective settings."""

    workload: Workload
    spec: Obj
    section: str  # containers | initContainers | ephemeralContainers
    index: int

    @property
    def name(self) -> str:
        n = self.spec.get("name")
        return n if isinstance(n, str) else f"#{self.index}"

    @property
    def security_context(self) -> Obj:
        return _dict(self.spec.get("securityContext"))

    def effective(self, key: str) -> Any:
        """A field the container's securityContext overrides from the pod's."""
        sc = self.security_context
        if sc.get(key) is not None:
            return sc.get(key)
        return self.workload.pod_security_context.get(key)

    def path(self, *rel: str | int) -> Path:
        """A path inside this container, for patches against the workload object."""
        return self.workload.path(self.section, self.index, *rel)

    @property
    def resources(self) -> Obj:
        return _dict(self.spec.get("resources"))


@dataclass
class AuditContext:
    """The audited objects and their indexes, built once per audit."""

    state: ClusterState
    origin: dict[int, tuple[str, int | None]] = field(default_factory=dict)

    @cached_property
    def workloads(self) -> list[Workload]:
        """Pod-spec holders, each audited once, at its top controller present in the
        state: a Deployment's ReplicaSets and pods are not audited again."""
        present: set[tuple[Any, Any, Any]] = set()
        for k in POD_SPEC_PATHS:
            for o in self.state.kind(k):
                m = meta(o) if isinstance(o, dict) else {}
                present.add((m.get("namespace") or "", k, m.get("name")))
        out = []
        for kind in POD_SPEC_PATHS:
            for o in self.state.kind(kind):
                if not isinstance(o, dict):
                    continue
                m = meta(o)
                refs = m.get("ownerReferences")
                if isinstance(refs, list) and refs:
                    owner = next((r for r in refs if isinstance(r, dict)
                                  and r.get("controller")), None)
                    if owner and (m.get("namespace") or "", owner.get("kind"),
                                  owner.get("name")) in present:
                        continue
                out.append(Workload(o))
        return out

    @cached_property
    def containers(self) -> list[Container]:
        return [c for w in self.workloads for c in w.containers]

    @cached_property
    def namespaces(self) -> list[str]:
        """Namespaces holding anything audited, plus those the state lists."""
        names = {meta(n).get("name") for n in self.state.kind("Namespace")}
        names |= {w.namespace for w in self.workloads}
        return sorted(n for n in names if isinstance(n, str) and n)

    @cached_property
    def namespace_objects(self) -> dict[str, Obj]:
        return {str(meta(n).get("name")): n for n in self.state.kind("Namespace")}

    @cached_property
    def _by_ns(self) -> dict[tuple[str, str], list[Obj]]:
        out: dict[tuple[str, str], list[Obj]] = defaultdict(list)
        for kind, objs in self.state.objects.items():
            for o in objs:
                if isinstance(o, dict):
                    out[(kind, namespace_of(o))].append(o)
        return out

    def in_namespace(self, kind: str, namespace: str) -> list[Obj]:
        return self._by_ns.get((kind, namespace), [])

    def objects(self, kind: str) -> list[Obj]:
        return [o for o in self.state.kind(kind) if isinstance(o, dict)]

    @cached_property
    def _by_name(self) -> dict[tuple[str, str, Any], Obj]:
        return {(kind, ns, meta(o).get("name")): o
                for (kind, ns), objs in self._by_ns.items() for o in objs}

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        """One object by kind, namespace ('' for cluster-scoped) and name."""
        try:
            return self._by_name.get((kind, namespace, name))
        except TypeError:  # an unhashable name from a malformed object
            return None

    def where(self, obj: Obj) -> tuple[str, int | None]:
        """The file and line an object came from (manifests), else ("", None)."""
        return self.origin.get(id(obj), ("", None))

    def iter_targets(self, target: str, kinds: tuple[str, ...]) -> Iterator[Any]:
        if target == "container":
            yield from self.containers
        elif target == "workload":
            yield from self.workloads
        elif target == "namespace":
            yield from self.namespaces
        else:
            for k in kinds:
                yield from self.objects(k)
