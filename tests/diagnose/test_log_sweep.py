"""The whole-cluster log sweep (one RE2 pass over every log, then over the tails of
those holding a keyword) decides exactly what the per-log Python path decides:
which logs are quiet and which lines are candidates. A whole-cluster triage and
one-pod diagnoses of the same pods must therefore agree."""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aiops.diagnose.rules.logs as logs_module
from aiops.diagnose import diagnose
from aiops.diagnose.context import LOG_LINE_LIMIT, Context
from aiops.diagnose.rules.logs import (
    _SWEEP_WORDS,
    MAX_LINE,
    STAMP_SPAN,
    _any_keyword,
    _candidate_lines,
    _line_facts,
    _sweep,
)
from aiops.model import ClusterState
from aiops.sources.snapshot import load_snapshot

NS = "shop"

# keywords in odd cases, near misses, and lines that are not keywords at all
PIECES = [*_SWEEP_WORDS, *(w.upper() for w in _SWEEP_WORDS), "ErRoR", "Refused",
          "TRACEBACK (MOST RECENT CALL LAST):", "err or", "time dout", "no such", "ok",
          "2026-11-20T10:00:00Z INFO all good", " ", "\t", "\n", "\r\n", "é", "İ",
          # timestamps in the shapes `_TIMESTAMP` reads, twice on a line, near the end of
          # the span it is looked for in, and next to control bytes and ANSI colours
          "2026-11-20 10:00:00,123+0100", "[2026-11-20T10:00:00.5-02:00]", "ts=2026-11-20T10:00:00",
          "2026-11-20T10:00:00Z 2026-11-20T10:00:01Z", "y" * (STAMP_SPAN - 12),
          "\x1b[31m", "\x07", "\x00", "\x7f"]


def _pod(name: str) -> dict:
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"containers": [{"name": "app", "image": "x:1"}]},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "app", "ready": False, "restartCount": 2,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                             "finishedAt": "2026-11-20T09:59:00Z"}}}]}}


def _state(logs: list[str], previous: list[str]) -> ClusterState:
    pods = [_pod(f"p{i}") for i in range(len(logs))]
    return ClusterState(
        source="t", objects={"Pod": pods},
        logs={(NS, f"p{i}", "app"): t for i, t in enumerate(logs)},
        previous_logs={(NS, f"p{i}", "app"): t for i, t in enumerate(previous)})


logs = st.lists(st.sampled_from(PIECES), max_size=12).map(" ".join)  # "\n" is a piece


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(logs, min_size=1, max_size=6), st.lists(logs, max_size=6))
def test_sweep_equals_the_per_log_checks(current: list[str], previous: list[str]) -> None:
    state = _state(current, previous)
    ctx = Context(state)
    swept = _sweep(ctx)
    for prev, src in ((False, state.logs), (True, state.previous_logs)):
        for key, text in src.items():
            got = swept.get((prev, key), "unswept")
            if not text.isascii():
                assert got == "unswept"  # left to the Python path
                continue
            if not _any_keyword(text):
                assert got is None
            else:
                lines = ctx.log_lines(*key, prev)
                assert got.lines == _candidate_lines(lines)
                # each line's key and stamp as `_line_facts` works them out, or left to it
                for i, k, stamp in zip(*got, strict=True):
                    _line, want, want_stamp = _line_facts(lines[i])
                    assert k is None or (k, stamp) == (want, want_stamp)
                    assert k is not None or not (lines[i][:MAX_LINE].isascii()
                                                 and lines[i][:MAX_LINE].isprintable())


def test_keys_of_long_lines_are_cut_where_the_python_path_cuts() -> None:
    stamp = "2026-11-20T10:00:00Z"
    lines = [stamp + " error " + "x" * (MAX_LINE + 50),  # cut at MAX_LINE
             "y" * (STAMP_SPAN - 10) + stamp + " error",  # stamp past the span: not one
             "y" * (STAMP_SPAN - len(stamp)) + stamp + " error"]  # ends at the span
    state = _state(["\n".join(lines)], [])
    got = _sweep(Context(state))[(False, (NS, "p0", "app"))]
    assert got.lines == [0, 1, 2]
    assert [(k, s) for k, s in zip(got.keys, got.stamps, strict=True)] == \
        [_line_facts(x)[1:] for x in lines]
    assert got.stamps == [stamp, None, stamp]


