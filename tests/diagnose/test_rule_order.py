"""The engine runs the rules a prefetch serves last (their table is built in a
worker meanwhile). What a diagnosis finds, and the failures it reports, must not
depend on the order the rules run in."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from test_robustness import broken_state

from aiops.diagnose import diagnose, engine
from aiops.diagnose.registry import PREFETCH, RULES, load_rules
from aiops.model import ClusterState
from aiops.sources import open_source


def _runs(state: ClusterState, **target: Any) -> tuple[list[dict[str, Any]], list[Any]]:
    d = diagnose(state, **target)
    return d.to_dicts(), d.failures


def _orders() -> list[list[str]]:
    load_rules()
    ids = list(RULES)
    return [ids, ids[::-1], ids[1::2] + ids[::2]]


def test_prefetched_rules_run_last() -> None:
    load_rules()
    served = set().union(*(ids for _hook, ids in PREFETCH))
    assert served, "the log rules prefetch their sweep"
    order = engine._run_order(served)
    assert sorted(order) == sorted(RULES)
    assert set(order[-len(served):]) == served


@pytest.mark.parametrize("target", [{}, {"namespace": "todo"}])
def test_demo_findings_do_not_depend_on_the_rule_order(monkeypatch, target) -> None:
    want = _runs(open_source("demo"), **target)
    assert want[0]
    for order in _orders():
        monkeypatch.setattr(engine, "_run_order", lambda served, o=order: o)
        assert _runs(open_source("demo"), **target) == want


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(broken_state())
def test_malformed_findings_do_not_depend_on_the_rule_order(state: ClusterState) -> None:
    want = _runs(copy.deepcopy(state))
    for order in _orders():
        engine_order = engine._run_order
        engine._run_order = lambda served, o=order: o  # type: ignore[assignment]
        try:
            assert _runs(copy.deepcopy(state)) == want
        finally:
            engine._run_order = engine_order  # type: ignore[assignment]
