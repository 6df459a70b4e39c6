"""The audit engine: subjects at their top controller, isolation of a broken
check, exemptions by annotation and file, scores, PSS levels, fixes that apply
and roll back exactly."""

from __future__ import annotations

import copy

import jsonpatch
import pytest

from aiops.errors import ParameterError
from aiops.model import ClusterState
from aiops.security import CHECKS, audit, load_checks
from aiops.security import exemptions as ex
from aiops.security.check import Refs, Violation
from aiops.security.fixes import REMOVE, container_patch, create, patch
from aiops.security.registry import check
from aiops.security.score import Score, grade, pss_levels
from aiops.security.subjects import AuditContext


def deployment(name: str = "web", ns: str = "shop", image: str = "nginx:1.27",
               **extra: object) -> dict:
    d = {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}"},
         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name}},
                               "spec": {"containers": [{"name": name, "image": image}]}}}}
    d.update(extra)
    return d


def owned_pod(owner_kind: str, owner: str, ns: str = "shop", image: str = "nginx:latest"):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{owner}-abc", "namespace": ns,
                         "ownerReferences": [{"kind": owner_kind, "name": owner,
                                              "controller": True}]},
            "spec": {"containers": [{"name": "c", "image": image}]}, "status": {}}


def state(**objects: list) -> ClusterState:
    return ClusterState(source="test", objects={k: list(v) for k, v in objects.items()})


def failed(report, check_id: str) -> list:
    return [r for r in report.failures() if r.check.id == check_id]


def test_workloads_audited_once_at_their_top_controller():
    d = deployment(image="nginx:latest")
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
          "metadata": {"name": "web-123", "namespace": "shop",
                       "ownerReferences": [{"kind": "Deployment", "name": "web",
                                            "controller": True}]},
          "spec": {"template": d["spec"]["template"]}}
    pod = owned_pod("ReplicaSet", "web-123")
    orphan = owned_pod("ReplicaSet", "gone-456")  # its owner is not in the state
    static = owned_pod("Node", "minikube", ns="kube-system")  # a static pod
    ctx = AuditContext(state(Deployment=[d], ReplicaSet=[rs], Pod=[pod, orphan, static]))
    names = sorted((w.kind, w.name) for w in ctx.workloads)
    assert names == [("Deployment", "web"), ("Pod", "gone-456-abc"), ("Pod", "minikube-abc")]
    report = audit(ctx.state, checks=["image-tag-latest"])
    assert sorted(r.name for r in failed(report, "image-tag-latest")) == [
        "gone-456-abc", "minikube-abc", "web"]


def test_cronjob_and_init_containers_are_subjects():
    cj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly",
                                                                    "namespace": "ops"},
          "spec": {"schedule": "0 2 * * *", "jobTemplate": {"spec": {"template": {"spec": {
              "initContainers": [{"name": "init", "image": "busybox"}],
              "containers": [{"name": "job", "image": "backup:2.1"}]}}}}}}
    report = audit(state(CronJob=[cj]), checks=["image-tag-latest"])
    [r] = report.failures()
    assert (r.kind, r.name, r.container) == ("CronJob", "nightly", "init")
    assert "no tag" in r.message
    assert [x.container for x in report.results if x.passed] == ["job"]


@pytest.fixture
def broken_check():
    @check("test-broken", family="test", title="raises", severity="warning",
           category="security", target="workload", rationale="a test double of a bug")
    def broken(w, ctx):
        raise KeyError("spec")

    yield
    CHECKS.pop("test-broken")


def test_a_raising_check_is_isolated_and_reported(broken_check):
    report = audit(state(Deployment=[deployment(image="nginx")]))
    assert [f.check for f in report.check_failures] == ["test-broken"]
    assert "KeyError" in report.check_failures[0].error
    assert failed(report, "image-tag-latest"), "the other checks still ran"
    assert "test-broken: KeyError" in report.summary()["check_failures"][0]


def test_annotation_exemption_is_listed_and_left_out_of_the_score():
    d = deployment(image="nginx:latest")
    d["metadata"]["annotations"] = {ex.ANNOTATION: "image-tag-latest, other",
                                    ex.REASON_ANNOTATION: "vendor image, pinned upstream"}
    report = audit(state(Deployment=[d]), checks=["image-tag-latest"])
    [r] = report.failures()
    assert r.exempt and r.exempt_reason == "vendor image, pinned upstream"
    assert report.dangers() == [] and report.exempted() == [r]
    assert report.score.value == 100.0  # nothing counted
    assert report.score_without_exemptions.dangers == 1
    assert report.summary()["score_without_exemptions"] == 0.0
    assert report.to_json()[0]["exempt"] is True


