"""The executor against the Kubernetes API replay server, through the official
client: the exact requests (method, path, dryRun, content type, patch body),
nothing mutating without a valid approval, validation, automatic and manual
rollback, every step a PHR."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiops.approvals import PhrStore
from aiops.approvals.executor import ExecutionFailed, execute, rollback
from aiops.approvals.kube_writer import KubeWriter
from aiops.approvals.phr import Actor
from aiops.approvals.tiers import Approver, Governance
from aiops.approvals.workflow import ApprovalRefused, approve, change, propose
from aiops.diagnose.actions import delete_pod, set_container_fields
from aiops.diagnose.finding import Action
from aiops.security.fixes import create
from aiops.sources.demo import DATA_DIR
from aiops.sources.live import connect
from tests.support.kube_replay import JSON_PATCH, KubeReplay, rollout_complete

NS, DEPLOY = "todo", "todo-backend"
DEPLOY_PATH = f"/apis/apps/v1/namespaces/{NS}/deployments/{DEPLOY}"
PAT = Actor(name="Pat Proposer", email="pat@example.com")
ALICE = Actor(name="Alice Approver", email="alice@example.com")
GOV = Governance(approvers=[Approver(name="Alice Approver", email="alice@example.com"),
                            Approver(name="Pat Proposer", email="pat@example.com")])


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def srv() -> Iterator[KubeReplay]:
    with KubeReplay(DATA_DIR) as server:
        yield server


@pytest.fixture
def writer(srv: KubeReplay, tmp_path: Path) -> Iterator[KubeWriter]:
    client, _server, _ctx = connect("replay", kubeconfig=str(
        srv.write_kubeconfig(tmp_path / "kubeconfig")))
    yield KubeWriter(client, timeout=5)
    client.close()


def deployment(srv: KubeReplay) -> dict[str, Any]:
    return srv.state.get("Deployment", NS, DEPLOY)


def memory_action(srv: KubeReplay, memory: str = "2Gi") -> Action:
    action = set_container_fields(deployment(srv), "backend",
                                  {("resources", "limits", "memory"): memory},
                                  description=f"raise memory limit to {memory}")
    assert action is not None
    return action


def approved(store: PhrStore, action: Action) -> str:
    c = propose(store, action, actor=PAT, reason="OOM-killed")
    approve(store, c.id, approver=ALICE, justification="usage confirms", governance=GOV)
    return c.id


def mutations(srv: KubeReplay) -> list[tuple[str, str, dict[str, str], str | None]]:
    return [(r.method, r.path, dict(r.query), r.content_type) for r in srv.mutations()]


def memory_now(srv: KubeReplay) -> str:
    return deployment(srv)["spec"]["template"]["spec"]["containers"][0]["resources"][
        "limits"]["memory"]


def test_approved_change_dry_run_then_apply_then_validated(srv, writer, store):
    srv.on_write("Deployment", rollout_complete)
    action = memory_action(srv)
    pid = approved(store, action)
    run = execute(store, pid, action, writer=writer, governance=GOV, actor=PAT,
                  timeout=5, poll=0.05)
    assert run.state == "validated" and run.validation.passed
    assert mutations(srv) == [("PATCH", DEPLOY_PATH, {"dryRun": "All"}, JSON_PATCH),
                              ("PATCH", DEPLOY_PATH, {}, JSON_PATCH)]
    assert [r.body for r in srv.mutations()] == [action.patch, action.patch]
    assert memory_now(srv) == "2Gi"
    c = change(store, pid)
    assert c.state(GOV) == "validated"
    assert [r.meta.type for r in c.steps] == ["approval", "execution", "execution",
                                               "validation"]
    started = c.steps[1].meta.data
    assert started["phase"] == "started" and started["dry_run"] == "passed"
    assert started["pre_state"]["spec"]["template"]["spec"]["containers"][0][
        "resources"]["limits"]["memory"] == "1536Mi"
    checks = {x["check"]: x["passed"] for x in c.steps[-1].meta.data["checks"]}
    assert checks == {"fields changed as patched": True, "rollout complete, pods ready": True,
                      "restarts not increasing": True, "memory below the new limit": True}
    assert store.verify().ok


def test_nothing_is_sent_without_an_approval(srv, writer, store):
    action = memory_action(srv)
    c = propose(store, action, actor=PAT, reason="r")
    with pytest.raises(ApprovalRefused, match="is proposed"):
        execute(store, c.id, action, writer=writer, governance=GOV, actor=PAT)
    assert mutations(srv) == []
    assert [r.meta.type for r in change(store, c.id).steps] == ["refusal"]


def test_an_edited_action_or_an_expired_approval_sends_nothing(srv, writer, store):
    action = memory_action(srv)
    pid = approved(store, action)
    with pytest.raises(ApprovalRefused, match="hash mismatch"):
        execute(store, pid, memory_action(srv, "8Gi"), writer=writer, governance=GOV,
                actor=PAT)
    short = Governance(approvers=GOV.approvers, tiers={"medium": {"expires": "1s"}})
    time.sleep(1.2)
    with pytest.raises(ApprovalRefused, match=r"approval expired|is expired"):
        execute(store, pid, action, writer=writer, governance=short, actor=PAT)
    assert mutations(srv) == []
    assert len(store.records(type="refusal")) == 2


def test_dry_run_refused_by_the_server_changes_nothing(tmp_path, store):
    with KubeReplay(DATA_DIR, forbidden_verbs={"Deployment": {"patch"}}) as srv:
        client, _, _ = connect("replay", kubeconfig=str(srv.write_kubeconfig(
            tmp_path / "kc")))
        action = memory_action(srv)
        pid = approved(store, action)
        with pytest.raises(ExecutionFailed, match=r"dry run failed.*forbidden"):
            execute(store, pid, action, writer=KubeWriter(client), governance=GOV, actor=PAT)
        client.close()
        assert mutations(srv) == [("PATCH", DEPLOY_PATH, {"dryRun": "All"}, JSON_PATCH)]
        assert memory_now(srv) == "1536Mi"
    c = change(store, pid)
    assert c.state(GOV) == "failed"
    assert c.steps[-1].meta.data["stage"] == "dry-run"


def test_failed_validation_rolls_back_automatically(srv, writer, store):
    writes = []

    def stuck_then_fine(obj: dict[str, Any]) -> None:
        writes.append(1)
        if len(writes) == 1:  # the change never becomes ready
            obj["status"].update(observedGeneration=obj["metadata"]["generation"],
                                 updatedReplicas=1, readyReplicas=1)
        else:  # the rollback does
            rollout_complete(obj)

    srv.on_write("Deployment", stuck_then_fine)
    action = memory_action(srv)
    pid = approved(store, action)
    run = execute(store, pid, action, writer=writer, governance=GOV, actor=PAT,
                  timeout=0.3, poll=0.05)
    assert run.state == "rolled-back"
    assert not run.validation.passed and run.rollback.passed
    assert mutations(srv) == [("PATCH", DEPLOY_PATH, {"dryRun": "All"}, JSON_PATCH),
                              ("PATCH", DEPLOY_PATH, {}, JSON_PATCH),
                              ("PATCH", DEPLOY_PATH, {}, JSON_PATCH)]
    assert srv.mutations()[-1].body == action.inverse
    assert memory_now(srv) == "1536Mi"
    c = change(store, pid)
    assert c.state(GOV) == "rolled-back"
    rb = c.steps[-1]
    assert rb.meta.type == "rollback" and rb.meta.data["passed"] is True
    assert "rollout complete, pods ready" in rb.meta.data["reason"]
    assert rb.meta.actor.email == "aiops@localhost" and rb.meta.data["automated"] is True


def test_manual_rollback_of_a_validated_change(srv, writer, store):
    srv.on_write("Deployment", rollout_complete)
    action = memory_action(srv)
    pid = approved(store, action)
    execute(store, pid, action, writer=writer, governance=GOV, actor=PAT, timeout=5,
            poll=0.05)
    run = rollback(store, pid, writer=writer, actor=ALICE, governance=GOV, timeout=5,
                   poll=0.05)
    assert run.state == "rolled-back" and memory_now(srv) == "1536Mi"
    assert mutations(srv)[-2:] == [("PATCH", DEPLOY_PATH, {"dryRun": "All"}, JSON_PATCH),
                                   ("PATCH", DEPLOY_PATH, {}, JSON_PATCH)]
    assert change(store, pid).state(GOV) == "rolled-back"
    with pytest.raises(ApprovalRefused, match="rolled-back, nothing to revert"):
        rollback(store, pid, writer=writer, actor=ALICE, governance=GOV)


def test_delete_pod_is_trivial_and_validated_by_replacement(srv, writer, store):
    pod = srv.state.get("Pod", NS, "todo-backend-645c8f94d5-h24rw")
    action = delete_pod(pod, description="restart the pod")
    c = propose(store, action, actor=PAT, reason="stuck")
    run = execute(store, c.id, action, writer=writer, governance=GOV, actor=PAT, timeout=2,
                  poll=0.05)
    assert run.state == "validated"
    path = f"/api/v1/namespaces/{NS}/pods/todo-backend-645c8f94d5-h24rw"
    assert [(m[0], m[1], m[2]) for m in mutations(srv)] == [
        ("DELETE", path, {"dryRun": "All"}), ("DELETE", path, {})]


def test_create_then_rollback_deletes(srv, writer, store):
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "default-deny-ingress", "namespace": NS},
              "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    action = create(policy, description="deny ingress by default", tier="medium")
    pid = approved(store, action)
    run = execute(store, pid, action, writer=writer, governance=GOV, actor=PAT, timeout=2,
                  poll=0.05)
    assert run.state == "validated"
    base = f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies"
    assert [(m[0], m[1], m[2]) for m in mutations(srv)] == [
        ("POST", base, {"dryRun": "All"}), ("POST", base, {})]
    rollback(store, pid, writer=writer, actor=ALICE, governance=GOV, timeout=2, poll=0.05)
    assert [(m[0], m[1], m[2]) for m in mutations(srv)][-2:] == [
        ("DELETE", f"{base}/default-deny-ingress", {"dryRun": "All"}),
        ("DELETE", f"{base}/default-deny-ingress", {})]


def test_a_manual_action_is_never_executed(srv, writer, store):
    from aiops.diagnose.actions import manual

    action = manual(deployment(srv), "push the missing image", tier="trivial")
    c = propose(store, action, actor=PAT, reason="image missing")
    with pytest.raises(ApprovalRefused, match="done by a person"):
        execute(store, c.id, action, writer=writer, governance=GOV, actor=PAT)
    assert mutations(srv) == []


def test_unreachable_api_is_a_clear_failure_and_nothing_recorded_as_applied(store, tmp_path):
    with KubeReplay(DATA_DIR) as srv:
        kc = srv.write_kubeconfig(tmp_path / "kc")
        action = memory_action(srv)
    client, _, _ = connect("replay", kubeconfig=str(kc), retries=0, timeout=1)
    pid = approved(store, action)
    with pytest.raises(Exception, match="unreachable"):
        execute(store, pid, action, writer=KubeWriter(client, timeout=1), governance=GOV,
                actor=PAT)
    assert change(store, pid).state(GOV) == "approved", "nothing ran; it may be retried"


def test_cli_execute_and_rollback(srv, store, tmp_path):
    from aiops.cli import main

    srv.on_write("Deployment", rollout_complete)
    gov = tmp_path / "gov.yaml"
    gov.write_text("approvers:\n  - {name: Alice Approver, email: alice@example.com}\n")
    kc = srv.write_kubeconfig(tmp_path / "kc")
    action = memory_action(srv)
    common = ["--source", "kube:replay", "--kubeconfig", str(kc), "--store", str(store.root),
              "--governance", str(gov), "--name", "Pat Proposer", "--email",
              "pat@example.com", "--timeout", "5"]
    c = propose(store, action, actor=PAT, reason="r")
    assert main(["execute", c.id, *common]) == 4, "not approved: refused"
    assert mutations(srv) == []
    approve(store, c.id, approver=ALICE, justification="ok", governance=GOV)
    assert main(["execute", c.id, *common]) == 0
    assert memory_now(srv) == "2Gi"
    assert main(["rollback", c.id, *common]) == 0
    assert memory_now(srv) == "1536Mi"
    assert [m[0] for m in mutations(srv)] == ["PATCH"] * 4
    assert main(["execute", c.id, "--source", "demo", "--store", str(store.root)]) == 2


def _scale(srv: KubeReplay) -> Action:
    from aiops.diagnose.actions import scale

    return scale(deployment(srv), 3, description="scale to 3")


def _restart(srv: KubeReplay) -> Action:
    from aiops.diagnose.actions import rollout_restart

    return rollout_restart(deployment(srv), "2026-11-27T18:00:00Z", description="restart")


def _configmap(srv: KubeReplay) -> Action:
    from aiops.diagnose.actions import patch_field

    cm = srv.state.get("ConfigMap", NS, "todo-config")
    return patch_field(cm, ("data", "LOG_LEVEL"), "debug", description="log level debug",
                       tier="medium", validate=["the backend logs at debug"])


def _hpa(srv: KubeReplay) -> Action:
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": "todo-backend-hpa", "namespace": NS},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                       "name": DEPLOY},
                    "minReplicas": 2, "maxReplicas": 5,
                    "metrics": [{"type": "Resource", "resource": {
                        "name": "cpu", "target": {"type": "Utilization",
                                                  "averageUtilization": 70}}}]}}
    return create(hpa, description="enable an HPA", tier="medium")


@pytest.mark.parametrize(("build", "method", "path"), [
    (_scale, "PATCH", DEPLOY_PATH),
    (_restart, "PATCH", DEPLOY_PATH),
    (_configmap, "PATCH", f"/api/v1/namespaces/{NS}/configmaps/todo-config"),
    (_hpa, "POST", f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers"),
])
def test_supported_actions_run_and_roll_back(srv, writer, store, build, method, path):
    srv.on_write("Deployment", rollout_complete)
    action = build(srv)
    pid = approved(store, action) if action.tier != "trivial" else propose(
        store, action, actor=PAT, reason="r").id
    before = copy.deepcopy(srv.state.get(action.target["kind"], NS, action.target["name"]))
    run = execute(store, pid, action, writer=writer, governance=GOV, actor=PAT, timeout=3,
                  poll=0.05)
    assert run.state == "validated", run.validation
    assert [(m[0], m[1], m[2]) for m in mutations(srv)] == [
        (method, path, {"dryRun": "All"}), (method, path, {})]
    rollback(store, pid, writer=writer, actor=ALICE, governance=GOV, timeout=3, poll=0.05)
    after = srv.state.get(action.target["kind"], NS, action.target["name"])
    if before is None:
        assert after is None, "a created object is deleted by the rollback"
    else:
        for key in ("spec", "data"):
            assert after.get(key) == before.get(key), "the inverse restores the object"


def test_one_executor_per_change(srv, writer, store):
    from aiops.approvals.executor import _change_lock

    srv.on_write("Deployment", rollout_complete)
    action = memory_action(srv)
    pid = approved(store, action)
    with _change_lock(store, pid) as held:  # as another process holding it would
        assert held
        with pytest.raises(ApprovalRefused, match="being executed by another process"):
            execute(store, pid, action, writer=writer, governance=GOV, actor=PAT)
    assert mutations(srv) == []
    run = execute(store, pid, action, writer=writer, governance=GOV, actor=PAT, timeout=3,
                  poll=0.05)
    assert run.state == "validated"
    with pytest.raises(ApprovalRefused, match="is validated"):
        execute(store, pid, action, writer=writer, governance=GOV, actor=PAT)
    assert len(mutations(srv)) == 2, "executed once"
