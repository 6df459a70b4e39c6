"""The approval gate against real git-backed PHR stores: each tier's rule, the
two-person rule with the security role, hash binding, expiry, and every bypass
attempt refused and recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiops.approvals import PhrStore
from aiops.approvals.phr import Actor
from aiops.approvals.tiers import Approver, Governance
from aiops.approvals.workflow import (
    ApprovalRefused,
    approve,
    authorize,
    change,
    expire_overdue,
    identity,
    pending,
    propose,
    reject,
)
from aiops.diagnose.finding import Action
from aiops.errors import ParameterError

PROPOSER = Actor(name="Pat Proposer", email="pat@example.com")
ALICE = Actor(name="Alice Approver", email="alice@example.com")
SECO = Actor(name="Sam Security", email="sam@example.com")
EVE = Actor(name="Eve Outsider", email="eve@example.com")
GOV = Governance(approvers=[
    Approver(name="Pat Proposer", email="pat@example.com"),
    Approver(name="Alice Approver", email="alice@example.com"),
    Approver(name="Sam Security", email="sam@example.com", roles=["approver", "security"]),
])
TARGET = {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "todo",
          "name": "todo-backend"}


def action(tier: str = "medium", memory: str = "512Mi") -> Action:
    path = "/spec/template/spec/containers/0/resources/limits/memory"
    return Action("patch", dict(TARGET), f"raise memory limit to {memory}", tier,
                  [{"op": "replace", "path": path, "value": memory}],
                  [{"op": "replace", "path": path, "value": "256Mi"}],
                  ["rollout completes"])


def refusals(store: PhrStore) -> list[str]:
    return [r.meta.data["reason"] for r in store.records(type="refusal")]


def test_medium_change_needs_one_other_approver(store):
    c = propose(store, action(), actor=PROPOSER, reason="OOM-killed 12 times")
    assert c.state(GOV) == "proposed" and [p.id for p in pending(store, GOV)] == [c.id]
    with pytest.raises(ApprovalRefused, match="proposer cannot approve their own medium"):
        approve(store, c.id, approver=PROPOSER, justification="mine", governance=GOV)
    c = approve(store, c.id, approver=ALICE, justification="usage shows the leak",
                governance=GOV, action=action())
    assert c.state(GOV) == "approved" and pending(store, GOV) == []
    assert authorize(store, c.id, action(), actor=PROPOSER, governance=GOV).id == c.id
    [approval] = store.records(type="approval")
    assert approval.meta.action_hash == action().hash()
    # each step links to the change's previous step (here the refused self-approval)
    [refused] = store.records(type="refusal")
    assert approval.meta.links.previous_step == refused.id
    assert refused.meta.links.previous_step == c.id
    assert approval.meta.data["within_sla"] is True
    assert len(refusals(store)) == 1
    assert store.verify().ok


def test_trivial_needs_no_approval_and_low_allows_the_proposer(store):
    t = propose(store, action("trivial"), actor=PROPOSER, reason="restart one pod")
    assert t.state(GOV) == "approved"
    authorize(store, t.id, action("trivial"), actor=PROPOSER, governance=GOV)
    low = propose(store, action("low"), actor=PROPOSER, reason="scale by one")
    approve(store, low.id, approver=PROPOSER, justification="routine", governance=GOV)
    assert change(store, low.id).state(GOV) == "approved"


def test_critical_needs_two_distinct_approvers_one_with_security(store):
    c = propose(store, action("critical"), actor=PROPOSER, reason="rotate RBAC")
    approve(store, c.id, approver=ALICE, justification="reviewed", governance=GOV)
    c = change(store, c.id)
    assert c.state(GOV) == "proposed"
    assert c.missing(GOV) == ["1 more approval(s)", "an approver with the security role"]
    with pytest.raises(ApprovalRefused, match=r"execution refused.*missing 1 more approval"):
        authorize(store, c.id, action("critical"), actor=PROPOSER, governance=GOV)
    with pytest.raises(ApprovalRefused, match="already approved"):
        approve(store, c.id, approver=ALICE, justification="again", governance=GOV)
    approve(store, c.id, approver=SECO, justification="security ok", governance=GOV)
    assert change(store, c.id).state(GOV) == "approved"
    authorize(store, c.id, action("critical"), actor=PROPOSER, governance=GOV)


def test_two_approvers_without_the_security_role_are_not_enough(store):
    gov = Governance(approvers=[*GOV.approvers, Approver(name="Al", email="al@example.com")])
    c = propose(store, action("critical"), actor=PROPOSER, reason="r")
    approve(store, c.id, approver=ALICE, justification="ok", governance=gov)
    approve(store, c.id, approver=Actor(name="Al", email="al@example.com"),
            justification="ok", governance=gov)
    assert change(store, c.id).missing(gov) == ["an approver with the security role"]


def test_unknown_approver_and_empty_justification(store):
    c = propose(store, action(), actor=PROPOSER, reason="r")
    with pytest.raises(ApprovalRefused, match=r"eve@example\.com is not an approver"):
        approve(store, c.id, approver=EVE, justification="trust me", governance=GOV)
    with pytest.raises(ParameterError, match="justification"):
        approve(store, c.id, approver=ALICE, justification="  ", governance=GOV)
    assert change(store, c.id).state(GOV) == "proposed"


def test_an_edited_action_needs_a_new_approval(store):
    c = propose(store, action(memory="512Mi"), actor=PROPOSER, reason="r")
    with pytest.raises(ApprovalRefused, match="not the one proposed"):
        approve(store, c.id, approver=ALICE, justification="ok", governance=GOV,
                action=action(memory="4Gi"))
    approve(store, c.id, approver=ALICE, justification="ok", governance=GOV)
    with pytest.raises(ApprovalRefused, match="hash mismatch"):
        authorize(store, c.id, action(memory="4Gi"), actor=PROPOSER, governance=GOV)
    assert [r.meta.data["attempt"] for r in store.records(type="refusal")] == [
        "approval", "execution"]


def test_execution_without_approval_is_refused_and_recorded(store):
    c = propose(store, action(), actor=PROPOSER, reason="r")
    with pytest.raises(ApprovalRefused, match="is proposed"):
        authorize(store, c.id, action(), actor=PROPOSER, governance=GOV)
    [r] = store.records(type="refusal")
    assert r.meta.links.previous_step == c.id and r.meta.action_hash == action().hash()


def test_rejected_change_cannot_be_approved_or_run(store):
    c = propose(store, action(), actor=PROPOSER, reason="r")
    reject(store, c.id, approver=ALICE, justification="wrong limit", governance=GOV)
    assert change(store, c.id).state(GOV) == "rejected"
    with pytest.raises(ApprovalRefused, match="is rejected"):
        approve(store, c.id, approver=SECO, justification="x", governance=GOV)
    with pytest.raises(ApprovalRefused, match="is rejected"):
        authorize(store, c.id, action(), actor=PROPOSER, governance=GOV)


def test_expiry_of_proposals_and_approvals(store):
    c = propose(store, action(), actor=PROPOSER, reason="r")
    later = datetime.now(UTC) + timedelta(hours=5)  # medium proposals expire after 4 h
    assert c.state(GOV, later) == "expired"
    with pytest.raises(ApprovalRefused, match="is expired"):
        approve(store, c.id, approver=ALICE, justification="late", governance=GOV, now=later)
    assert [r.meta.type for r in change(store, c.id).steps] == ["expiry", "refusal"]
    assert expire_overdue(store, GOV, later) == [], "an expiry is recorded once"

    d = propose(store, action(memory="1Gi"), actor=PROPOSER, reason="r")
    approve(store, d.id, approver=ALICE, justification="ok", governance=GOV)
    with pytest.raises(ApprovalRefused, match="approval expired"):
        authorize(store, d.id, action(memory="1Gi"), actor=PROPOSER, governance=GOV,
                  now=later)


def test_emergency_has_the_short_sla(store):
    c = propose(store, action(), actor=PROPOSER, reason="outage", emergency=True)
    assert c.emergency
    assert c.sla_deadline(GOV) - c.proposed_at == timedelta(minutes=5)
    late = datetime.now(UTC) + timedelta(minutes=10)
    approve(store, c.id, approver=ALICE, justification="ok", governance=GOV, now=late)
    assert store.records(type="approval")[0].meta.data["within_sla"] is False


def test_no_approvers_configured_refuses_everyone(store):
    c = propose(store, action(), actor=PROPOSER, reason="r")
    with pytest.raises(ApprovalRefused, match="not an approver"):
        approve(store, c.id, approver=ALICE, justification="ok", governance=Governance())


def test_unknown_or_ambiguous_id(store):
    with pytest.raises(ParameterError, match="no proposal"):
        change(store, "0000")


def test_identity_from_parameters_or_git_config(repo, tmp_path, monkeypatch):
    assert identity("A", "a@x.io") == Actor(name="A", email="a@x.io")
    assert identity(repo=repo.working_tree_dir).email == "committer@example.com"
    empty = tmp_path / "home"
    empty.mkdir()
    monkeypatch.setenv("HOME", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.chdir(empty)
    with pytest.raises(ParameterError, match="who is deciding is unknown"):
        identity()
