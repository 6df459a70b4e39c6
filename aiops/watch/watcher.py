"""The watcher: a live ClusterState kept current by watch streams, and a
diagnosis of each changed failure within seconds (the MTTD side of issue 7).

One thread per watched kind applies the events; a trigger (`triggers.changed`)
schedules a diagnosis of the object's workload (or namespace, or the cluster for
a node). Triggers are coalesced for `debounce` seconds (a crash loop sends a pod
update and two events at once) and diagnoses start at most `max_rate` per second
overall, so a burst of changes cannot turn into a burst of diagnoses. Each
diagnosis updates the failure episodes (`episodes.Episodes`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiops.diagnose import diagnose
from aiops.kinds import BY_KIND
from aiops.model import ClusterState, Obj
from aiops.watch.episodes import Episodes, Outcome
from aiops.watch.stream import KindStream
from aiops.watch.triggers import CLUSTER, Scope, changed, covers, scope_of

WATCHED_KINDS = ("Pod", "Event", "Node", "Deployment", "ReplicaSet")


@dataclass
class WatchOptions:
    namespace: str | None = None
    kinds: tuple[str, ...] = WATCHED_KINDS
    debounce: float = 1.0  # seconds a trigger waits for the changes that come with it
    max_rate: float = 2.0  # diagnoses started per second, at most
    record_existing: bool = True  # failures present at start-up get a detection record
    min_severity: str = "warning"  # of the findings that open an episode
    timeout_seconds: int = 300  # of each watch request (server side)
    resync: float = 300.0  # seconds between full diagnoses, for time-based rules (Pending
    # too long, a probe failing for N minutes) that no watch event announces


@dataclass
class Stats:
    diagnoses: list[float] = field(default_factory=list)  # monotonic start times
    triggers: int = 0
    errors: list[str] = field(default_factory=list)


class Watcher:
    """Follow a cluster and record a detection for each new failure episode.

    `client` is a kubernetes ApiClient (see `aiops.sources.live.connect`);
    `initial` the state to start from (a `load_live` of the same cluster: the
    kinds that are not watched, ConfigMaps and the like, are read once).
    """

    def __init__(self, client: Any, initial: ClusterState, *, store: Any = None,
                 notifier: Any = None, notify_state: str | Path | None = None,
                 options: WatchOptions | None = None,
                 log: Callable[[str], None] = lambda _m: None) -> None:
        self.client, self.options, self.log = client, options or WatchOptions(), log
        self.base = initial
        self.objects: dict[str, dict[tuple[str, str], Obj]] = {
            kind: {_key(o): o for o in initial.kind(kind)} for kind in self.options.kinds}
        self.episodes = Episodes(store, notifier, notify_state=notify_state,
                                 min_severity=self.options.min_severity,
                                 source=initial.source, cluster=initial.context or "", log=log)
        self.stats = Stats()
        self.stop_event = threading.Event()
        self.changed = threading.Condition()  # notified on diagnoses, events, lists
        self._lock = threading.Lock()  # objects and pending
        self._pending: dict[Scope, tuple[float, datetime]] = {}  # due, first observed
        self._wake = threading.Event()
        self._busy = False  # a diagnosis is running
        self.streams = [KindStream(client, BY_KIND[k], self.options.namespace, self._on_list,
                                   self._on_change, self.stop_event,
                                   timeout_seconds=self.options.timeout_seconds, log=log)
                        for k in self.options.kinds]
        self._threads: list[threading.Thread] = []
        self._started = False

    # -- life cycle ---------------------------------------------------------------
    def start(self) -> None:
        """Baseline diagnosis of the whole scope, then the streams and the diagnoser."""
        scope: Scope = (self.options.namespace, None, None) if self.options.namespace \
            else CLUSTER
        self._diagnose(scope, None, record=self.options.record_existing, at_start=True)
        for s in self.streams:
            t = threading.Thread(target=s.run, name=f"watch-{s.info.kind}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._diagnoser, name="watch-diagnose", daemon=True)
        t.start()
        self._threads.append(t)
        self._started = True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the streams (their connections are cut) and the diagnoser."""
        self.stop_event.set()
        self._wake.set()
        for s in self.streams:
            s.close()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def run(self, duration: float | None = None) -> None:
        """start, then wait for `duration` seconds (None: until `stop`)."""
        if not self._started:
            self.start()
        self.stop_event.wait(duration)
        self.stop()

    def alive(self) -> bool:
        """Every stream and the diagnoser still running (what a liveness probe asks)."""
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def idle(self) -> bool:
        """No diagnosis pending or running."""
        with self._lock:
            return not self._pending and not self._busy

    def stream(self, kind: str) -> KindStream:
        return next(s for s in self.streams if s.info.kind == kind)

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until `predicate()` holds; re-checked after each diagnosis, applied
        event, list and bookmark (for tests and callers)."""
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the streams' callbacks -----------------------------------------------------
    def _on_list(self, kind: str, items: list[Obj]) -> dict[tuple[str, str], Obj]:
        with self._lock:
            before = self.objects.get(kind, {})
            self.objects[kind] = {_key(o): o for o in items}
        with self.changed:  # listed: waiters may be waiting for the stream to start
            self.changed.notify_all()
        return dict(before)

    def _on_change(self, kind: str, type: str, old: Obj | None, new: Obj | None) -> None:
        now = datetime.now(UTC)
        if type in ("BOOKMARK", "FAILED"):
            with self.changed:
                self.changed.notify_all()
            return
        with self._lock:
            held = self.objects.setdefault(kind, {})
            if type in ("ADDED", "MODIFIED", "DELETED"):
                assert new is not None
                old = held.pop(_key(new), None)
                if type != "DELETED":
                    held[_key(new)] = new
                else:
                    new = None
        with self.changed:  # waiters may be waiting for this event to arrive
            self.changed.notify_all()
        if not changed(kind, old, new):
            return
        obj = new or old
        assert obj is not None
        self._schedule(scope_of(self._get, kind, obj), now)

    def _get(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        """One current object, for the owner walk of a trigger."""
        held = self.objects.get(kind)
        if held is None:
            return self.base.get(kind, namespace, name)
        return held.get((namespace or "", name))

    def _schedule(self, scope: Scope, observed: datetime) -> None:
        if scope == CLUSTER and self.options.namespace:  # a node: all we watch
            scope = (self.options.namespace, None, None)
        due = time.monotonic() + self.options.debounce
        with self._lock:
            self.stats.triggers += 1
            if any(covers(s, scope) for s in self._pending):
                return
            for s in [s for s in self._pending if covers(scope, s)]:
                due, observed = min(due, self._pending[s][0]), min(observed,
                                                                   self._pending[s][1])
                del self._pending[s]
            self._pending[scope] = (due, observed)
        self._wake.set()

    # -- diagnoses -------------------------------------------------------------------
    def _diagnoser(self) -> None:
        """Run the due diagnoses, earliest first, no faster than max_rate."""
        interval = 1.0 / self.options.max_rate if self.options.max_rate > 0 else 0.0
        last = float("-inf")
        full = time.monotonic()
        while not self.stop_event.is_set():
            if self.options.resync > 0 and time.monotonic() - full >= self.options.resync:
                full = time.monotonic()
                self._schedule(CLUSTER, datetime.now(UTC))
            with self._lock:
                due = min(self._pending.items(), key=lambda kv: kv[1][0], default=None)
            now = time.monotonic()
            if due is None:
                self._wake.wait(min(1.0, self.options.resync or 1.0))
                self._wake.clear()
                continue
            start_at = max(due[1][0], last + interval)
            if start_at > now:
                self._wake.wait(start_at - now)
                self._wake.clear()
                continue
            with self._lock:
                self._pending.pop(due[0], None)
                self._busy = True
            last = time.monotonic()
            try:
                self._diagnose(due[0], due[1][1], started=last)
            except Exception as exc:  # one bad diagnosis must not stop the watcher
                self.stats.errors.append(f"diagnosis of {due[0]}: {exc}")
                self.log(f"diagnosis of {due[0]} failed: {type(exc).__name__}: {exc}")
            finally:
                with self._lock:
                    self._busy = False
                with self.changed:
                    self.changed.notify_all()

    def _state(self) -> ClusterState:
        """A consistent copy of the current cluster for one diagnosis (the objects are
        replaced, never changed in place, by the streams)."""
        with self._lock:
            objects = dict(self.base.objects)
            for kind, held in self.objects.items():
                objects[kind] = list(held.values())
        return ClusterState(source=self.base.source, objects=objects, logs=self.base.logs,
                            previous_logs=self.base.previous_logs,
                            captured_at=datetime.now(UTC), context=self.base.context,
                            unavailable=dict(self.base.unavailable))

    def _diagnose(self, scope: Scope, observed: datetime | None, record: bool = True,
                  started: float | None = None, at_start: bool = False) -> Outcome:
        self.stats.diagnoses.append(time.monotonic() if started is None else started)
        state = self._state()
        ns, kind, name = scope
        target: dict[str, Any] = {"namespace": ns}
        if kind == "Pod":
            target["pod"] = name
        elif kind is not None and name:
            target["workload"] = (kind, name)
        diag = diagnose(state, **target)
        out = self.episodes.update(scope, diag.findings, detected_at=datetime.now(UTC),
                                   observed_at=observed, record=record, at_start=at_start)
        for ep in out.opened:
            if ep.recorded:
                self.log(f"detected {ep.rule} on {ep.object_ref} ({ep.severity}), failure "
                         f"started {ep.failure_start}, latency {ep.latency_s}s")
        for ep in out.closed:
            self.log(f"resolved {ep.rule} on {ep.object_ref}")
        self.stats.errors.extend(out.errors)
        with self.changed:
            self.changed.notify_all()
        return out


def _key(obj: Obj) -> tuple[str, str]:
    md = obj.get("metadata") or {}
    return (md.get("namespace") or "", md.get("name") or "")
