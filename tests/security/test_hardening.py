"""Hardening checks: each fails on a small object, passes once fixed, and each
Action's patch fixes exactly that while its inverse restores the object."""

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
SECRET = "n0tifier-Relay!2026"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----\n"


def deploy(name: str = "api", ns: str = "shop", *, pod: Obj | None = None,
           containers: list[Obj] | None = None, init: list[Obj] | None = None,
           ephemeral: list[Obj] | None = None) -> Obj:
    spec: Obj = dict(pod or {})
    spec["containers"] = containers if containers is not None else [
        {"name": "app", "image": "app:1.0"}]
    if init is not None:
        spec["initContainers"] = init
    if ephemeral is not None:
        spec["ephemeralContainers"] = ephemeral
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": name}},
                                                 "spec": spec}}}


def cronjob(pod: Obj, containers: list[Obj]) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "nightly", "namespace": "shop"},
            "spec": {"schedule": "0 1 * * *", "jobTemplate": {"spec": {"template": {
                "spec": {**pod, "containers": containers}}}}}}


def sa(name: str, ns: str = "shop", automount: Any = "unset") -> Obj:
    o: Obj = {"apiVersion": "v1", "kind": "ServiceAccount",
              "metadata": {"name": name, "namespace": ns}}
    if automount != "unset":
        o["automountServiceAccountToken"] = automount
    return o


def run(check: str, *objs: Obj) -> list[Result]:
    state = ClusterState(source="test")
    state.add(copy.deepcopy(list(objs)))
    report = audit(state, checks=[check])
    assert not report.check_failures
    return report.results


def failed(check: str, *objs: Obj) -> list[Result]:
    return [r for r in run(check, *objs) if not r.passed]


def roundtrip(check: str, obj: Obj, *others: Obj) -> None:
    """The fix's patch makes the object pass; its inverse gives it back exactly."""
    bad = failed(check, obj, *others)
    assert bad and all(r.fix is not None for r in bad)
    for r in bad:
        assert r.fix is not None and r.fix.tier == "medium"
        patched = jsonpatch.apply_patch(obj, r.fix.patch)
        assert not [x for x in failed(check, patched, *others)
                    if x.container == r.container], r.fix.patch
        assert jsonpatch.apply_patch(patched, r.fix.inverse) == obj


# -- read-only-root-filesystem -------------------------------------------------

@pytest.mark.parametrize("sc", [None, {}, {"readOnlyRootFilesystem": False},
                                {"readOnlyRootFilesystem": None}, "null-context"])
def test_read_only_root_fails_and_fix_roundtrips(sc: Any) -> None:
    c: Obj = {"name": "app", "image": "app:1.0"}
    if sc == "null-context":
        c["securityContext"] = None
    elif sc is not None:
        c["securityContext"] = sc
    obj = deploy(containers=[c])
    bad = failed("read-only-root-filesystem", obj)
    assert len(bad) == 1 and "container app has readOnlyRootFilesystem" in bad[0].message
    assert "emptyDir" in bad[0].fix_text
    roundtrip("read-only-root-filesystem", obj)


def test_read_only_root_passes_and_is_per_container() -> None:
    ok = {"name": "app", "image": "a:1", "securityContext": {"readOnlyRootFilesystem": True}}
    assert not failed("read-only-root-filesystem", deploy(containers=[ok]))
    # init containers count, ephemeral (debug) containers do not
    obj = deploy(containers=[ok], init=[{"name": "migrate", "image": "m:1"}],
                 ephemeral=[{"name": "debugger", "image": "busybox:1"}])
    bad = failed("read-only-root-filesystem", obj)
    assert [r.container for r in bad] == ["migrate"]
    roundtrip("read-only-root-filesystem", obj)
    # it is a container field: a pod-level securityContext does not set it
    pod_level = deploy(pod={"securityContext": {"readOnlyRootFilesystem": True}})
    assert failed("read-only-root-filesystem", pod_level)


def test_read_only_root_cronjob_template() -> None:
    job = cronjob({}, [{"name": "backup", "image": "b:1",
                        "securityContext": {"readOnlyRootFilesystem": False}}])
    bad = failed("read-only-root-filesystem", job)
    assert [(r.kind, r.container) for r in bad] == [("CronJob", "backup")]
    assert bad[0].fix is not None and bad[0].fix.patch[0]["path"].startswith(
        "/spec/jobTemplate/spec/template/spec/containers/0/")
    roundtrip("read-only-root-filesystem", job)


# -- automount-service-account-token ---------------------------------------------

@pytest.mark.parametrize("pod", [{}, {"automountServiceAccountToken": True},
                                 {"automountServiceAccountToken": None}])
