"""Evidence and Remediation keep the behaviour of frozen dataclasses with their own
`__init__` (which stores fields straight into `__dict__` for speed)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from aiops.diagnose.finding import Action, Evidence, Remediation


def test_evidence_is_a_frozen_dataclass_made_by_position_or_name() -> None:
    t = datetime(2026, 11, 28, tzinfo=UTC)
    a = Evidence("log", "boom", "log of app, line 3", t)
    b = Evidence(source="log", text="boom", ref="log of app, line 3", time=t)
    assert a == b and hash(a) == hash(b)
    assert Evidence("status", "x", "status.phase").time is None
    assert dataclasses.replace(a, text="bang").text == "bang"
    assert [f.name for f in dataclasses.fields(a)] == ["source", "text", "ref", "time"]
    assert a.to_dict() == {"source": "log", "text": "boom", "ref": "log of app, line 3",
                           "time": "2026-11-28T00:00:00Z"}
    assert repr(a).startswith("Evidence(source='log', text='boom'")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.text = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Evidence("log", "boom")  # type: ignore[call-arg]


def test_remediation_is_a_frozen_dataclass_with_its_defaults() -> None:
    action = Action("manual", {"kind": "Pod", "name": "p"}, "do it", "low")
    r = Remediation("fix it", ("kubectl get pods",), action)
    assert r == Remediation(summary="fix it", commands=("kubectl get pods",), action=action)
    assert Remediation("fix it") == Remediation("fix it", (), None)
    assert r.to_dict()["action"]["tier"] == "low"
    assert dataclasses.replace(r, commands=()).commands == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.summary = "other"  # type: ignore[misc]
