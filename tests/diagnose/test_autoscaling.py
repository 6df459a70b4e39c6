"""hpa-metrics-unavailable and hpa-at-max."""

from __future__ import annotations

import json

import pytest
from _services_objects import (
    NS,
    Obj,
    apply_patch,
    assert_reversible,
    at,
    container,
    deployment,
    event,
    fire,
    meta,
    one,
    pod,
    replicaset,
    ts,
    world,
)

from aiops.diagnose import diagnose
from aiops.model import ClusterState

MISSING = ("failed to get cpu utilization: missing request for cpu in container api of Pod "
           "todo-backend-6c8d4-aaaaa")
NO_API = ("unable to get metrics for resource cpu: unable to fetch metrics from resource "
          "metrics API: the server could not find the requested resource (get "
          "pods.metrics.k8s.io)")


def cond(type_: str, status: str, reason: str, message: str, minutes: float = 45) -> Obj:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": ts(minutes)}


def hpa(*conds: Obj, current: int = 2, maximum: int = 5, util: int | None = 40,
        target: int = 70, metrics: list[Obj] | None = None,
        current_metrics: list[Obj] | None = None) -> Obj:
    cm = current_metrics
    if cm is None:
        cm = [] if util is None else [{"type": "Resource", "resource": {
            "name": "cpu", "current": {"averageUtilization": util, "averageValue": "41m"}}}]
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": meta("todo-backend"),
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": "todo-backend"},
                     "minReplicas": 2, "maxReplicas": maximum,
                     "metrics": metrics or [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "Utilization",
                                                   "averageUtilization": target}}}]},
            "status": {"currentReplicas": current, "desiredReplicas": current,
                       "lastScaleTime": ts(120), "currentMetrics": cm,
                       "conditions": [
                           cond("AbleToScale", "True", "ReadyForNewScale",
                                "recommended size matches current size", 300),
                           *conds]}}


def backend_world(h: Obj, *extra: Obj, sidecar_request: bool = True) -> ClusterState:
    dep = deployment("todo-backend", {"app": "todo-backend"}, [
        container("api", port=8080),
        container("metrics", "prom/statsd-exporter:v0.26.0", port=9102,
                  requests={"cpu": "10m"} if sidecar_request else None)], replicas=2)
    rs = replicaset(dep, "6c8d4")
    p = pod("todo-backend-6c8d4-aaaaa", owner=rs)
    return world(dep, rs, p, h, *extra)


# -- hpa-metrics-unavailable ---------------------------------------------------------------

def missing_request_world(**kw: object) -> ClusterState:
    h = hpa(cond("ScalingActive", "False", "FailedGetResourceMetric",
                 f"the HPA was unable to compute the replica count: {MISSING}"), util=None)
    evs = [event(h, "FailedGetResourceMetric", MISSING, count=181, first=44,
                 component="horizontal-pod-autoscaler"),
           event(h, "FailedComputeMetricsReplicas", "invalid metrics (1 invalid out of 1), "
                 f"first error is: failed to get cpu resource metric value: {MISSING}",
                 count=181, first=44, component="horizontal-pod-autoscaler")]
    return backend_world(h, *evs, **kw)  # type: ignore[arg-type]


