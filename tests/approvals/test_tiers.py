"""Tier rules and approvers: the seed plan's defaults, partial overrides, and
clear errors for a file that would otherwise loosen the gate by accident."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aiops.approvals.tiers import Governance, load_governance
from aiops.errors import ParameterError


def test_defaults_are_the_seed_plan():
    g = Governance()
    assert g.policy("trivial").approvals == 0
    low, medium, critical = g.policy("low"), g.policy("medium"), g.policy("critical")
    assert (low.approvals, low.sla) == (1, timedelta(minutes=5))
    assert (medium.approvals, medium.sla, medium.dry_run) == (1, timedelta(minutes=30), True)
    assert critical.approvals == 2 and critical.roles == ["security"]
    assert timedelta(minutes=60) <= critical.sla <= timedelta(minutes=120)
    assert not medium.self_approval and not critical.self_approval
    assert g.emergency_sla == timedelta(minutes=5)
    assert g.approvers == [], "nobody may approve until the file names them"


def test_partial_override_keeps_other_defaults(tmp_path):
    f = tmp_path / "gov.yaml"
    f.write_text("tiers:\n  medium: {sla: 10m}\nemergency_sla: 2m\napprovers:\n"
                 "  - {name: Ada, email: Ada@Example.com, roles: [approver, security]}\n")
    g = load_governance(f)
    assert g.policy("medium").sla == timedelta(minutes=10)
    assert g.policy("medium").dry_run is True
    assert g.policy("critical").approvals == 2
    assert g.emergency_sla == timedelta(minutes=2)
    assert g.approver("ada@example.com").roles == ["approver", "security"]
    assert g.approver("eve@example.com") is None


def test_environment_variable_names_the_file(tmp_path, monkeypatch):
    f = tmp_path / "gov.yaml"
    f.write_text("approvers: [{name: B, email: b@x.io}]\n")
    monkeypatch.setenv("AIOPS_GOVERNANCE", str(f))
    assert load_governance().approver("b@x.io").roles == ["approver"]


@pytest.mark.parametrize(("text", "message"), [
    ("tiers:\n  huge: {sla: 1m}\n", "unknown tier(s) ['huge']"),
    ("tiers:\n  low: {sla: banana}\n", "tiers.low.sla"),
    ("tiers:\n  low: {approvals: -1}\n", "tiers.low.approvals"),
    ("tiers:\n  low: {aprovals: 2}\n", "tiers.low.aprovals"),
    ("approvers: [{name: A, email: not-an-email}]\n", "approvers.0.email"),
    ("tiers: [\n", "invalid YAML at line"),
])
def test_bad_file_names_the_field(tmp_path, text, message):
    f = tmp_path / "gov.yaml"
    f.write_text(text)
    with pytest.raises(ParameterError) as err:
        load_governance(f)
    assert str(f) in str(err.value) and message in str(err.value)


def test_unknown_tier_asked_for():
    with pytest.raises(ParameterError, match="unknown risk tier 'urgent'"):
        Governance().policy("urgent")
