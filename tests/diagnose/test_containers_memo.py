"""The memos behind a fast first triage must never change an answer.

* A log line's marks (panic, exception, traceback, error) are remembered by its
  text with every ASCII digit made 0, and a whole log's decisive lines by all its
  lines so keyed: no pattern tells one digit from another.
* The node-usage table works `pod_requests` out once per request shape.
Each is checked against the fresh computation.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from typing import Any

from _containers_objects import container, pod, state
from hypothesis import given, settings
from hypothesis import strategies as st

from aiops.diagnose.context import Context
from aiops.diagnose.rules import containers as rules
from aiops.diagnose.rules import scheduling as sched
from aiops.model import ClusterState

# pieces that exercise every alternative of the decisive patterns, digits included
PIECES = ["panic: ", "fatal error: ", "thread 'main' panicked at ", "Traceback (most recent "
          "call last):", "ValueError: ", "java.lang.IllegalStateException", "Exit", ":",
          "ERROR", "error", "Error:", "FATAL", "fatal", "E1123 ", "F0101 ", "E12 ", "[error]",
          "[CRIT]", "level=error", "LEVEL=Fatal", '"level":"error"', '"level": "critical"',
          "level", "  ", " ", "\t", "x", "_", "$", ".", "'", '"', "0", "7", "42", "2026-11-23T",
          "ERROR7", "7ERROR", "İ", "ſ", "\u0663", "\ud800", "Caused by: ", "Uncaught "]
line_text = st.lists(st.sampled_from(PIECES), max_size=8).map("".join)


def zeroed(line: str) -> str:
    return line.translate(str.maketrans("0123456789", "0" * 10))


@settings(max_examples=400, deadline=None)
@given(line_text)
def test_a_lines_marks_do_not_depend_on_which_digits_it_has(line: str) -> None:
    assert rules.line_marks(line) == rules.line_marks(zeroed(line))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(line_text, max_size=12), min_size=1, max_size=4))
def test_remembered_decisive_lines_equal_fresh_ones(logs: list[list[str]]) -> None:
    memo: rules.Marks = {}
    for lines in logs + logs:  # each log twice: the second time from the memo
        assert rules.decisive_lines(lines, memo) == rules.decisive_lines(lines)


def test_renumbered_lines_share_a_shape_and_keep_their_own_answer() -> None:
    memo: rules.Marks = {}
    a = ["2026-11-20T10:00:01Z INFO start", "2026-11-20T10:00:02Z ERROR db 10.0.0.9 down"]
    b = ["2026-11-21T11:09:07Z INFO start", "2026-11-21T11:09:08Z ERROR db 10.0.0.7 down",
         "2026-11-21T11:09:09Z INFO retry"]
    assert rules.decisive_lines(a, memo) == ([1], "error")
    assert len(memo) == 2
    assert rules.decisive_lines(b, memo) == ([1], "error") == rules.decisive_lines(b)
    assert len(memo) == 3  # only the new shape was classified
    # digits only stand for digits: a letter in their place is another shape
    for lines in (["E1234 boom"], ["Exxxx boom"], ["E0000 boom"], ["EOOOO boom"]):
        assert rules.decisive_lines(lines, memo) == rules.decisive_lines(lines)


def test_lines_with_newlines_or_too_long_for_the_memo_are_classified_alike() -> None:
    memo: rules.Marks = {}
    long = "x" * (rules.MARKS_LINE_CHARS + 5) + " ERROR boom"
    for lines in (["ok\npanic: boom", "fine"], ["panic: boom", "ok\nfine"], [long, "ok"],
                  ["ValueError: bad " + "y" * 3000, "ERROR after"]):
        assert rules.decisive_lines(lines, memo) == rules.decisive_lines(lines)
    assert all(len(k) <= rules.MARKS_LINE_CHARS * 4 for k in memo)


def test_a_full_line_memo_starts_afresh(monkeypatch: Any) -> None:
    monkeypatch.setattr(rules, "MARKS_LIMIT", 3)
    memo: rules.Marks = {}
    rng = random.Random(7)
    for _ in range(50):
        lines = [rng.choice(["a", "b c", "ERROR x", "panic: y", "Traceback (most recent call "
                             "last):", "KeyError: k", "E1234 z", "q"]) for _ in range(6)]
        assert rules.decisive_lines(lines, memo) == rules.decisive_lines(lines)
        assert len(memo) <= 3


def _crash_world(logs: dict[str, str]) -> ClusterState:
    pods = [pod(name, statuses=[]) for name in logs]
    return state(*pods, previous_logs={("shop", n, "app"): t for n, t in logs.items()})


def test_quoted_logs_of_one_shape_share_a_result_that_equals_the_fresh_one() -> None:
    log = ("2026-11-20T10:00:0{s}Z INFO serving\nTraceback (most recent call last):\n"
           '  File "app.py", line 1{s}\nKeyError: id-{s}{s}\n2026-11-20T10:00:0{s}Z ERROR exit\n')
    logs = {f"web-{i}": log.format(s=i) for i in range(4)} | {"web-odd": "ok\nfine\n"}
    st_ = _crash_world(logs)
    ctx = Context(st_)
    for name, text in logs.items():
        q = rules.quote_log(ctx, pod(name), "app", tail=2)
        lines = text.splitlines()
        idx, kind = rules.decisive_lines(lines)
        if idx:
            assert (q.kind, q.lines) == (kind, tuple((1 + i, lines[i]) for i in idx))
        else:
            assert q.kind == "tail" and q.lines == ((1, "ok"), (2, "fine"))
    shapes = ctx.shared(("containers", "log-shapes"), rules._LogShapes)
    assert len(shapes.found) == 2  # the four renumbered logs are one shape


def test_a_full_shape_memo_starts_afresh(monkeypatch: Any) -> None:
    monkeypatch.setattr(rules, "SHAPES_BYTES", 40)
    logs = {f"p{i}": f"line {i}\n" + "ERROR x\n" * (i % 3 + 1) for i in range(9)}
    ctx = Context(_crash_world(logs))
    for name, text in logs.items():
        lines = text.splitlines()
        q = rules.quote_log(ctx, pod(name), "app")
        assert [n - 1 for n, _ in q.lines] == rules.decisive_lines(lines)[0]
    assert ctx.shared(("containers", "log-shapes"), rules._LogShapes).size <= 40


# -- node usage ---------------------------------------------------------------------

def _usage_as_before(st_: ClusterState) -> dict[str, dict[str, float]]:
    """The node-usage table as it was computed before the memo: pod by pod."""
    used: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for p in st_.kind("Pod"):
        if not isinstance(p, dict):
            continue
        node = sched._d(p.get("spec")).get("nodeName")
        if not isinstance(node, str) or not node:
            continue
        if sched._d(p.get("status")).get("phase") in ("Succeeded", "Failed"):
            continue
        for k, v in sched.pod_requests(p).items():
            used[node][k] += v
    return {n: dict(u) for n, u in used.items()}


def _res(**kw: Any) -> dict:
    return {"resources": kw}


def test_node_usage_equals_the_pod_by_pod_sum() -> None:
    shapes: list[dict] = [
        _res(requests={"cpu": "100m", "memory": "128Mi"}, limits={"memory": "256Mi"}),
        _res(requests={"cpu": "250m", "memory": "1Gi"}),
        _res(requests={"cpu": 1, "memory": "64Mi"}),  # a number: not remembered
        _res(requests={"cpu": 1.0, "memory": "64Mi"}),  # 1 == 1.0 == True as keys
        _res(requests={"cpu": True, "memory": "64Mi"}),
        _res(requests={True: "1", "cpu": "1"}),  # 1 == True: only text is a key
        _res(requests={1: "1", "cpu": "1"}),
        _res(requests={"cpu": ["1"]}),  # malformed
        _res(limits="nonsense"),
        {"resources": None},
        {},
    ]
    rng = random.Random(11)
    pods = []
    for i in range(300):
        spec: dict = {"overhead": rng.choice([None, {"cpu": "10m"}, {"cpu": 0.1}, "x"])}
        if rng.random() < 0.3:
            init = container("init", **rng.choice(shapes))
            if rng.random() < 0.5:
                init["restartPolicy"] = "Always"
            spec["initContainers"] = [init, "junk"]
        p = pod(f"p{i}", node=rng.choice(["n1", "n2", "n3", ""]),
                phase=rng.choice(["Running", "Pending", "Succeeded", "Failed"]),
                containers=[container(f"c{j}", **rng.choice(shapes))
                            for j in range(rng.randint(1, 3))], spec_extra=spec)
        pods.append(p)
    st_ = state(*pods)
    got = sched._sum_node_usage(Context(st_))
    want = _usage_as_before(st_)
    assert got == want
    # the same floats bit for bit, resources in the same order
    assert {n: list(map(repr, u.items())) for n, u in got.items()} == \
        {n: list(map(repr, u.items())) for n, u in want.items()}


def test_requests_key_takes_text_only_and_tells_sidecars_apart() -> None:
    def kept(spec: dict) -> bool:
        return sched._all_text(sched._requests_key(spec))

    assert kept({"containers": [{"resources": {"requests": {"cpu": "1"}}}]})
    assert not kept({"containers": [{"resources": {"requests": {"cpu": 1}}}]})
    assert not kept({"containers": [{"resources": {"requests": {1: "1"}}}]})
    assert not kept({"overhead": {"cpu": math.nan}})
    assert not kept({"initContainers": [{"resources": {"limits": {"cpu": True}}}]})
    init = {"resources": {"requests": {"cpu": "1"}}}
    sidecar = {**init, "restartPolicy": "Always"}
    assert sched._requests_key({"initContainers": [init]}) != \
        sched._requests_key({"initContainers": [sidecar]})
    # an init container is not an app container
    assert sched._requests_key({"initContainers": [init]}) != sched._requests_key(
        {"containers": [init]})
