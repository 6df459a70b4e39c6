"""HorizontalPodAutoscaler rules: an autoscaler that cannot see its metrics, and
one pinned at its ceiling while still over target.

The HPA controller reports both in `status.conditions` (autoscaling/v2; the v1
API keeps them as JSON in the `autoscaling.alpha.kubernetes.io/conditions`
annotation) and in Warning events on the HPA.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aiops.diagnose.actions import manual, patch_field, pod_spec_of, set_container_fields
from aiops.diagnose.context import (
    Context,
    Obj,
    earliest,
    event_evidence,
    event_first_seen,
    md,
    parse_time,
)
from aiops.diagnose.finding import Action, Evidence, Finding, Remediation
from aiops.diagnose.registry import rule
from aiops.diagnose.rules._common import as_dict as _dict
from aiops.diagnose.rules._common import as_int as _int
from aiops.diagnose.rules._common import as_list as _list
from aiops.quantity import format_bytes, format_cores, to_float

FAMILY = "autoscaling"
DOCS = "https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/"
DOCS_WALKTHROUGH = ("https://kubernetes.io/docs/tasks/run-application/"
                    "horizontal-pod-autoscale-walkthrough/")
V1_CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"
V1_CURRENT_METRICS = "autoscaling.alpha.kubernetes.io/current-metrics"

METRIC_REASONS = frozenset({
    "FailedGetResourceMetric", "FailedGetContainerResourceMetric", "FailedGetPodsMetric",
    "FailedGetObjectMetric", "FailedGetExternalMetric", "FailedComputeMetricsReplicas",
    "InvalidSelector", "AmbiguousSelector", "InvalidMetricSourceType", "SelectorRequired",
})
MISSING_REQUEST = re.compile(
    r"missing request for (?P<res>[\w./-]+)(?: in container (?P<container>[\w.-]+)"
    r"(?: of Pod (?P<pod>[\w.-]+))?)?")
NO_METRICS_API = re.compile(
    r"could not find the requested resource \(get pods\.metrics\.k8s\.io\)|"
    r"no metrics returned from resource metrics API|"
    r"unable to fetch metrics from resource metrics API|"
    r"the server is currently unable to handle the request \(get pods\.metrics\.k8s\.io\)|"
    r"unable to get metrics for resource|"
    r"did not receive metrics for (?:any ready pods|targeted pods)",
    re.IGNORECASE)
DEFAULT_REQUEST = {"cpu": "100m", "memory": "128Mi"}
MAX_RAISE = 2


def _s(v: Any) -> str:
    return v if isinstance(v, str) else ""


def conditions(hpa: Obj) -> dict[str, dict[str, Any]]:
    """HPA conditions by type, from v2 status or the v1 annotation."""
    out: dict[str, dict[str, Any]] = {}
    raw: list[Any] = _list(_dict(hpa.get("status")).get("conditions"))
    if not raw:
        text = _dict(md(hpa).get("annotations")).get(V1_CONDITIONS)
        if isinstance(text, str):
            try:
                raw = _list(json.loads(text))
            except ValueError:
                raw = []
    for c in raw:
        if isinstance(c, dict) and isinstance(c.get("type"), str):
            out[c["type"]] = c
    return out


def _cond_evidence(hpa: Obj, c: dict[str, Any]) -> Evidence:
    text = f"{c.get('type')}={c.get('status')} reason={c.get('reason')}: {c.get('message')}"
    where = "status.conditions" if _list(_dict(hpa.get("status")).get("conditions")) \
        else f"metadata.annotations[{V1_CONDITIONS}]"
    return Evidence("status", text, f"{_ref(hpa)} {where}[{c.get('type')}]",
                    parse_time(c.get("lastTransitionTime")))


def _ref(obj: Obj) -> str:
    m = md(obj)
    return f"{obj.get('kind')}/{m.get('namespace')}/{m.get('name')}"


def _target(ctx: Context, hpa: Obj) -> Obj | None:
    ref = _dict(_dict(hpa.get("spec")).get("scaleTargetRef"))
    kind, name = ref.get("kind"), ref.get("name")
    if isinstance(kind, str) and isinstance(name, str):
        return ctx.get(kind, _s(md(hpa).get("namespace")), name)
    return None


def _hpa_commands(ns: str, name: str) -> list[str]:
    return [f"kubectl describe hpa -n {ns} {name}",
            f"kubectl get hpa -n {ns} {name} -o yaml"]


# -- hpa-metrics-unavailable -------------------------------------------------------

def _known(reason: Any) -> bool:
    return isinstance(reason, str) and reason in METRIC_REASONS


def _messages(cond: dict[str, Any], events: list[Obj]) -> list[str]:
    out = [str(cond.get("message") or "")] if cond else []
    return out + [str(e.get("message") or e.get("note") or "") for e in events]


def _missing_requests(workload: Obj, resource: str) -> list[str]:
    """Containers of the pod template without a request for `resource`: a
    Resource metric needs one on every container of the pod."""
    missing = []
    for c in _list(pod_spec_of(workload).get("containers")):
        c = _dict(c)
        req = _dict(_dict(c.get("resources")).get("requests"))
        lim = _dict(_dict(c.get("resources")).get("limits"))
        if c.get("name") and req.get(resource) is None and lim.get(resource) is None:
            missing.append(str(c["name"]))
    return missing


def _observed(ctx: Context, workload: Obj, container: str, resource: str) -> float:
    """Highest usage PodMetrics shows for the container in the workload's pods."""
    ns = _s(md(workload).get("namespace"))
    best = math.nan
    owner = (workload.get("kind"), md(workload).get("name"))
    for pm in ctx.in_namespace("PodMetrics", ns):
        pod = ctx.get("Pod", ns, str(md(pm).get("name") or ""))
        if pod is None or ctx.owner(pod) != owner:
            continue
        for c in _list(pm.get("containers")):
            c = _dict(c)
            if c.get("name") == container:
                v = to_float(_dict(c.get("usage")).get(resource))
                if not math.isnan(v) and (math.isnan(best) or v > best):
                    best = v
    return best