def test_automount_fails_and_fix_roundtrips(pod: Obj) -> None:
    obj = deploy(pod={"serviceAccountName": "api", **pod})
    bad = failed("automount-service-account-token", obj, sa("api"))
    assert len(bad) == 1 and "ServiceAccount api" in bad[0].message
    roundtrip("automount-service-account-token", obj, sa("api"))


def test_automount_service_account_setting() -> None:
    obj = deploy(pod={"serviceAccountName": "api"})
    # the ServiceAccount disables it: passes; the pod's own true wins over it
    assert not failed("automount-service-account-token", obj, sa("api", automount=False))
    assert failed("automount-service-account-token", obj, sa("api", automount=True))
    on = deploy(pod={"serviceAccountName": "api", "automountServiceAccountToken": True})
    assert failed("automount-service-account-token", on, sa("api", automount=False))
    off = deploy(pod={"automountServiceAccountToken": False})
    assert not failed("automount-service-account-token", off)
    # the account of another namespace does not count
    assert failed("automount-service-account-token", obj, sa("api", "todo", automount=False))


def test_automount_cronjob_and_static_pods() -> None:
    job = cronjob({}, [{"name": "b", "image": "b:1"}])
    roundtrip("automount-service-account-token", job)
    mirror = {"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": "etcd-n1", "namespace": "kube-system",
                           "annotations": {"kubernetes.io/config.mirror": "abc"}},
              "spec": {"containers": [{"name": "etcd", "image": "etcd:3"}]}}
    assert not failed("automount-service-account-token", mirror)
    assert not failed("default-service-account", mirror)


# -- default-service-account -------------------------------------------------------

@pytest.mark.parametrize("pod, fails", [({}, True), ({"serviceAccountName": "default"}, True),
                                        ({"serviceAccountName": None}, True),
                                        ({"serviceAccount": "api"}, False),
                                        ({"serviceAccountName": "api"}, False)])
def test_default_service_account(pod: Obj, fails: bool) -> None:
    bad = failed("default-service-account", deploy(pod=pod))
    assert bool(bad) is fails
    if fails:
        assert "default ServiceAccount of namespace shop" in bad[0].message
        assert "kubectl create serviceaccount api -n shop" in bad[0].fix_text


# -- secret-in-env -------------------------------------------------------------------

@pytest.mark.parametrize("name, value, why", [
    ("DB_PASSWORD", SECRET, "its name"),
    ("OPENAI_API_KEY", "sk-demo-0123456789abcdef", "API token"),
    ("SESSION", JWT, "a JWT"),
    ("TLS_KEY_PEM", PEM, "PEM private key"),
    ("AWS_ID", "AKIAABCDEFGHIJKLMNOP", "AWS access key id"),
    ("DATABASE_URL", f"postgres://app:{SECRET}@db:5432/x", "URL with a password"),
    ("BLOB", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "high-entropy"),
])
def test_secret_in_env_fails_without_showing_value(name: str, value: str, why: str) -> None:
    c = {"name": "app", "image": "a:1", "env": [{"name": "LOG_LEVEL", "value": "info"},
                                               {"name": name, "value": value}]}
    bad = failed("secret-in-env", deploy(containers=[c]))
    assert len(bad) == 1 and f"env {name}" in bad[0].message and why in bad[0].message
    shown = str(bad[0].to_dict())
    assert value.strip() not in shown and "MIIEow" not in shown
    assert "secretKeyRef" in bad[0].fix_text and bad[0].fix is None


