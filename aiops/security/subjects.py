"""What the checks look at: workloads (anything holding a pod spec, audited once
at its top controller), their containers, plain objects and namespaces, with
the look-ups cross-object checks need (policies, PDBs, HPAs, service accounts).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from aiops.kinds import BY_KIND
from aiops.model import ClusterState

Obj = dict[str, Any]
T = TypeVar("T")
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

    @cached_property
    def kind(self) -> str:
        return self.obj.get("kind") or ""

    @cached_property
    def name(self) -> str:
        return str(meta(self.obj).get("name") or "")

    @cached_property
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

    @cached_property
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
    def _kind_index(self) -> dict[str, tuple[dict[str, list[Obj]], dict[tuple[str, Any], Obj]]]:
        return {}

    def _index(self, kind: str) -> tuple[dict[str, list[Obj]], dict[tuple[str, Any], Obj]]:
        """Objects of one kind by namespace and by (namespace, name), built the first
        time a check asks for that kind (never for the 100,000s of events)."""
        found = self._kind_index.get(kind)
        if found is None:
            by_ns: dict[str, list[Obj]] = defaultdict(list)
            by_name: dict[tuple[str, Any], Obj] = {}
            for o in self.state.kind(kind):
                if isinstance(o, dict):
                    ns = namespace_of(o)
                    by_ns[ns].append(o)
                    name = meta(o).get("name")
                    if isinstance(name, str):
                        by_name.setdefault((ns, name), o)
            found = self._kind_index[kind] = (dict(by_ns), by_name)
        return found

    def in_namespace(self, kind: str, namespace: str) -> list[Obj]:
        return self._index(kind)[0].get(namespace, [])

    def objects(self, kind: str) -> list[Obj]:
        return [o for o in self.state.kind(kind) if isinstance(o, dict)]

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        """One object by kind, namespace ('' for cluster-scoped) and name."""
        if not isinstance(name, str):
            return None
        return self._index(kind)[1].get((namespace, name))

    def memo(self, key: Any, build: Callable[[], T]) -> T:
        """A value computed once per audit, for checks that share a per-namespace or
        per-cluster table (the context lives exactly as long as one audit)."""
        store = self._memo
        if key not in store:
            store[key] = build()
        return store[key]  # type: ignore[no-any-return]

    @cached_property
    def _memo(self) -> dict[Any, Any]:
        return {}

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