def _request_value(ctx: Context, workload: Obj, container: str, resource: str) -> str:
    """A starting request: observed usage rounded up when PodMetrics has it."""
    used = _observed(ctx, workload, container, resource)
    if math.isnan(used) or used <= 0:
        return DEFAULT_REQUEST.get(resource, "100m")
    if resource == "cpu":
        return f"{max(50, math.ceil(used * 1000 / 50) * 50)}m"
    if resource == "memory":
        return f"{max(64, math.ceil(used / 2**20 / 64) * 64)}Mi"
    return DEFAULT_REQUEST.get(resource, "100m")


def _add_requests(ctx: Context, workload: Obj, containers: list[str],
                  resource: str) -> tuple[Action | None, dict[str, str]]:
    """One Action adding the missing requests to every listed container."""
    values = {c: _request_value(ctx, workload, c, resource) for c in containers}
    patch: list[dict[str, Any]] = []
    inverse: list[dict[str, Any]] = []
    validate: list[str] = []
    target: dict[str, str] = {}
    wref = f"{workload.get('kind')}/{md(workload).get('name')}"
    pairs = ", ".join(f"{c}={v}" for c, v in values.items())
    desc = (f"Add resources.requests.{resource} to {pairs} in {wref} so the HPA can "
            "compute utilization")
    for c, v in values.items():
        a = set_container_fields(workload, c, {("resources", "requests", resource): v},
                                 description=desc, tier="medium")
        if a is None:
            continue
        patch += a.patch
        inverse = a.inverse + inverse
        validate, target = a.validate, a.target
    if not patch:
        return None, values
    ns, name = md(workload).get("namespace"), md(workload).get("name")
    validate = [*validate, f"kubectl get hpa -n {ns} shows a current {resource} "
                           f"utilization for {name} instead of <unknown>"]
    return Action("patch", target, desc, "medium", patch, inverse, validate), values


@dataclass
class _Cause:
    kind: str  # missing-request | no-metrics-api | selector | other
    resource: str = "cpu"
    container: str | None = None


