"""Resource requests and limits: what the scheduler reserves for a container and
how much it may take from its neighbours.

A container without requests is scheduled as if it needed nothing (BestEffort
pods are evicted first under pressure); one without a memory limit can take a
node's memory from every other pod on it. CPU limits are different: exceeding
one only throttles, and many teams deliberately run without them (throttling
adds latency while idle cores sit unused), so that check is info only.

Checked: the app containers and native sidecars (init containers with
restartPolicy Always, which run beside them). Plain init containers are not
checked (as in Polaris): they run one at a time before the app, and the
scheduler reserves the larger of theirs and the app's requests. Ephemeral debug
containers cannot have resources. A LimitRange of the namespace that defaults a
value satisfies the check, since admission fills it into every pod.

Fixes take the sibling value when it is set (request = limit, or limit =
request) and otherwise a conservative default (DEFAULTS below, which keep
request <= limit); tune them from observed usage (`aiops rightsizing`).
"""

from __future__ import annotations

import math
from typing import Any

from aiops.quantity import to_float
from aiops.security.check import Refs, Violation
from aiops.security.checks.network import memo
from aiops.security.fixes import container_patch
from aiops.security.registry import check
from aiops.security.subjects import AuditContext, Container, namespace_of

FAMILY = "resources"
# (resource, "requests" | "limits") -> value used when the sibling is not set
DEFAULTS: dict[tuple[str, str], str] = {
    ("cpu", "requests"): "100m", ("cpu", "limits"): "1",
    ("memory", "requests"): "128Mi", ("memory", "limits"): "512Mi",
}
SIBLING = {"requests": "limits", "limits": "requests"}


def runs_with_app(c: Container) -> bool:
    """App containers and native sidecars: what the resource checks look at."""
    return c.section == "containers" or (
        c.section == "initContainers" and c.spec.get("restartPolicy") == "Always")


def value(c: Container, kind: str, resource: str) -> Any:
    """resources.<kind>.<resource> of a container, None when missing, null or empty."""
    section = c.resources.get(kind)
    v = section.get(resource) if isinstance(section, dict) else None
    return None if v is None or v == "" else v


def _limit_range_defaults(ctx: AuditContext) -> dict[str, set[tuple[str, str]]]:
    """namespace -> the (resource, kind) pairs its LimitRanges fill into containers.
    A `default` (limit) alone also sets the request, as admission does."""
    def build() -> dict[str, set[tuple[str, str]]]:
        out: dict[str, set[tuple[str, str]]] = {}
        for lr in ctx.objects("LimitRange"):
            spec = lr.get("spec") if isinstance(lr.get("spec"), dict) else {}
            items = spec.get("limits") if isinstance(spec.get("limits"), list) else []
            got = out.setdefault(namespace_of(lr), set())
            for item in items:
                if not isinstance(item, dict) or item.get("type") != "Container":
                    continue
                for field, kinds in (("default", ("limits", "requests")),
                                     ("defaultRequest", ("requests",))):
                    vals = item.get(field)
                    for res in vals if isinstance(vals, dict) else {}:
                        got.update((res, k) for k in kinds)
        return out
    return memo(ctx, "resources.limit_range_defaults", build)


def missing(c: Container, ctx: AuditContext, kind: str, resource: str) -> bool:
    """Whether the container runs without resources.<kind>.<resource>."""
    if value(c, kind, resource) is not None:
        return False
    return (resource, kind) not in _limit_range_defaults(ctx).get(c.workload.namespace, set())


def proposed(c: Container, kind: str, resource: str) -> tuple[Any, str]:
    """The value a fix sets, and where it comes from."""
    sibling = value(c, SIBLING[kind], resource)
    q = to_float(sibling)
    if sibling is not None and not math.isnan(q) and q > 0:
        return sibling, f"its {SIBLING[kind][:-1]} {sibling}"
    default = DEFAULTS[(resource, kind)]
    return default, f"the conservative default {default}; tune it from observed usage"


def _check(c: Container, ctx: AuditContext, kind: str, resource: str,
           risk: str) -> Violation | None:
    if not runs_with_app(c) or not missing(c, ctx, kind, resource):
        return None
    v, source = proposed(c, kind, resource)
    word = kind[:-1]  # request | limit
    return Violation(
        f"container {c.name} has no {resource} {word} (resources.{kind}.{resource} is not set)",
        container_patch(c, {("resources", kind, resource): v},
                        description=f"set the {resource} {word} of container {c.name} to {v} "
                                    f"({source}); {risk}"))


@check("resources-cpu-request-missing", family=FAMILY, severity="warning",
       category="reliability", target="container", title="CPU request missing",
       rationale="Without a CPU request the scheduler places the pod as if it needed no CPU, "
                 "and under contention it gets almost none.",
       refs=Refs(checkov=("CKV_K8S_10",), polaris="cpuRequestsMissing",
                 kube_score="container-resources"))
def cpu_request(c: Container, ctx: AuditContext) -> Violation | None:
    return _check(c, ctx, "requests", "cpu",
                  "the pods restart, and may stay Pending if no node has that much CPU free")


@check("resources-cpu-limit-missing", family=FAMILY, severity="info",
       category="efficiency", target="container", title="CPU limit missing",
       rationale="Without a CPU limit one container can use every idle core of its node; many "
                 "teams choose that on purpose, since a limit throttles even when cores are "
                 "idle, so this is information, not a warning.",
       refs=Refs(checkov=("CKV_K8S_11",), polaris="cpuLimitsMissing",
                 kube_score="container-resources"))
def cpu_limit(c: Container, ctx: AuditContext) -> Violation | None:
    return _check(c, ctx, "limits", "cpu",
                  "the pods restart and are throttled above the limit (latency); skip this "
                  "if you run without CPU limits deliberately")


@check("resources-memory-request-missing", family=FAMILY, severity="warning",
       category="reliability", target="container", title="Memory request missing",
       rationale="Without a memory request the scheduler can overcommit the node, and the pod "
                 "is among the first evicted under memory pressure.",
       refs=Refs(checkov=("CKV_K8S_12",), polaris="memoryRequestsMissing",
                 kube_score="container-resources"))
def memory_request(c: Container, ctx: AuditContext) -> Violation | None:
    return _check(c, ctx, "requests", "memory",
                  "the pods restart, and may stay Pending if no node has that much memory free")


@check("resources-memory-limit-missing", family=FAMILY, severity="warning",
       category="reliability", target="container", title="Memory limit missing",
       rationale="Without a memory limit a leaking container takes its node's memory until "
                 "the kernel kills processes of other pods.",
       refs=Refs(checkov=("CKV_K8S_13",), polaris="memoryLimitsMissing",
                 kube_score="container-resources"))
def memory_limit(c: Container, ctx: AuditContext) -> Violation | None:
    return _check(c, ctx, "limits", "memory",
                  "the pods restart, and a container using more than the limit is OOM-killed")
