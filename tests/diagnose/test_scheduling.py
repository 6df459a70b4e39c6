"""Scheduling family: unschedulable-resources, unschedulable-node-selector,
unschedulable-taint, unschedulable-pvc (with pvc-pending from the storage family)."""

from __future__ import annotations

from typing import Any

import pytest
from _workloads_objects import (
    DEFAULT_TOLERATIONS,
    NOW,
    ago,
    claim_volume,
    container,
    deployment,
    event,
    node,
    owner,
    pending_pod,
    pvc,
    replicaset,
    roundtrip,
    running_pod,
    sched_event,
    state,
    storageclass,
)

from aiops.diagnose.context import Context
from aiops.diagnose.engine import diagnose
from aiops.diagnose.finding import Finding
from aiops.diagnose.registry import RULES, load_rules
from aiops.diagnose.rules import scheduling as rules

load_rules()
IDS = ("unschedulable-resources", "unschedulable-node-selector", "unschedulable-taint",
       "unschedulable-pvc")
POD = "embeddings-6b7f9c4d8-q2wzr"
RS = "embeddings-6b7f9c4d8"
PREEMPT_1 = (" preemption: 0/1 nodes are available: 1 No preemption victims found for "
             "incoming pod.")
MEM_MSG = "0/1 nodes are available: 1 Insufficient memory." + PREEMPT_1


def run(st: Any, rule_id: str, **target: Any) -> list[Finding]:
    from aiops.diagnose.context import Target

    ctx = Context(st, Target(**target)) if target else Context(st)
    return list(RULES[rule_id].fn(ctx))


def texts(f: Finding) -> str:
    return "\n".join(f"{e.source}|{e.ref}|{e.text}" for e in f.evidence)


def workload(containers: list[dict], **spec: Any) -> tuple[dict, dict]:
    dep = deployment("embeddings", replicas=1, available=0, containers=containers, **spec)
    rs = replicaset(dep, "6b7f9c4d8", revision=1, containers=containers, replicas=1)
    return dep, rs


def stuck(message: str, containers: list[dict] | None = None, *, events: bool = True,
          with_condition: bool = True, **spec: Any) -> tuple[dict, dict, dict, list[dict]]:
    cs = containers or [container("embeddings", "shop/embeddings:2.0",
                                  requests={"cpu": "500m", "memory": "6Gi"},
                                  limits={"memory": "6Gi"})]
    dep, rs = workload(cs, **spec)
    pod = pending_pod(POD, message, owners=owner("ReplicaSet", RS), containers=cs,
                      with_condition=with_condition, **spec)
    evs = [sched_event(pod, message)] if events else []
    return dep, rs, pod, evs


def test_all_ids_registered_in_family() -> None:
    for rid in IDS:
        assert RULES[rid].family == "scheduling"
        assert RULES[rid].docs.startswith("https://kubernetes.io/docs/")
    assert "unschedulable-resources" in RULES["unschedulable-pvc"].supersedes


# -- unschedulable-resources ------------------------------------------------------------------
def test_resources_request_larger_than_every_node_proposes_lowering_it() -> None:
    dep, rs, pod, evs = stuck(MEM_MSG)
    busy = running_pod("other-1", containers=[container(requests={"memory": "1Gi"})])
    st = state(dep, rs, pod, *evs, busy, node("minikube", memory="4Gi"))
    [f] = run(st, "unschedulable-resources")
    assert (f.rule, f.severity, f.kind, f.name, f.owner) == (
        "unschedulable-resources", "critical", "Pod", POD, "Deployment/embeddings")
    assert "Insufficient memory" in f.summary and "6Gi" in f.summary
    body = texts(f)
    assert "FailedScheduling: 0/1 nodes are available: 1 Insufficient memory" in body
    assert "x12" in body  # event series count quoted
    assert "pod requests memory=6Gi (containers: embeddings=6Gi)" in body
    assert "largest node allocatable memory=4Gi on minikube (3Gi not yet requested" in body
    assert "status.conditions[PodScheduled]" in body
    assert f.first_seen == ago(30)
    assert f.remediation.commands[0] == f"kubectl describe pod -n shop {POD}"
    assert "kubectl describe nodes" in f.remediation.commands
    a = f.remediation.action
    assert a is not None and (a.kind, a.tier) == ("patch", "medium")
    assert a.target == {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "shop",
                        "name": "embeddings"}
    patched = roundtrip(dep, a)
    c = patched["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"]["requests"]["memory"] == "3072Mi"  # fits the 3Gi left
    assert c["resources"]["requests"]["cpu"] == "500m"


