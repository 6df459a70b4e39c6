"""The approval cell against real git-backed stores: the review's content and
redaction, its text and HTML, decide() on every path, and the ipywidgets
buttons clicked programmatically."""

from __future__ import annotations

import json
import os
import sys

import pytest
import yaml

from aiops.approvals.cell import approval_cell, decide, pod_metrics, review
from aiops.approvals.phr import Actor
from aiops.approvals.tiers import Approver, Governance
from aiops.approvals.workflow import ApprovalRefused, change, propose
from aiops.diagnose.finding import Action
from aiops.errors import ParameterError

PAT = Actor(name="Pat Proposer", email="pat@example.com")
ALICE = Actor(name="Alice Approver", email="alice@example.com")
SAM = Actor(name="Sam Security", email="sam@example.com")
GOV = Governance(approvers=[
    Approver(name="Alice Approver", email="alice@example.com"),
    Approver(name="Sam Security", email="sam@example.com", roles=["approver", "security"]),
])
PLANTED = "hunter2-Planted-9f8e7d"  # must never be shown
OLD_SECRET = "old-Secret-value-42"
CM_TARGET = {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "todo", "name": "todo-config"}


def _widgets() -> None:
    """ipywidgets comes with the lab extra `make test` installs: skip without it
    locally, fail under CI=true (a missing dependency is never a skip there)."""
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but ipywidgets is not installed (the lab extra)")
        pytest.skip("ipywidgets not installed: pip install -e '.[lab]'")


def configmap() -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "todo-config", "namespace": "todo",
                         "managedFields": [{"manager": "kubectl"}]},
            "data": {"LOG_LEVEL": "info", "DB_PASSWORD": OLD_SECRET,
                     "app.yaml": "db:\n  host: db\n  password: " + OLD_SECRET + "\n"}}


def cm_action(tier: str = "medium", log_level: str = "debug") -> Action:
    return Action(
        "patch", dict(CM_TARGET), "raise the log level to debug & rotate the DB password",
        tier,
        [{"op": "replace", "path": "/data/LOG_LEVEL", "value": log_level},
         {"op": "replace", "path": "/data/DB_PASSWORD", "value": PLANTED},
         {"op": "add", "path": "/data/API_TOKEN", "value": "ghp_" + "a1B2" * 8}],
        [{"op": "replace", "path": "/data/LOG_LEVEL", "value": "info"},
         {"op": "replace", "path": "/data/DB_PASSWORD", "value": OLD_SECRET},
         {"op": "remove", "path": "/data/API_TOKEN"}],
        ["kubectl rollout status deployment/todo-backend -n todo", "error rate back under 1 %"])


def test_review_diff_shows_the_change_and_masks_the_planted_secret():
    r = review(cm_action(), configmap(), governance=GOV, pre_metrics={"restarts": 12})
    d = r.diff.diff
    assert d.startswith("--- ConfigMap/todo/todo-config (before)\n+++ ConfigMap/todo/todo-config")
    assert "-  LOG_LEVEL: info" in d and "+  LOG_LEVEL: debug" in d
    assert "+  DB_PASSWORD: <redacted> (changed)" in d  # masked, yet visibly changed
    assert "+  API_TOKEN: <redacted>" in d
    assert "managedFields" not in d and r.diff.problem is None
    assert r.diff.after["data"]["LOG_LEVEL"] == "debug"
    everything = r.text() + r.html() + json.dumps(r.to_dict()) + repr(r)
    for secret in (PLANTED, OLD_SECRET, "a1B2a1B2"):
        assert secret not in everything
    assert {"op": "replace", "path": "/data/DB_PASSWORD", "value": "<redacted>"} in r.rollback
    assert {"op": "replace", "path": "/data/LOG_LEVEL", "value": "info"} in r.rollback


def test_secret_values_and_env_credentials_are_masked():
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "todo"},
              "data": {"password": "b2xkLXBhc3N3b3Jk"}}
    act = Action("patch", {"kind": "Secret", "namespace": "todo", "name": "db"}, "rotate",
                 "critical", [{"op": "replace", "path": "/data/password", "value": "bmV3LXB3"}],
                 [{"op": "replace", "path": "/data/password", "value": "b2xkLXBhc3N3b3Jk"}])
    r = review(act, secret, governance=GOV)
    out = r.text() + r.html()
    assert "bmV3LXB3" not in out and "b2xkLXBhc3N3b3Jk" not in out
    assert "password: <redacted> (changed)" in r.diff.diff
    deploy = {"kind": "Deployment", "metadata": {"name": "api"}, "spec": {"containers": [
        {"name": "api", "env": [{"name": "DB_PASSWORD", "value": "plain-Text-pw1"},
                                {"name": "MODE", "value": "fast"}]}]}}
    act = Action("patch", {"kind": "Deployment", "name": "api"}, "slow mode", "low",
                 [{"op": "replace", "path": "/spec/containers/0/env/1/value", "value": "slow"}])
    r = review(act, deploy, governance=GOV)
    assert "plain-Text-pw1" not in r.text() and "+      value: slow" in r.diff.diff


