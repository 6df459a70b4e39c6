"""Malformed objects never crash a rule (property-based), and a rule that does
raise is isolated and reported while the others still run."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiops.diagnose import diagnose
from aiops.diagnose.registry import RULES, load_rules, rule
from aiops.model import ClusterState

load_rules()

junk = st.recursive(
    st.none() | st.booleans() | st.integers(-2**31, 2**31) | st.floats(allow_nan=True)
    | st.text(max_size=20) | st.binary(max_size=10).map(lambda b: b.decode("latin-1")),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=6,
)

POD = {
    "kind": "Pod", "apiVersion": "v1",
    "metadata": {"name": "web-7d9c-abcde", "namespace": "shop", "uid": "u1",
                 "labels": {"app": "web"},
                 "ownerReferences": [{"kind": "ReplicaSet", "name": "web-7d9c", "controller": True,
                                      "uid": "u2", "apiVersion": "apps/v1"}]},
    "spec": {"nodeName": "n1", "nodeSelector": {"disk": "ssd"},
             "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
                         {"name": "c", "configMap": {"name": "cfg"}}],
             "containers": [{"name": "app", "image": "web:1",
                             "resources": {"limits": {"memory": "128Mi"}},
                             "readinessProbe": {"httpGet": {"path": "/h", "port": 80}},
                             "env": [{"name": "K", "valueFrom": {"configMapKeyRef": {
                                 "name": "cfg", "key": "k"}}}]}],
             "initContainers": [{"name": "init", "image": "busybox"}]},
    "status": {"phase": "Running", "reason": "Evicted", "message": "low on memory",
               "conditions": [{"type": "PodScheduled", "status": "False",
                               "reason": "Unschedulable", "message": "0/1 nodes"}],
               "initContainerStatuses": [{"name": "init", "state": {"terminated": {
                   "exitCode": 1, "reason": "Error"}}, "restartCount": 3}],
               "containerStatuses": [{"name": "app", "restartCount": 5, "ready": False,
                                      "state": {"waiting": {"reason": "CrashLoopBackOff",
                                                            "message": "back-off"}},
                                      "lastState": {"terminated": {
                                          "exitCode": 137, "reason": "OOMKilled",
                                          "finishedAt": "2026-11-20T10:00:00Z"}}}]},
}
EVENT = {"kind": "Event", "apiVersion": "v1",
         "metadata": {"name": "e1", "namespace": "shop"}, "type": "Warning",
         "reason": "Failed", "message": 'Failed to pull image "web:2": not found',
         "count": 3, "firstTimestamp": "2026-11-20T10:00:00Z",
         "lastTimestamp": "2026-11-20T11:00:00Z",
         "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "web-7d9c-abcde",
                            "fieldPath": "spec.containers{app}"}}
OTHERS: list[dict[str, Any]] = [
    {"kind": "ReplicaSet", "apiVersion": "apps/v1",
     "metadata": {"name": "web-7d9c", "namespace": "shop",
                  "annotations": {"deployment.kubernetes.io/revision": "2"},
                  "ownerReferences": [{"kind": "Deployment", "name": "web",
                                       "controller": True}]},
     "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "app"}]}}},
     "status": {"conditions": [{"type": "ReplicaFailure", "status": "True",
                                "reason": "FailedCreate", "message": "exceeded quota"}]}},
    {"kind": "Deployment", "apiVersion": "apps/v1",
     "metadata": {"name": "web", "namespace": "shop"},
     "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
              "template": {"metadata": {"labels": {"app": "web"}},
                           "spec": {"containers": [{"name": "app", "image": "web:2"}]}}},
     "status": {"replicas": 2, "availableReplicas": 0, "unavailableReplicas": 2,
                "conditions": [{"type": "Progressing", "status": "False",
                                "reason": "ProgressDeadlineExceeded"}]}},
    {"kind": "Service", "apiVersion": "v1", "metadata": {"name": "web", "namespace": "shop"},
     "spec": {"selector": {"app": "other"}, "ports": [{"port": 80}]}},
    {"kind": "Endpoints", "apiVersion": "v1", "metadata": {"name": "web", "namespace": "shop"},
     "subsets": [{"notReadyAddresses": [{"ip": "10.0.0.1"}]}]},
    {"kind": "Ingress", "apiVersion": "networking.k8s.io/v1",
     "metadata": {"name": "web", "namespace": "shop"},
     "spec": {"rules": [{"http": {"paths": [{"backend": {"service": {
         "name": "missing", "port": {"number": 80}}}}]}}]}},
    {"kind": "Node", "apiVersion": "v1", "metadata": {"name": "n1", "labels": {}},
     "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]},
     "status": {"conditions": [{"type": "Ready", "status": "Unknown"},
                               {"type": "MemoryPressure", "status": "True"}],
                "allocatable": {"cpu": "2", "memory": "4Gi"}}},
    {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
     "metadata": {"name": "data", "namespace": "shop"},
     "spec": {"storageClassName": "fast"}, "status": {"phase": "Pending"}},
    {"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v2",
     "metadata": {"name": "web", "namespace": "shop"},
     "spec": {"maxReplicas": 2, "scaleTargetRef": {"kind": "Deployment", "name": "web"}},
     "status": {"currentReplicas": 2, "conditions": [
         {"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric"}]}},
    {"kind": "Job", "apiVersion": "batch/v1", "metadata": {"name": "j", "namespace": "shop",
     "ownerReferences": [{"kind": "CronJob", "name": "cj", "controller": True}]},
     "status": {"conditions": [{"type": "Failed", "status": "True",
                                "reason": "BackoffLimitExceeded"}]}},
    {"kind": "CronJob", "apiVersion": "batch/v1", "metadata": {"name": "cj", "namespace": "shop"},
     "status": {"lastScheduleTime": "2026-11-20T02:00:00Z"}},
    {"kind": "ResourceQuota", "apiVersion": "v1", "metadata": {"name": "q", "namespace": "shop"},
     "status": {"hard": {"limits.memory": "1Gi"}, "used": {"limits.memory": "1Gi"}}},
]
LOG = ("Traceback (most recent call last):\n  File \"app.py\", line 3\n"
       "ZeroDivisionError: division by zero\nError 111 connecting to redis:6379. "
       "Connection refused.\ncould not translate host name \"db\"\n"
       'pods is forbidden: User "system:serviceaccount:shop:default" cannot list '
       'resource "pods" in API group "" in the namespace "shop"\npanic: boom\n')


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(obj: Any, path: tuple, value: Any, delete: bool) -> Any:
    if not path:
        return value
    cur = obj
    for p in path[:-1]:
        cur = cur[p]
    if delete and isinstance(cur, dict):
        cur.pop(path[-1], None)
    else:
        cur[path[-1]] = value
    return obj


@st.composite
def broken_state(draw) -> ClusterState:
    objs = [copy.deepcopy(o) for o in (POD, EVENT, *OTHERS)]
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, len(objs) - 1))
        paths = [p for p in _paths(objs[i]) if p[:1] not in (("kind",),)]
        path = draw(st.sampled_from(paths))
        objs[i] = _mutate(objs[i], path, draw(junk), draw(st.booleans()))
    state = ClusterState(source="hypothesis")
    for o in objs:
        if isinstance(o, dict) and isinstance(o.get("kind"), str):
            md = o.get("metadata")
            if not isinstance(md, dict) or not isinstance(md.get("name", ""), str) \
                    or not isinstance(md.get("namespace", ""), str):
                o["metadata"] = {"name": "x", "namespace": "shop"}
            state.objects.setdefault(o["kind"], []).append(o)
    raw = draw(st.binary(max_size=200)).decode("utf-8", errors="replace")
    state.logs[("shop", "web-7d9c-abcde", "app")] = raw + LOG
    state.previous_logs[("shop", "web-7d9c-abcde", "app")] = LOG * draw(st.integers(0, 3))
    return state


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(broken_state())
def test_no_rule_raises_on_malformed_objects(state: ClusterState) -> None:
    diag = diagnose(state)
    assert diag.failures == [], diag.failures
    for f in diag.findings:
        f.to_dict()  # serialisable whatever the input


def test_a_raising_rule_is_isolated() -> None:
    @rule("test-explodes", family="test", title="t", severity="info", docs="https://x")
    def _boom(ctx):
        raise RuntimeError("kaboom")

    try:
        state = ClusterState(source="t", objects={"Pod": [copy.deepcopy(POD)]},
                             previous_logs={("shop", "web-7d9c-abcde", "app"): LOG})
        diag = diagnose(state)
        assert [f.rule for f in diag.failures] == ["test-explodes"]
        assert "kaboom" in diag.failures[0].error
        assert diag.findings, "the other rules still ran"
    finally:
        RULES.pop("test-explodes", None)