def test_resources_fit_allocatable_but_not_free_is_manual_and_ignores_control_plane() -> None:
    msg = ("0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint "
           "{node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: 1 "
           "No preemption victims found for incoming pod, 2 Preemption is not helpful for "
           "scheduling.")
    cs = [container("embeddings", requests={"cpu": "2", "memory": "1Gi"})]
    dep, rs, pod, evs = stuck(msg, cs)
    cp = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
    hog = running_pod("hog-1", node_name="worker",
                      containers=[container(requests={"cpu": "3500m"})])
    st = state(dep, rs, pod, *evs, hog, node("worker", cpu="4"),
               node("cp1", taints=[cp]), node("cp2", taints=[cp]))
    [f] = run(st, "unschedulable-resources")
    assert "no node has 2 of cpu free (at most 500m on worker)" in f.summary
    a = f.remediation.action
    assert a is not None and a.kind == "manual" and a.patch == []
    assert run(st, "unschedulable-taint") == []  # control-plane taint is routine here


def test_too_many_pods_older_wording_without_condition() -> None:
    msg = "0/1 nodes are available: 1 Too many pods."
    dep, rs, pod, evs = stuck(msg, with_condition=False)
    st = state(dep, rs, pod, *evs, node(pods="110"))
    [f] = run(st, "unschedulable-resources")
    assert "Insufficient pods" in f.summary
    assert "largest node allocatable pods=110" in texts(f)
    assert f.remediation.action is not None and f.remediation.action.kind == "manual"


def test_gpu_request_is_never_lowered() -> None:
    msg = "0/1 nodes are available: 1 Insufficient nvidia.com/gpu." + PREEMPT_1
    cs = [container("trainer", limits={"nvidia.com/gpu": "2"},
                    requests={"nvidia.com/gpu": "2"})]
    dep, rs, pod, evs = stuck(msg, cs)
    st = state(dep, rs, pod, *evs, node())
    [f] = run(st, "unschedulable-resources")
    assert "nvidia.com/gpu" in f.summary
    assert "no node in the snapshot reports allocatable nvidia.com/gpu" in texts(f)
    assert f.remediation.action is not None and f.remediation.action.kind == "manual"


def test_resources_warning_when_workload_still_serves_and_bare_pod_is_manual() -> None:
    dep, rs, pod, evs = stuck(MEM_MSG)
    dep["status"]["availableReplicas"] = 2
    [f] = run(state(dep, rs, pod, *evs, node(memory="4Gi")), "unschedulable-resources")
    assert f.severity == "warning"
    bare = pending_pod("scratch", MEM_MSG, containers=[container(requests={"memory": "64Gi"})])
    [g] = run(state(bare, node(memory="4Gi")), "unschedulable-resources")
    assert g.owner == "Pod/scratch" and g.remediation.action.kind == "manual"


def test_pod_requests_counts_init_sidecars_and_overhead() -> None:
    pod = pending_pod("p", MEM_MSG, containers=[
        container("a", requests={"memory": "1Gi"}), container("b", limits={"memory": "1Gi"})],
        initContainers=[container("init", requests={"memory": "2Gi"}),
                        {**container("side", requests={"memory": "512Mi"}),
                         "restartPolicy": "Always"}],
        overhead={"memory": "128Mi"})
    req = rules.pod_requests(pod)
    assert req["memory"] == (2 * 1024 + 512 + 128) * 1024 * 1024
    # a lone init container bigger than the app containers sets the request
    pod["spec"]["initContainers"][0]["resources"]["requests"]["memory"] = "8Gi"
    assert rules.pod_requests(pod)["memory"] == (8 * 1024 + 128) * 1024 * 1024


