"""node-not-ready and node-pressure."""

from __future__ import annotations

import json

import pytest
from _services_objects import (
    NS,
    Obj,
    at,
    container,
    deployment,
    event,
    fire,
    one,
    pod,
    replicaset,
    ts,
    world,
)

from aiops.diagnose import diagnose
from aiops.model import ClusterState


def condition(type_: str, status: str, reason: str, message: str, minutes: float = 600,
              heartbeat: float = 0.5) -> Obj:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": ts(heartbeat), "lastTransitionTime": ts(minutes)}


HEALTHY = [
    condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
              "kubelet has sufficient memory available"),
    condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    condition("PIDPressure", "False", "KubeletHasSufficientPID",
              "kubelet has sufficient PID available"),
    condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
]


def node(name: str = "minikube-m02", conds: list[Obj] | None = None,
         taints: list[Obj] | None = None, memory: str = "3912Mi") -> Obj:
    by_type = {c["type"]: c for c in HEALTHY}
    for c in conds or []:
        by_type[c["type"]] = c
    n: Obj = {"apiVersion": "v1", "kind": "Node",
              "metadata": {"name": name, "uid": f"uid-{name}", "creationTimestamp": ts(9000),
                           "labels": {"kubernetes.io/hostname": name}},
              "spec": {"podCIDR": "10.244.1.0/24"},
              "status": {"allocatable": {"cpu": "2", "memory": memory, "pods": "110",
                                         "ephemeral-storage": "17784760Ki"},
                         "capacity": {"cpu": "2", "memory": "4012Mi", "pods": "110"},
                         "conditions": list(by_type.values())}}
    if taints:
        n["spec"]["taints"] = taints
    return n


def workload_on(node_name: str, *, n: int = 2, memory: str = "1Gi",
                limit: str = "1536Mi") -> list[Obj]:
    dep = deployment("todo-worker", {"app": "todo-worker"},
                     [container("worker", requests={"cpu": "250m", "memory": memory},
                                limits={"memory": limit})], replicas=n)
    rs = replicaset(dep, "75f7fcb4fc")
    pods = [pod(f"todo-worker-75f7fcb4fc-{i:05d}", owner=rs, node=node_name,
                ip=f"10.244.1.{10 + i}") for i in range(n)]
    return [dep, rs, *pods]


# -- node-not-ready --------------------------------------------------------------------------

UNKNOWN = [condition(t, "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.",
                     minutes=12, heartbeat=13)
           for t in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")]
UNREACHABLE = [{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule",
                "timeAdded": ts(12)},
               {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute",
                "timeAdded": ts(11.9)}]


def not_ready_world(*extra: Obj) -> ClusterState:
    n = node(conds=UNKNOWN, taints=UNREACHABLE)
    ev = event(n, "NodeNotReady", "Node minikube-m02 status is now: NodeNotReady",
               type="Normal", first=12, last=12, component="node-controller")
    return world(n, ev, node("minikube"), *workload_on("minikube-m02"), *extra)


def test_node_not_ready_kubelet_stopped_posting() -> None:
    st = not_ready_world()
    f = one("node-not-ready", st)
    assert (f.rule, f.severity, f.kind, f.namespace, f.name, f.owner) == \
        ("node-not-ready", "critical", "Node", "", "minikube-m02", "Node/minikube-m02")
    assert f.summary.startswith("Node minikube-m02 is NotReady (Ready=Unknown, "
                                "NodeStatusUnknown): the kubelet stopped reporting")
    assert "2 pod(s) on it are affected" in f.summary
    c = f.evidence[0]
    assert c.text.startswith("Ready=Unknown reason=NodeStatusUnknown: Kubelet stopped posting "
                             "node status. (last heartbeat ")
    assert c.ref == "Node/minikube-m02 status.conditions[Ready]"
    t = [e.text for e in f.evidence]
    assert any(x.startswith("taint node.kubernetes.io/unreachable:NoExecute added ") for x in t)
    assert "NodeNotReady: Node minikube-m02 status is now: NodeNotReady" in t
    pods = next(e for e in f.evidence if e.ref == "pods with spec.nodeName=minikube-m02")
    assert "todo/todo-worker-75f7fcb4fc-00000 (Running, Ready=True)" in pods.text
    assert f.first_seen == at(12)
    assert f.remediation.commands[0] == "kubectl describe node minikube-m02"
    assert "kubectl get pods -A -o wide --field-selector spec.nodeName=minikube-m02" in \
        f.remediation.commands
    a = f.remediation.action
    assert a is not None and (a.kind, a.tier) == ("manual", "critical")
    assert a.target == {"apiVersion": "v1", "kind": "Node", "namespace": "",
                        "name": "minikube-m02"}
    assert fire("node-pressure", st) == []  # Unknown pressures are not pressure


@pytest.mark.parametrize("message,hint", [
    ("container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
     "message:Network plugin returns error: cni plugin not initialized", "CNI network plugin"),
    ("PLEG is not healthy: pleg was last seen active 3m0.5s ago; threshold is 3m0s", "PLEG"),
    ("container runtime is down", "container runtime is down"),
])
def test_node_not_ready_kubelet_reasons(message: str, hint: str) -> None:
    n = node(conds=[condition("Ready", "False", "KubeletNotReady", message, minutes=7)],
             taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}])
    f = one("node-not-ready", world(n))
    assert "(Ready=False, KubeletNotReady)" in f.summary and hint in f.summary
    assert "taint node.kubernetes.io/not-ready:NoSchedule" in [e.text for e in f.evidence]
    assert f.first_seen == at(7)