@pytest.mark.parametrize("env", [
    {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
    {"name": "DB_PASSWORD", "value": ""},
    {"name": "DB_PASSWORD", "value": None},
    {"name": "DB_PASSWORD", "value": "$(FROM_SECRET)"},
    {"name": "DB_PASSWORD_FILE", "value": "/run/secrets/db"},
    {"name": "TOKEN_TTL", "value": "3600"},
    {"name": "AUTH_ENABLED", "value": "true"},
    {"name": "SECRET_NAME", "value": "db-credentials"},
    {"name": "DATABASE_URL", "value": "postgres://db:5432/x"},
    {"name": "CA_CERT", "value": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"},
    {"name": "GIT_SHA", "value": "3f786850e387550fdab836ed7e6dc881de23001b"},
    {"name": "LOG_LEVEL"},
])
def test_secret_in_env_passes(env: Obj) -> None:
    c = {"name": "app", "image": "a:1", "env": [env]}
    assert not failed("secret-in-env", deploy(containers=[c]))


def test_secret_in_env_init_ephemeral_and_null_env() -> None:
    leak = {"env": [{"name": "API_TOKEN", "value": SECRET}]}
    obj = deploy(containers=[{"name": "app", "image": "a:1", "env": None}],
                 init=[{"name": "init", "image": "i:1", **leak}],
                 ephemeral=[{"name": "dbg", "image": "d:1", **leak}])
    assert sorted(r.container for r in failed("secret-in-env", obj)) == ["dbg", "init"]


# -- secret-as-env ---------------------------------------------------------------------

def test_secret_as_env() -> None:
    c = {"name": "app", "image": "a:1",
         "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
                 {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}],
         "envFrom": [{"secretRef": {"name": "all"}}, {"configMapRef": {"name": "c"}}]}
    bad = failed("secret-as-env", deploy(containers=[c]))
    assert [r.message for r in bad] == [
        "container app reads Secret db key pw into env PW",
        "container app loads every key of Secret all into its env"]
    assert all(r.severity == "info" for r in bad)
    mounted = {"name": "app", "image": "a:1", "env": None, "envFrom": None,
               "volumeMounts": [{"name": "db", "mountPath": "/run/secrets/db"}]}
    assert not failed("secret-as-env", deploy(containers=[mounted]))


# -- secret-in-configmap -----------------------------------------------------------------

def configmap(data: Any, binary: Any = None) -> Obj:
    o: Obj = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "app-config", "namespace": "shop"}, "data": data}
    if binary is not None:
        o["binaryData"] = binary
    return o


def test_secret_in_configmap() -> None:
    cm = configmap({"LOG_LEVEL": "info", "SMTP_PASSWORD": SECRET, "tls.key": PEM,
                    "app.yaml": f"db:\n  host: db\n  password: {SECRET}\n",
                    "ca.crt": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"})
    bad = failed("secret-in-configmap", cm)
    keys = sorted(r.message.split(" key ")[1].split(" ")[0] for r in bad)
    assert keys == ["SMTP_PASSWORD", "app.yaml", "tls.key"]
    assert all(r.kind == "ConfigMap" and r.namespace == "shop" for r in bad)
    for r in bad:
        assert SECRET not in str(r.to_dict()) and "MIIEow" not in str(r.to_dict())
    assert "/data/SMTP_PASSWORD" in next(r.fix_text for r in bad if "SMTP" in r.message)


@pytest.mark.parametrize("data", [None, {}, {"LOG_LEVEL": "info", "PASSWORD_MIN_LENGTH": "12"},
                                  {"nginx.conf": "server {\n  listen 80;\n}\n"},
                                  {"app.yaml": "db:\n  password: ${DB_PASSWORD}\n"}])
def test_secret_in_configmap_passes(data: Any) -> None:
    assert not failed("secret-in-configmap", configmap(data))


def test_secret_in_configmap_binary_data() -> None:
    bad = failed("secret-in-configmap", configmap(None, {"keystore-password": "AAEC"}))
    assert len(bad) == 1 and "binaryData key keystore-password" in bad[0].message


# -- through manifests and the demo cluster ---------------------------------------------

def test_hardening_checks_on_manifests(tmp_path: Path) -> None:
    docs = [deploy(pod={"serviceAccountName": "api"},
                   containers=[{"name": "app", "image": "a:1",
                                "env": [{"name": "DB_PASSWORD", "value": SECRET}]}]),
            sa("api", automount=False), configmap({"API_TOKEN": SECRET})]
    f = tmp_path / "app.yaml"
    f.write_text(yaml.safe_dump_all(docs))
    state, origin = load_manifests(f)
    report = audit(state, origin=origin, checks=[
        "read-only-root-filesystem", "automount-service-account-token",
        "default-service-account", "secret-in-env", "secret-in-configmap"])
    got = sorted((r.check.id, r.kind, r.line) for r in report.failures())
    assert got == [("read-only-root-filesystem", "Deployment", 1),
                   ("secret-in-configmap", "ConfigMap", got[1][2]),
                   ("secret-in-env", "Deployment", 1)]
    assert got[1][2] is not None and got[1][2] > 1
    assert SECRET not in str(report.to_json())


def test_demo_cluster_findings() -> None:
    report = audit(open_source("demo"))
    assert not report.check_failures
    by = {(r.check.id, r.name) for r in report.failures()}
    assert ("secret-in-configmap", "todo-config") in by
    assert ("secret-in-env", "todo-backend") in by
    # static control-plane pods and stock ConfigMaps (CA certificates) are not flagged
    assert ("automount-service-account-token", "etcd-minikube") not in by
    assert not [n for c, n in by if c == "secret-in-configmap" and n != "todo-config"]
    assert "n0tifier" not in str(report.to_json())