@pytest.mark.parametrize("case", ["scheduled", "gated", "quiet", "running-old-event"])
def test_resources_near_misses(case: str) -> None:
    dep, rs, pod, evs = stuck(MEM_MSG)
    if case == "scheduled":
        pod["spec"]["nodeName"] = "minikube"
    elif case == "gated":
        pod["status"]["conditions"][0].update(reason="SchedulingGated",
                                              message="Scheduling is blocked due to "
                                                      "non-empty scheduling gates")
        evs = []
    elif case == "quiet":
        pod["status"]["conditions"] = []
        evs = []
    else:
        pod = running_pod(POD, owners=owner("ReplicaSet", RS))
    st = state(dep, rs, pod, *evs, node())
    for rid in IDS:
        assert run(st, rid) == [], rid


# -- unschedulable-node-selector ----------------------------------------------------------------
SEL_MSG = ("0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
           " preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.")


def test_node_selector_missing_label_patch_drops_it() -> None:
    dep, rs, pod, evs = stuck(SEL_MSG, nodeSelector={"disktype": "ssd"})
    st = state(dep, rs, pod, *evs, node("minikube"), node("m02"))
    [f] = run(st, "unschedulable-node-selector")
    assert (f.severity, f.owner) == ("critical", "Deployment/embeddings")
    assert "no node has the label disktype=ssd" in f.summary
    body = texts(f)
    assert "spec|spec.nodeSelector|nodeSelector: disktype=ssd" in body
    assert "no node has label disktype (nodes: minikube, m02)" in body
    assert "didn't match Pod's node affinity/selector" in body
    assert "kubectl get nodes --show-labels" in f.remediation.commands
    a = f.remediation.action
    assert (a.kind, a.tier) == ("patch", "medium")
    patched = roundtrip(dep, a)
    assert patched["spec"]["template"]["spec"]["nodeSelector"] == {}
    assert f.first_seen == ago(30)


def test_node_selector_older_wording_and_key_typo_is_corrected() -> None:
    msg = "0/2 nodes are available: 2 node(s) didn't match node selector."
    dep, rs, pod, evs = stuck(msg, nodeSelector={"kubernetes.io/hostnme": "minikube",
                                                 "kubernetes.io/os": "linux"})
    st = state(dep, rs, pod, *evs, node("minikube"), node("m02"))
    [f] = run(st, "unschedulable-node-selector")
    patched = roundtrip(dep, f.remediation.action)
    assert patched["spec"]["template"]["spec"]["nodeSelector"] == {
        "kubernetes.io/hostname": "minikube", "kubernetes.io/os": "linux"}
    assert "kubernetes.io/hostnme=minikube -> kubernetes.io/hostname=minikube" in \
        f.remediation.action.description


def test_node_selector_other_value_is_dropped_not_guessed() -> None:
    dep, rs, pod, evs = stuck(SEL_MSG, nodeSelector={"disktype": "ssd"})
    st = state(dep, rs, pod, *evs, node(labels={"disktype": "hdd"}))
    [f] = run(st, "unschedulable-node-selector")
    assert "node label disktype: minikube=hdd" in texts(f)
    patched = roundtrip(dep, f.remediation.action)
    assert patched["spec"]["template"]["spec"]["nodeSelector"] == {}


def test_node_affinity_term_that_matches_no_node_is_manual() -> None:
    aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "topology.kubernetes.io/zone", "operator": "In",
             "values": ["eu-west-1a"]}]}]}}}
    dep, rs, pod, evs = stuck(SEL_MSG, affinity=aff)
    st = state(dep, rs, pod, *evs, node(labels={"topology.kubernetes.io/zone": "eu-west-1b"}))
    [f] = run(st, "unschedulable-node-selector")
    assert "no node satisfies its required node affinity" in f.summary
    body = texts(f)
    assert "topology.kubernetes.io/zone In [eu-west-1a] (matches no node)" in body
    assert "node label topology.kubernetes.io/zone: minikube=eu-west-1b" in body
    assert f.remediation.action.kind == "manual"


def test_node_selector_not_fired_for_other_reasons() -> None:
    dep, rs, pod, evs = stuck(MEM_MSG, nodeSelector={"disktype": "ssd"})
    assert run(state(dep, rs, pod, *evs, node()), "unschedulable-node-selector") == []


