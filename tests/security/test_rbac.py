"""RBAC checks: each fails on a small role or binding, the stock roles of every
cluster are left alone, and each fix's patch makes the check pass while its
inverse restores the object exactly."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml

from aiops.model import ClusterState
from aiops.security import audit, load_manifests
from aiops.security.check import Result
from aiops.sources import open_source

Obj = dict[str, Any]
RBAC = "rbac.authorization.k8s.io"


def role(name: str, rules: Any, *, ns: str | None = None) -> Obj:
    kind = "Role" if ns else "ClusterRole"
    md: Obj = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": f"{RBAC}/v1", "kind": kind, "metadata": md, "rules": rules}


def binding(name: str, role_name: str, subjects: Any, *, ns: str | None = None,
            role_kind: str = "ClusterRole") -> Obj:
    kind = "RoleBinding" if ns else "ClusterRoleBinding"
    md: Obj = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": f"{RBAC}/v1", "kind": kind, "metadata": md,
            "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role_name},
            "subjects": subjects}


def sa(name: str, ns: str) -> Obj:
    return {"kind": "ServiceAccount", "name": name, "namespace": ns}


def group(name: str) -> Obj:
    return {"kind": "Group", "apiGroup": RBAC, "name": name}


def failed(check: str, *objs: Obj) -> list[Result]:
    state = ClusterState(source="test")
    state.add(copy.deepcopy(list(objs)))
    report = audit(state, checks=[check])
    assert not report.check_failures
    return [r for r in report.results if not r.passed]


def roundtrip(check: str, obj: Obj, *others: Obj) -> Obj:
    """Apply the fix: the check passes, the inverse restores the object; returns
    the patched object."""
    bad = failed(check, obj, *others)
    assert len(bad) == 1 and bad[0].fix is not None
    action = bad[0].fix
    assert action.tier == "critical" and action.kind == "patch"
    patched = jsonpatch.apply_patch(obj, action.patch)
    assert not failed(check, patched, *others)
    assert jsonpatch.apply_patch(patched, action.inverse) == obj
    return patched


# -- rbac-cluster-admin-binding ------------------------------------------------------

def test_cluster_admin_binding_outside_kube_system() -> None:
    b = binding("app-admin", "cluster-admin",
                [sa("ok", "kube-system"), sa("app", "todo"), group("system:authenticated")])
    bad = failed("rbac-cluster-admin-binding", b)
    assert len(bad) == 1 and bad[0].severity == "danger"
    assert bad[0].message == ("ClusterRoleBinding app-admin grants cluster-admin over the "
                              "whole cluster to ServiceAccount todo/app, Group "
                              "system:authenticated (every authenticated user and pod)")
    patched = roundtrip("rbac-cluster-admin-binding", b)
    assert patched["subjects"] == [sa("ok", "kube-system")]


@pytest.mark.parametrize("b", [
    binding("cluster-admin", "cluster-admin", [group("system:masters")]),
    binding("kubeadm:cluster-admins", "cluster-admin", [group("kubeadm:cluster-admins")]),
    binding("addons", "cluster-admin", [sa("default", "kube-system")]),
    binding("app-view", "view", [sa("app", "todo")]),
    binding("no-subjects", "cluster-admin", None),
    binding("app", "cluster-admin", [sa("app", "todo")], role_kind="Role"),
])
def test_cluster_admin_binding_passes(b: Obj) -> None:
    assert not failed("rbac-cluster-admin-binding", b)


def test_cluster_admin_in_a_rolebinding() -> None:
    # even a kube-system ServiceAccount is flagged when granted it in another namespace
    b = binding("ns-admin", "cluster-admin", [sa("ci", "kube-system")], ns="todo")
    bad = failed("rbac-cluster-admin-binding", b)
    assert "over namespace todo" in bad[0].message
    roundtrip("rbac-cluster-admin-binding", b)


# -- rbac-binding-to-everyone ----------------------------------------------------------

def test_binding_to_everyone() -> None:
    b = binding("public-read", "reader", [{"kind": "User", "name": "system:anonymous"},
                                          sa("app", "todo"),
                                          group("system:unauthenticated")])
    bad = failed("rbac-binding-to-everyone", b)
    assert "anonymous requests" in bad[0].message and "unauthenticated" in bad[0].message
    patched = roundtrip("rbac-binding-to-everyone", b)
    assert patched["subjects"] == [sa("app", "todo")]


@pytest.mark.parametrize("b", [
    binding("system:discovery", "system:discovery", [group("system:authenticated")]),
    binding("kubeadm:bootstrap-signer-clusterinfo", "kubeadm:bootstrap-signer-clusterinfo",
            [{"kind": "User", "name": "system:anonymous"}], ns="kube-public", role_kind="Role"),
    binding("everyone-admin", "cluster-admin", [group("system:authenticated")]),
    binding("fine", "reader", [group("developers")]),
])
def test_binding_to_everyone_passes(b: Obj) -> None:
    assert not failed("rbac-binding-to-everyone", b)


# -- rbac-wildcard -----------------------------------------------------------------------

def test_wildcard() -> None:
    r = role("ops", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
                     {"apiGroups": ["apps"], "resources": ["*"], "verbs": ["get"]},
                     {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}],
             ns="todo")
    bad = failed("rbac-wildcard", r)
    assert bad[0].message.startswith("Role ops grants wildcards: rule 1") and "rule 2" in \
        bad[0].message
    patched = roundtrip("rbac-wildcard", r)
    assert patched["rules"] == [r["rules"][0]]


@pytest.mark.parametrize("r", [
    role("cluster-admin", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
    role("system:controller:x", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
    role("app", None), role("app", []), role("app", [None, {"verbs": None}]),
    role("app", [{"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]}]),
])
def test_wildcard_passes(r: Obj) -> None:
    assert not failed("rbac-wildcard", r)


def test_stock_names_only_skip_cluster_roles() -> None:
    # a namespaced Role called admin is not the built-in ClusterRole
    r = role("admin", [{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}], ns="todo")
    assert failed("rbac-wildcard", r)


# -- rbac-pod-exec-attach ------------------------------------------------------------------

def test_pod_exec_attach_removes_only_those_resources() -> None:
    r = role("debug", [{"apiGroups": [""], "resources": ["pods", "pods/exec", "pods/log"],
                        "verbs": ["get", "create"]},
                       {"apiGroups": [""], "resources": ["pods/attach"], "verbs": ["create"]}])
    bad = failed("rbac-pod-exec-attach", r)
    assert bad[0].message == "ClusterRole debug allows rule 0: pods/exec; rule 1: pods/attach"
    patched = roundtrip("rbac-pod-exec-attach", r)
    assert patched["rules"] == [{"apiGroups": [""], "resources": ["pods", "pods/log"],
                                 "verbs": ["get", "create"]}]


@pytest.mark.parametrize("rules", [
    [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["list"]}],
    [{"apiGroups": ["apps"], "resources": ["pods/exec"], "verbs": ["create"]}],
    [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["*"]}],
])
def test_pod_exec_attach_passes(rules: list[Obj]) -> None:
    assert not failed("rbac-pod-exec-attach", role("app", rules, ns="todo"))
    # the built-in edit role grants exec: not flagged as a role
    assert not failed("rbac-pod-exec-attach", role("edit", [
        {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}]))


# -- rbac-escalation-verbs -------------------------------------------------------------------

def test_escalation_verbs() -> None:
    r = role("rbac-manager", [
        {"apiGroups": [RBAC], "resources": ["clusterroles"], "verbs": ["get", "escalate"]},
        {"apiGroups": [RBAC], "resources": ["roles"], "verbs": ["bind"]},
        {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])
    bad = failed("rbac-escalation-verbs", r)
    assert "rule 0: escalate" in bad[0].message and "rule 2: impersonate" in bad[0].message
    patched = roundtrip("rbac-escalation-verbs", r)
    assert patched["rules"] == [
        {"apiGroups": [RBAC], "resources": ["clusterroles"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]


def test_escalation_verbs_passes() -> None:
    assert not failed("rbac-escalation-verbs", role("reader", [
        {"apiGroups": [RBAC], "resources": ["roles"], "verbs": ["get", "list"]}]))
    assert not failed("rbac-escalation-verbs", role("admin", [
        {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}]))


# -- rbac-cluster-secrets-read ----------------------------------------------------------------

SECRET_READER = role("secret-reader", [
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}])


def test_cluster_secrets_read() -> None:
    b = binding("ci-secrets", "secret-reader", [sa("ci", "ci"), sa("ctl", "kube-system")])
    bad = failed("rbac-cluster-secrets-read", b, SECRET_READER)
    assert bad[0].message == ("ClusterRoleBinding ci-secrets lets ServiceAccount ci/ci read "
                              "Secrets in every namespace (through ClusterRole secret-reader)")
    patched = roundtrip("rbac-cluster-secrets-read", b, SECRET_READER)
    assert patched["subjects"] == [sa("ctl", "kube-system")]
    # a binding of the built-in edit role, which is not in the manifests
    assert failed("rbac-cluster-secrets-read", binding("devs", "edit", [group("devs")]))


@pytest.mark.parametrize("rules", [
    [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}],
    [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["tls"]}],
    [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
])
def test_cluster_secrets_read_passes(rules: list[Obj]) -> None:
    b = binding("ci", "secret-reader", [sa("ci", "ci")])
    assert not failed("rbac-cluster-secrets-read", b, role("secret-reader", rules))
    assert not failed("rbac-cluster-secrets-read", binding("v", "view", [group("devs")]))
    # namespaced: a RoleBinding of the same role is not cluster-wide
    rb = binding("ci", "secret-reader", [sa("ci", "ci")], ns="ci")
    assert not failed("rbac-cluster-secrets-read", rb, SECRET_READER)


# -- rbac-default-service-account-bound ---------------------------------------------------------

def test_default_service_account_bound() -> None:
    b = binding("app", "reader", [sa("default", "todo"), sa("app", "todo")], ns="todo",
                role_kind="Role")
    bad = failed("rbac-default-service-account-bound", b)
    assert bad[0].message == "RoleBinding app grants Role reader to ServiceAccount todo/default"
    roundtrip("rbac-default-service-account-bound", b)
    assert not failed("rbac-default-service-account-bound",
                      binding("app", "reader", [sa("app", "todo")]))


# -- manifests and the demo cluster ----------------------------------------------------

def test_rbac_on_manifests(tmp_path: Path) -> None:
    f = tmp_path / "rbac.yaml"
    f.write_text(yaml.safe_dump_all([
        SECRET_READER, binding("ci-secrets", "secret-reader", [sa("ci", "ci")]),
        binding("ci-admin", "cluster-admin", [sa("ci", "ci")])]))
    state, origin = load_manifests(f)
    report = audit(state, origin=origin)
    got = sorted((r.check.id, r.name) for r in report.failures() if r.check.family == "rbac")
    assert got == [("rbac-cluster-admin-binding", "ci-admin"),
                   ("rbac-cluster-secrets-read", "ci-secrets")]
    assert all(r.line is not None and r.file == str(f) for r in report.failures()
               if r.check.family == "rbac")


def test_demo_cluster_rbac_is_not_flooded() -> None:
    report = audit(open_source("demo"))
    got = sorted((r.check.id, r.name) for r in report.failures() if r.check.family == "rbac")
    assert got == [("rbac-cluster-admin-binding", "todo-backend-admin"),
                   ("rbac-default-service-account-bound", "minikube-rbac")]