def test_missing_cpu_request_adds_one_with_exact_inverse() -> None:
    st = missing_request_world()
    f = one("hpa-metrics-unavailable", st)
    assert (f.rule, f.severity, f.kind, f.name, f.owner) == \
        ("hpa-metrics-unavailable", "warning", "HorizontalPodAutoscaler", "todo-backend",
         "HorizontalPodAutoscaler/todo-backend")
    assert f.summary == ("HPA todo/todo-backend cannot compute cpu utilization: container api "
                         "of Deployment/todo-backend has no cpu request.")
    c = f.evidence[0]
    assert c.source == "status"
    assert c.text == ("ScalingActive=False reason=FailedGetResourceMetric: the HPA was unable "
                      f"to compute the replica count: {MISSING}")
    assert c.ref.endswith("status.conditions[ScalingActive]")
    ev = [e for e in f.evidence if e.source == "event"]
    assert ev[0].text == f"FailedGetResourceMetric: {MISSING}"
    assert "x181" in ev[0].ref
    assert "container api has no resources.requests.cpu" in [e.text for e in f.evidence]
    assert f.first_seen == at(45)
    assert f.confidence >= 0.9
    assert f.remediation.commands[0] == "kubectl describe hpa -n todo todo-backend"
    assert "kubectl set resources deployment/todo-backend -n todo -c api --requests=cpu=100m" \
        in f.remediation.commands
    a = f.remediation.action
    assert a is not None and (a.kind, a.tier) == ("patch", "medium")
    assert a.target == {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": NS,
                        "name": "todo-backend"}
    dep = st.get("Deployment", NS, "todo-backend")
    patched = assert_reversible(a, dep)
    assert patched["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] == \
        {"cpu": "100m"}
    assert patched["spec"]["template"]["spec"]["containers"][1] == \
        dep["spec"]["template"]["spec"]["containers"][1]


def test_missing_request_on_every_container_and_observed_usage() -> None:
    st = missing_request_world(sidecar_request=False)
    st.objects["PodMetrics"] = [{"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
                                 "metadata": meta("todo-backend-6c8d4-aaaaa"),
                                 "timestamp": ts(1), "window": "30s",
                                 "containers": [{"name": "api", "usage": {
                                     "cpu": "231467012n", "memory": "120Mi"}}]}]
    f = one("hpa-metrics-unavailable", st)
    assert "container api, metrics of Deployment/todo-backend" in f.summary
    a = f.remediation.action
    assert a is not None
    patched = assert_reversible(a, st.get("Deployment", NS, "todo-backend"))
    cs = patched["spec"]["template"]["spec"]["containers"]
    assert cs[0]["resources"]["requests"] == {"cpu": "250m"}  # 231m observed, rounded up
    assert cs[1]["resources"]["requests"] == {"cpu": "100m"}  # no usage known: default


def test_older_missing_request_wording_without_container() -> None:
    h = hpa(cond("ScalingActive", "False", "FailedGetResourceMetric",
                 "the HPA was unable to compute the replica count: failed to get cpu "
                 "utilization: missing request for cpu"), util=None)
    f = one("hpa-metrics-unavailable", backend_world(h))
    assert "container api of Deployment/todo-backend has no cpu request" in f.summary


def test_metrics_api_missing_is_a_cluster_wide_manual_fix() -> None:
    h = hpa(cond("ScalingActive", "False", "FailedGetResourceMetric",
                 f"the HPA was unable to compute the replica count: {NO_API}"), util=None)
    f = one("hpa-metrics-unavailable", backend_world(h))
    assert "resource metrics API (metrics.k8s.io, served by metrics-server) is unavailable" \
        in f.summary
    assert "kubectl get apiservice v1beta1.metrics.k8s.io" in f.remediation.commands
    a = f.remediation.action
    assert a is not None and (a.kind, a.tier) == ("manual", "critical")


def test_events_alone_are_enough_with_lower_confidence() -> None:
    h = hpa(cond("ScalingActive", "True", "ValidMetricFound", "the HPA was able to "
                 "successfully calculate a replica count from cpu resource utilization"))
    ev = event(h, "FailedGetResourceMetric", NO_API, count=3, first=12,
               component="horizontal-pod-autoscaler")
    f = one("hpa-metrics-unavailable", backend_world(h, ev))
    assert f.confidence < 0.9
    assert f.first_seen == at(12)
    assert f.evidence[0].source == "event"


def test_v1_hpa_conditions_from_the_annotation() -> None:
    conds = [cond("ScalingActive", "False", "FailedGetResourceMetric",
                  f"the HPA was unable to compute the replica count: {MISSING}")]
    h: Obj = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
              "metadata": meta("todo-backend", annotations={
                  "autoscaling.alpha.kubernetes.io/conditions": json.dumps(conds)}),
              "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "todo-backend",
                                          "apiVersion": "apps/v1"},
                       "minReplicas": 1, "maxReplicas": 4,
                       "targetCPUUtilizationPercentage": 60},
              "status": {"currentReplicas": 2, "desiredReplicas": 2}}
    f = one("hpa-metrics-unavailable", backend_world(h))
    assert f.evidence[0].ref.endswith(
        "metadata.annotations[autoscaling.alpha.kubernetes.io/conditions][ScalingActive]")
    assert f.remediation.action is not None