def test_node_not_ready_silent_on_ready_and_cordoned_nodes() -> None:
    cordoned = node("minikube-m03", taints=[{"key": "node.kubernetes.io/unschedulable",
                                             "effect": "NoSchedule"}])
    cordoned["spec"]["unschedulable"] = True
    no_conditions = node("minikube-m04")
    no_conditions["status"]["conditions"] = []
    assert fire("node-not-ready", world(node("minikube"), cordoned, no_conditions)) == []


def test_node_not_ready_is_in_scope_of_its_pods() -> None:
    st = not_ready_world()
    found = fire("node-not-ready", st, namespace=NS, pod="todo-worker-75f7fcb4fc-00000")
    assert [f.name for f in found] == ["minikube-m02"]
    assert [f.name for f in fire("node-not-ready", st, namespace=NS)] == ["minikube-m02"]
    assert fire("node-not-ready", st, namespace="empty") == []


def test_engine_puts_the_node_first() -> None:
    d = diagnose(not_ready_world())
    assert d.failures == []
    assert d.findings[0].rule == "node-not-ready"


# -- node-pressure ---------------------------------------------------------------------------

def memory_pressure_world() -> ClusterState:
    n = node("minikube", conds=[condition(
        "MemoryPressure", "True", "KubeletHasInsufficientMemory",
        "kubelet has insufficient memory available", minutes=20)],
        taints=[{"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule",
                 "timeAdded": ts(20)}])
    objs = workload_on("minikube", n=3)
    evicted = pod("todo-cache-6d8f-qq1", node="minikube", ready=False, phase="Failed",
                  labels={"app": "todo-cache"})
    evicted["status"].update({"reason": "Evicted", "message":
                              "The node was low on resource: memory. Threshold quantity: "
                              "100Mi, available: 91224Ki. Container cache was using 1.2Gi, "
                              "request is 0, has larger consumption of its request. "})
    besteffort = pod("debug-shell", ns="default", node="minikube",
                     containers=[container("shell", "busybox:1.36", port=None)])
    besteffort["status"]["qosClass"] = "BestEffort"
    evs = [event(n, "EvictionThresholdMet", "Attempting to reclaim memory", count=4, first=19,
                 last=2),
           event(n, "NodeHasInsufficientMemory", "Node minikube status is now: "
                 "NodeHasInsufficientMemory", type="Normal", first=20, last=20),
           event(evicted, "Evicted", "The node was low on resource: memory. Threshold "
                 "quantity: 100Mi, available: 91224Ki. Container cache was using 1.2Gi, "
                 "request is 0, has larger consumption of its request. ", first=18, last=18)]
    usage = {"apiVersion": "metrics.k8s.io/v1beta1", "kind": "NodeMetrics",
             "metadata": {"name": "minikube"}, "timestamp": ts(1), "window": "20s",
             "usage": {"cpu": "1430m", "memory": "3801Mi"}}
    return world(n, *objs, evicted, besteffort, *evs, usage)