def test_text_and_html_carry_tier_needs_effect_rollback_and_metrics():
    act = cm_action()
    r = review(act, configmap(), governance=GOV, pre_metrics={"restarts": 12, "ready": 0})
    text = r.text()
    assert "tier medium" in text and act.hash() in text and "not proposed yet" in text
    assert "1 approver other than the proposer" in text and "a decision within 30m" in text
    assert "dry run must pass" in text and "Alice Approver <alice@example.com>" in text
    assert "raise the log level to debug & rotate" in text
    assert "Rollback plan" in text and "kubectl rollout status deployment/todo-backend" in text
    assert "restarts: 12" in text
    html = r.html()
    assert html == r._repr_html_() and "<script" not in html
    assert "raise the log level to debug &amp; rotate" in html  # escaped, not raw
    assert "<th style='text-align:left'>restarts</th><td>12</td>" in html
    assert 'style="color:#1a7f37">+  LOG_LEVEL: debug</span>' in html


def test_cluster_strings_are_escaped_in_html():
    act = Action("patch", {"kind": "ConfigMap", "name": "x"}, "<img src=x onerror=alert(1)>",
                 "low", [{"op": "add", "path": "/data/k", "value": "<b>v</b>"}])
    html = review(act, {"kind": "ConfigMap", "data": {}}, governance=GOV).html()
    assert "<img" not in html and "<b>v</b>" not in html and "&lt;img src=x" in html


def test_patch_that_no_longer_applies_is_named_without_leaking():
    obj = configmap()
    del obj["data"]["LOG_LEVEL"]
    r = review(cm_action(), obj, governance=GOV)
    assert r.diff.diff == "" and "operation 1 (replace /data/LOG_LEVEL)" in r.diff.problem
    assert OLD_SECRET not in r.text() and r.diff.problem in r.text()
    r = review(cm_action(), None, governance=GOV)
    assert "not in the loaded cluster state" in r.diff.problem


def test_review_of_a_proposal_shows_its_state_and_the_critical_rules(store):
    c = propose(store, cm_action("critical"), actor=PAT, reason="leak",
                pre_metrics={"restarts": 3})
    r = review(cm_action("critical"), configmap(), governance=GOV, store=store)
    assert r.change["id"] == c.id and r.pre_metrics == {"restarts": 3}
    text = r.text()
    assert f"proposal {c.id}: proposed" in text and "approvals so far: none" in text
    assert "2 distinct approvers other than the proposer" in text
    assert "one approver with the security role" in text and "2h" in text
    assert "SLA deadline" in text and "(breached)" not in text


def test_decide_approve_and_reject(store):
    c = propose(store, cm_action(), actor=PAT, reason="debug the leak")
    res = decide(c.id, "approve", justification="short and reversible",
                 approver_name=ALICE.name, approver_email=ALICE.email, store=store,
                 governance=GOV, action=cm_action())
    assert res["outcome"] == "approved" and res["state"] == "approved"
    [rec] = store.records(type="approval")
    assert rec.id == res["record"] and rec.meta.actor.email == ALICE.email
    assert rec.meta.data["justification"] == "short and reversible"
    c2 = propose(store, cm_action(log_level="trace"), actor=PAT, reason="more logs")
    res = decide(c2.id, "reject", justification="too noisy", approver_name=SAM.name,
                 approver_email=SAM.email, store=str(store.root), governance=GOV)
    assert res["outcome"] == "rejected" and change(store, c2.id).state(GOV) == "rejected"