def test_invalid_selector() -> None:
    h = hpa(cond("ScalingActive", "False", "InvalidSelector",
                 "the HPA target's scale is missing a selector"))
    f = one("hpa-metrics-unavailable", backend_world(h))
    assert "(InvalidSelector)" in f.summary
    assert f.remediation.action is not None and f.remediation.action.kind == "manual"


@pytest.mark.parametrize("c", [
    cond("ScalingActive", "True", "ValidMetricFound", "the HPA was able to successfully "
         "calculate a replica count from cpu resource utilization (percentage of request)"),
    cond("ScalingActive", "False", "ScalingDisabled", "scaling is disabled since the replica "
         "count of the target is zero"),
])
def test_metrics_rule_silent_when_scaling_works_or_is_disabled(c: Obj) -> None:
    assert fire("hpa-metrics-unavailable", backend_world(hpa(c))) == []


# -- hpa-at-max ---------------------------------------------------------------------------

TOO_MANY = cond("ScalingLimited", "True", "TooManyReplicas",
                "the desired replica count is more than the maximum replica count", 30)


def test_at_max_raises_max_replicas_by_at_most_two() -> None:
    h = hpa(cond("ScalingActive", "True", "ValidMetricFound", "ok"), TOO_MANY,
            current=5, maximum=5, util=180)
    rescale = event(h, "SuccessfulRescale", "New size: 5; reason: cpu resource utilization "
                    "(percentage of request) above target", type="Normal", first=31, last=31,
                    component="horizontal-pod-autoscaler")
    st = backend_world(h, rescale)
    f = one("hpa-at-max", st)
    assert (f.severity, f.kind, f.name) == ("warning", "HorizontalPodAutoscaler",
                                            "todo-backend")
    assert f.summary == ("HPA todo/todo-backend is pinned at maxReplicas=5; cpu utilization is "
                         "180% against a target of 70%: the workload needs more replicas "
                         "than the HPA may create.")
    t = [e.text for e in f.evidence]
    assert t[0] == ("ScalingLimited=True reason=TooManyReplicas: the desired replica count is "
                    "more than the maximum replica count")
    assert "maxReplicas: 5" in t and "currentReplicas: 5" in t
    assert "cpu utilization: 180% (target 70%)" in t
    assert any(x.startswith("SuccessfulRescale: New size: 5") for x in t)
    assert f.first_seen == at(30)
    a = f.remediation.action
    assert a is not None and (a.kind, a.tier) == ("patch", "low")
    assert a.target == {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                        "namespace": NS, "name": "todo-backend"}
    assert a.patch == [{"op": "replace", "path": "/spec/maxReplicas", "value": 7}]
    assert a.inverse == [{"op": "replace", "path": "/spec/maxReplicas", "value": 5}]
    assert_reversible(a, h)
    assert "kubectl patch hpa todo-backend -n todo --type=merge -p " \
           "'{\"spec\": {\"maxReplicas\": 7}}'" in f.remediation.commands


def test_at_max_by_metrics_without_condition_raises_by_what_is_needed() -> None:
    h = hpa(current=5, maximum=5, util=75)  # ceil(5 * 75 / 70) = 6
    f = one("hpa-at-max", backend_world(h))
    assert f.remediation.action is not None
    assert apply_patch(h, f.remediation.action.patch)["spec"]["maxReplicas"] == 6
    assert f.first_seen == at(120)  # lastScaleTime