def test_sweep_of_a_huge_log_reads_its_tail_only() -> None:
    head = "ERROR: connection refused to db:5432\n" * 10
    tail = "\n".join(f"line {i} fine" for i in range(LOG_LINE_LIMIT + 50))
    state = _state([head + tail, "x\n" * (LOG_LINE_LIMIT + 5)], [])
    ctx = Context(state)
    swept = _sweep(ctx)
    # a keyword only before the tail: swept as noisy, but no candidate line is kept
    assert swept[(False, (NS, "p0", "app"))] == ([], [], [])
    assert swept[(False, (NS, "p1", "app"))] is None


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(logs, min_size=1, max_size=5), st.lists(logs, max_size=5))
def test_whole_cluster_triage_agrees_with_one_pod_diagnoses(current: list[str],
                                                           previous: list[str]) -> None:
    state = _state(current, previous)
    fresh = copy.deepcopy(state)  # nothing swept: each pod's logs checked on their own
    whole = {(f.rule, tuple(f.pods), f.summary, tuple(e.text for e in f.evidence))
             for f in diagnose(state).findings if f.kind == "Pod"}
    alone = {(f.rule, tuple(f.pods), f.summary, tuple(e.text for e in f.evidence))
             for i in range(len(current))
             for f in diagnose(fresh, namespace=NS, pod=f"p{i}").findings}
    assert whole == alone


def test_a_failing_prefetched_sweep_is_a_rule_failure_not_a_crash(monkeypatch) -> None:
    """The sweep starts in a worker thread before the rules run; what it raises
    reaches the log rule that waits for it, isolated like any rule failure."""
    from aiops.diagnose.rules import logs

    def boom(*args: object) -> None:
        raise RuntimeError("sweep exploded")

    monkeypatch.setattr(logs, "_finish_sweep", boom)
    state = _state(["error: connection refused to db:5432"], [])
    d = diagnose(state)
    assert {f.rule for f in d.failures} >= {"rbac-forbidden"}
    assert all("sweep exploded" in f.error for f in d.failures)
    assert diagnose(state, rules=["crash-loop"]).failures == []  # no log rule, no sweep


def test_a_failing_start_of_the_sweep_is_a_rule_failure_not_a_crash(monkeypatch) -> None:
    """The part of the sweep that runs before the rules (taking what the load swept)
    raising is reported by the log rules, which ask for the sweep again."""
    from aiops.diagnose.rules import logs

    def boom(ctx: Context) -> None:
        raise RuntimeError("loaded sweep unreadable")

    monkeypatch.setattr(logs, "_loaded_sweep", boom)
    d = diagnose(_state(["error: connection refused to db:5432"], []))
    assert {f.rule for f in d.failures} == {"rbac-forbidden", "dns-failure",
                                            "dependency-unreachable", "app-error"}
    assert all("loaded sweep unreadable" in f.error for f in d.failures)


def test_prefetched_sweep_equals_the_sweep_built_on_demand() -> None:
    logs_ = ["x\nerror: connection refused to db:5432\nok", "all good", "panic: boom"]
    state = _state(logs_, ["Traceback (most recent call last):", ""])
    ctx = Context(state)
    ctx.prefetch(("t", "sweep"), lambda: _sweep(ctx))
    assert ctx.shared(("t", "sweep"), lambda: None) == _sweep(Context(_state(logs_, [
        "Traceback (most recent call last):", ""])))


def test_pods_with_hits_are_the_same_found_by_name_or_by_a_walk(monkeypatch) -> None:
    """A whole-cluster scan looks the pods of loud logs up by name when pod names are
    unique; the walk over every pod it does otherwise finds the same scans."""
    from aiops.diagnose.rules.logs import scan
    from aiops.sources import open_source

    def scans() -> list[tuple[str, dict]]:
        return [(s.pod["metadata"]["name"], s.hits) for s in scan(Context(open_source("demo")))]

    assert open_source("demo").names_unique("Pod")
    by_name = scans()
    assert by_name
    monkeypatch.setattr(ClusterState, "names_unique", lambda self, kind: False)
    assert scans() == by_name


# -- the first step done while a snapshot loads (`_index_logs`) ----------------------

def _dump(tmp_path, logs_: list[str], previous: list[str]):
    """A cluster-info dump: pods.json and each pod's logs as `kubectl cluster-info
    dump` writes them (a START/END block per container)."""
    import json

    ns_dir = tmp_path / NS
    ns_dir.mkdir()
    pods = [_pod(f"p{i}") for i in range(len(logs_))]
    (ns_dir / "pods.json").write_text(json.dumps({"kind": "PodList", "items": pods}))
    for name, texts in (("logs.txt", logs_), ("logs-previous.txt", previous)):
        for i, text in enumerate(texts):
            d = ns_dir / f"p{i}"
            d.mkdir(exist_ok=True)
            (d / name).write_text(f"==== START logs for container app of pod {NS}/p{i} ====\n"
                                  f"{text}\n==== END logs for container app of pod {NS}/p{i} "
                                  "====\n", encoding="utf-8")
    return tmp_path