def _classify(messages: list[str], reason: str | None) -> _Cause:
    for msg in messages:
        m = MISSING_REQUEST.search(msg)
        if m:
            return _Cause("missing-request", m.group("res"), m.group("container"))
    for msg in messages:
        if NO_METRICS_API.search(msg):
            res = re.search(r"(?:for resource|get) (\w+)(?: utilization)?", msg)
            return _Cause("no-metrics-api", res.group(1) if res else "cpu")
    if reason in ("InvalidSelector", "AmbiguousSelector", "SelectorRequired"):
        return _Cause("selector")
    return _Cause("other")


@rule("hpa-metrics-unavailable", family=FAMILY, title="HPA cannot read its metrics",
      severity="warning", docs=DOCS, rank=20, supersedes=("hpa-at-max",))
def hpa_metrics_unavailable(ctx: Context) -> Iterator[Finding]:
    """Without metrics the HPA freezes the replica count; the message says whether
    a container lacks a request (fix the pod template) or the metrics API is absent
    (install metrics-server)."""
    for hpa in ctx.objects("HorizontalPodAutoscaler"):
        cond = conditions(hpa).get("ScalingActive", {})
        failing = cond.get("status") == "False" and _known(cond.get("reason"))
        events = [e for e in ctx.events(hpa, type="Warning") if _known(e.get("reason"))]
        if not failing and not events:
            continue
        yield _metrics_finding(ctx, hpa, cond if failing else {}, events)


def _metrics_finding(ctx: Context, hpa: Obj, cond: dict[str, Any],
                     events: list[Obj]) -> Finding:
    ns, name = _s(md(hpa).get("namespace")), _s(md(hpa).get("name"))
    reason = cond.get("reason") or (events[-1].get("reason") if events else None)
    cause = _classify(_messages(cond, events), reason)
    evidence = ([_cond_evidence(hpa, cond)] if cond else []) + \
        [event_evidence(e) for e in events[-3:]]
    commands = _hpa_commands(ns, name)
    workload = _target(ctx, hpa)
    wref = (f"{workload.get('kind')}/{md(workload).get('name')}" if workload
            else str(_dict(_dict(hpa.get("spec")).get("scaleTargetRef")).get("name")))
    action: Action | None = None
    if cause.kind == "missing-request":
        missing = _missing_requests(workload, cause.resource) if workload else []
        if workload is None and cause.container:
            missing = [cause.container]
        for c in missing:
            evidence.append(Evidence("spec", f"container {c} has no resources.requests."
                                             f"{cause.resource}",
                                     f"{wref} spec.template.spec.containers[{c}].resources"))
        values: dict[str, str] = {}
        if workload is not None and missing:
            action, values = _add_requests(ctx, workload, missing, cause.resource)
        who = ", ".join(missing) or cause.container or "a container"
        summary = (f"HPA {ns}/{name} cannot compute {cause.resource} utilization: container "
                   f"{who} of {wref} has no {cause.resource} request.")
        fix = (f"Set resources.requests.{cause.resource} on every container of {wref} "
               f"({', '.join(f'{c}: {v}' for c, v in values.items()) or who}); utilization "
               f"is measured against the request.")
        commands += [f"kubectl get {wref.lower()} -n {ns} -o jsonpath="
                     "'{range .spec.template.spec.containers[*]}{.name}: "
                     "{.resources.requests}{\"\\n\"}{end}'",
                     f"kubectl set resources {wref.lower()} -n {ns} "
                     + (f"-c {missing[0]} " if len(missing) == 1 else "")
                     + f"--requests={cause.resource}="
                     + (next(iter(values.values())) if values
                        else DEFAULT_REQUEST.get(cause.resource, "100m"))]
        confidence = 0.95
    elif cause.kind == "no-metrics-api":
        summary = (f"HPA {ns}/{name} gets no {cause.resource} metrics: the resource metrics "
                   f"API (metrics.k8s.io, served by metrics-server) is unavailable.")
        fix = ("Install or repair metrics-server so metrics.k8s.io serves pod metrics "
               "(on Minikube: minikube addons enable metrics-server).")
        commands += ["kubectl get apiservice v1beta1.metrics.k8s.io",
                     "kubectl get pods -n kube-system -l k8s-app=metrics-server",
                     f"kubectl top pods -n {ns}",
                     "kubectl apply -f https://github.com/kubernetes-sigs/metrics-server/"
                     "releases/latest/download/components.yaml"]
        action = manual(hpa, "Install metrics-server (cluster-wide APIService)", "critical")
        confidence = 0.9
    elif cause.kind == "selector":
        summary = (f"HPA {ns}/{name} is inactive ({reason}): it cannot select the pods "
                   f"of {wref}.")
        fix = (f"Make sure {wref} has a label selector and that no other HPA targets the "
               f"same pods.")
        commands += [f"kubectl get hpa -n {ns}", f"kubectl describe {wref.lower()} -n {ns}"]
        action = manual(hpa, f"Fix the selector of {wref} or remove the duplicate HPA")
        confidence = 0.85
    else:
        summary = f"HPA {ns}/{name} cannot read its metrics ({reason}); scaling is frozen."
        fix = "Read the condition message: the metric source named there is not served."
        commands += ["kubectl get apiservices | grep metrics",
                     f"kubectl get --raw /apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods"]
        confidence = 0.75
    first = earliest(parse_time(cond.get("lastTransitionTime")), event_first_seen(events))
    return ctx.finding("hpa-metrics-unavailable", hpa, summary, evidence,
                       Remediation(fix, tuple(commands), action),
                       confidence=confidence if cond else confidence - 0.1, first_seen=first)