def test_memory_pressure_quotes_condition_evictions_and_load() -> None:
    st = memory_pressure_world()
    f = one("node-pressure", st)
    assert (f.rule, f.severity, f.kind, f.name) == ("node-pressure", "critical", "Node",
                                                    "minikube")
    assert f.summary.startswith("Node minikube reports MemoryPressure (kubelet has "
                                "insufficient memory available); 1 pod(s) evicted")
    t = [e.text for e in f.evidence]
    assert t[0].startswith("MemoryPressure=True reason=KubeletHasInsufficientMemory: kubelet "
                           "has insufficient memory available")
    assert "EvictionThresholdMet: Attempting to reclaim memory" in t
    assert any(x.startswith("Evicted: The node was low on resource: memory.") for x in t)
    # 3 x 1Gi requested of 3912Mi allocatable; limits 3 x 1.5Gi
    assert "memory requested 3Gi (79%) of allocatable 3.82Gi; limits 4.5Gi" in t
    assert "memory in use 3.71Gi of allocatable 3.82Gi" in t
    assert "BestEffort pods (evicted first): default/debug-shell" in t
    assert f.first_seen == at(20)
    assert "kubectl top node minikube" in f.remediation.commands
    a = f.remediation.action
    assert a is not None and (a.kind, a.tier) == ("manual", "critical")


def test_disk_and_pid_pressure_and_network_unavailable() -> None:
    n = node("minikube", conds=[
        condition("DiskPressure", "True", "KubeletHasDiskPressure",
                  "kubelet has disk pressure", minutes=9),
        condition("PIDPressure", "True", "KubeletHasInsufficientPID",
                  "kubelet has insufficient PID available", minutes=8)])
    ev = event(n, "FreeDiskSpaceFailed", "Failed to garbage collect required amount of images. "
               "Attempted to free 2147483648 bytes, but only found 0 bytes eligible to free.",
               first=9)
    f = one("node-pressure", world(n, ev))
    assert f.severity == "warning"  # nothing evicted yet
    assert "DiskPressure and PIDPressure" in f.summary
    t = [e.text for e in f.evidence]
    assert any(x.startswith("FreeDiskSpaceFailed: Failed to garbage collect") for x in t)
    assert any(x.startswith("ephemeral-storage requested 0 (0%) of allocatable") for x in t)
    assert "0 pods running; allocatable pods: 110" in t
    assert any("crictl rmi --prune" in c for c in f.remediation.commands)
    assert f.first_seen == at(9)
    net = node("minikube", conds=[condition("NetworkUnavailable", "True", "NoRouteCreated",
                                            "Node created without a route", minutes=3)])
    f = one("node-pressure", world(net))
    assert f.severity == "critical"
    assert f.summary == ("Node minikube reports NetworkUnavailable (NoRouteCreated: Node "
                         "created without a route): pods on it have no working network.")


def test_pressure_silent_on_healthy_nodes_and_cleared_network() -> None:
    cleared = node("minikube-m02", conds=[condition(
        "NetworkUnavailable", "False", "RouteCreated", "RouteController created a route")])
    assert fire("node-pressure", world(node("minikube"), cleared)) == []


def test_malformed_nodes_do_not_raise() -> None:
    bad: list[Obj] = [
        {"kind": "Node", "metadata": {"name": "a"},
         "status": {"conditions": [None, {"type": "Ready", "status": "False"},
                                   {"type": "MemoryPressure", "status": "True"}],
                    "allocatable": {"memory": "lots"}},
         "spec": {"taints": "none"}},
        {"kind": "Node", "metadata": {"name": "b"}, "status": {"conditions": "x"}},
        {"kind": "Pod", "metadata": {"name": "p", "namespace": NS},
         "spec": {"nodeName": "a", "containers": [{"resources": {"requests": {
             "memory": ["1Gi"]}}}, None]}, "status": None},
    ]
    st = world(*bad)
    for rid in ("node-not-ready", "node-pressure"):
        for f in fire(rid, st):
            json.dumps(f.to_dict())


def test_demo_node_is_healthy() -> None:
    from aiops.sources import open_source

    st = open_source("demo")  # bundled with the package
    assert st.kind("Node"), "the bundled demo cluster has nodes"
    assert not {"node-not-ready", "node-pressure"} & diagnose(st).rules_fired()