def _unindexed(state: ClusterState) -> ClusterState:
    out = copy.deepcopy(state)
    out.__dict__.pop(logs_module._KNOWN, None)
    out.__dict__.pop(logs_module._AS_LOADED, None)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(logs, min_size=1, max_size=5), st.lists(logs, max_size=5))
def test_a_loaded_snapshot_is_swept_as_an_unloaded_state(tmp_path_factory, current,
                                                         previous) -> None:
    """What the loader's pass found (every ASCII log, nothing left in flight) gives
    the sweep a state built without it gives."""
    state = load_snapshot(_dump(tmp_path_factory.mktemp("dump"), current, previous))
    known = state.__dict__[logs_module._KNOWN]
    assert logs_module._LOADING not in state.__dict__
    ascii_logs = {(p, k) for p, src in ((False, state.logs), (True, state.previous_logs))
                  for k, t in src.items() if t.isascii()}
    assert set(known) == ascii_logs
    ctx, bare = Context(state), Context(_unindexed(state))
    assert _sweep(ctx) == _sweep(bare)
    # the tails the load split are what `log_lines` splits itself
    for previous, src in ((False, state.logs), (True, state.previous_logs)):
        for key in src:
            assert ctx.log_lines(*key, previous) == bare.log_lines(*key, previous)


def test_a_log_replaced_after_loading_is_swept_again(tmp_path) -> None:
    state = load_snapshot(_dump(tmp_path, ["all good", "ERROR: connection refused to db:5432"],
                                []))
    assert state.__dict__[logs_module._KNOWN][(False, (NS, "p0", "app"))].swept is None
    state.logs[(NS, "p0", "app")] = "panic: boom"
    state.logs[(NS, "p1", "app")] = "all good now"
    swept = _sweep(Context(state))
    assert swept[(False, (NS, "p0", "app"))].lines == [0]
    assert swept[(False, (NS, "p1", "app"))] is None
    assert swept == _sweep(Context(_unindexed(state)))


def test_logs_added_or_replaced_by_an_equal_text_after_loading_are_swept(tmp_path) -> None:
    """A triage takes the load's sweep whole only while the state holds the very logs
    it swept; a log added since, or replaced (even by an equal text), is swept anew."""
    state = load_snapshot(_dump(tmp_path, ["all good", "ERROR: connection refused"], []))
    as_loaded = state.__dict__[logs_module._AS_LOADED]
    out, todo = logs_module._loaded_sweep(Context(state))
    assert todo == [] and out == as_loaded.reuse.out and out is not as_loaded.reuse.out
    key = (NS, "p1", "app")
    state.logs[key] = "".join(list(state.logs[key]))  # equal, not the same object
    state.previous_logs[key] = "panic: boom"
    out, todo = logs_module._loaded_sweep(Context(state))
    assert todo == [(False, key), (True, key)]
    assert set(out) == {(False, (NS, "p0", "app"))}
    assert _sweep(Context(state)) == _sweep(Context(_unindexed(state)))


def test_a_triage_of_a_loaded_snapshot_sweeps_nothing_again(tmp_path, monkeypatch) -> None:
    """What the load swept is taken as it is: the triage runs no sweep of its own (its
    lock waits were what moving the sweep to the load saved)."""
    state = load_snapshot(_dump(tmp_path, ["ERROR: connection refused to db:5432"], []))

    def boom(*args: object) -> None:
        raise AssertionError("swept again")

    monkeypatch.setattr(logs_module, "_finish_sweep", boom)
    d = diagnose(state)
    assert not d.failures
    assert "dependency-unreachable" in {f.rule for f in d.findings}


def test_a_failing_load_time_pass_leaves_the_sweep_to_the_triage(tmp_path, monkeypatch) -> None:
    def boom(arr):
        raise RuntimeError("RE2 unavailable")

    monkeypatch.setattr(logs_module, "_match_sweep", boom)
    state = load_snapshot(_dump(tmp_path, ["ERROR: connection refused to db:5432"], []))
    assert not state.__dict__[logs_module._KNOWN]  # nothing recorded, loading went on
    monkeypatch.undo()
    assert {f.rule for f in diagnose(state).findings} >= {"dependency-unreachable"}


def test_a_load_never_said_to_be_complete_is_completed_by_the_sweep() -> None:
    state = _state(["ERROR: connection refused to db:5432", "all good"], ["panic: boom"])
    logs_module._index_logs(state, [(False, (NS, "p0", "app")), (True, (NS, "p0", "app"))])
    assert logs_module._LOADING in state.__dict__
    swept = _sweep(Context(state))
    assert logs_module._LOADING not in state.__dict__
    assert set(state.__dict__[logs_module._KNOWN]) == {(False, (NS, "p0", "app")),
                                                      (True, (NS, "p0", "app"))}
    assert swept == _sweep(Context(_unindexed(state)))
