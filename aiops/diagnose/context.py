"""What a rule sees: the loaded cluster, narrowed to the target, with O(1)
look-ups (events by object, pods by namespace, logs by container).

Rules never fetch anything; everything comes from the `ClusterState`. The
indexes live on the state, so diagnosing one pod after another reuses them:
pods by namespace, each pod's failure signals (so a pod rule visits only the
pods that show its signal, not every pod), pods by label, and the tables the
rule families build with `Context.shared` (scanned logs, quoted log lines).
Each is built on first use and only depends on the state, never on the target.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple, TypeVar

from aiops.diagnose.finding import Evidence, Finding, Remediation
from aiops.diagnose.registry import RULES
from aiops.model import ClusterState
from aiops.redact import mask_text

Obj = dict[str, Any]
T = TypeVar("T")
LOG_LINE_LIMIT = 2000  # only the tail of a huge log is searched

# Pod signals (`Context.pods_with`): cheap facts read once per pod and state, so a
# rule that needs one of them skips the healthy majority without looking at it.
WAITING = "waiting"  # some container (init or app) has a non-empty state.waiting
# some container's state.terminated or lastState.terminated is not a clean exit
# (exitCode 0 with reason Completed)
FAILED = "failed"
PENDING = "pending"  # status.phase is Pending or unset
EVICTED = "evicted"  # status.reason is Evicted
# no condition of type Ready has status "True" (what Services and controllers count)
NOT_READY = "not-ready"


def waiting_signal(reason: str) -> str:
    """The signal of a pod with a container waiting for `reason` (CrashLoopBackOff, ...)."""
    return f"waiting:{reason}"


_EVENT = "event:"


def event_signal(reason: str) -> str:
    """The signal of a pod that some Event of `reason` is about."""
    return f"{_EVENT}{reason}"


def _clean_exit(term: Obj) -> bool:
    code = term.get("exitCode")
    return type(code) is int and code == 0 and term.get("reason") == "Completed"


def _key(o: Obj) -> tuple[Any, Any, Any]:
    """(kind, namespace, name) as the event index files the objects events are about."""
    m = md(o)
    return (o.get("kind") or "", m.get("namespace") or "", m.get("name") or "")


def md(o: Obj) -> Obj:
    m = o.get("metadata")
    return m if isinstance(m, dict) else {}


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 text -> aware datetime; anything else -> None (never raises)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def tail_lines(text: Any) -> list[str]:
    """A log's text as `Context.log_lines` keeps it: its lines, the last LOG_LINE_LIMIT
    of a huge one (none for a missing or non-text log)."""
    return text.splitlines()[-LOG_LINE_LIMIT:] if isinstance(text, str) and text else []


def earliest(*times: datetime | None) -> datetime | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None


@dataclass(frozen=True)
class Target:
    namespace: str | None = None
    pod: str | None = None
    workload: tuple[str, str] | None = None  # (kind, name)


class ContainerEntry(NamedTuple):
    """A container's spec and status side by side (a named tuple: every pod's are
    made on a first triage, and a tuple is made several times faster than a
    frozen dataclass)."""

    name: str
    spec: Obj
    status: Obj
    init: bool
    index: int  # position in spec.containers / spec.initContainers

    @property
    def state(self) -> Obj:
        s = self.status.get("state")
        return s if isinstance(s, dict) else {}

    @property
    def waiting(self) -> Obj:
        w = self.state.get("waiting")
        return w if isinstance(w, dict) else {}

    @property
    def terminated(self) -> Obj:
        t = self.state.get("terminated")
        return t if isinstance(t, dict) else {}

    @property
    def last_terminated(self) -> Obj:
        last = self.status.get("lastState")
        t = last.get("terminated") if isinstance(last, dict) else None
        return t if isinstance(t, dict) else {}

    @property
    def restarts(self) -> int:
        try:
            return int(self.status.get("restartCount") or 0)
        except (TypeError, ValueError):
            return 0

    @property
    def path(self) -> str:
        kind = "initContainerStatuses" if self.init else "containerStatuses"
        return f"status.{kind}[{self.name}]"


class _Index:
    """Per-state look-up tables, built once and cached on the state."""

    def __init__(self, state: ClusterState) -> None:
        self.log_lines: dict[tuple[str, str, str, bool], list[str]] = {}
        self.shape: tuple[Any, ...] = ()  # of the state when built (see `_index`)
        self.containers: dict[int, tuple[Obj, tuple[ContainerEntry, ...]]] = {}
        self.tables: dict[Any, Any] = {}  # `Context.shared`, by key
        # signal -> ids of the pods showing it (`Context.pods_with`)
        self.signals: dict[str, set[int]] | None = None
        # namespace -> (label key, value) -> pods carrying it, in namespace order
        self.labels: dict[str, dict[tuple[str, str], list[Obj]]] = {}
        self.matching: dict[tuple[str, frozenset[tuple[str, str]]], list[Obj]] = {}
        # (kind, namespace, name) -> its events, sorted as `events` returns them
        self.events: dict[tuple[str, ...], list[Obj]] = {}
        # id -> position of each pod in the state's list (`Context._positions`)
        self.positions: dict[int, int] | None = None
        # (kind, namespace, name) -> ids of the pods of the state with that key
        self.pods_by_key: dict[tuple[Any, Any, Any], set[int]] | None = None


def _index(state: ClusterState) -> _Index:
    """The state's indexes, rebuilt when objects or logs were added or removed
    without `ClusterState.add` (which drops them): editing an object in place is
    not seen, as with the model's own indexes."""
    idx = state.__dict__.get("_diagnose_index")
    shape = _shape(state)
    if idx is None or idx.shape != shape:
        idx = state.__dict__["_diagnose_index"] = _Index(state)
        idx.shape = shape
    return idx


