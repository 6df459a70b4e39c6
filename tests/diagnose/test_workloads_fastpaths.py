"""The whole-cluster fast paths of the workload rules read less than the plain
ones (the not-ready pods up instead of every Deployment down, one tight pass over
the creators); each must give what the plain reading gives, on the demo cluster,
on malformed states, and on states with duplicated and ownerless objects."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from test_robustness import broken_state

from aiops.diagnose.context import Context, md
from aiops.diagnose.rules import workloads as W
from aiops.model import ClusterState
from aiops.sources import open_source


def _available_plain(w: W.Obj) -> tuple[int, int] | None:
    """`_available` as it read before its accessors were inlined."""
    spec, st, kind = W._d(w.get("spec")), W._d(w.get("status")), w.get("kind")
    if kind == "DaemonSet":
        desired = W._int(st.get("desiredNumberScheduled"))
        return (desired, W._int(st.get("numberAvailable")) or 0) if desired is not None \
            else None
    desired = W._int(spec.get("replicas")) if "replicas" in spec else 1
    if desired is None:
        return None
    avail = W._int(st.get("availableReplicas"))
    if avail is None and kind == "StatefulSet":
        avail = W._int(st.get("readyReplicas"))
    return desired, avail or 0


def _check(state: ClusterState) -> None:
    ctx = Context(state)
    kids = W._Children(ctx)
    ids = [id(o) for o in W._cluster_quota_suspects(ctx)]
    assert ids == [id(o) for o in W._quota_suspects(ctx, kids)]
    unready = W._UnreadyPods.of(ctx)
    for dep in state.kind("Deployment"):
        if not isinstance(dep, dict):
            continue
        assert W._deadline_passed(dep) == (
            W._condition(dep, "Progressing").get("status") == "False"
            and W._condition(dep, "Progressing").get("reason") == "ProgressDeadlineExceeded")
        # the fast pre-pass is a necessary condition of the plain one's findings
        if W._stuck_rollout(ctx, kids, dep, None) is not None \
                and W._d(dep.get("spec")).get("paused") is not True:
            assert W._rollout_suspect_fast(kids, unready, dep)
        if W._rollout_suspect_fast(kids, unready, dep):
            assert W._rollout_suspect(kids, dep)
    for kind in ("Deployment", "StatefulSet", "DaemonSet"):
        for w in state.kind(kind):
            if isinstance(w, dict):
                assert W._available(w) == _available_plain(w)
                plain = [p for p in W._workload_pods(ctx, kids, w) if not W._ready(p)]
                assert [id(p) for p in unready.of_workload(kids, w)] == [id(p) for p in plain]
    for job in state.kind("Job"):
        if isinstance(job, dict):
            assert W._has_failed(job) == bool(W._job_failed(job))
    for kind in ("ReplicaSet", "Job", "Pod", "StatefulSet"):
        for o in state.kind(kind):
            if isinstance(o, dict):
                for reasons in (("FailedCreate",), W._JOB_ENDED, ("Unhealthy", "Failed")):
                    assert W._has_event(ctx, o, reasons) == any(
                        ctx.events(o, reason=r) for r in reasons)


def test_fast_paths_match_the_plain_reading_on_the_demo() -> None:
    _check(open_source("demo"))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(broken_state())
def test_fast_paths_match_the_plain_reading_on_malformed_states(state: ClusterState) -> None:
    _check(state)


def _with_duplicates() -> ClusterState:
    """The demo with every controller listed twice (a merged snapshot), a ReplicaSet
    renamed as another, ownerless and cluster-scoped copies."""
    state = open_source("demo")
    objects: dict[str, list[Any]] = {k: list(v) for k, v in state.objects.items()}
    for kind in ("ReplicaSet", "Job", "StatefulSet", "Deployment"):
        for o in list(objects.get(kind, [])):
            twin = copy.deepcopy(o)
            md(twin).pop("ownerReferences", None)
            objects[kind].append(twin)
            lost = copy.deepcopy(o)
            md(lost).pop("namespace", None)
            objects[kind].append(lost)
    rses = objects.get("ReplicaSet", [])
    if len(rses) > 1:
        md(rses[1])["name"] = md(rses[0]).get("name")
    return ClusterState(source="dup", objects=objects, captured_at=state.captured_at)


def test_fast_paths_match_the_plain_reading_with_duplicates() -> None:
    _check(_with_duplicates())


def test_whole_cluster_findings_with_duplicates_do_not_depend_on_the_fast_paths(
        monkeypatch) -> None:
    from aiops.diagnose import diagnose
    fast = diagnose(_with_duplicates()).to_dicts()
    # with no target but not taken for the whole cluster, the rules take their plain
    # paths over every object (and nothing is kept on the state)
    monkeypatch.setattr(Context, "whole_cluster", property(lambda self: False))
    slow = diagnose(_with_duplicates()).to_dicts()
    assert fast == slow


def _same_both_ways(st: ClusterState) -> None:
    """The fast-path checks, and the whole diagnosis with and without the fast paths."""
    from aiops.diagnose import diagnose
    _check(copy.deepcopy(st))
    fast = diagnose(copy.deepcopy(st)).to_dicts()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Context, "whole_cluster", property(lambda self: False))
        slow = diagnose(copy.deepcopy(st)).to_dicts()
    assert fast == slow


def test_fast_paths_on_every_workload_test_state(monkeypatch) -> None:
    """Every state the workload rule tests build (a rollout stuck before its deadline,
    quota events without a condition, CronJob streaks...) goes through the checks."""
    import test_workloads as T

    built: list[ClusterState] = []
    plain_state = T.state

    def recording(*objs: Any, **kw: Any) -> ClusterState:
        st = plain_state(*objs, **kw)
        built.append(copy.deepcopy(st))
        return st

    monkeypatch.setattr(T, "state", recording)
    for name, fn in vars(T).items():
        if name.startswith("test_") and callable(fn) and fn.__code__.co_argcount == 0:
            fn()
    assert len(built) > 15
    monkeypatch.undo()
    for st in built:
        _same_both_ways(st)


def test_cronjob_whose_status_says_success_but_newest_job_failed() -> None:
    """Only the failed-Job owners let this CronJob through the fast pre-pass (its
    status is not stale), and only an event says its second Job gave up."""
    import test_workloads as T
    from _workloads_objects import cronjob, event, job, owner

    objs, _ = T.backup()
    objs[0] = cronjob("db-backup", last_schedule=60, last_success=30)
    quiet = job("db-backup-2", owners=owner("CronJob", "db-backup"), created=90)
    gave_up = job("db-backup-3", owners=owner("CronJob", "db-backup"), created=100)
    st = T.state(*objs, quiet, gave_up,
                 event(gave_up, "DeadlineExceeded", "Job was active longer than specified"))
    _same_both_ways(st)
    rules = [f.rule for f in T.diagnose(copy.deepcopy(st)).findings]
    assert "cronjob-failing" in rules and rules.count("job-failed") == 2