def test_at_max_average_value_metrics_and_v1() -> None:
    h = hpa(current=3, maximum=3, metrics=[{"type": "Resource", "resource": {
        "name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}}],
        current_metrics=[{"type": "Resource", "resource": {
            "name": "memory", "current": {"averageValue": "900Mi"}}}])
    f = one("hpa-at-max", backend_world(h))
    assert "memory value: 900Mi (target 500Mi)" in [e.text for e in f.evidence]
    v1: Obj = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
               "metadata": meta("todo-backend"),
               "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "todo-backend"},
                        "maxReplicas": 4, "targetCPUUtilizationPercentage": 50},
               "status": {"currentReplicas": 4, "desiredReplicas": 4,
                          "currentCPUUtilizationPercentage": 120}}
    f = one("hpa-at-max", backend_world(v1))
    assert "cpu utilization is 120% against a target of 50%" in f.summary
    assert f.remediation.action is not None
    assert f.remediation.action.target["apiVersion"] == "autoscaling/v1"


@pytest.mark.parametrize("h", [
    hpa(current=5, maximum=5, util=40),  # at max, under target: fine
    hpa(cond("ScalingLimited", "True", "TooFewReplicas",
             "the desired replica count is less than the minimum replica count"),
        current=2, maximum=5, util=10),  # at min
    hpa(current=3, maximum=5, util=150),  # over target but still scaling up
    hpa(cond("ScalingLimited", "False", "DesiredWithinRange",
             "the desired count is within the acceptable range"), current=5, maximum=5,
        util=None),
])
def test_at_max_silent_on_near_misses(h: Obj) -> None:
    assert fire("hpa-at-max", backend_world(h)) == []


def test_metrics_unavailable_supersedes_at_max() -> None:
    h = hpa(cond("ScalingActive", "False", "FailedGetResourceMetric",
                 f"the HPA was unable to compute the replica count: {MISSING}"), TOO_MANY,
            current=5, maximum=5, util=None)
    st = backend_world(h)
    assert fire("hpa-at-max", st)
    rules = [f.rule for f in diagnose(st, namespace=NS).findings
             if f.kind == "HorizontalPodAutoscaler"]
    assert rules == ["hpa-metrics-unavailable"]


def test_malformed_hpas_do_not_raise() -> None:
    bad: list[Obj] = [
        {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "a", "namespace": NS,
                                                         "annotations": {
            "autoscaling.alpha.kubernetes.io/conditions": "{not json"}},
         "spec": {"maxReplicas": "five", "metrics": [None, {"type": 3}]},
         "status": {"currentReplicas": None, "conditions": "x"}},
        {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "b", "namespace": NS},
         "spec": {"maxReplicas": 2, "scaleTargetRef": {"kind": ["x"], "name": {}},
                  "metrics": [{"type": "Resource", "resource": {
                      "name": "cpu", "target": {"averageUtilization": "70%"}}}]},
         "status": {"currentReplicas": 2, "currentMetrics": [{"type": "Resource", "resource": {
             "name": "cpu", "current": {"averageUtilization": {}}}}],
             "conditions": [{"type": "ScalingActive", "status": "False",
                             "reason": ["FailedGetResourceMetric"]},
                            {"type": "ScalingLimited", "status": "True",
                             "reason": "TooManyReplicas"}]}},
    ]
    st = world(*bad)
    for rid in ("hpa-metrics-unavailable", "hpa-at-max"):
        for f in fire(rid, st):
            json.dumps(f.to_dict())


# -- demo cluster --------------------------------------------------------------------------

def test_demo_hpa_at_its_minimum_is_not_a_finding() -> None:
    from aiops.sources import open_source

    st = open_source("demo")  # bundled with the package
    assert st.kind("HorizontalPodAutoscaler"), "the bundled demo cluster has HPA"
    d = diagnose(st, namespace="todo")
    assert not {"hpa-at-max", "hpa-metrics-unavailable"} & d.rules_fired()