# -- hpa-at-max -------------------------------------------------------------------------

@dataclass(frozen=True)
class _Metric:
    label: str  # "cpu utilization", "memory average value", "requests_per_second"
    current: float
    target: float
    shown_current: str
    shown_target: str

    @property
    def ratio(self) -> float:
        return self.current / self.target if self.target > 0 else 0.0


def _metric_key(m: dict[str, Any]) -> tuple[str, str, str]:
    t = str(m.get("type") or "")
    body = _dict(m.get(t[:1].lower() + t[1:] if t else ""))
    name = body.get("name") or _dict(body.get("metric")).get("name") or ""
    return t, str(name), str(body.get("container") or "")


def _value_pair(cur: dict[str, Any], tgt: dict[str, Any], resource: str
                ) -> tuple[float, float, str, str, str] | None:
    for field, unit in (("averageUtilization", "%"), ("averageValue", ""), ("value", "")):
        if tgt.get(field) is None or cur.get(field) is None:
            continue
        c, t = to_float(cur.get(field)), to_float(tgt.get(field))
        if math.isnan(c) or math.isnan(t):
            return None
        if unit:
            return c, t, f"{c:g}%", f"{t:g}%", "utilization"
        fmt = format_cores if resource == "cpu" else \
            format_bytes if resource == "memory" else (lambda x: f"{x:g}")
        return c, t, fmt(c), fmt(t), "value"
    return None


def metrics(hpa: Obj) -> list[_Metric]:
    """Each spec metric beside its current value (v2 fields, or the v1 CPU pair)."""
    spec, status = _dict(hpa.get("spec")), _dict(hpa.get("status"))
    out: list[_Metric] = []
    current = {_metric_key(_dict(m)): _dict(m) for m in _list(status.get("currentMetrics"))}
    for m in _list(spec.get("metrics")):
        m = _dict(m)
        key = _metric_key(m)
        t = key[0]
        body_key = t[:1].lower() + t[1:] if t else ""
        tgt = _dict(_dict(m.get(body_key)).get("target"))
        cur = _dict(_dict(current.get(key, {}).get(body_key)).get("current"))
        pair = _value_pair(cur, tgt, key[1])
        if pair:
            c, tv, sc, st, what = pair
            label = f"{key[1]} {what}" + (f" (container {key[2]})" if key[2] else "")
            out.append(_Metric(label, c, tv, sc, st))
    target = _int(spec.get("targetCPUUtilizationPercentage"))
    now = _int(status.get("currentCPUUtilizationPercentage"))
    if not out and target and now is not None:
        out.append(_Metric("cpu utilization", now, target, f"{now}%", f"{target}%"))
    return out


def _raise_by(current: int, maximum: int, ratio: float) -> int:
    """Replicas the HPA would want past the ceiling, capped at MAX_RAISE (tier low)."""
    wanted = math.ceil(current * ratio) if ratio > 0 else maximum + 1
    return max(1, min(MAX_RAISE, wanted - maximum))


