"""Config family: missing-configmap, missing-secret, missing-config-key, volume-mount-failed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _containers_objects import (
    assert_round_trip,
    at,
    container,
    deployment,
    event,
    fp,
    pod,
    replicaset,
    running,
    state,
    texts,
    ts,
    waiting,
)

from aiops.diagnose.context import Context, Target
from aiops.diagnose.engine import diagnose
from aiops.diagnose.finding import Finding
from aiops.diagnose.registry import RULES, load_rules
from aiops.diagnose.rules.config import keys_of, mount_cause, parse_missing
from aiops.model import ClusterState

IDS = ("missing-configmap", "missing-secret", "missing-config-key", "volume-mount-failed")
POD = "web-7d9c8b6f5d-x2x7q"
SECRET_VALUES = ("aHVudGVyMg==", "hunter2", "c2stbGl2ZS0xMjM=", "sk-live-123")


def run(rule_id: str, st: ClusterState, **target: Any) -> list[Finding]:
    load_rules()
    return list(RULES[rule_id].fn(Context(st, Target(**target))))


def one(rule_id: str, st: ClusterState) -> Finding:
    found = run(rule_id, st)
    assert len(found) == 1, found
    return found[0]


def cm(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "shop"}, "data": data}


def secret(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": "shop"}, "data": data}


ROOT_CA = cm("kube-root-ca.crt", **{"ca.crt": "-----BEGIN CERTIFICATE-----"})


def config_pod(c: dict, message: str | None, *, volumes: list | None = None,
               phase: str = "Pending", waiting_reason: str = "CreateContainerConfigError") -> dict:
    status = waiting("app", waiting_reason, message)
    return pod(containers=[c], statuses=[status], phase=phase,
               spec_extra={"volumes": volumes} if volumes else None,
               status_extra={"conditions": [
                   {"type": "ContainersReady", "status": "False",
                    "reason": "ContainersNotReady", "lastTransitionTime": ts(25)}]})


def world(p: dict, *extra: dict) -> ClusterState:
    d = deployment(containers=p["spec"]["containers"],
                   spec_extra={"volumes": p["spec"]["volumes"]} if "volumes" in p["spec"]
                   else None)
    rs = replicaset("web-7d9c8b6f5d", containers=p["spec"]["containers"])
    return state(d, rs, p, *extra)


def assert_no_secret_values(f: Finding) -> None:
    dumped = json.dumps(f.to_dict())
    for v in SECRET_VALUES:
        assert v not in dumped


def test_rules_registered() -> None:
    load_rules()
    for rid in IDS:
        assert RULES[rid].family == "config"
    for rid in IDS[:3]:
        assert "volume-mount-failed" in RULES[rid].supersedes


# -- missing-configmap -------------------------------------------------------------------

ENV_FROM = container(envFrom=[{"configMapRef": {"name": "app-config"}}])


@pytest.mark.parametrize("message", ['configmap "app-config" not found',
                                     'configmaps "app-config" not found'])
def test_missing_configmap_env_from(message: str) -> None:
    p = config_pod(ENV_FROM, message)
    ev = event(p, "Failed", f"Error: {message}", count=14, first=24, field_path=fp())
    f = one("missing-configmap", world(p, ROOT_CA, cm("app-settings", a="1"), ev))
    assert (f.rule, f.severity, f.kind, f.owner) == (
        "missing-configmap", "critical", "Pod", "Deployment/web")
    assert "ConfigMap shop/app-config" in f.summary and "does not exist" in f.summary
    t = texts(f)
    assert "waiting.reason|reason: CreateContainerConfigError" in t
    assert f"waiting.message|message: {message}" in t
    assert f"Failed: Error: {message}" in t
    assert "spec|spec.containers[app].envFrom[0].configMapRef|name=app-config" in t
    assert ("no ConfigMap named app-config in namespace shop (ConfigMaps there: app-settings, "
            "kube-root-ca.crt)") in t
    assert f.first_seen == at(25)
    assert f.confidence >= 0.95
    cmds = f.remediation.commands
    assert cmds[:2] == (f"kubectl describe pod {POD} -n shop", "kubectl get configmaps -n shop")
    assert cmds[-1] == "kubectl create configmap app-config -n shop --from-literal=<key>=<value>"
    a = f.remediation.action
    assert (a.kind, a.tier, a.target["kind"], a.target["name"]) == (
        "manual", "medium", "ConfigMap", "app-config")


def test_missing_configmap_volume_supersedes_volume_mount_failed() -> None:
    c = container(volumeMounts=[{"name": "config", "mountPath": "/etc/app"}])
    vols = [{"name": "config", "configMap": {"name": "app-config"}}]
    p = config_pod(c, None, volumes=vols, waiting_reason="ContainerCreating")
    evs = [event(p, "FailedMount", 'MountVolume.SetUp failed for volume "config" : configmap '
                 '"app-config" not found', count=12, first=22),
           event(p, "FailedMount", "Unable to attach or mount volumes: unmounted "
                 "volumes=[config], unattached volumes=[config kube-api-access-9xk2p]: timed "
                 "out waiting for the condition", count=3, first=20)]
    st = world(p, ROOT_CA, *evs)
    f = one("missing-configmap", st)
    assert "volume 'config'" in f.summary
    assert "spec.volumes[config].configMap|name=app-config" in texts(f)
    assert f.first_seen == at(25)  # ContainersReady=False since before the first event
    assert run("volume-mount-failed", st) == []
    fired = diagnose(st).rules_fired()
    assert "missing-configmap" in fired and "volume-mount-failed" not in fired


def test_missing_configmap_typo_gets_a_reference_patch() -> None:
    c = container(envFrom=[{"configMapRef": {"name": "app-confg"}}])
    p = config_pod(c, 'configmap "app-confg" not found')
    st = world(p, ROOT_CA, cm("app-config", PORT="8080"))
    f = one("missing-configmap", st)
    a = f.remediation.action
    assert (a.kind, a.tier, a.target["kind"], a.target["name"]) == (
        "patch", "medium", "Deployment", "web")
    assert a.patch == [{"op": "replace", "value": "app-config",
                        "path": "/spec/template/spec/containers/0/envFrom/0/configMapRef/name"}]
    patched = assert_round_trip(a, st.get("Deployment", "shop", "web"))
    assert patched["spec"]["template"]["spec"]["containers"][0]["envFrom"][0] == {
        "configMapRef": {"name": "app-config"}}
    assert "likely typo" in f.remediation.summary


def test_missing_configmap_created_since_is_a_resolved_warning() -> None:
    p = config_pod(ENV_FROM, 'configmap "app-config" not found')
    f = one("missing-configmap", world(p, ROOT_CA, cm("app-config", PORT="8080")))
    assert f.severity == "warning" and f.confidence == pytest.approx(0.5)
    assert "exists now" in f.summary
    assert f.remediation.commands[-1] == f"kubectl delete pod {POD} -n shop"


def test_missing_configmap_silent_generic_timeout_confirmed_by_snapshot() -> None:
    vols = [{"name": "config", "configMap": {"name": "app-config"}}]
    p = config_pod(container(), None, volumes=vols, waiting_reason="ContainerCreating")
    ev = event(p, "FailedMount", "Unable to attach or mount volumes: unmounted volumes=[config]"
               ", unattached volumes=[], failed to process volumes=[]: context deadline "
               "exceeded", count=8, first=40)
    st = world(p, ROOT_CA, ev)
    f = one("missing-configmap", st)
    assert f.first_seen == at(40)
    assert run("volume-mount-failed", st) == []
    # same timeout with the ConfigMap present: a real mount problem, not config
    st2 = world(p, ROOT_CA, cm("app-config", a="b"), ev)
    assert run("missing-configmap", st2) == []
    assert one("volume-mount-failed", st2).confidence == pytest.approx(0.7)


# -- missing-secret -------------------------------------------------------------------------

SECRET_ENV = container(env=[{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {
    "name": "db-creds", "key": "password"}}}])


def test_missing_secret_never_shows_values() -> None:
    p = config_pod(SECRET_ENV, 'secret "db-creds" not found')
    ev = event(p, "Failed", 'Error: secret "db-creds" not found', count=30, first=50,
               field_path=fp())
    f = one("missing-secret", world(p, ROOT_CA, secret("api-keys", token="c2stbGl2ZS0xMjM="),
                                    ev))
    assert (f.severity, f.owner) == ("critical", "Deployment/web")
    assert "Secret shop/db-creds" in f.summary
    t = texts(f)
    assert ("spec|spec.containers[app].env[DB_PASSWORD].valueFrom.secretKeyRef|name=db-creds "
            "key=password") in t
    assert "no Secret named db-creds in namespace shop (Secrets there: api-keys)" in t
    assert f.first_seen == at(50)
    a = f.remediation.action
    assert (a.kind, a.tier, a.target["kind"]) == ("manual", "critical", "Secret")
    assert f.remediation.commands[-1] == ("kubectl create secret generic db-creds -n shop "
                                          "--from-literal=<key>=<value>")
    assert_no_secret_values(f)


def test_missing_secret_unconfirmed_when_secrets_not_collected() -> None:
    p = config_pod(SECRET_ENV, 'secret "db-creds" not found')
    st = world(p, ROOT_CA)
    st.unavailable["Secret"] = "secrets is forbidden"
    f = one("missing-secret", st)
    assert f.confidence == pytest.approx(0.85)
    assert "Secrets of shop are not in the snapshot" in texts(f)


def test_missing_secret_volume_old_wording() -> None:
    vols = [{"name": "tls", "secret": {"secretName": "web-tls"}}]
    p = config_pod(container(), None, volumes=vols, waiting_reason="ContainerCreating")
    ev = event(p, "FailedMount", 'MountVolume.SetUp failed for volume "tls" : secrets '
               '"web-tls" not found', count=4)
    f = one("missing-secret", world(p, ROOT_CA, secret("other", k="dg=="), ev))
    assert "spec.volumes[tls].secret|secretName=web-tls" in texts(f)


# -- missing-config-key ------------------------------------------------------------------------

def test_missing_config_key_env_lists_existing_keys() -> None:
    c = container(env=[{"name": "LOG_LEVEL", "valueFrom": {"configMapKeyRef": {
        "name": "app-config", "key": "LOG_LEVEL"}}}])
    msg = "couldn't find key LOG_LEVEL in ConfigMap shop/app-config"
    p = config_pod(c, msg)
    ev = event(p, "Failed", f"Error: {msg}", count=9, first=16, field_path=fp())
    f = one("missing-config-key", world(p, ROOT_CA, cm("app-config", LOG_FORMAT="json",
                                                       PORT="8080"), ev))
    assert "key 'LOG_LEVEL' of ConfigMap shop/app-config" in f.summary
    t = texts(f)
    assert "ConfigMap app-config lacks key LOG_LEVEL (keys: LOG_FORMAT, PORT)" in t
    assert "env[LOG_LEVEL].valueFrom.configMapKeyRef|name=app-config key=LOG_LEVEL" in t
    assert "json" not in t  # values are never shown, even of a ConfigMap
    assert f.first_seen == at(25)
    assert f.remediation.action.kind == "manual"
    assert any("go-template" in c for c in f.remediation.commands)
    assert run("missing-configmap", world(p, ROOT_CA, cm("app-config", PORT="1"))) == []


def test_missing_secret_key_typo_patch_never_shows_values() -> None:
    c = container(env=[{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {
        "name": "db-creds", "key": "passwrd"}}}])
    msg = "couldn't find key passwrd in Secret shop/db-creds"
    p = config_pod(c, msg)
    st = world(p, ROOT_CA, secret("db-creds", password="aHVudGVyMg==", user="YXBw"))
    f = one("missing-config-key", st)
    assert "Secret db-creds lacks key passwrd (keys: password, user)" in texts(f)
    a = f.remediation.action
    assert (a.kind, a.tier) == ("patch", "critical")
    assert a.patch[0]["path"].endswith("/env/0/valueFrom/secretKeyRef/key")
    assert a.patch[0]["value"] == "password"
    assert_round_trip(a, st.get("Deployment", "shop", "web"))
    assert "kubectl describe secret db-creds -n shop" in f.remediation.commands
    assert_no_secret_values(f)


@pytest.mark.parametrize("message", [
    'MountVolume.SetUp failed for volume "config" : configmap references non-existent config '
    "key: app.yaml",
    'MountVolume.SetUp failed for volume "config" : volume config items shop/app-config '
    "references non-existent config key: app.yaml",
])
def test_missing_config_key_volume_item(message: str) -> None:
    vols = [{"name": "config", "configMap": {"name": "app-config", "items": [
        {"key": "app.yaml", "path": "app.yaml"}]}}]
    p = config_pod(container(), None, volumes=vols, waiting_reason="ContainerCreating")
    st = world(p, ROOT_CA, cm("app-config", **{"app.yml": "x: 1"}),
               event(p, "FailedMount", message, count=7, first=9))
    f = one("missing-config-key", st)
    assert "spec.volumes[config].configMap.items[0]|key=app.yaml" in texts(f)
    a = f.remediation.action  # 'app.yml' is one close key: a patch of the item key
    assert a.kind == "patch" and a.patch[0]["value"] == "app.yml"
    assert a.patch[0]["path"] == "/spec/template/spec/volumes/0/configMap/items/0/key"
    assert_round_trip(a, st.get("Deployment", "shop", "web"))
    assert run("volume-mount-failed", st) == []


def test_stale_key_report_with_object_gone_is_missing_configmap() -> None:
    p = config_pod(ENV_FROM, "couldn't find key A in ConfigMap shop/app-config")
    st = world(p, ROOT_CA)
    assert run("missing-config-key", st) == []
    assert one("missing-configmap", st).rule == "missing-configmap"


def test_config_rules_do_not_fire_on_healthy_pods() -> None:
    p = pod(containers=[ENV_FROM], statuses=[running()])
    st = world(p, ROOT_CA, cm("app-config", a="b"))
    for rid in IDS:
        assert run(rid, st) == []


# -- volume-mount-failed --------------------------------------------------------------------------

def pvc(name: str = "data-web") -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"accessModes": ["ReadWriteOnce"], "volumeName": "pvc-3f1c"},
            "status": {"phase": "Bound"}}


def mount_pod(volumes: list | None = None) -> dict:
    vols = volumes or [{"name": "data", "persistentVolumeClaim": {"claimName": "data-web"}}]
    return config_pod(container(volumeMounts=[{"name": "data", "mountPath": "/data"}]), None,
                      volumes=vols, waiting_reason="ContainerCreating")


def test_volume_multi_attach_suggests_recreate_strategy() -> None:
    p = mount_pod()
    evs = [event(p, "FailedAttachVolume", 'Multi-Attach error for volume "pvc-3f1c" Volume is '
                 "already used by pod(s) web-7d9c8b6f5d-old01", count=1, first=15,
                 component="attachdetach-controller"),
           event(p, "FailedMount", "Unable to attach or mount volumes: unmounted volumes=[data]"
                 ", unattached volumes=[data kube-api-access-9xk2p]: timed out waiting for the "
                 "condition", count=6, first=13)]
    st = world(p, pvc(), *evs)
    d = st.get("Deployment", "shop", "web")
    d["spec"]["replicas"] = 1
    f = one("volume-mount-failed", st)
    assert (f.severity, f.owner) == ("critical", "Deployment/web")
    assert "ContainerCreating" in f.summary and "another node" in f.summary
    t = texts(f)
    assert "FailedAttachVolume: Multi-Attach error" in t
    assert "PVC data-web: phase=Bound accessModes=ReadWriteOnce" in t
    assert "spec|spec.volumes[data]|persistentVolumeClaim: claimName=data-web" in t
    assert f.first_seen == at(15)
    assert "kubectl describe pvc data-web -n shop" in f.remediation.commands
    a = f.remediation.action
    assert (a.kind, a.tier) == ("patch", "medium")
    assert a.patch == [{"op": "add", "path": "/spec/strategy", "value": {"type": "Recreate"}}]
    assert_round_trip(a, d)


@pytest.mark.parametrize(("reason", "message", "cause"), [
    ("FailedMount", 'MountVolume.MountDevice failed for volume "pvc-3f1c" : kubernetes.io/csi: '
     "attacher.MountDevice failed to create newCsiDriverClient: driver name ebs.csi.aws.com not "
     "found in the list of registered CSI drivers", "CSI driver ebs.csi.aws.com"),
    ("FailedMount", 'MountVolume.SetUp failed for volume "nfs" : mount failed: exit status 32 '
     "Mounting command: mount Mounting arguments: -t nfs 10.0.0.9:/exports /var/lib/kubelet/"
     "pods/x/volumes/kubernetes.io~nfs/nfs Output: mount.nfs: Connection timed out",
     "mounting the volume on the node failed"),
    ("FailedAttachVolume", 'AttachVolume.Attach failed for volume "pvc-3f1c" : rpc error: code '
     "= Internal desc = Could not attach volume: timeout", "could not be attached"),
    ("FailedCreatePodSandBox", 'Failed to create pod sandbox: rpc error: code = Unknown desc = '
     'failed to setup network for sandbox "4b1f": plugin type="calico" failed (add): stat '
     "/var/lib/calico/nodename: no such file or directory", "CNI network plugin"),
    ("FailedMount", 'MountVolume.NewMounter initialization failed for volume "host" : path '
     '"/srv/data" does not exist', "hostPath does not exist"),
])
def test_volume_mount_failed_causes(reason: str, message: str, cause: str) -> None:
    p = mount_pod()
    f = one("volume-mount-failed", world(p, pvc(), event(p, reason, message, count=5)))
    assert cause in f.summary
    assert f.confidence == pytest.approx(0.9)
    assert f.remediation.action is None  # replicas 2: no strategy change proposed


def test_volume_mount_failed_near_misses() -> None:
    msg = 'MountVolume.SetUp failed for volume "nfs" : mount failed: exit status 32'
    up = pod(statuses=[running()], spec_extra={"volumes": [{"name": "nfs", "nfs": {
        "server": "10.0.0.9", "path": "/exports"}}]})
    assert run("volume-mount-failed", world(up, event(up, "FailedMount", msg))) == []
    unscheduled = mount_pod()
    unscheduled["spec"].pop("nodeName")
    assert run("volume-mount-failed", world(unscheduled, event(unscheduled, "FailedMount",
                                                               msg))) == []
    assert run("volume-mount-failed", world(mount_pod())) == []


def test_mount_cause_and_parsers() -> None:
    assert mount_cause("failed to sync configmap cache: timed out waiting for the condition") \
        .startswith("the kubelet could not read")
    p = pod()
    assert parse_missing('Error: configmap "a" not found', p)[0].name == "a"
    assert parse_missing("couldn't find key K in Secret ns/s", p)[0].key == "K"
    assert parse_missing("MountVolume.SetUp failed: object \"shop\"/\"kube-root-ca.crt\" "
                         "not registered", p) == []
    assert keys_of(secret("s", a="eA==", b="eQ==")) == ["a", "b"]
    assert keys_of({"kind": "ConfigMap", "data": "x", "binaryData": {"bin": "AA=="}}) == ["bin"]


def test_rules_never_raise_on_malformed_objects() -> None:
    objs = [
        {"kind": "Pod", "metadata": {"name": "a", "namespace": "shop"},
         "spec": {"nodeName": "n", "volumes": [None, "x", {"name": "v", "configMap": "y"},
                                               {"name": "p", "projected": {"sources": [None]}}],
                  "containers": [{"name": "app", "env": [None, {"valueFrom": "x"}],
                                  "envFrom": "z"}]},
         "status": {"phase": "Pending", "containerStatuses": [
             {"name": "app", "state": {"waiting": {
                 "reason": "CreateContainerConfigError",
                 "message": "couldn't find key k in ConfigMap shop/ and configmap \"\" "
                            "not found"}}}]}},
        {"kind": "Event", "metadata": {"name": "e", "namespace": "shop"},
         "involvedObject": {"kind": "Pod", "name": "a", "namespace": "shop"},
         "reason": "FailedMount", "message": 'MountVolume.SetUp failed for volume "v" : '
         "configmap references non-existent config key: k"},
        {"kind": "Event", "metadata": {"name": "f", "namespace": "shop"},
         "involvedObject": {"kind": "Pod", "name": "a", "namespace": "shop"},
         "reason": "FailedMount", "message": None},
        {"kind": "ConfigMap", "metadata": {"name": "k", "namespace": "shop"}, "data": None},
    ]
    d = diagnose(state(*objs), rules=list(IDS))
    assert d.failures == []


# -- demo cluster -----------------------------------------------------------------------------

def test_demo_cluster_has_no_config_false_positives() -> None:
    from aiops.sources import open_source

    st = open_source("demo")
    # the todo release has no configuration faults (the shop namespace has them on purpose)
    d = diagnose(st, namespace="todo", rules=list(IDS))
    assert d.failures == []
    assert [f.rule for f in d.findings] == []
