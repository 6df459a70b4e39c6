"""Pod Security Standards, restricted family: each control decided as Pod Security
admission decides it (pod-level defaults and overrides, Windows pods, exact
names), every fix applied end to end, and a plain Deployment brought to the
restricted level by applying the fixes one after another."""

from __future__ import annotations

import pytest

from aiops.security import audit, load_checks
from aiops.security.checks import pss_restricted as pr

from .test_pss_baseline import (
    BASELINE,
    RESTRICTED,
    Obj,
    assert_fix,
    assert_valid,
    ctr,
    deployment,
    failed,
    failing,
    only,
    passes,
    pod,
    restricted_pod,
    state,
)

RESTRICTED_CONTROLS = {"Volume Types", "Privilege Escalation", "Running as Non-root",
                       "Running as Non-root user", "Seccomp", "Capabilities"}
WINDOWS = {"os": {"name": "windows"}}


def test_the_restricted_checks_are_registered_with_their_pss_control() -> None:
    checks = {c.id: c for c in load_checks().values() if c.family == "pss-restricted"}
    assert set(checks) == set(RESTRICTED)
    assert {c.refs.pss_control for c in checks.values()} == RESTRICTED_CONTROLS
    for c in checks.values():
        assert c.refs.pss == "restricted" and c.category == "security"
        assert c.title and c.rationale


def test_a_pod_without_security_settings_fails_the_four_container_controls() -> None:
    p = pod(ctr("a"), init=(ctr("setup"),))
    for cid in ("pss-privilege-escalation", "pss-run-as-non-root", "pss-seccomp-restricted",
                "pss-capabilities-restricted"):
        assert sorted(failing(p, cid)) == ["a", "setup"], cid
    assert passes(p, "pss-run-as-user") and passes(p, "pss-volume-types")