def test_decide_reports_refusals_and_raises_when_strict(store, tmp_path):
    gov_file = tmp_path / "governance.yaml"
    gov_file.write_text(yaml.safe_dump({"approvers": [ALICE.model_dump()]}))
    c = propose(store, cm_action(), actor=PAT, reason="debug")
    res = decide(c.id, justification="mine", approver_name=PAT.name,
                 approver_email=PAT.email, store=store, governance=gov_file)
    assert res["outcome"] == "refused" and res["state"] == "proposed"
    assert "pat@example.com is not an approver" in res["message"]
    [refusal] = store.records(type="refusal")
    assert refusal.id == res["record"]
    # an Action edited after the proposal is not the one approved
    res = decide(c.id, justification="ok", approver_name=ALICE.name,
                 approver_email=ALICE.email, store=store, governance=gov_file,
                 action=cm_action(log_level="trace"))
    assert res["outcome"] == "refused" and "not the one proposed" in res["message"]
    with pytest.raises(ApprovalRefused, match="not an approver"):
        decide(c.id, justification="x", approver_name="Eve", approver_email="eve@example.com",
               store=store, governance=gov_file, strict=True)
    assert len(store.records(type="refusal")) == 3 and not store.records(type="approval")


def test_decide_bad_input_records_nothing(store):
    c = propose(store, cm_action(), actor=PAT, reason="debug")
    n = len(store.records())
    with pytest.raises(ParameterError, match="approve' or 'reject"):
        decide(c.id, "maybe", justification="x", approver_name=ALICE.name,
               approver_email=ALICE.email, store=store, governance=GOV)
    with pytest.raises(ParameterError, match="justification"):
        decide(c.id, justification="  ", approver_name=ALICE.name,
               approver_email=ALICE.email, store=store, governance=GOV)
    with pytest.raises(ParameterError, match="no proposal"):
        decide("0" * 26, justification="x", approver_name=ALICE.name,
               approver_email=ALICE.email, store=store, governance=GOV)
    assert len(store.records()) == n


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.output.outputs)


def test_widget_buttons_record_the_decision(store):
    _widgets()
    c = propose(store, cm_action(), actor=PAT, reason="debug")
    cell = approval_cell(c, store=store, governance=GOV, action=cm_action(), obj=configmap(),
                         approver=ALICE, show=False)
    assert cell.name.value == ALICE.name and cell.email.value == ALICE.email
    assert PLANTED not in cell.review.html()
    cell.approve_button.click()  # no justification: nothing recorded, the fix is shown
    assert "not recorded" in _stdout(cell) and not store.records(type="approval")
    cell.justification.value = "log level only, reversible"
    cell.approve_button.click()
    [rec] = store.records(type="approval")
    assert rec.meta.actor.email == ALICE.email and cell.results[-1]["record"] == rec.id
    assert "approved by alice@example.com" in _stdout(cell)
    assert cell.approve_button.disabled and cell.reject_button.disabled


def test_widget_reject_and_refusal(store):
    _widgets()
    c = propose(store, cm_action("critical"), actor=PAT, reason="debug")
    cell = approval_cell(c.id, store=str(store.root), governance=GOV, action=cm_action(
        "critical"), obj=configmap(), approver=PAT, show=False)
    cell.justification.value = "I wrote it"
    cell.approve_button.click()  # the proposer is no approver here: refused and recorded
    [refusal] = store.records(type="refusal")
    assert "refused" in _stdout(cell) and cell.results[-1]["record"] == refusal.id
    assert not cell.approve_button.disabled
    cell.name.value, cell.email.value = SAM.name, SAM.email
    cell.justification.value = "wrong target"
    cell.reject_button.click()
    [rej] = store.records(type="rejection")
    assert rej.meta.actor.email == SAM.email and cell.reject_button.disabled


def test_without_ipywidgets_the_cell_prints_the_review_and_the_call(store, monkeypatch,
                                                                    capsys):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import fails as if not installed
    c = propose(store, cm_action(), actor=PAT, reason="debug")
    cell = approval_cell(c.id, store=store, governance=GOV, action=cm_action(),
                         obj=configmap())
    out = capsys.readouterr().out
    assert cell.widget is None and "Proposed change: patch of ConfigMap/todo/todo-config" in out
    assert f"decide({c.id!r}, 'approve'" in out and f"aiops approve {c.id}" in out
    assert PLANTED not in out


def test_pod_metrics():
    pods = [{"status": {"containerStatuses": [{"ready": True, "restartCount": 2}]}},
            {"status": {"containerStatuses": [{"ready": False, "restartCount": 5}]}},
            {"status": {}}]
    assert pod_metrics(pods, "Deployment/api") == {"observed": "Deployment/api", "pods": 3,
                                                   "ready": 1, "restarts": 7}
