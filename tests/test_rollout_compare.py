"""The rollout guard's comparison and decision rule, on hand-built states and on the
demo cluster's frontend rollout: each decision path, thresholds, missing metrics,
no old ReplicaSet."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aiops.errors import ParameterError
from aiops.model import ClusterState
from aiops.rollout.compare import compare, find_rollout
from aiops.rollout.decide import Thresholds, decide
from aiops.sources.demo import load_demo

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
NS = "web"


def _ts(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def deployment(revision: int = 2, *, paused: bool = False, replicas: int = 2,
               status: dict[str, Any] | None = None, image: str = "shop/api:2.0",
               memory: str = "256Mi") -> dict[str, Any]:
    return {
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": "api", "namespace": NS, "uid": "dep-uid", "generation": 2,
                     "annotations": {"deployment.kubernetes.io/revision": str(revision)}},
        "spec": {"replicas": replicas, "paused": paused,
                 "selector": {"matchLabels": {"app": "api"}},
                 "template": {"metadata": {"labels": {"app": "api"}},
                              "spec": {"containers": [{
                                  "name": "api", "image": image,
                                  "resources": {"limits": {"memory": memory, "cpu": "1"}}}]}}},
        "status": status or {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1,
                             "readyReplicas": 3, "availableReplicas": 3},
    }


def replicaset(rev: int, h: str, image: str, memory: str = "256Mi") -> dict[str, Any]:
    return {
        "kind": "ReplicaSet", "apiVersion": "apps/v1",
        "metadata": {"name": f"api-{h}", "namespace": NS, "uid": f"rs-{h}",
                     "creationTimestamp": _ts(600),
                     "labels": {"app": "api", "pod-template-hash": h},
                     "annotations": {"deployment.kubernetes.io/revision": str(rev)},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                          "name": "api", "uid": "dep-uid",
                                          "controller": True}]},
        "spec": {"replicas": 1, "template": {
            "metadata": {"labels": {"app": "api", "pod-template-hash": h}},
            "spec": {"containers": [{"name": "api", "image": image,
                                     "resources": {"limits": {"memory": memory,
                                                              "cpu": "1"}}}]}}},
    }


def pod(name: str, h: str, *, ready: bool = True, restarts: int = 0, age: float = 600,
        waiting: str | None = None, last: dict[str, Any] | None = None,
        owned: bool = True) -> dict[str, Any]:
    state: dict[str, Any] = {"waiting": {"reason": waiting}} if waiting else \
        {"running": {"startedAt": _ts(age)}}
    md: dict[str, Any] = {"name": name, "namespace": NS, "creationTimestamp": _ts(age),
                          "labels": {"app": "api", "pod-template-hash": h}}
    if owned:
        md["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                  "name": f"api-{h}", "uid": f"rs-{h}", "controller": True}]
    return {
        "kind": "Pod", "apiVersion": "v1", "metadata": md,
        "spec": {"containers": [{"name": "api", "image": "x",
                                 "resources": {"limits": {"memory": "256Mi", "cpu": "1"}}}]},
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                   "containerStatuses": [{"name": "api", "ready": ready,
                                          "restartCount": restarts, "state": state,
                                          "lastState": {"terminated": last} if last else {}}]},
    }


def metrics(name: str, memory: str) -> dict[str, Any]:
    return {"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {"name": name, "namespace": NS},
            "containers": [{"name": "api", "usage": {"cpu": "10m", "memory": memory}}]}


def cluster(new_pods: list[dict[str, Any]], old_pods: list[dict[str, Any]], *,
            dep: dict[str, Any] | None = None, old_rs: bool = True,
            extra: list[dict[str, Any]] = (), logs: dict[tuple[str, str, str], str] | None = None,
            metrics_available: bool = True) -> ClusterState:
    state = ClusterState(source="test", captured_at=NOW, logs=dict(logs or {}))
    objs = [dep or deployment(), replicaset(2, "new", "shop/api:2.0"), *new_pods, *old_pods,
            *extra]
    if old_rs:
        objs.append(replicaset(1, "old", "shop/api:1.9", memory="512Mi"))
    state.add(objs)
    if not metrics_available:
        state.unavailable["PodMetrics"] = "API metrics.k8s.io/v1beta1 is not served"
    return state


OLD = [pod("api-old-a", "old"), pod("api-old-b", "old")]


def test_sides_split_by_revision_owner_and_template_hash():
    orphan = pod("api-new-b", "new", owned=False)  # no ownerReferences: the hash decides
    state = cluster([pod("api-new-a", "new"), orphan], OLD)
    c = compare(state, NS, "api")
    assert c.rollout.new_rs["metadata"]["name"] == "api-new"
    assert [r["metadata"]["name"] for r in c.rollout.old_rs] == ["api-old"]
    assert [p.name for p in c.new.pods] == ["api-new-a", "api-new-b"]
    assert [p.name for p in c.old.pods] == ["api-old-a", "api-old-b"]
    assert c.new.revisions == (2,) and c.old.revisions == (1,)


def test_healthy_new_pods_continue_without_action():
    d = decide(compare(cluster([pod("api-new-a", "new")], OLD), NS, "api"))
    assert d.verdict == "continue" and d.action is None and not d.completed
    assert d.summary.endswith("new pods healthy")


def test_young_unready_pods_are_too_early_to_tell():
    young = pod("api-new-a", "new", ready=False, age=20)
    d = decide(compare(cluster([young], OLD), NS, "api"))
    assert d.verdict == "continue" and "too early" in d.summary
    # the same pod past the grace period: half the readiness is gone -> undo
    late = pod("api-new-a", "new", ready=False, age=120)
    assert decide(compare(cluster([late], OLD), NS, "api")).verdict == "undo"


def test_restarts_pause_then_undo_and_thresholds_move_the_line():
    some = [pod("api-new-a", "new", restarts=1), pod("api-new-b", "new", restarts=2)]
    d = decide(compare(cluster(some, OLD), NS, "api"))
    assert d.verdict == "pause"
    assert d.reasons == ["1.5 restarts per new pod vs 0 (>= +1)"]
    assert d.action.kind == "patch" and d.action.tier == "low"
    assert d.action.patch == [{"op": "replace", "path": "/spec/paused", "value": True}]
    assert d.action.inverse == [{"op": "replace", "path": "/spec/paused", "value": False}]
    assert decide(compare(cluster(some, OLD), NS, "api"),
                  Thresholds(restarts_undo=1.5)).verdict == "undo"
    assert decide(compare(cluster(some, OLD), NS, "api"),
                  Thresholds(restarts_pause=2.0)).verdict == "continue"
    many = [pod("api-new-a", "new", restarts=4)]
    assert decide(compare(cluster(many, OLD), NS, "api")).verdict == "undo"


def test_undo_rolls_image_and_resources_back_to_the_previous_replicaset():
    crashing = pod("api-new-a", "new", ready=False, waiting="CrashLoopBackOff", restarts=5,
                   last={"reason": "Error", "exitCode": 1})
    d = decide(compare(cluster([crashing], OLD), NS, "api"))
    assert d.verdict == "undo" and d.action.kind == "rollout-undo" and d.action.tier == "low"
    assert d.action.target == {"apiVersion": "apps/v1", "kind": "Deployment",
                               "namespace": NS, "name": "api"}
    base = "/spec/template/spec/containers/0"
    assert d.action.patch == [
        {"op": "replace", "path": f"{base}/image", "value": "shop/api:1.9"},
        {"op": "replace", "path": f"{base}/resources",
         "value": {"limits": {"memory": "512Mi", "cpu": "1"}}}]
    assert d.action.inverse == [
        {"op": "replace", "path": f"{base}/resources",
         "value": {"limits": {"memory": "256Mi", "cpu": "1"}}},
        {"op": "replace", "path": f"{base}/image", "value": "shop/api:2.0"}]
    assert any("CrashLoopBackOff" in r for r in d.reasons)
    assert any("Error (exit 1)" in r for r in d.reasons)
    texts = " ".join(e.text for e in d.evidence)
    assert "new (api-new): 0/1 ready, 5 restarts" in texts
    assert "old (api-old): 2/2 ready, 0 restarts" in texts


def test_undo_of_a_paused_rollout_also_resumes_it():
    crashing = pod("api-new-a", "new", ready=False, waiting="ImagePullBackOff")
    d = decide(compare(cluster([crashing], OLD, dep=deployment(paused=True)), NS, "api"))
    assert d.verdict == "undo"
    assert d.action.patch[-1] == {"op": "replace", "path": "/spec/paused", "value": False}
    assert d.action.inverse[0] == {"op": "replace", "path": "/spec/paused", "value": True}


def test_pause_of_a_paused_rollout_proposes_nothing():
    some = [pod("api-new-a", "new", restarts=2)]
    d = decide(compare(cluster(some, OLD, dep=deployment(paused=True)), NS, "api"))
    assert d.verdict == "pause" and d.action is None
    assert d.reasons[-1] == "the rollout is already paused"


def test_oom_killed_new_pods_are_clearly_worse():
    oom = pod("api-new-a", "new", last={"reason": "OOMKilled", "exitCode": 137})
    d = decide(compare(cluster([oom], OLD), NS, "api"))
    assert d.verdict == "undo" and "new pods were OOMKilled; no old pod was" in d.reasons
    # the old pods were OOM-killed too: not worse than before on that count
    old_oom = [pod("api-old-a", "old", last={"reason": "OOMKilled", "exitCode": 137})]
    assert decide(compare(cluster([oom], old_oom), NS, "api")).verdict == "continue"


def test_error_lines_use_the_diagnosis_log_scan():
    bad = "\n".join(f"2026-11-23T07:5{i}:00Z ERROR ValueError: bad row {i}" for i in range(8))
    ok = "2026-11-23T07:50:00Z GET /healthz 200"
    logs = {(NS, "api-new-a", "api"): bad, (NS, "api-old-a", "api"): ok,
            (NS, "api-old-b", "api"): ok}
    c = compare(cluster([pod("api-new-a", "new")], OLD, logs=logs), NS, "api")
    assert c.new.error_lines == 8 and c.old.error_lines == 0
    assert c.new.pods[0].error_samples[0].endswith("ValueError: bad row 0")
    d = decide(c)
    assert d.verdict == "pause" and d.reasons == ["8 error log lines per new pod vs 0"]
    assert any(e.source == "log" and "bad row" in e.text for e in d.evidence)
    assert decide(c, Thresholds(min_error_lines=10)).verdict == "continue"


def test_memory_against_limits_when_metrics_exist():
    usage = [metrics("api-new-a", "245Mi"), metrics("api-old-a", "100Mi"),
             metrics("api-old-b", "90Mi")]
    c = compare(cluster([pod("api-new-a", "new")], OLD, extra=usage), NS, "api")
    assert c.new.metrics and c.new.memory_share == pytest.approx(245 / 256)
    assert c.old.memory_share == pytest.approx(100 / 256)
    d = decide(c)
    assert d.verdict == "pause" and "of their memory limit" in d.reasons[0]


def test_missing_metrics_are_noted_and_judged_without():
    c = compare(cluster([pod("api-new-a", "new")], OLD, metrics_available=False), NS, "api")
    assert not c.new.metrics and c.new.memory_share is None
    assert any("no usage metrics" in n for n in c.notes)
    assert decide(c).verdict == "continue"
    assert c.table().set_index("measure").loc["memory / limit (max)", "new"] is None


def test_no_old_replicaset_judges_the_new_pods_alone_and_pauses_instead_of_undo():
    crashing = pod("api-new-a", "new", ready=False, waiting="CrashLoopBackOff", restarts=6)
    c = compare(cluster([crashing], [], old_rs=False,
                        dep=deployment(revision=1, replicas=1,
                                       status={"observedGeneration": 2, "replicas": 1,
                                               "updatedReplicas": 1})), NS, "api")
    assert c.rollout.previous_rs is None and not c.old.pods
    assert "no old ReplicaSet: the new pods are judged on their own" in c.notes
    d = decide(c)
    assert d.verdict == "pause"
    assert d.reasons[-1] == "no previous ReplicaSet to roll back to: pausing instead"
    assert d.action.patch == [{"op": "replace", "path": "/spec/paused", "value": True}]


def test_baseline_stands_in_once_the_old_pods_are_gone():
    first = compare(cluster([pod("api-new-a", "new")], OLD), NS, "api")
    done = {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2,
            "readyReplicas": 2, "availableReplicas": 2}
    later = cluster([pod("api-new-a", "new", restarts=2), pod("api-new-b", "new", restarts=2)],
                    [], dep=deployment(status=done))
    c = compare(later, NS, "api", baseline=first.old)
    assert c.old.label == "baseline" and c.old.count == 2 and c.rollout.complete
    assert decide(c).verdict == "pause"  # worse than the old pods were, though complete
    # no baseline: a complete rollout is not second-guessed here
    alone = decide(compare(later, NS, "api"))
    assert alone.verdict == "continue" and alone.completed


def test_unknown_deployment_names_those_there_are():
    with pytest.raises(ParameterError, match="no Deployment 'nope'") as exc:
        find_rollout(cluster([], OLD), NS, "nope")
    assert "api" in exc.value.hint


# -- the demo cluster: the frontend's rollout is stuck on a missing image ------------

@pytest.fixture(scope="module")
def demo() -> ClusterState:
    return load_demo()


def test_demo_frontend_rollout_is_undone_to_the_previous_image(demo):
    c = compare(demo, "todo", "todo-frontend")
    assert c.rollout.new_rs["metadata"]["name"] == "todo-frontend-5b7fbf96c7"
    assert c.rollout.deadline_exceeded and not c.rollout.complete
    assert (c.new.count, c.new.ready, dict(c.new.waiting)) == (1, 0, {"ImagePullBackOff": 1})
    assert (c.old.count, c.old.ready, c.old.restarts) == (2, 2, 0)
    assert c.old.metrics and not c.new.metrics  # the new pod never ran: no PodMetrics
    d = decide(c)
    assert d.verdict == "undo" and d.confidence == 0.9
    assert d.action.patch == [{"op": "replace", "path": "/spec/template/spec/containers/0/image",
                               "value": "ghcr.io/todo-chatbot/frontend:1.4.0"}]
    assert d.action.inverse[0]["value"] == "ghcr.io/todo-chatbot/frontend:1.4.1"
    assert d.to_dict()["new"]["ready_share"] == 0.0 and d.to_dict()["old"]["ready_share"] == 1.0


def test_demo_complete_rollouts_continue(demo):
    for name in ("todo-redis", "todo-backend"):
        d = decide(compare(demo, "todo", name))
        assert d.verdict == "continue" and d.completed and d.action is None


def test_comparison_does_not_change_the_state(demo):
    before = copy.deepcopy(demo.get("Deployment", "todo", "todo-frontend"))
    decide(compare(demo, "todo", "todo-frontend"))
    assert demo.get("Deployment", "todo", "todo-frontend") == before