# -- unschedulable-taint ------------------------------------------------------------------------
def test_taint_modern_wording_proposes_toleration() -> None:
    msg = ("0/2 nodes are available: 2 node(s) had untolerated taint {dedicated: gpu}."
           " preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.")
    dep, rs, pod, evs = stuck(msg, tolerations=DEFAULT_TOLERATIONS)
    t = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    st = state(dep, rs, pod, *evs, node("g1", taints=[t]), node("g2", taints=[t]))
    [f] = run(st, "unschedulable-taint")
    assert f.severity == "critical" and f.owner == "Deployment/embeddings"
    assert "untolerated taint {dedicated: gpu}" in f.summary
    body = texts(f)
    assert "node g1 taint dedicated=gpu:NoSchedule" in body
    assert "tolerations: node.kubernetes.io/not-ready:NoExecute (Exists, 300s)" in body
    assert "kubectl taint nodes g1 dedicated=gpu:NoSchedule-" in f.remediation.commands
    a = f.remediation.action
    assert (a.kind, a.tier) == ("patch", "medium")
    patched = roundtrip(dep, a)
    tols = patched["spec"]["template"]["spec"]["tolerations"]
    assert tols[-1] == {"key": "dedicated", "operator": "Equal", "value": "gpu",
                        "effect": "NoSchedule"}
    assert tols[:-1] == DEFAULT_TOLERATIONS


