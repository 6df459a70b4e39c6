"""`aiops pending / approve / reject / show-change` through the real entry point,
with a tmp git-backed store and a tmp governance file: exit 0 done, 4 refused
(and recorded), 2 bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from aiops.approvals.phr import Actor
from aiops.approvals.tiers import load_governance
from aiops.approvals.workflow import change, propose
from aiops.cli import main
from aiops.diagnose.finding import Action

PAT = Actor(name="Pat Proposer", email="pat@example.com")
TARGET = {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "todo",
          "name": "todo-backend"}


def action(tier: str = "medium", memory: str = "512Mi") -> Action:
    path = "/spec/template/spec/containers/0/resources/limits/memory"
    return Action("patch", dict(TARGET), f"raise memory limit to {memory}", tier,
                  [{"op": "replace", "path": path, "value": memory}],
                  [{"op": "replace", "path": path, "value": "256Mi"}], ["rollout completes"])


@pytest.fixture
def gov(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.delenv("AIOPS_GOVERNANCE", raising=False)
    monkeypatch.delenv("AIOPS_HISTORY", raising=False)
    p = tmp_path / "governance.yaml"
    p.write_text(yaml.safe_dump({
        "tiers": {"low": {"sla": 0.001}},  # so a low proposal is already overdue
        "approvers": [
            {"name": "Pat Proposer", "email": "pat@example.com"},
            {"name": "Alice Approver", "email": "alice@example.com"},
            {"name": "Sam Security", "email": "sam@example.com", "roles": ["approver", "security"]},
            {"name": "Test Committer", "email": "committer@example.com"},
        ]}))
    return p


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _decide(capsys, store, gov, verb: str, cid: str, who: str, *extra: str):
    name = who.split("@")[0].title()
    return _run(capsys, verb, cid, "--justification", f"{name} checked it", "--name", name,
                "--email", who, "--store", str(store.root), "--governance", str(gov), *extra)


def test_pending_table_and_json(store, gov, capsys):
    med = propose(store, action(), actor=PAT, reason="OOM-killed 12 times")
    low = propose(store, action("low", "300Mi"), actor=PAT, reason="small bump")
    code, out, _ = _run(capsys, "pending", "--store", str(store.root), "--governance", str(gov),
                        "--format", "json")
    rows = {r["id"]: r for r in json.loads(out)}
    assert code == 0 and set(rows) == {med.id, low.id}
    assert rows[med.id]["missing"] == ["1 more approval(s)"]
    assert rows[med.id]["object"] == "Deployment/todo/todo-backend"
    assert rows[med.id]["proposer"] == "pat@example.com" and rows[med.id]["approvals"] == []
    assert rows[med.id]["sla_breached"] is False and rows[low.id]["sla_breached"] is True
    code, out, _ = _run(capsys, "pending", "--store", str(store.root), "--governance", str(gov))
    assert code == 0 and med.id in out and low.id in out and "2 pending" in out
    assert "1 more approval(s)" in out and "yes" in out


def test_approve_records_and_leaves_pending(store, gov, capsys):
    c = propose(store, action(), actor=PAT, reason="OOM-killed")
    code, out, _ = _decide(capsys, store, gov, "approve", c.id, "alice@example.com")
    [rec] = store.records(type="approval")
    assert code == 0 and f"{c.id} is now approved" in out and rec.id in out
    assert rec.meta.actor.email == "alice@example.com"
    assert rec.meta.data["justification"] == "Alice checked it"
    code, out, _ = _run(capsys, "pending", "--store", str(store.root), "--governance", str(gov))
    assert code == 0 and "0 pending" in out


def test_unknown_approver_is_refused_with_exit_4_and_recorded(store, gov, capsys):
    c = propose(store, action(), actor=PAT, reason="OOM-killed")
    code, _, err = _decide(capsys, store, gov, "approve", c.id, "eve@example.com")
    assert code == 4 and "eve@example.com is not an approver" in err
    [refusal] = store.records(type="refusal")
    assert refusal.meta.actor.email == "eve@example.com"
    assert refusal.meta.data["attempt"] == "approval" and not store.records(type="approval")
    code, _, _ = _decide(capsys, store, gov, "reject", c.id, "eve@example.com")
    assert code == 4 and len(store.records(type="refusal")) == 2


def test_self_approval_of_a_medium_change_is_refused(store, gov, capsys):
    c = propose(store, action(), actor=PAT, reason="OOM-killed")
    code, _, err = _decide(capsys, store, gov, "approve", c.id, "pat@example.com")
    assert code == 4 and "cannot approve their own medium change" in err
    assert len(store.records(type="refusal")) == 1
    assert change(store, c.id).state(load_governance(gov)) == "proposed"


def test_critical_needs_two_distinct_approvers_one_with_security(store, gov, capsys):
    c = propose(store, action("critical"), actor=PAT, reason="node pressure")
    code, out, _ = _decide(capsys, store, gov, "approve", c.id, "alice@example.com",
                           "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["state"] == "proposed" and doc["approvals"] == ["alice@example.com"]
    assert doc["missing"] == ["1 more approval(s)", "an approver with the security role"]
    code, _, err = _decide(capsys, store, gov, "approve", c.id, "alice@example.com")
    assert code == 4 and "already approved" in err
    code, out, _ = _decide(capsys, store, gov, "approve", c.id, "sam@example.com")
    assert code == 0 and "is now approved" in out
    assert len(store.records(type="approval")) == 2


def test_reject_then_approve_is_refused(store, gov, capsys):
    c = propose(store, action(), actor=PAT, reason="OOM-killed")
    code, out, _ = _decide(capsys, store, gov, "reject", c.id, "sam@example.com")
    assert code == 0 and "is now rejected" in out and len(store.records(type="rejection")) == 1
    code, _, err = _decide(capsys, store, gov, "approve", c.id[:20], "alice@example.com")
    assert code == 4 and "is rejected, not awaiting a decision" in err


def test_identity_from_git_config(store, gov, capsys, monkeypatch):
    c = propose(store, action(), actor=PAT, reason="OOM-killed")
    monkeypatch.chdir(store.repo.working_tree_dir)  # user.email committer@example.com
    code, _, _ = _run(capsys, "approve", c.id, "-j", "looked fine", "--store", str(store.root),
                      "--governance", str(gov))
    [rec] = store.records(type="approval")
    assert code == 0 and rec.meta.actor.email == "committer@example.com"


def test_show_change(store, gov, capsys):
    c = propose(store, action(), actor=PAT, reason="OOM-killed")
    _decide(capsys, store, gov, "approve", c.id, "alice@example.com")
    code, out, _ = _run(capsys, "show-change", c.id, "--store", str(store.root),
                        "--governance", str(gov))
    assert code == 0 and f"{c.id}  approved  medium  Deployment/todo/todo-backend" in out
    assert '"value": "256Mi"' in out and "approval" in out and "alice@example.com" in out


def test_bad_input_is_exit_2_and_records_nothing(store, gov, capsys, tmp_path):
    c = propose(store, action(), actor=PAT, reason="OOM-killed")
    n = len(store.records())
    s, g = str(store.root), str(gov)
    assert _run(capsys, "approve", c.id, "--store", s, "--governance", g)[0] == 2  # no -j
    code, _, err = _run(capsys, "approve", "0" * 26, "-j", "x", "--name", "A", "--email",
                        "alice@example.com", "--store", s, "--governance", g)
    assert code == 2 and "no proposal" in err
    code, _, err = _run(capsys, "approve", c.id, "-j", " ", "--name", "A", "--email",
                        "alice@example.com", "--store", s, "--governance", g)
    assert code == 2 and "justification" in err
    code, _, err = _run(capsys, "pending", "--store", s, "--governance",
                        str(tmp_path / "missing.yaml"))
    assert code == 2 and "missing.yaml" in err
    assert _run(capsys, "pending", "--store", s, "--format", "xml")[0] == 2
    assert len(store.records()) == n
