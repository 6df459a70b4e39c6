"""The cheap pre-passes (signals, `objects_where` suspects, objects with an event
of some reason) only decide which objects a rule looks at; they must never change
what it finds. Each rule is run again with every pre-pass made to let everything
through, on the demo cluster and on thousands of malformed ones, and must find
exactly the same."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from test_robustness import broken_state

from aiops.diagnose import diagnose
from aiops.diagnose.context import NOT_READY, Context
from aiops.diagnose.rules.services import _pod_ready
from aiops.model import ClusterState
from aiops.sources import open_source


class _Everything(set):
    """A set that holds everything (`with_event` made to let every object through)."""

    def __contains__(self, item: Any) -> bool:
        return True


def _exhaustive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Context, "pods_with", lambda self, *signals: list(self.pods()))
    monkeypatch.setattr(Context, "objects_where",
                        lambda self, kind, key, test: list(self.objects(kind)))
    monkeypatch.setattr(Context, "with_event", lambda self, reason: _Everything())


def _findings(state: ClusterState, **target: Any) -> list[dict[str, Any]]:
    d = diagnose(state, **target)
    assert not d.failures, d.failures
    return d.to_dicts()


def _targets(state: ClusterState) -> Iterator[dict[str, Any]]:
    yield {}
    for ns in sorted({p["metadata"].get("namespace") or "" for p in state.kind("Pod")
                      if isinstance(p.get("metadata"), dict)}):
        yield {"namespace": ns}


def test_demo_findings_do_not_depend_on_the_prepasses(monkeypatch) -> None:
    fast = {str(t): _findings(open_source("demo"), **t) for t in _targets(open_source("demo"))}
    _exhaustive(monkeypatch)
    slow = {str(t): _findings(open_source("demo"), **t) for t in _targets(open_source("demo"))}
    assert fast == slow


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(broken_state())
def test_malformed_findings_do_not_depend_on_the_prepasses(state: ClusterState) -> None:
    fast = _findings(state)
    with pytest.MonkeyPatch.context() as mp:
        _exhaustive(mp)
        slow = _findings(copy.deepcopy(state))
    assert fast == slow


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(broken_state())
def test_signals_and_event_index_match_a_plain_reading(state: ClusterState) -> None:
    ctx = Context(state)
    assert ctx.pods_with(NOT_READY) == [p for p in state.kind("Pod") if not _pod_ready(p)]
    for reason in ("Failed", "FailedCreate", "Unhealthy"):
        plain = {key for key, evs in state.events_by_object.items()
                 if any(isinstance(e, dict) and e.get("reason") == reason for e in evs)}
        assert ctx.with_event(reason) == plain


def test_a_few_signalled_pods_of_a_big_state_keep_state_order() -> None:
    """Whole-cluster signals with few pods are ordered by position, not by a walk
    over every pod: the order must be the state's."""
    import random

    from aiops.diagnose.context import PENDING, waiting_signal

    def pod(i: int, phase: str, waiting: str | None) -> dict[str, Any]:
        cs = [{"name": "app", "state": {"waiting": {"reason": waiting}} if waiting else
               {"running": {}}}]
        return {"kind": "Pod", "metadata": {"name": f"p{i}", "namespace": "ns"},
                "spec": {"containers": [{"name": "app"}]},
                "status": {"phase": phase, "containerStatuses": cs}}

    rng = random.Random(3)
    pods = [pod(i, rng.choice(["Running"] * 30 + ["Pending"]),
                rng.choice([None] * 30 + ["CrashLoopBackOff"])) for i in range(400)]
    state = ClusterState(source="t", objects={"Pod": pods})
    ctx = Context(state)
    crash = waiting_signal("CrashLoopBackOff")
    got = ctx.pods_with(PENDING, crash)
    assert got == [p for p in pods if p["status"]["phase"] == "Pending" or
                   p["status"]["containerStatuses"][0]["state"].get("waiting")]
    assert 0 < len(got) * 8 < len(pods)


def test_pods_an_event_is_about_with_unique_and_repeated_names() -> None:
    """Pods with an event of some reason are looked up by name when every pod of the
    state has its own (namespace, name), and found by a walk over the pods when two
    share one: both give every pod such an event is about, in state order."""
    from aiops.diagnose.context import event_signal

    def pod(name: str) -> dict[str, Any]:
        return {"kind": "Pod", "metadata": {"name": name, "namespace": "ns"},
                "status": {"phase": "Running"}}

    def event(kind: str, name: str, reason: str) -> dict[str, Any]:
        return {"kind": "Event", "reason": reason,
                "involvedObject": {"kind": kind, "namespace": "ns", "name": name}}

    pods = [pod(f"p{i}") for i in range(40)]
    events = [event("Pod", "p30", "Failed"), event("Pod", "p3", "Failed"),
              event("Pod", "p17", "Failed"), event("Deployment", "p5", "Failed"),
              event("Pod", "gone", "Failed"), event("Pod", "p9", "BackOff")]
    state = ClusterState(source="t", objects={"Pod": pods, "Event": events})
    assert state.names_unique("Pod")
    failed = Context(state).pods_with(event_signal("Failed"))
    assert failed == [pods[3], pods[17], pods[30]]

    twin = pod("p17")
    state = ClusterState(source="t", objects={"Pod": [*pods, twin], "Event": events})
    assert not state.names_unique("Pod")
    assert Context(state).pods_with(event_signal("Failed")) == [pods[3], pods[17], pods[30],
                                                                twin]