@rule("hpa-at-max", family=FAMILY, title="HPA pinned at maxReplicas", severity="warning",
      docs=DOCS_WALKTHROUGH, rank=30)
def hpa_at_max(ctx: Context) -> Iterator[Finding]:
    """At maxReplicas and still over target, the workload is under-provisioned
    and latency or errors follow; raising the ceiling a little is a low-risk fix."""
    for hpa in ctx.objects("HorizontalPodAutoscaler"):
        spec, status = _dict(hpa.get("spec")), _dict(hpa.get("status"))
        maximum, current = _int(spec.get("maxReplicas")), _int(status.get("currentReplicas"))
        if maximum is None:
            continue
        limited = conditions(hpa).get("ScalingLimited", {})
        by_condition = limited.get("status") == "True" and limited.get("reason") == \
            "TooManyReplicas"
        at_max = current is not None and current >= maximum
        if not (by_condition or at_max):
            continue  # its metrics cannot make it a finding: not read (most HPAs)
        over = [m for m in metrics(hpa) if m.current > m.target]
        if not (by_condition or over):
            continue
        yield _at_max_finding(ctx, hpa, maximum, current, limited if by_condition else {},
                              over)


def _at_max_finding(ctx: Context, hpa: Obj, maximum: int, current: int | None,
                    limited: dict[str, Any], over: list[_Metric]) -> Finding:
    ns, name = _s(md(hpa).get("namespace")), _s(md(hpa).get("name"))
    status = _dict(hpa.get("status"))
    ratio = max((m.ratio for m in over), default=0.0)
    new_max = maximum + _raise_by(current or maximum, maximum, ratio)
    evidence = [_cond_evidence(hpa, limited)] if limited else []
    evidence += [Evidence("spec", f"maxReplicas: {maximum}", f"{_ref(hpa)} spec.maxReplicas"),
                 Evidence("status", f"currentReplicas: {current}",
                          f"{_ref(hpa)} status.currentReplicas")]
    evidence += [Evidence("status", f"{m.label}: {m.shown_current} (target {m.shown_target})",
                          f"{_ref(hpa)} status.currentMetrics") for m in over]
    rescale = ctx.events(hpa, reason="SuccessfulRescale")
    evidence += [event_evidence(e) for e in rescale[-1:]]
    load = f"; {over[0].label} is {over[0].shown_current} against a target of " \
           f"{over[0].shown_target}" if over else ""
    summary = (f"HPA {ns}/{name} is pinned at maxReplicas={maximum}{load}: the workload "
               f"needs more replicas than the HPA may create.")
    action = patch_field(
        hpa, ("spec", "maxReplicas"), new_max,
        description=f"Raise maxReplicas of HPA {ns}/{name} from {maximum} to {new_max}",
        tier="low",
        validate=[f"kubectl get hpa -n {ns} {name} shows REPLICAS above {maximum} and "
                  "utilization at or under target",
                  "the new pods schedule and become Ready (no Insufficient cpu/memory)"])
    patch = json.dumps({"spec": {"maxReplicas": new_max}})
    ref = _dict(_dict(hpa.get("spec")).get("scaleTargetRef"))
    commands = [*_hpa_commands(ns, name), f"kubectl top pods -n {ns}",
                f"kubectl describe {str(ref.get('kind', 'deployment')).lower()} -n {ns} "
                f"{ref.get('name', '')}".rstrip(),
                f"kubectl patch hpa {name} -n {ns} --type=merge -p '{patch}'"]
    fix = (f"Raise maxReplicas from {maximum} to {new_max} if the nodes have room, or "
           "make each replica handle more (profile, raise requests/limits); check that "
           "the target utilization is realistic.")
    first = earliest(parse_time(limited.get("lastTransitionTime")),
                     parse_time(status.get("lastScaleTime")) if not limited else None)
    return ctx.finding("hpa-at-max", hpa, summary, evidence,
                       Remediation(fix, tuple(commands), action),
                       confidence=0.9 if over else 0.75, first_seen=first)