def test_exemptions_file_matches_by_glob(tmp_path):
    f = tmp_path / "exempt.yaml"
    f.write_text("exemptions:\n"
                 "  - checks: [image-tag-latest]\n"
                 "    namespaces: [kube-*]\n"
                 "    reason: system images are managed by the distribution\n")
    config = ex.load_config(f)
    report = audit(state(Deployment=[deployment("a", "kube-system", "x"),
                                     deployment("b", "shop", "x")]),
                   checks=["image-tag-latest"], exemptions=config)
    by_ns = {r.namespace: r for r in report.failures()}
    assert by_ns["kube-system"].exempt
    assert by_ns["kube-system"].exempt_reason.endswith("managed by the distribution")
    assert not by_ns["shop"].exempt


@pytest.mark.parametrize(("text", "message"), [
    ("exemptions: [{checks: [x]}]", "reason"),
    ("exemptions: [{reason: r, namespace: [x]}]", "namespace"),
    ("exemptions: [\n", "invalid YAML at line"),
])
def test_bad_exemptions_file_names_the_problem(tmp_path, text, message):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ParameterError) as err:
        ex.load_config(f)
    assert str(f) in str(err.value) and message in str(err.value)


def test_missing_exemptions_file():
    with pytest.raises(ParameterError, match="cannot read"):
        ex.load_config("/nonexistent/exempt.yaml")


def test_score_formula_and_grades():
    assert Score(8, 2, 1).value == round(100 * 16 / (16 + 2 + 2), 1)
    assert Score(0, 0, 0).value == 100.0
    assert [grade(s) for s in (95, 85, 75, 65, 55, 10)] == list("ABCDEF")


def test_pss_level_per_namespace():
    @check("test-pss-b", family="test", title="b", severity="danger", category="security",
           target="workload", rationale="r", refs=Refs(pss="baseline"))
    def b(w, ctx):
        return Violation("baseline fails") if w.name == "priv" else None

    @check("test-pss-r", family="test", title="r", severity="warning", category="security",
           target="workload", rationale="r", refs=Refs(pss="restricted"))
    def r(w, ctx):
        return Violation("restricted fails") if w.name in ("priv", "base") else None

    try:
        report = audit(state(Deployment=[deployment("priv", "a"), deployment("base", "b"),
                                         deployment("ok", "c")]),
                       checks=["test-pss-b", "test-pss-r"])
        assert report.pss_levels() == {"a": "privileged", "b": "baseline", "c": "restricted"}
        assert pss_levels([], ["x"]) == {"x": "restricted"}
    finally:
        CHECKS.pop("test-pss-b")
        CHECKS.pop("test-pss-r")


def test_fix_patch_applies_and_inverse_restores_exactly():
    d = deployment()
    ctx = AuditContext(state(Deployment=[d]))
    [c] = ctx.containers
    action = container_patch(c, {("securityContext", "runAsNonRoot"): True,
                                 ("securityContext", "readOnlyRootFilesystem"): True,
                                 ("imagePullPolicy",): "Always"},
                             description="harden")
    fixed = jsonpatch.apply_patch(d, action.patch)
    sc = fixed["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    assert sc == {"runAsNonRoot": True, "readOnlyRootFilesystem": True}
    assert jsonpatch.apply_patch(fixed, action.inverse) == d
    assert action.tier == "medium" and action.target["name"] == "web"
    assert action.hash().startswith("sha256:")


def test_fix_remove_and_replace_round_trip():
    d = deployment()
    d["spec"]["template"]["spec"]["hostNetwork"] = True
    action = patch(d, {("spec", "template", "spec", "hostNetwork"): REMOVE,
                       ("spec", "replicas"): 3}, description="x")
    fixed = jsonpatch.apply_patch(copy.deepcopy(d), action.patch)
    assert "hostNetwork" not in fixed["spec"]["template"]["spec"]
    assert fixed["spec"]["replicas"] == 3
    assert jsonpatch.apply_patch(fixed, action.inverse) == d


def test_create_action_for_a_new_object():
    np_ = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": "default-deny", "namespace": "shop"},
           "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    action = create(np_, description="deny", tier="critical")
    assert action.kind == "create" and action.tier == "critical"
    assert jsonpatch.apply_patch({}, action.patch) == np_
    assert any("kubectl delete networkpolicy default-deny -n shop" in v
               for v in action.validate)


def test_every_registered_check_is_well_formed():
    for c in load_checks().values():
        assert c.id == c.id.lower() and " " not in c.id
        assert c.title and c.rationale.endswith(".")
        assert c.fn.__doc__ is None or isinstance(c.fn.__doc__, str)


def test_demo_audit_runs_clean_of_check_failures():
    from aiops.sources import open_source

    report = audit(open_source("demo"))
    assert report.check_failures == []
    assert report.failures(), "the demo carries posture problems on purpose"
    s = report.summary()
    assert 0 <= s["score"] <= 100 and s["grade"] in "ABCDEF"
    assert set(s["pss"]) >= {"todo", "shop", "kube-system"}