def _shape(state: ClusterState) -> tuple[Any, ...]:
    """What changes when objects or logs are added or removed."""
    return (tuple((k, id(v), len(v)) for k, v in state.objects.items()),
            id(state.logs), len(state.logs), id(state.previous_logs), len(state.previous_logs))


_MISSING: Any = object()


class _Prefetched:
    """A `shared` table being built in a worker thread (`Context.prefetch`)."""

    __slots__ = ("future",)

    def __init__(self, future: Future[Any]) -> None:
        self.future = future


@lru_cache(maxsize=1)
def _worker() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiops-prefetch")


class Context:
    def __init__(self, state: ClusterState, target: Target | None = None) -> None:
        self.state = state
        self.target = target or Target()
        self.now = state.captured_at
        self._idx = _index(state)
        self._scope: dict[str, list[Obj]] | None = None
        self._scope_signals: dict[str, set[int]] | None = None
        self._pods = self._select_pods()
        if self.target.pod or self.target.workload:
            self._scope = self._related(self._pods)

    @property
    def whole_cluster(self) -> bool:
        """No target: every object is in scope (per-scope results can be shared)."""
        t = self.target
        return not (t.namespace or t.pod or t.workload)

    def shared(self, key: Any, build: Callable[[], T]) -> T:
        """A table kept on the state, built by `build` on first use and reused by every
        later diagnosis of the same state. It must depend on the state only (never
        on the target): rule families keep their per-object results here."""
        tables = self._idx.tables
        found = tables.get(key, _MISSING)
        if isinstance(found, _Prefetched):
            found = tables[key] = found.future.result()
        elif found is _MISSING:
            found = tables[key] = build()
        return found

    def is_shared(self, key: Any) -> bool:
        """Whether the `shared` table `key` is built or being built."""
        return key in self._idx.tables

    def prefetch(self, key: Any, build: Callable[[], Any]) -> None:
        """Start building the `shared` table `key` in a worker thread; the first
        `shared(key, ...)` waits for it (and raises what it raised). Worth it only
        for work that mostly runs outside the interpreter lock: the rules before the
        first one that asks run meanwhile on the other core. `build` may only read
        the state and the look-ups every rule uses (`log_lines`, `containers`)."""
        tables = self._idx.tables
        if key not in tables:
            tables[key] = _Prefetched(_worker().submit(build))

    # -- scope ------------------------------------------------------------------
    def _select_pods(self) -> list[Obj]:
        t = self.target
        if t.pod:
            p = self.state.get("Pod", t.namespace, t.pod)
            return [p] if p else []
        pods = (self.state.in_namespace("Pod", t.namespace) if t.namespace
                else self.state.kind("Pod"))
        if t.workload:
            return [p for p in pods if self.state.top_owner(p) == t.workload]
        return list(pods)

    def _related(self, pods: list[Obj]) -> dict[str, list[Obj]]:
        """Objects tied to the target pods: owners, services, claims, nodes, HPAs."""
        found: dict[str, dict[int, Obj]] = defaultdict(dict)

        def add(o: Obj | None) -> None:
            if o is not None:
                found[o.get("kind") or ""][id(o)] = o

        ns = self.target.namespace or ""
        if self.target.workload:
            add(self.state.get(self.target.workload[0], ns, self.target.workload[1]))
        for p in pods:
            add(p)
            cur: Obj | None = p
            for _ in range(4):
                refs = md(cur).get("ownerReferences") or [] if cur else []
                ref = next((r for r in refs if isinstance(r, dict) and r.get("controller")),
                           None)
                cur = self.state.get(ref.get("kind", ""), ns, ref.get("name", "")) if ref \
                    else None
                if cur is None:
                    break
                add(cur)
            labels = md(p).get("labels") or {}
            for s in self.state.in_namespace("Service", ns):  # a namespace's few
                sel = (s.get("spec") or {}).get("selector") or {}
                if sel and all(labels.get(k) == v for k, v in sel.items()):
                    add(s)
                    add(self.state.get("Endpoints", ns, md(s).get("name", "")))
            spec = p.get("spec") or {}
            for v in spec.get("volumes") or []:
                claim = (v.get("persistentVolumeClaim") or {}).get("claimName") \
                    if isinstance(v, dict) else None
                if claim:
                    add(self.state.get("PersistentVolumeClaim", ns, claim))
            if spec.get("nodeName"):
                add(self.state.get("Node", None, spec["nodeName"]))
        owners = {(o.get("kind"), md(o).get("name")) for k in found for o in found[k].values()}
        for h in self.state.in_namespace("HorizontalPodAutoscaler", ns):
            ref = (h.get("spec") or {}).get("scaleTargetRef") or {}
            if (ref.get("kind"), ref.get("name")) in owners:
                add(h)
        for q in self.state.in_namespace("ResourceQuota", ns):
            add(q)
        return {k: list(v.values()) for k, v in found.items()}

    def pods(self) -> list[Obj]:
        return self._pods

    def pods_with(self, *signals: str) -> list[Obj]:
        """The in-scope pods (in `pods()` order) showing any of `signals` (WAITING,
        `waiting_signal(reason)`, FAILED, PENDING, EVICTED, `event_signal(reason)`):
        what a pod rule whose condition implies one of them needs to look at."""
        if self.whole_cluster:
            return self.shared(("pods-with", signals), lambda: self._with(signals))
        return self._with(signals)

    def _with(self, signals: tuple[str, ...]) -> list[Obj]:
        table = self._signals()
        sets = [self._event_ids(s[len(_EVENT):]) if s.startswith(_EVENT)
                else table.get(s, set()) for s in signals]
        sets = [x for x in sets if x]
        if not sets:
            return []
        if len(sets) == 1:
            only = sets[0]
        elif sum(map(len, sets)) <= len(self._pods):
            only = set().union(*sets)
        else:  # the state's sets, a few pods in scope: test each pod against them
            return [p for p in self._pods if any(id(p) in x for x in sets)]
        return self.in_order(only)

    def in_order(self, ids: set[int]) -> list[Obj]:
        """The in-scope pods whose id is in `ids`, in `pods()` order. A few of a whole
        cluster's pods are put in order by position rather than by walking every pod
        of the state again."""
        if self.whole_cluster and len(ids) * 8 < len(self._pods):
            at = self._positions()
            if len(at) == len(self._pods):  # (no pod listed twice)
                return [self._pods[i] for i in sorted(at[x] for x in ids if x in at)]
        return [p for p in self._pods if id(p) in ids]

    def _positions(self) -> dict[int, int]:
        """id -> position of every pod in `pods()`, for a whole-cluster context."""
        found = self._idx.positions
        if found is None:
            found = self._idx.positions = {id(p): i for i, p in enumerate(self._pods)}
        return found

    def _event_ids(self, reason: str) -> set[int]:
        """Ids of the pods some Event of `reason` is about: of the state, or of the
        scope when it has fewer pods than that reason has objects (one pod)."""
        keys = self.with_event(reason)
        out: set[int] = set()
        if len(self._pods) < len(keys):
            for p in self._pods:
                if isinstance(p, dict):
                    with suppress(TypeError):  # an unhashable name: no event is about it
                        if _key(p) in keys:
                            out.add(id(p))
            return out
        if self.state.names_unique("Pod"):
            # each pod has its own (namespace, name): look the keys up, no pod pass
            named = self.state.named("Pod")
            for key in keys:
                p = named.get(key[1:])
                if isinstance(p, dict) and _key(p) == key:
                    out.add(id(p))
            return out
        by_key = self._idx.pods_by_key
        if by_key is None:
            by_key = self._idx.pods_by_key = defaultdict(set)
            for p in self.state.kind("Pod"):
                if isinstance(p, dict):
                    with suppress(TypeError):  # an unhashable name: no event is about it
                        by_key[_key(p)].add(id(p))
        for key in keys:
            found = by_key.get(key)
            if found:
                out |= found
        return out

    def _signals(self) -> dict[str, set[int]]:
        """Signal -> pod ids: read for every pod of the state once a whole-cluster
        diagnosis asks (and kept); before that, for the in-scope pods only. Event
        signals are not in it: `_event_ids` answers them from `with_event`."""
        if self._idx.signals is not None:
            return self._idx.signals
        if self.whole_cluster:
            self._idx.signals = self._read_signals(self.state.kind("Pod"))
            return self._idx.signals
        if self._scope_signals is None:
            self._scope_signals = self._read_signals(self._pods)
        return self._scope_signals

    @staticmethod
    def _read_signals(pods: list[Obj]) -> dict[str, set[int]]:
        """One pass over the pods (see `pods_with`), reading the container statuses
        straight from the status: no spec is paired with them (`containers` does that
        for the pods a rule visits). A status no spec names, or a second status of one
        name, still counts, so the signals are a superset of what the rules test."""
        out: dict[str, set[int]] = defaultdict(set)
        pending, evicted, waiting_ids, failed, unready = set(), set(), set(), set(), set()
        by_reason: dict[str, set[int]] = {}  # waiting reason -> its signal's pods
        for p in pods:  # `_ready` inlined, and a value tested for truth before its type
            if not isinstance(p, dict):
                continue
            i = id(p)
            status = p.get("status")
            if not isinstance(status, dict):
                status = {}
            if status.get("phase") in (None, "", "Pending"):
                pending.add(i)
            if status.get("reason") == "Evicted":
                evicted.add(i)
            conds = status.get("conditions")
            ready = False
            for c in conds if isinstance(conds, list) else ():
                if isinstance(c, dict) and c.get("type") == "Ready":
                    ready = c.get("status") == "True"
                    break
            if not ready:
                unready.add(i)
            for statuses in (status.get("initContainerStatuses"), status.get("containerStatuses")):
                if not statuses or not isinstance(statuses, list):
                    continue
                for st in statuses:
                    if not isinstance(st, dict):
                        continue
                    state = st.get("state")
                    if state and isinstance(state, dict):
                        waiting = state.get("waiting")
                        if waiting and isinstance(waiting, dict):
                            waiting_ids.add(i)
                            reason = waiting.get("reason")
                            if isinstance(reason, str):
                                ids = by_reason.get(reason)
                                if ids is None:
                                    ids = by_reason[reason] = out[waiting_signal(reason)]
                                ids.add(i)
                        term = state.get("terminated")
                        if term and isinstance(term, dict) and not _clean_exit(term):
                            failed.add(i)
                    last = st.get("lastState")
                    if last and isinstance(last, dict):
                        term = last.get("terminated")
                        if term and isinstance(term, dict) and not _clean_exit(term):
                            failed.add(i)
        for name, ids in ((PENDING, pending), (EVICTED, evicted), (WAITING, waiting_ids),
                          (FAILED, failed), (NOT_READY, unready)):
            if ids:
                out[name] |= ids
        return dict(out)

    def objects(self, kind: str) -> list[Obj]:
        """In-scope objects of a kind (a namespace, a workload's world, or all)."""
        if kind == "Pod":
            return self._pods
        if self._scope is not None:
            return self._scope.get(kind, [])
        if self.target.namespace:
            if kind in ("Node", "PersistentVolume", "StorageClass"):
                nodes = {(p.get("spec") or {}).get("nodeName") for p in self._pods}
                return [o for o in self.state.kind(kind)
                        if kind != "Node" or md(o).get("name") in nodes]
            return self.state.in_namespace(kind, self.target.namespace)
        return self.state.kind(kind)

    def objects_where(self, kind: str, key: str, test: Callable[[Obj], bool]) -> list[Obj]:
        """The in-scope objects of a kind (in `objects()` order) that pass `test`: a
        rule's cheap necessary condition, so it only works on the suspects. `test`
        must read the state only (never the target): for the whole cluster the list is
        kept on the state under `key` and later diagnoses skip the pre-pass."""
        if self.whole_cluster:
            return self.shared(("where", kind, key),
                               lambda: [o for o in self.objects(kind) if test(o)])
        return [o for o in self.objects(kind) if test(o)]

    def cluster_objects(self, kind: str) -> list[Obj]:
        """Every object of a kind, whatever the target (nodes a Pending pod could use,
        StorageClasses, ClusterRoles)."""
        return self.state.kind(kind)

    # -- look-ups --------------------------------------------------------------
    def get(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        return self.state.get(kind, namespace, name)

    def in_namespace(self, kind: str, namespace: str) -> list[Obj]:
        """All objects of a kind in a namespace, whatever the target."""
        return self.state.in_namespace(kind, namespace or "")

    def events(self, obj: Obj, *, reason: str | None = None,
               type: str | None = None) -> list[Obj]:
        """Events about one object, oldest first by last time (a new list)."""
        key = _key(obj)
        if (reason or type) and key not in self._idx.events:
            # not sorted yet: filter first, as most asks match no event or one (a
            # pre-pass asking every ReplicaSet for FailedCreate); sorting is stable,
            # so sorting what matched gives what filtering the sorted list does
            evs = self.state.events_by_object.get(key) or []
            if reason:
                evs = [e for e in evs if e.get("reason") == reason]
            if type:
                evs = [e for e in evs if e.get("type") == type]
            if len(evs) <= 1:
                return list(evs)
        evs = self._sorted_events(key)
        if reason:
            evs = [e for e in evs if e.get("reason") == reason]
        if type:
            evs = [e for e in evs if e.get("type") == type]
        return list(evs) if evs else []

    def with_event(self, reason: str) -> set[tuple[str, str, str]]:
        """(kind, namespace, name) of every object of the state that some Event of
        `reason` is about (whatever the target): a rule that needs such an event
        tests membership here instead of asking each object for its events."""
        return self.state.events_by_reason.get(reason, set())

    def _sorted_events(self, key: tuple[Any, Any, Any]) -> list[Obj]:
        """An object's events sorted once per state (never to be modified): sorting is
        stable, so filtering the sorted list gives what sorting the filtered one did."""
        evs = self.state.events_by_object.get(key)
        if not evs or len(evs) == 1:
            return evs or []
        found = self._idx.events.get(key)
        if found is None:
            found = self._idx.events[key] = sorted(evs, key=lambda e: str(_last(e) or ""))
        return found

    def log_lines(self, namespace: str, pod: str, container: str,
                  previous: bool = False) -> list[str]:
        """A container's log as lines (the last LOG_LINE_LIMIT of a huge one)."""
        key = (namespace, pod, container, previous)
        cache = self._idx.log_lines
        if key not in cache:
            src = self.state.previous_logs if previous else self.state.logs
            cache[key] = tail_lines(src.get((namespace, pod, container)))
        return cache[key]

    def keep_log_lines(self, lines: dict[tuple[str, str, str, bool], list[str]]) -> None:
        """Take logs split already (as a source loaded them) for `log_lines`: by its
        key, `tail_lines` of each log's present text."""
        cache = self._idx.log_lines
        if cache:
            lines = {k: v for k, v in lines.items() if k not in cache}
        cache.update(lines)

    def log_offset(self, namespace: str, pod: str, container: str, previous: bool) -> int:
        """Line number (1-based) of the first line `log_lines` returns."""
        src = self.state.previous_logs if previous else self.state.logs
        text = src.get((namespace, pod, container)) or ""
        total = len(text.splitlines()) if isinstance(text, str) else 0
        return max(total - LOG_LINE_LIMIT, 0) + 1

    def containers(self, pod: Obj) -> tuple[ContainerEntry, ...]:
        """Init containers then app containers, each with its status (may be {});
        read once per pod and state (every pod rule walks them)."""
        cache = self._idx.containers
        hit = cache.get(id(pod))
        if hit is None or hit[0] is not pod:
            hit = cache[id(pod)] = (pod, tuple(self._read_containers(pod)))
        return hit[1]

    @staticmethod
    def _read_containers(pod: Obj) -> Iterator[ContainerEntry]:
        spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
        status = pod.get("status") if isinstance(pod.get("status"), dict) else {}
        for init, skey, stkey in ((True, "initContainers", "initContainerStatuses"),
                                  (False, "containers", "containerStatuses")):
            raw = status.get(stkey)
            statuses = {s.get("name"): s for s in (raw if isinstance(raw, list) else [])
                        if isinstance(s, dict) and isinstance(s.get("name"), str)}
            specs = spec.get(skey)
            for i, c in enumerate(specs if isinstance(specs, list) else []):
                if isinstance(c, dict):
                    name = c.get("name") if isinstance(c.get("name"), str) else ""
                    yield ContainerEntry(name, c, statuses.get(name) or {}, init, i)

    def owner(self, obj: Obj) -> tuple[str, str]:
        return self.state.top_owner(obj)

    def owner_object(self, obj: Obj) -> Obj | None:
        kind, name = self.owner(obj)
        found = self.get(kind, md(obj).get("namespace"), name)
        return found if found is not obj else None

    def pods_matching(self, namespace: str, selector: dict[str, str]) -> list[Obj]:
        pods = self.state.in_namespace("Pod", namespace or "")
        out = []
        for p in pods:
            labels = md(p).get("labels")
            labels = labels if isinstance(labels, dict) else {}
            if all(labels.get(k) == v for k, v in selector.items()):
                out.append(p)
        return out

    def pods_labelled(self, namespace: str, selector: dict[str, str]) -> list[Obj]:
        """Pods of a namespace (in namespace order) whose string labels include every
        pair of `selector` (a pod's non-string labels never match): one look-up in a
        per-state label index instead of a pass over the namespace's pods."""
        ns = namespace or ""
        try:
            mkey = (ns, frozenset(selector.items()))
        except TypeError:  # unhashable values: no pod label can equal them
            return [] if selector else list(self.state.in_namespace("Pod", ns))
        found = self._idx.matching.get(mkey)
        if found is None:
            found = self._idx.matching[mkey] = self._labelled(ns, selector)
        return list(found)

    def _labelled(self, ns: str, selector: dict[str, str]) -> list[Obj]:
        by_pair = self._idx.labels.get(ns)
        if by_pair is None:
            by_pair = self._idx.labels[ns] = defaultdict(list)
            for p in self.state.in_namespace("Pod", ns):
                labels = md(p).get("labels")
                for k, v in (labels.items() if isinstance(labels, dict) else ()):
                    if isinstance(k, str) and isinstance(v, str):
                        by_pair[(k, v)].append(p)
        if not selector:
            return list(self.state.in_namespace("Pod", ns))
        lists = []
        for pair in selector.items():
            found = by_pair.get(pair)
            if not found:
                return []
            lists.append(found)
        if len(lists) == 1:
            return list(lists[0])
        lists.sort(key=len)
        others = [{id(p) for p in x} for x in lists[1:]]
        return [p for p in lists[0] if all(id(p) in o for o in others)]

    # -- building findings -------------------------------------------------------
    def finding(self, rule_id: str, obj: Obj, summary: str, evidence: list[Evidence],
                remediation: Remediation, *, confidence: float = 0.9,
                first_seen: datetime | None = None, severity: str | None = None) -> Finding:
        """A Finding about `obj`, with owner, docs and rank filled from the registry."""
        r = RULES[rule_id]
        m = md(obj)
        kind, name = self.owner(obj)
        return Finding(
            rule=rule_id, severity=severity or r.severity, namespace=m.get("namespace") or "",
            kind=obj.get("kind") or "", name=m.get("name") or "", owner=f"{kind}/{name}",
            summary=summary, evidence=evidence, confidence=confidence,
            first_seen=first_seen, remediation=remediation, docs=r.docs, rank=r.rank,
            pods=[m.get("name") or ""] if obj.get("kind") == "Pod" else [],
        )


def _last(e: Obj) -> Any:
    series = e.get("series") if isinstance(e.get("series"), dict) else {}
    return e.get("lastTimestamp") or series.get("lastObservedTime") or e.get("eventTime") \
        or md(e).get("creationTimestamp")


# -- evidence builders ------------------------------------------------------------

@lru_cache(maxsize=1 << 17)
def masked(text: str) -> str:
    """`mask_text`, remembered: the same event messages and log lines are quoted by
    several rules and again by every diagnosis of the same snapshot."""
    return mask_text(text)


def event_evidence(e: Obj) -> Evidence:
    """Quote an event with its count, last time and reporting component."""
    series = e.get("series") if isinstance(e.get("series"), dict) else {}
    count = e.get("count") or series.get("count") or 1
    src = (e.get("source") or {}).get("component") if isinstance(e.get("source"), dict) else None
    src = src or e.get("reportingComponent") or e.get("reportingController") or "?"
    last = _last(e)
    msg = e.get("message") or e.get("note") or ""
    return Evidence("event", masked(f"{e.get('reason', '')}: {msg}".strip()),
                    f"event {e.get('reason', '')} x{count}, last {last} ({src})",
                    parse_time(last))


def event_first_seen(events: list[Obj]) -> datetime | None:
    return earliest(*(parse_time(e.get("firstTimestamp") or e.get("eventTime") or _last(e))
                      for e in events))


def status_evidence(path: str, value: Any, time: datetime | None = None) -> Evidence:
    return Evidence("status", f"{path.rsplit('.', 1)[-1]}: {value}", path, time)


def log_evidence(container: str, line_no: int, line: str, previous: bool) -> Evidence:
    which = "previous log" if previous else "log"
    return Evidence("log", masked(line.strip()[:500]), f"{which} of {container}, line {line_no}")
