"""The in-memory cluster model every source returns and every analysis reads.

`ClusterState` keeps the raw API objects (dicts exactly as the API serves them,
with `kind`/`apiVersion` filled in) plus logs, and derives pandas frames from
them lazily, so a caller that only needs pods never pays for events.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import pandas as pd

from aiops import frames

Obj = dict[str, Any]
LogKey = tuple[str, str, str]  # (namespace, pod, container)
# one kind's objects by (namespace, name), by namespace, and the list they were read
# from with its length then
KindIndex = tuple[dict[tuple[str, str], "Obj"], dict[Any, list["Obj"]],
                  tuple[list["Obj"] | None, int]]


@dataclass(frozen=True)
class LoadProblem:
    """Something a source could not read; the rest was still loaded."""

    where: str  # file path, API path or kind
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def _current(entry: KindIndex, objs: list[Obj] | None) -> bool:
    """Whether a kind's index was read from this very list at its present length
    (the list itself is kept, so a new list at a freed one's address is not taken
    for it)."""
    return entry[2][0] is objs and entry[2][1] == (len(objs) if objs is not None else 0)


# what reads the logs as a source loads them (`ClusterState.index_logs`): called with
# the state and the (previous, key) of the logs just added, or None once all are
# loaded (then nothing may be left in flight). Each keeps what it derives on the
# state with the text it derived it from: a log replaced later is not what it read.
LOG_INDEXERS: list[Callable[[ClusterState, list[tuple[bool, LogKey]] | None], None]] = []


class _EventIndex:
    """Events by the object they are about and by reason, for one list of events,
    of which the first `count` are indexed."""

    def __init__(self, source: list[Obj] | None) -> None:
        self.source, self.count = source, 0
        self.by_object: dict[tuple[str, str, str], list[Obj]] = {}
        self.by_reason: dict[str, set[tuple[str, str, str]]] = {}

    def extend(self, events: list[Obj]) -> None:
        by_object, by_reason = self.by_object, self.by_reason
        for ev in events[self.count:]:
            io = (ev.get("involvedObject") or ev.get("regarding")) if isinstance(ev, dict) \
                else None
            if not isinstance(io, dict):
                continue
            k, ns, name = io.get("kind") or "", io.get("namespace") or "", io.get("name") or ""
            if isinstance(k, str) and isinstance(ns, str) and isinstance(name, str):
                key = (k, ns, name)
                found = by_object.get(key)
                if found is None:
                    by_object[key] = [ev]
                else:
                    found.append(ev)
                r = ev.get("reason")
                if isinstance(r, str):
                    keys = by_reason.get(r)
                    if keys is None:
                        by_reason[r] = {key}
                    else:
                        keys.add(key)
        self.count = len(events)


@dataclass
class ClusterState:
    """A cluster as one source saw it at `captured_at`."""

    source: str
    objects: dict[str, list[Obj]] = field(default_factory=dict)
    logs: dict[LogKey, str] = field(default_factory=dict)
    previous_logs: dict[LogKey, str] = field(default_factory=dict)
    captured_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    problems: list[LoadProblem] = field(default_factory=list)
    # kind -> why it could not be read (RBAC forbidden, API missing): sections
    # built on it are shown as unavailable instead of as empty.
    unavailable: dict[str, str] = field(default_factory=dict)
    context: str | None = None
    history_loader: Callable[[], pd.DataFrame | None] | None = None

    # -- raw objects -----------------------------------------------------
    def kind(self, kind: str) -> list[Obj]:
        """All objects of one kind ('Pod', 'Deployment', ...), possibly empty."""
        return self.objects.get(kind, [])

    def add(self, objs: Iterable[Obj]) -> None:
        """Append objects; they must already carry their `kind`."""
        for obj in objs:
            self.objects.setdefault(obj["kind"], []).append(obj)
        for derived in ("_index", "_uid_index", "_owner_cache", "_event_index",
                        "namespaces", "pods_by_namespace", "_diagnose_index"):
            self.__dict__.pop(derived, None)

    def is_available(self, kind: str) -> bool:
        return kind not in self.unavailable

    def get(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        """One object by kind/namespace/name (O(1) after the first call for its kind;
        read again, as `in_namespace`, when the kind's list changed without `add`)."""
        if not isinstance(name, str) or not isinstance(namespace or "", str):
            return None
        return self.named(kind).get((namespace or "", name))

    def named(self, kind: str) -> dict[tuple[str, str], Obj]:
        """A kind's objects by (namespace or "", name): `get` as one dict, for a loop
        that looks up thousands (a shared dict, current as of the call: do not modify,
        and ask again after changing the state)."""
        return self._kind_index(kind)[0]

    def names_unique(self, kind: str) -> bool:
        """Whether every object of a kind is the only one of its (namespace, name), so
        that `named` lists them all."""
        return len(self.named(kind)) == len(self.objects.get(kind) or ())

    def in_namespace(self, kind: str, namespace: Any) -> list[Obj]:
        """The objects of a kind whose metadata.namespace (or "") is `namespace`, in
        state order (a shared list: do not modify). Read again when the kind's list
        was replaced, grown or shrunk without `add`."""
        return self._kind_index(kind)[1].get(namespace, [])

    def _kind_index(self, kind: str) -> KindIndex:
        """The kind's `KindIndex`, read again if its list changed since."""
        entry = self._index.get(kind)
        if entry is None or not _current(entry, self.objects.get(kind)):
            entry = self._read_kind(kind)
        return entry

    def by_uid(self, uid: str) -> Obj | None:
        return self._uid_index.get(uid)

    @cached_property
    def _index(self) -> dict[str, KindIndex]:
        """kind -> its `KindIndex`, each kind read on first use: a diagnosis never
        looks an Event up by name, so its ~10^5 events are not walked for that."""
        return {}

    def index_kinds(self, kinds: Iterable[str]) -> None:
        """Index the objects of `kinds` appended since they were last indexed (events
        have their own index, see `index_events`). Loaders call it after each file,
        while its objects are still in the CPU caches."""
        for kind in kinds:
            if kind != "Event" and kind in self.objects:
                self._read_kind(kind)

    def _read_kind(self, kind: str) -> KindIndex:
        """One pass over a kind's objects for both of its look-ups; only over those
        appended since, when the kind's list was indexed before and has grown."""
        objs = self.objects.get(kind)
        n = len(objs) if objs is not None else 0
        entry = self._index.get(kind)
        if entry is not None and entry[2][0] is objs and entry[2][1] <= n:
            by_name, by_ns, (_, start) = entry
        else:
            by_name, by_ns, start = {}, {}, 0
        for o in objs[start:] if objs else ():  # `_meta` inlined: this loop is the cost
            md = o.get("metadata") if isinstance(o, dict) else None
            if not isinstance(md, dict):
                md = {}
            ns, name = md.get("namespace") or "", md.get("name") or ""
            if isinstance(ns, str) and isinstance(name, str):
                by_name[(ns, name)] = o
            try:  # an unhashable namespace: listed in none
                found = by_ns.get(ns)
            except TypeError:
                continue
            if found is None:
                by_ns[ns] = [o]
            else:
                found.append(o)
        entry = self._index[kind] = (by_name, by_ns, (objs, n))
        return entry

    @cached_property
    def _uid_index(self) -> dict[str, Obj]:
        return {
            uid: o
            for objs in self.objects.values()
            for o in objs
            if isinstance(uid := _meta(o).get("uid"), str) and uid
        }

    @cached_property
    def namespaces(self) -> list[str]:
        names = {_meta(o).get("name") for o in self.kind("Namespace")}
        for objs in self.objects.values():
            for o in objs:
                names.add(_meta(o).get("namespace"))
        return sorted(n for n in names if isinstance(n, str) and n)

    @property
    def events_by_object(self) -> dict[tuple[str, str, str], list[Obj]]:
        """Events indexed by (kind, namespace, name) of the object they are about."""
        return self._events().by_object

    @property
    def events_by_reason(self) -> dict[str, set[tuple[str, str, str]]]:
        """Event reason -> (kind, namespace, name) of the objects it is about."""
        return self._events().by_reason

    def index_logs(self, added: list[tuple[bool, LogKey]] | None) -> None:
        """Hand the logs just added to `logs` / `previous_logs` ((previous, key) of
        each) to the `LOG_INDEXERS`; None once the source has loaded them all.
        Loaders call it after each log file or page, and at the end."""
        for indexer in LOG_INDEXERS:
            indexer(self, added)

    def index_events(self) -> None:
        """Index the events appended since the last call. Loaders call it after each
        file or page, while the new events are still in the CPU caches: indexing
        ~10^5 events at once later costs several times more."""
        self._events()

    def _events(self) -> _EventIndex:
        """The event index, extended with events appended to the list since it was
        built, rebuilt when the list was replaced or shrunk (or by `add`)."""
        evs = self.objects.get("Event")
        idx = self.__dict__.get("_event_index")
        if idx is None or idx.source is not evs or idx.count > len(evs or ()):
            idx = self.__dict__["_event_index"] = _EventIndex(evs)
        if evs is not None and idx.count < len(evs):
            idx.extend(evs)
        return idx

    # -- owners ------------------------------------------------------------
    def top_owner(self, obj: Obj) -> tuple[str, str]:
        """Walk controller ownerReferences up (Pod -> ReplicaSet -> Deployment).

        Returns (kind, name) of the top workload, or the object itself when it
        has no known controller (a bare pod is its own workload).
        """
        cache = self.__dict__.setdefault("_owner_cache", {})
        hit = cache.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        result = self._walk_owners(obj)
        cache[id(obj)] = (obj, result)
        return result

    def _walk_owners(self, obj: Obj) -> tuple[str, str]:
        seen = 0
        cur = obj
        md = _meta(cur)
        ns = md.get("namespace") or ""
        kind, name = cur.get("kind") or "", md.get("name") or ""
        if not isinstance(name, str):
            name = ""
        while seen < 5:
            refs = _meta(cur).get("ownerReferences")
            refs = [r for r in refs if isinstance(r, dict)] if isinstance(refs, list) else []
            ref = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
            if not ref or ref.get("kind") == "Node":
                break
            rk, rn = ref.get("kind"), ref.get("name")
            if not (isinstance(rk, str) and rk and isinstance(rn, str) and rn):
                break
            kind, name = rk, rn
            parent = self.get(kind, ns, name)
            if parent is None:
                break
            cur = parent
            seen += 1
        return kind, name

    @cached_property
    def pods_by_namespace(self) -> dict[str, list[Obj]]:
        idx: dict[str, list[Obj]] = defaultdict(list)
        for p in self.kind("Pod"):
            ns = _meta(p).get("namespace") or ""
            idx[ns if isinstance(ns, str) else ""].append(p)
        return dict(idx)

    # -- frames ------------------------------------------------------------
    @cached_property
    def pods(self) -> pd.DataFrame:
        return frames.pods_frame(self)

    @cached_property
    def containers(self) -> pd.DataFrame:
        return frames.containers_frame(self)

    @cached_property
    def nodes(self) -> pd.DataFrame:
        return frames.nodes_frame(self)

    @cached_property
    def events(self) -> pd.DataFrame:
        return frames.events_frame(self)

    @cached_property
    def workloads(self) -> pd.DataFrame:
        return frames.workloads_frame(self)

    @cached_property
    def services(self) -> pd.DataFrame:
        return frames.services_frame(self)

    @cached_property
    def history(self) -> pd.DataFrame | None:
        """Usage history (time, namespace, workload_kind, workload, pod, container,
        resource, value) when the source has one, else None."""
        return self.history_loader() if self.history_loader else None

    def summary(self) -> dict[str, int]:
        """Object counts by kind, for progress lines and `aiops sources`."""
        return {k: len(v) for k, v in sorted(self.objects.items())}


def _meta(o: Obj) -> Obj:
    """An object's metadata, or {} when it is missing or malformed."""
    m = o.get("metadata") if isinstance(o, dict) else None
    return m if isinstance(m, dict) else {}
