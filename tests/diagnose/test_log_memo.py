"""What a log line says is remembered by its text with the timestamp taken out
(a crash-looping container logs the same error again and again). The memo must
never change an answer: each hit keeps its own line, number and time; a line read
with its neighbours, or whose parse quotes its own stamp, is never reused."""

from __future__ import annotations

import gc
import weakref
from datetime import UTC

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiops.diagnose import diagnose
from aiops.diagnose.context import parse_time
from aiops.diagnose.rules.logs import (
    _TIMESTAMP,
    PodScan,
    _scan_lines,
    _stamp_time,
    _stamp_times,
)
from aiops.sources import open_source


def scan(lines: list[str], memo: dict | None = None) -> PodScan:
    out = PodScan({})
    _scan_lines(out, "app", True, lines, 1, 0, None, {} if memo is None else memo)
    return out


def test_a_repeated_error_keeps_each_line_its_own_number_and_time() -> None:
    memo: dict = {}
    lines = [f'{{"ts":"2026-11-20T10:00:{s:02d}Z","level":"error","msg":"dial tcp '
             f'10.0.0.9:5432: connect: connection refused"}}' for s in range(40)]
    hits = scan(lines, memo).hits["conn"]
    assert [h.line_no for h in hits] == list(range(1, 41))
    assert [h.time.second for h in hits] == list(range(40))
    assert [h.line for h in hits] == lines
    assert {(h.data["host"], h.data["port"]) for h in hits} == {("10.0.0.9", 5432)}
    assert len(memo) == 1  # parsed once


def test_a_line_read_with_its_neighbours_is_not_reused() -> None:
    """The host is named on the next line: the same text next to another host must
    give that host, not the first one's."""
    lines = ["2026-11-20T10:00:01Z ERROR connection refused", "  host=alpha:6379",
             "ok", "ok", "ok",
             "2026-11-20T10:00:02Z ERROR connection refused", "  host=beta:6379"]
    memo: dict = {}
    found = {(h.line_no, h.data["host"]) for h in scan(lines, memo).hits["conn"]}
    assert found == {(1, "alpha"), (6, "beta")}
    assert not memo


def test_a_parse_that_quotes_its_stamp_is_not_reused() -> None:
    lines = [f"2026-11-20T10:00:0{s}Z FATAL could not start" for s in range(3)]
    msgs = [h.data["msg"] for h in scan(lines).hits["app"]]
    assert msgs == [x.strip() for x in lines]


@pytest.mark.parametrize("lines", [
    ["panic: runtime error: index out of range", "panic: runtime error: index out of range"],
    ["no timestamp: connection refused to db:5432"] * 3,
])
def test_memo_gives_what_a_fresh_scan_gives(lines: list[str]) -> None:
    memo: dict = {}
    first, again = scan(lines, memo), scan(lines, memo)
    assert {k: [(h.line_no, h.data) for h in v] for k, v in first.hits.items()} == \
        {k: [(h.line_no, h.data) for h in v] for k, v in again.hits.items()} == \
        {k: [(h.line_no, h.data) for h in v] for k, v in scan(lines).hits.items()}


def test_a_diagnosis_leaves_no_reference_cycles(monkeypatch: pytest.MonkeyPatch) -> None:
    """`diagnose` freezes what it kept out of the collector's reach; that is only
    safe because reference counting alone frees the state, its indexes and the
    findings once they are dropped."""
    monkeypatch.setattr(gc, "freeze", lambda: None)
    gc.collect()
    state = open_source("demo")
    ref = weakref.ref(state)
    whole = diagnose(state)
    one = diagnose(state, namespace=whole.findings[0].namespace,
                   pod=whole.findings[0].pods[0] if whole.findings[0].pods else None)
    assert whole.findings and one.target
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        del state, whole, one
        assert ref() is None
        gc.collect()
        left = [type(o).__module__ for o in gc.garbage]
        assert not [m for m in left if m.startswith("aiops")], left
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


@settings(max_examples=3000, deadline=None)
@given(st.from_regex(_TIMESTAMP, fullmatch=True))
def test_stamp_time_reads_what_parse_time_reads(text: str) -> None:
    """The fast path of `_stamp_time` gives what the general parse gave."""
    m = _TIMESTAMP.search(text)
    assert m is not None
    old = parse_time(m.group(1).replace(" ", "T").replace(",", "."))
    if old is not None and old.tzinfo is None:
        old = old.replace(tzinfo=UTC)
    assert _stamp_time(m.group(1)) == old
    if old is not None:
        assert _stamp_time(m.group(1)).utcoffset() == old.utcoffset()


_STAMPS = st.from_regex(_TIMESTAMP, fullmatch=True).map(lambda t: _TIMESTAMP.search(t).group(1))


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.one_of(_STAMPS, st.none()), max_size=6)
       | st.lists(st.builds(lambda d, f, z: f"2026-{d}T10:00:00{f}{z}",
                            st.sampled_from(["01-31", "02-30", "12-01"]),
                            st.sampled_from(["", ".5", ".123456", ",5"]),
                            st.sampled_from(["Z", "+02:00", "-0530", ""])), max_size=6))
def test_stamp_times_are_each_stamp_time(stamps: list[str | None]) -> None:
    """The batch reads what `_stamp_time` reads of each stamp, zone included, whether
    it takes its fast path (all common, zoned) or not (a naive or odd one, a date
    that does not exist, a missing stamp)."""
    got = _stamp_times(stamps)
    want = [_stamp_time(s) for s in stamps]
    assert got == want
    assert [t.utcoffset() if t else None for t in got] == \
        [t.utcoffset() if t else None for t in want]
