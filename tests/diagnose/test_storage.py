"""Storage family: pvc-pending."""

from __future__ import annotations

from typing import Any

from _workloads_objects import (
    ago,
    claim_volume,
    event,
    pending_pod,
    pvc,
    roundtrip,
    running_pod,
    state,
    storageclass,
)

from aiops.diagnose.context import Context, Target
from aiops.diagnose.finding import Finding
from aiops.diagnose.registry import RULES, load_rules

load_rules()
PVC_MSG = "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims."


def run(st: Any, **target: Any) -> list[Finding]:
    return list(RULES["pvc-pending"].fn(Context(st, Target(**target))))


def texts(f: Finding) -> str:
    return "\n".join(f"{e.source}|{e.ref}|{e.text}" for e in f.evidence)


def prov_failed(claim: dict, message: str, **kw: Any) -> dict:
    return event(claim, "ProvisioningFailed", message, component="persistentvolume-controller",
                 **kw)


def test_registered() -> None:
    r = RULES["pvc-pending"]
    assert (r.family, r.severity) == ("storage", "critical")
    assert r.docs.startswith("https://kubernetes.io/docs/")


def test_missing_storage_class_k8s_ai_bench_scenario() -> None:
    claim = pvc("data", sc="fast-ssd", created=40)
    ev = prov_failed(claim, 'storageclass.storage.k8s.io "fast-ssd" not found', count=15,
                     first=40, last=1)
    pod = pending_pod("db-0", PVC_MSG, volumes=[claim_volume("data")])
    st = state(claim, ev, pod, storageclass("standard", default=True), storageclass("slow"))
    [f] = run(st)
    assert (f.rule, f.severity, f.kind, f.name, f.owner) == (
        "pvc-pending", "critical", "PersistentVolumeClaim", "data", "PersistentVolumeClaim/data")
    assert "StorageClass fast-ssd does not exist" in f.summary
    assert "used by Pod/db-0" in f.summary
    body = texts(f)
    assert 'ProvisioningFailed: storageclass.storage.k8s.io "fast-ssd" not found' in body
    assert "x15" in body
    assert "StorageClass fast-ssd not found; StorageClasses present: standard (default), " \
           "slow" in body
    assert "spec|spec.storageClassName|storageClassName: fast-ssd" in body
    assert "mounted by Pod/db-0 (Pending)" in body
    assert f.first_seen == ago(40)
    cmds = f.remediation.commands
    assert cmds[0] == "kubectl describe pvc -n shop data"
    assert "kubectl get storageclass" in cmds
    assert any("kubectl delete pvc -n shop data && kubectl apply -f data.yaml" in c for c in cmds)
    assert "standard" in f.remediation.summary
    a = f.remediation.action
    assert a.kind == "manual" and a.target["kind"] == "PersistentVolumeClaim"


def test_no_class_and_no_default_sets_the_only_class() -> None:
    claim = pvc("data", sc=None)
    ev = event(claim, "FailedBinding", "no persistent volumes available for this claim and no "
               "storage class is set", component="persistentvolume-controller")
    st = state(claim, ev, storageclass("standard"))
    [f] = run(st)
    assert f.severity == "critical"
    assert "no default StorageClass" in f.summary
    body = texts(f)
    assert "storageClassName: <unset>" in body
    assert "none is annotated storageclass.kubernetes.io/is-default-class=true" in body
    assert "FailedBinding: no persistent volumes available" in body
    a = f.remediation.action
    assert (a.kind, a.tier) == ("patch", "medium")
    assert a.patch == [{"op": "add", "path": "/spec/storageClassName", "value": "standard"}]
    patched = roundtrip(claim, a)
    assert patched["spec"]["storageClassName"] == "standard"


def test_wait_for_first_consumer_is_info() -> None:
    claim = pvc("data", sc="local")
    ev = event(claim, "WaitForFirstConsumer",
               "waiting for first consumer to be created before binding", type="Normal",
               component="persistentvolume-controller")
    st = state(claim, ev, storageclass("local", binding="WaitForFirstConsumer",
                                       provisioner="rancher.io/local-path"))
    [f] = run(st)
    assert f.severity == "info"
    assert "not a failure" in f.summary
    assert "waiting for first consumer to be created before binding" in texts(f)
    assert f.confidence < 0.8


def test_provisioner_error_on_existing_class() -> None:
    claim = pvc("data", sc="gp3")
    ev = prov_failed(claim, 'failed to provision volume with StorageClass "gp3": rpc error: '
                     "code = Internal desc = Could not create volume: UnauthorizedOperation")
    st = state(claim, ev, storageclass("gp3", provisioner="ebs.csi.aws.com"))
    [f] = run(st)
    assert f.severity == "critical"
    assert "provisioner ebs.csi.aws.com of StorageClass gp3 fails" in f.summary
    assert "UnauthorizedOperation" in texts(f)


def test_slow_external_provisioner_warns_only_when_old() -> None:
    for created, expected in ((30, ["warning"]), (2, [])):
        claim = pvc("data", sc="nfs", created=created)
        ev = event(claim, "ExternalProvisioning",
                   "Waiting for a volume to be created either by the external provisioner "
                   "'nfs.csi.k8s.io' or manually by the system administrator. If volume "
                   "creation is delayed, please verify that your external provisioner is "
                   "running and correctly registered.", type="Normal",
                   component="persistentvolume-controller")
        st = state(claim, ev, storageclass("nfs", provisioner="nfs.csi.k8s.io"))
        assert [f.severity for f in run(st)] == expected


def test_static_binding_without_pv() -> None:
    claim = pvc("data", sc="")
    [f] = run(state(claim, storageclass("standard", default=True)))
    assert f.severity == "warning"
    assert 'storageClassName ""' in f.summary


def test_bound_and_unrelated_claims_are_quiet() -> None:
    st = state(pvc("data", phase="Bound"), storageclass("standard", default=True),
               running_pod("db-0", volumes=[claim_volume("data")]))
    assert run(st) == []
    broken = pvc("data")
    broken["status"] = None
    assert run(state(broken)) == []


def test_pod_target_sees_its_claim_and_cluster_storage_classes() -> None:
    claim = pvc("data", sc="fast-ssd")
    pod = pending_pod("db-0", PVC_MSG, volumes=[claim_volume("data")])
    st = state(claim, pod, pvc("other", sc="fast-ssd"), storageclass("standard", default=True))
    found = run(st, namespace="shop", pod="db-0")
    assert [f.name for f in found] == ["data"]
    assert "standard (default)" in texts(found[0])