def test_taint_older_wording_control_plane_only() -> None:
    msg = ("0/1 nodes are available: 1 node(s) had taint {node-role.kubernetes.io/master: }, "
           "that the pod didn't tolerate.")
    dep, rs, pod, evs = stuck(msg)
    cp = {"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}
    [f] = run(state(dep, rs, pod, *evs, node(taints=[cp])), "unschedulable-taint")
    assert "{node-role.kubernetes.io/master: }" in f.summary
    assert "taint node-role.kubernetes.io/master:NoSchedule" in texts(f)
    assert f.remediation.action.kind == "manual"


def test_taint_cordoned_node_and_not_ready_node() -> None:
    msg = "0/1 nodes are available: 1 node(s) were unschedulable." + PREEMPT_1
    dep, rs, pod, evs = stuck(msg)
    [f] = run(state(dep, rs, pod, *evs, node(unschedulable=True)), "unschedulable-taint")
    assert "kubectl uncordon minikube" in f.remediation.commands
    assert f.remediation.action.tier == "critical"
    assert f.remediation.action.target["kind"] == "Node"
    msg2 = "0/1 nodes are available: 1 node(s) had untolerated taint " \
           "{node.kubernetes.io/not-ready: }." + PREEMPT_1
    dep, rs, pod, evs = stuck(msg2)
    nr = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
    [g] = run(state(dep, rs, pod, *evs, node(taints=[nr])), "unschedulable-taint")
    assert "repair the node" in g.remediation.summary
    assert "kubectl describe node minikube" in g.remediation.commands


# -- unschedulable-pvc ---------------------------------------------------------------------------
PVC_MSG = ("0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims."
           " preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.")


def test_pvc_unbound_names_claim_and_pvc_gets_pvc_pending() -> None:
    dep, rs, pod, evs = stuck(PVC_MSG, volumes=[claim_volume("data")])
    claim = pvc("data", sc="fast-ssd", created=31)
    failed = event(claim, "ProvisioningFailed",
                   'storageclass.storage.k8s.io "fast-ssd" not found', count=8, first=31,
                   component="persistentvolume-controller")
    st = state(dep, rs, pod, *evs, claim, failed, storageclass("standard", default=True),
               node())
    [f] = run(st, "unschedulable-pvc")
    assert (f.severity, f.owner) == ("critical", "Deployment/embeddings")
    assert "PersistentVolumeClaim data is not bound" in f.summary
    body = texts(f)
    assert "pod has unbound immediate PersistentVolumeClaims" in body
    assert "PersistentVolumeClaim/data status.phase|phase: Pending" in body
    assert 'storageclass.storage.k8s.io "fast-ssd" not found' in body
    assert f.first_seen == ago(31)
    assert "kubectl describe pvc -n shop data" in f.remediation.commands
    assert f.remediation.action.target["kind"] == "PersistentVolumeClaim"
    diag = diagnose(st)
    got = {(x.rule, x.kind, x.name) for x in diag.findings}
    assert ("unschedulable-pvc", "Pod", POD) in got
    assert ("pvc-pending", "PersistentVolumeClaim", "data") in got


def test_pvc_not_found_message() -> None:
    msg = '0/1 nodes are available: persistentvolumeclaim "cache" not found.' + PREEMPT_1
    dep, rs, pod, evs = stuck(msg, volumes=[claim_volume("cache")])
    [f] = run(state(dep, rs, pod, *evs, node(), pvc("other", phase="Bound")),
              "unschedulable-pvc")
    assert "PersistentVolumeClaim cache does not exist" in f.summary
    assert 'persistentvolumeclaim "cache" not found' in texts(f)


def test_pending_claim_supersedes_resources_in_engine() -> None:
    dep, rs, pod, evs = stuck(MEM_MSG, volumes=[claim_volume("data")])
    claim = pvc("data", sc="standard")
    failed = event(claim, "ProvisioningFailed", "failed to provision volume with StorageClass "
                   '"standard": rpc error: code = ResourceExhausted desc = quota exceeded',
                   component="persistentvolume-controller")
    st = state(dep, rs, pod, *evs, claim, failed, storageclass("standard"), node("minikube",
                                                                                 memory="4Gi"))
    assert run(st, "unschedulable-resources") and run(st, "unschedulable-pvc")
    rules_on_pod = [x.rule for x in diagnose(st).findings if x.name == POD]
    assert "unschedulable-pvc" in rules_on_pod
    assert "unschedulable-resources" not in rules_on_pod


def test_wait_for_first_consumer_claim_is_not_the_cause() -> None:
    dep, rs, pod, evs = stuck(MEM_MSG, volumes=[claim_volume("data")])
    claim = pvc("data", sc="local")
    wait = event(claim, "WaitForFirstConsumer",
                 "waiting for first consumer to be created before binding", type="Normal",
                 component="persistentvolume-controller")
    st = state(dep, rs, pod, *evs, claim, wait, node(memory="4Gi"),
               storageclass("local", binding="WaitForFirstConsumer"))
    assert run(st, "unschedulable-pvc") == []
    assert [f.rule for f in run(st, "unschedulable-resources")] == ["unschedulable-resources"]


# -- engine: grouping and targets ----------------------------------------------------------------
def test_two_pending_pods_of_one_deployment_fold_into_one_finding() -> None:
    dep, rs, pod, evs = stuck(MEM_MSG)
    dep["spec"]["replicas"] = 2
    pod2 = pending_pod(f"{RS}-b7kxm", MEM_MSG, owners=owner("ReplicaSet", RS),
                       containers=pod["spec"]["containers"])
    st = state(dep, rs, pod, pod2, *evs, sched_event(pod2, MEM_MSG), node(memory="4Gi"))
    found = [f for f in diagnose(st).findings if f.rule == "unschedulable-resources"]
    assert len(found) == 1
    assert (found[0].kind, found[0].name) == ("Deployment", "embeddings")
    assert found[0].pods == sorted([POD, f"{RS}-b7kxm"])


def test_pod_and_namespace_targets_still_see_every_node() -> None:
    dep, rs, pod, evs = stuck(MEM_MSG)
    st = state(dep, rs, pod, *evs, node("minikube", memory="4Gi"))
    for target in ({"namespace": "shop", "pod": POD}, {"namespace": "shop"},
                   {"namespace": "shop", "workload": ("Deployment", "embeddings")}):
        [f] = run(st, "unschedulable-resources", **target)
        assert "on minikube" in texts(f), target


def test_demo_cluster_scheduling_problems() -> None:
    from aiops.sources import open_source

    st = open_source("demo")  # bundled with the package
    assert st.kind("Pod"), "the bundled demo cluster has pods"
    diag = diagnose(st, namespace="todo")
    hits = [f for f in diag.findings if f.rule == "unschedulable-resources"]
    assert any(f.owner == "Deployment/todo-embeddings" for f in hits), \
        [(f.rule, f.owner) for f in diag.findings]
    f = next(f for f in hits if f.owner == "Deployment/todo-embeddings")
    assert "Insufficient memory" in f.summary
    assert f.first_seen is not None and f.first_seen <= NOW.replace(year=2100)