# -- Volume Types ----------------------------------------------------------------
@pytest.mark.parametrize("source", [
    {"configMap": {"name": "cfg"}}, {"csi": {"driver": "secrets-store.csi.k8s.io"}},
    {"downwardAPI": {"items": []}}, {"emptyDir": {}},
    {"ephemeral": {"volumeClaimTemplate": {"spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}},
    {"persistentVolumeClaim": {"claimName": "data"}}, {"projected": {"sources": []}},
    {"secret": {"secretName": "tls"}},
    {}])  # no source: the API defaults it to an emptyDir before admission
def test_allowed_volume_types(source: Obj) -> None:
    p = pod(volumes=[{"name": "v", **source}])
    assert_valid(p)
    assert passes(p, "pss-volume-types")


@pytest.mark.parametrize("source", [
    {"hostPath": {"path": "/data"}}, {"nfs": {"server": "nas", "path": "/export"}},
    {"gitRepo": {"repository": "https://example.com/x.git"}},
    {"iscsi": {"targetPortal": "10.0.0.1:3260", "iqn": "iqn.2001-04.com.example:x", "lun": 0}},
    {"cephfs": {"monitors": ["10.0.0.2:6789"]}}])
def test_forbidden_volume_types(source: Obj) -> None:
    p = pod(volumes=[{"name": "ok", "emptyDir": {}}, {"name": "v", **source}])
    r = only(p, "pss-volume-types")
    assert f"v ({next(iter(source))})" in r.message and "ok" not in r.message
    assert r.fix is None and "PersistentVolumeClaim" in r.fix_text


# -- Privilege Escalation --------------------------------------------------------
@pytest.mark.parametrize(("value", "ok"), [(None, False), (True, False), (False, True)])
def test_privilege_escalation(value: bool | None, ok: bool) -> None:
    c = ctr() if value is None else ctr(allowPrivilegeEscalation=value)
    assert passes(pod(c), "pss-privilege-escalation") is ok
    assert passes(pod(c, **WINDOWS), "pss-privilege-escalation")  # Linux only


def test_privilege_escalation_fix() -> None:
    obj = deployment(pod(ctr()))
    assert "defaults to true" in only(obj, "pss-privilege-escalation").message
    fixed = assert_fix(obj, "pss-privilege-escalation")
    assert fixed["spec"]["template"]["spec"]["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False}


def test_privilege_escalation_fix_respects_what_the_api_rejects() -> None:
    priv = deployment(pod(ctr(privileged=True)))
    fixed = assert_fix(priv, "pss-privilege-escalation")
    assert fixed["spec"]["template"]["spec"]["containers"][0]["securityContext"] == {
        "privileged": False, "allowPrivilegeEscalation": False}
    assert "privileged false" in only(priv, "pss-privilege-escalation").fix.description
    sys_admin = deployment(pod(ctr(capabilities={"add": ["SYS_ADMIN"]})))
    r = only(sys_admin, "pss-privilege-escalation")
    assert r.fix is None and "remove SYS_ADMIN" in r.fix_text


# -- Running as Non-root ---------------------------------------------------------
@pytest.mark.parametrize(("pod_value", "container_value", "ok"), [
    (None, None, False), (True, None, True), (None, True, True), (True, True, True),
    (False, True, False),  # the pod must not set false, whatever the container says
    (True, False, False), (None, False, False), (False, None, False)])
def test_run_as_non_root(pod_value: bool | None, container_value: bool | None,
                         ok: bool) -> None:
    c = ctr() if container_value is None else ctr(runAsNonRoot=container_value)
    sc = None if pod_value is None else {"runAsNonRoot": pod_value}
    obj = deployment(pod(c, sc=sc))
    assert passes(obj, "pss-run-as-non-root") is ok
    if not ok:
        fixed = assert_fix(obj, "pss-run-as-non-root")
        # the fix leaves the pod-level value alone unless it is the forbidden false
        assert fixed["spec"]["template"]["spec"].get("securityContext", {}).get(
            "runAsNonRoot") == (True if pod_value is False else pod_value)


def test_run_as_non_root_with_only_the_pod_at_false_fixes_the_pod() -> None:
    obj = deployment(pod(ctr("a"), ctr("b"), sc={"runAsNonRoot": False}))
    assert failing(obj, "pss-run-as-non-root") == ["a", "b"]
    r = failed(obj, "pss-run-as-non-root")[0]
    assert "runAsNonRoot: false set on the pod" in r.message
    assert [op["path"] for op in r.fix.patch] == [
        "/spec/template/spec/securityContext/runAsNonRoot"]
    fixed = assert_fix(obj, "pss-run-as-non-root")
    assert failing(fixed, "pss-run-as-non-root") == []


def test_run_as_non_root_warns_about_images_that_run_as_root() -> None:
    r = only(pod(ctr()), "pss-run-as-non-root")
    assert "numeric" in r.fix_text and "runAsUser" in r.fix_text
    root = only(pod(ctr(), sc={"runAsUser": 0}), "pss-run-as-non-root")
    assert root.fix is None and "runAsUser: 0" in root.fix_text


# -- Running as Non-root user ----------------------------------------------------
@pytest.mark.parametrize(("pod_uid", "container_uid", "expected"), [
    (None, None, []), (1000, None, []), (None, 65532, []), (1000, 2000, []),
    (None, 0, ["a"]), (0, None, ["a", "b"]),
    (0, 1000, ["a", "b"])])  # admission rejects the pod-level 0 even when overridden
def test_run_as_user(pod_uid: int | None, container_uid: int | None,
                     expected: list[str]) -> None:
    a = ctr("a") if container_uid is None else ctr("a", runAsUser=container_uid)
    sc = None if pod_uid is None else {"runAsUser": pod_uid}
    assert failing(pod(a, ctr("b"), sc=sc), "pss-run-as-user") == expected


def test_run_as_user_is_explained_not_patched() -> None:
    r = only(pod(ctr(runAsUser=0)), "pss-run-as-user")
    assert r.severity == "danger" and "runAsUser: 0 set on the container" in r.message
    assert r.fix is None and "non-zero UID" in r.fix_text
    assert passes(pod(ctr(runAsUser=False)), "pss-run-as-user")  # not a UID at all


# -- Seccomp ---------------------------------------------------------------------
def _prof(t: str) -> Obj:
    return {"type": t, "localhostProfile": "web.json"} if t == "Localhost" else {"type": t}


@pytest.mark.parametrize(("pod_type", "container_type", "ok"), [
    (None, None, False), ("RuntimeDefault", None, True), (None, "Localhost", True),
    ("Localhost", "RuntimeDefault", True),
    ("Unconfined", "RuntimeDefault", False), ("RuntimeDefault", "Unconfined", False),
    ("Unconfined", None, False)])
def test_seccomp_restricted(pod_type: str | None, container_type: str | None,
                            ok: bool) -> None:
    c = ctr() if container_type is None else ctr(seccompProfile=_prof(container_type))
    sc = None if pod_type is None else {"seccompProfile": _prof(pod_type)}
    obj = deployment(pod(c, sc=sc))
    assert passes(obj, "pss-seccomp-restricted") is ok
    if not ok:
        assert_fix(obj, "pss-seccomp-restricted")
    assert passes(deployment(pod(ctr(), **WINDOWS)), "pss-seccomp-restricted")


def test_seccomp_restricted_fix_goes_where_the_fault_is() -> None:
    unset = failed(deployment(pod(ctr())), "pss-seccomp-restricted")[0]
    assert "neither it nor the pod sets one" in unset.message
    assert [op["path"] for op in unset.fix.patch] == [
        "/spec/template/spec/containers/0/securityContext"]
    pod_bad = deployment(pod(ctr("a"), ctr("b"), sc={"seccompProfile": {"type": "Unconfined"}}))
    r = failed(pod_bad, "pss-seccomp-restricted")[0]
    assert [op["path"] for op in r.fix.patch] == [
        "/spec/template/spec/securityContext/seccompProfile"]
    assert failing(assert_fix(pod_bad, "pss-seccomp-restricted"), "pss-seccomp-restricted") == []


# -- Capabilities ----------------------------------------------------------------
@pytest.mark.parametrize(("caps", "ok"), [
    (None, False), ({"drop": ["ALL"]}, True),
    ({"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}, True),
    ({"drop": ["NET_RAW", "ALL"]}, True), ({"drop": ["NET_RAW"]}, False),
    ({"drop": ["all"]}, False),  # admission compares exactly
    ({"drop": ["ALL"], "add": ["CHOWN"]}, False), ({"add": ["NET_BIND_SERVICE"]}, False)])
def test_capabilities_restricted(caps: Obj | None, ok: bool) -> None:
    c = ctr() if caps is None else ctr(capabilities=caps)
    obj = deployment(pod(c))
    assert passes(obj, "pss-capabilities-restricted") is ok
    if not ok:
        assert_fix(obj, "pss-capabilities-restricted")
    assert passes(deployment(pod(c, **WINDOWS)), "pss-capabilities-restricted")


def test_capabilities_restricted_message_and_fix() -> None:
    obj = deployment(pod(ctr(capabilities={"drop": ["all"],
                                           "add": ["NET_BIND_SERVICE", "SYS_TIME"]})))
    r = only(obj, "pss-capabilities-restricted")
    assert "does not drop ALL" in r.message and "only accepts ALL" in r.message
    assert "adds SYS_TIME" in r.message
    fixed = assert_fix(obj, "pss-capabilities-restricted")
    assert fixed["spec"]["template"]["spec"]["containers"][0]["securityContext"][
        "capabilities"] == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}


# -- levels and fixes together ---------------------------------------------------
def test_applying_the_fixes_brings_a_plain_deployment_to_restricted() -> None:
    obj = deployment(pod(ctr("app"), init=(ctr("migrate"),)), name="api")
    applied = 0
    for _ in range(20):
        report = audit(state(obj))
        todo = [r for r in report.failures() if r.check.id.startswith("pss-") and r.fix]
        if not todo:
            break
        obj = assert_fix(obj, todo[0].check.id, todo[0].container)
        applied += 1
    report = audit(state(obj))
    assert report.pss_levels() == {"shop": "restricted"}
    assert applied == 8  # four restricted controls x two containers
    assert_valid(obj)


def test_restricted_failures_leave_the_namespace_at_baseline() -> None:
    objs = [restricted_pod(name="a", namespace="web"), pod(ctr(runAsUser=0), name="b",
                                                            namespace="web")]
    report = audit(state(*objs))
    assert report.pss_levels() == {"web": "baseline"}
    # only the Pod Security Standards checks decide the level; other families may fail
    fails = {r.check.id for r in report.failures(include_exempt=False) if r.check.refs.pss}
    assert fails and fails <= set(RESTRICTED)
    assert not fails & set(BASELINE)


def test_host_path_fails_both_levels() -> None:
    p = restricted_pod(volumes=[{"name": "host", "hostPath": {"path": "/"}}])
    assert failing(p, "pss-host-path") == [""] and failing(p, "pss-volume-types") == [""]
    assert audit(state(p)).pss_levels() == {"shop": "privileged"}


def test_windows_pods_skip_only_the_linux_controls() -> None:
    p = pod(ctr(), **WINDOWS)
    report = audit(state(p))
    fails = {r.check.id for r in report.failures() if r.check.id.startswith("pss-")}
    assert fails == {"pss-run-as-non-root"}  # not Linux-only, so it still applies


def test_the_allowed_volume_types_are_the_pss_page_list() -> None:
    page = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
            "persistentVolumeClaim", "projected", "secret"}
    assert page == pr.VOLUME_TYPES_ALLOWED
