"""Availability: probes, replicas, disruption budgets, spreading and autoscalers.

These decide whether a rollout, a node drain or a crashed process becomes an
outage: Kubernetes can only route around and restart what it can observe, and
can only keep serving during maintenance what is replicated, spread and
protected by a PodDisruptionBudget.

Probes are checked on app containers of long-running workloads only: init
containers run to completion, and Jobs, CronJobs and pods that do not restart
serve no traffic through Services.
"""

from __future__ import annotations

from typing import Any

from aiops.kinds import BY_KIND
from aiops.security.check import Refs, Violation
from aiops.security.checks.network import memo, pod_labels, selector_matches
from aiops.security.checks.resources import missing as resource_missing
from aiops.security.checks.resources import proposed as resource_proposed
from aiops.security.fixes import REMOVE, container_patch, create, patch, pod_patch
from aiops.security.registry import check
from aiops.security.subjects import AuditContext, Container, Workload, meta, namespace_of

FAMILY = "reliability"
Obj = dict[str, Any]
REPLICATED = ("Deployment", "StatefulSet")


def _dict(v: Any) -> Obj:
    return v if isinstance(v, dict) else {}


def _name(obj: Obj) -> str:
    return f"{namespace_of(obj)}/{meta(obj).get('name')}"


# -- indexes, built once per audit ---------------------------------------------

def _hpas_by_target(ctx: AuditContext) -> dict[tuple[str, str, str], list[Obj]]:
    """(namespace, kind, name) of a scale target -> the HPAs scaling it."""
    def build() -> dict[tuple[str, str, str], list[Obj]]:
        out: dict[tuple[str, str, str], list[Obj]] = {}
        for h in ctx.objects("HorizontalPodAutoscaler"):
            ref = _dict(_dict(h.get("spec")).get("scaleTargetRef"))
            key = (namespace_of(h), str(ref.get("kind") or ""), str(ref.get("name") or ""))
            out.setdefault(key, []).append(h)
        return out
    return memo(ctx, "reliability.hpas", build)


def _workload_index(ctx: AuditContext) -> dict[tuple[str, str, str], Workload]:
    def build() -> dict[tuple[str, str, str], Workload]:
        return {(w.namespace, w.kind, w.name): w for w in ctx.workloads}
    return memo(ctx, "reliability.workloads", build)


def _pdb_selectors(ctx: AuditContext) -> dict[str, list[Any]]:
    """namespace -> the selectors of its PodDisruptionBudgets (null selects nothing)."""
    def build() -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for p in ctx.objects("PodDisruptionBudget"):
            out.setdefault(namespace_of(p), []).append(_dict(p.get("spec")).get("selector"))
        return out
    return memo(ctx, "reliability.pdbs", build)


def _replicated_by_ns(ctx: AuditContext) -> dict[str, list[tuple[Workload, Obj]]]:
    """namespace -> its workloads with a replica count, and their pod labels."""
    def build() -> dict[str, list[tuple[Workload, Obj]]]:
        out: dict[str, list[tuple[Workload, Obj]]] = {}
        for w in ctx.workloads:
            if w.replicas is not None:
                out.setdefault(w.namespace, []).append((w, pod_labels(w)))
        return out
    return memo(ctx, "reliability.replicated", build)


def hpa_min(h: Obj) -> int:
    m = _dict(h.get("spec")).get("minReplicas")
    return m if isinstance(m, int) else 1


def min_replicas(w: Workload, ctx: AuditContext) -> int:
    """The fewest replicas the workload runs with: its spec, or an HPA's floor above it."""
    base = w.replicas or 0
    hpas = _hpas_by_target(ctx).get((w.namespace, w.kind, w.name), [])
    return max([base, *(hpa_min(h) for h in hpas)])


# -- probes ------------------------------------------------------------------

def serves_traffic(w: Workload) -> bool:
    """Long-running pods: not Jobs/CronJobs, not pods that do not restart."""
    if w.kind in ("Job", "CronJob"):
        return False
    return w.kind != "Pod" or w.spec.get("restartPolicy") in (None, "Always")


def _tcp_port(c: Container) -> int | None:
    ports = c.spec.get("ports")
    for p in ports if isinstance(ports, list) else []:
        if (isinstance(p, dict) and isinstance(p.get("containerPort"), int)
                and p.get("protocol", "TCP") in ("TCP", None)):
            return int(p["containerPort"])
    return None


PROBES = {
    "livenessProbe": {"initialDelaySeconds": 30, "periodSeconds": 10, "failureThreshold": 3},
    "readinessProbe": {"periodSeconds": 10, "failureThreshold": 3},
}


def _probe(c: Container, ctx: AuditContext, field: str, what: str) -> Violation | None:
    if c.section != "containers" or not serves_traffic(c.workload):
        return None
    if isinstance(c.spec.get(field), dict):
        return None
    msg = f"container {c.name} has no {field}"
    better = ("an HTTP health endpoint (httpGet) that checks the process itself is better "
              "than a TCP check, which only proves the port is open")
    port = _tcp_port(c)
    if port is None:
        return Violation(msg, fix_text=f"add a {field} to container {c.name} ({what}); "
                                       f"{better}")
    probe = {"tcpSocket": {"port": port}, **PROBES[field]}
    return Violation(msg, container_patch(
        c, {(field,): probe},
        description=f"add a TCP {field} on port {port} to container {c.name} ({what}); the "
                    f"pods restart; {better}"))


@check("probe-liveness-missing", family=FAMILY, severity="warning", category="reliability",
       target="container", title="Liveness probe missing",
       rationale="Without a liveness probe a hung process (deadlock, exhausted pool) keeps "
                 "its pod Running and never restarts.",
       refs=Refs(checkov=("CKV_K8S_8",), polaris="livenessProbeMissing",
                 kube_score="pod-probes"))
def liveness_missing(c: Container, ctx: AuditContext) -> Violation | None:
    return _probe(c, ctx, "livenessProbe", "restarted when it stops answering")


@check("probe-readiness-missing", family=FAMILY, severity="warning", category="reliability",
       target="container", title="Readiness probe missing",
       rationale="Without a readiness probe a Service sends traffic to a pod as soon as its "
                 "process starts, before it can answer, and during rollouts that means errors.",
       refs=Refs(checkov=("CKV_K8S_9",), polaris="readinessProbeMissing",
                 kube_score="pod-probes"))
def readiness_missing(c: Container, ctx: AuditContext) -> Violation | None:
    return _probe(c, ctx, "readinessProbe", "taken out of Service endpoints until it answers")


# -- replicas, spreading, disruption budgets -----------------------------------

def _pod_selector(w: Workload) -> Obj:
    """A selector for the workload's pods: its own spec.selector, else its pod labels."""
    sel = _dict(w.obj.get("spec")).get("selector")
    if w.kind != "Pod" and isinstance(sel, dict) and (sel.get("matchLabels")
                                                       or sel.get("matchExpressions")):
        return sel
    return {"matchLabels": dict(pod_labels(w))}


@check("pdb-missing", family=FAMILY, severity="warning", category="reliability",
       target="workload", title="No PodDisruptionBudget for a replicated workload",
       rationale="Without a PodDisruptionBudget a node drain or cluster upgrade may evict "
                 "every replica at once.",
       refs=Refs(polaris="missingPodDisruptionBudget",
                 kube_score="deployment-has-poddisruptionbudget"))
def pdb_missing(w: Workload, ctx: AuditContext) -> Violation | None:
    if w.kind not in REPLICATED:
        return None
    n = min_replicas(w, ctx)
    if n <= 1:
        return None
    labels = pod_labels(w)
    if any(selector_matches(s, labels) for s in _pdb_selectors(ctx).get(w.namespace, [])):
        return None
    msg = f"{w.kind} {w.name} runs {n} replicas and no PodDisruptionBudget selects its pods"
    if not labels:
        return Violation(msg, fix_text="label the pods, then create a PodDisruptionBudget with "
                                       "maxUnavailable 1 selecting them")
    name = f"{w.name}-pdb"
    if ctx.get("PodDisruptionBudget", w.namespace, name) is not None:
        name = f"{w.name}-{w.kind.lower()}-pdb"
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
           "metadata": {"name": name, "namespace": w.namespace},
           "spec": {"maxUnavailable": 1, "selector": _pod_selector(w)}}
    return Violation(msg, create(
        pdb, tier="medium",
        description=f"create PodDisruptionBudget {name} (maxUnavailable 1) for {w.kind} "
                    f"{w.name}; drains then evict its pods one at a time and wait for each "
                    "replacement to be ready"))


def _zero_disruptions(pdb: Obj, ctx: AuditContext) -> str | None:
    """Why the budget allows no voluntary disruption, else None."""
    spec = _dict(pdb.get("spec"))
    mu, ma = spec.get("maxUnavailable"), spec.get("minAvailable")
    if mu in (0, "0%", "0"):
        return f"maxUnavailable is {mu}"
    if ma == "100%":
        return "minAvailable is 100%"
    if isinstance(ma, int) and ma > 0:
        sel = spec.get("selector")
        ws = [w for w, labels in _replicated_by_ns(ctx).get(namespace_of(pdb), [])
              if selector_matches(sel, labels)]
        total = sum(w.replicas or 0 for w in ws)
        if ws and total <= ma:
            names = ", ".join(f"{w.kind} {w.name}" for w in ws[:3])
            return f"minAvailable {ma} >= the {total} replica(s) of {names}"
    return None


@check("pdb-no-disruptions", family=FAMILY, severity="warning", category="reliability",
       target="object", kinds=("PodDisruptionBudget",),
       title="PodDisruptionBudget allows no disruption",
       rationale="A budget that allows zero evictions blocks node drains forever, so node "
                 "upgrades stall or get forced through, which the budget was meant to prevent.",
       refs=Refs(polaris="pdbDisruptionsIsZero"))
def pdb_no_disruptions(pdb: Obj, ctx: AuditContext) -> Violation | None:
    why = _zero_disruptions(pdb, ctx)
    if why is None:
        return None
    return Violation(
        f"PodDisruptionBudget {_name(pdb)} allows no voluntary disruption: {why}",
        patch(pdb, {("spec", "minAvailable"): REMOVE, ("spec", "maxUnavailable"): 1},
              description=f"set maxUnavailable 1 (instead of {why}) on PodDisruptionBudget "
                          f"{_name(pdb)}; drains may then evict one of its pods at a time"))


def _spread(spec: Obj) -> bool:
    tsc = spec.get("topologySpreadConstraints")
    if isinstance(tsc, list) and tsc:
        return True
    anti = _dict(_dict(spec.get("affinity")).get("podAntiAffinity"))
    return any(isinstance(anti.get(k), list) and anti.get(k) for k in (
        "requiredDuringSchedulingIgnoredDuringExecution",
        "preferredDuringSchedulingIgnoredDuringExecution"))


@check("replicas-not-spread", family=FAMILY, severity="warning", category="reliability",
       target="workload", title="Replicas not spread across nodes",
       rationale="Without topology spread constraints or pod anti-affinity the scheduler may "
                 "put every replica on one node, which then takes them all down with it.",
       refs=Refs(polaris="topologySpreadConstraint",
                 kube_score="deployment-has-host-podantiaffinity"))
def replicas_not_spread(w: Workload, ctx: AuditContext) -> Violation | None:
    if w.kind not in REPLICATED:
        return None
    n = min_replicas(w, ctx)
    if n <= 1 or _spread(w.spec):
        return None
    msg = (f"{w.kind} {w.name} runs {n} replicas without topologySpreadConstraints or "
           "pod anti-affinity")
    if not pod_labels(w):
        return Violation(msg, fix_text="label the pods, then add a topologySpreadConstraint "
                                       "on kubernetes.io/hostname selecting them")
    constraint = {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                  "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": _pod_selector(w)}
    return Violation(msg, pod_patch(
        w, {("topologySpreadConstraints",): [constraint]},
        description=f"spread the pods of {w.kind} {w.name} across nodes (maxSkew 1, "
                    "ScheduleAnyway, so no pod stays Pending for it); triggers a rollout"))


@check("deployment-single-replica", family=FAMILY, severity="warning", category="reliability",
       target="workload", title="Deployment runs a single replica",
       rationale="With one replica every rollout, node drain or crash is an outage of the "
                 "service until the replacement is ready.",
       refs=Refs(polaris="deploymentMissingReplicas"))
def single_replica(w: Workload, ctx: AuditContext) -> Violation | None:
    if w.kind != "Deployment" or w.replicas == 0:
        return None  # 0: scaled down on purpose
    hpas = _hpas_by_target(ctx).get((w.namespace, w.kind, w.name), [])
    if hpas:
        h = hpas[0]
        if hpa_min(h) >= 2 or (w.replicas or 0) > 1:
            return None  # a replicated target with an HPA floor of 1: hpa-min-replicas-one
        spec = _dict(h.get("spec"))
        mx = spec.get("maxReplicas")
        changes: dict[tuple[str | int, ...], Any] = {("spec", "minReplicas"): 2}
        if isinstance(mx, int) and mx < 2:
            changes[("spec", "maxReplicas")] = 2
        return Violation(
            f"Deployment {w.name} can run a single replica: its HPA {meta(h).get('name')} has "
            f"minReplicas {hpa_min(h)}",
            patch(h, changes, description=f"set minReplicas 2 on HPA {_name(h)} (the HPA "
                                          "owns the replica count); costs one more pod"))
    if (w.replicas or 0) > 1:
        return None
    unset = "replicas" not in _dict(w.obj.get("spec"))
    return Violation(
        f"Deployment {w.name} runs a single replica "
        f"(spec.replicas {'not set, so 1' if unset else w.replicas})",
        patch(w.obj, {("spec", "replicas"): 2},
              description=f"run Deployment {w.name} with 2 replicas; costs one more pod, and "
                          "is wrong for an app that must not run twice (a singleton writer, a "
                          "ReadWriteOnce volume): exempt those instead"))


@check("workload-default-namespace", family=FAMILY, severity="warning", category="security",
       target="workload", title="Workload in the default namespace",
       rationale="The default namespace is shared by everything deployed without thought, so "
                 "RBAC, NetworkPolicies and quotas cannot be scoped to the workload.",
       refs=Refs(checkov=("CKV_K8S_21",)))
def default_namespace(w: Workload, ctx: AuditContext) -> Violation | None:
    if w.namespace != "default":
        return None
    unset = not meta(w.obj).get("namespace")
    where = ("has no metadata.namespace, so it lands in the default namespace" if unset
             else "runs in the default namespace")
    return Violation(f"{w.kind} {w.name} {where}",
                     fix_text="deploy it to a dedicated namespace (set metadata.namespace or "
                              "apply with -n), then delete the copy in default; a namespace "
                              "cannot be changed in place")


# -- horizontal pod autoscalers ----------------------------------------------

def _hpa_target(h: Obj, ctx: AuditContext) -> Workload | None:
    ref = _dict(_dict(h.get("spec")).get("scaleTargetRef"))
    return _workload_index(ctx).get((namespace_of(h), str(ref.get("kind") or ""),
                                     str(ref.get("name") or "")))


@check("hpa-replicas-range", family=FAMILY, severity="warning", category="reliability",
       target="object", kinds=("HorizontalPodAutoscaler",),
       title="HPA minReplicas not below maxReplicas",
       rationale="An autoscaler whose floor reaches its ceiling cannot scale: load above "
                 "what the fixed replica count serves becomes errors.")
def hpa_replicas_range(h: Obj, ctx: AuditContext) -> Violation | None:
    spec = _dict(h.get("spec"))
    mx = spec.get("maxReplicas")
    mn = hpa_min(h)
    if not isinstance(mx, int) or mn < mx:
        return None
    new = max(2 * mn, mn + 1)
    return Violation(
        f"HorizontalPodAutoscaler {_name(h)} has minReplicas {mn} >= maxReplicas {mx}, so it "
        "cannot scale",
        patch(h, {("spec", "maxReplicas"): new},
              description=f"set maxReplicas {new} (twice minReplicas) on HPA {_name(h)}; "
                          "raises the cost ceiling under load"))


@check("hpa-min-replicas-one", family=FAMILY, severity="warning", category="reliability",
       target="object", kinds=("HorizontalPodAutoscaler",),
       title="HPA may scale a replicated workload down to one",
       rationale="A replicated workload whose autoscaler has minReplicas 1 runs a single pod "
                 "at quiet times, and a single pod is an outage when it is evicted.")
def hpa_min_replicas_one(h: Obj, ctx: AuditContext) -> Violation | None:
    w = _hpa_target(h, ctx)
    if w is None or hpa_min(h) > 1 or (w.replicas or 0) <= 1:
        return None
    mx = _dict(h.get("spec")).get("maxReplicas")
    floor = min(w.replicas or 2, mx) if isinstance(mx, int) else (w.replicas or 2)
    msg = (f"HorizontalPodAutoscaler {_name(h)} has minReplicas {hpa_min(h)} while {w.kind} "
           f"{w.name} is set to {w.replicas} replicas")
    if floor < 2:
        return Violation(msg, fix_text="raise maxReplicas and minReplicas to at least 2")
    return Violation(msg, patch(
        h, {("spec", "minReplicas"): floor},
        description=f"set minReplicas {floor} on HPA {_name(h)} (the replicas {w.kind} "
                    f"{w.name} was given); costs {floor - 1} more pod(s) at quiet times"))


@check("hpa-target-missing", family=FAMILY, severity="warning", category="reliability",
       target="object", kinds=("HorizontalPodAutoscaler",), title="HPA target does not exist",
       rationale="An autoscaler pointing at a missing workload scales nothing, usually after "
                 "a rename, so the intended autoscaling silently stopped.",
       refs=Refs(kube_score="horizontalpodautoscaler-has-target"))
def hpa_target_missing(h: Obj, ctx: AuditContext) -> Violation | None:
    ref = _dict(_dict(h.get("spec")).get("scaleTargetRef"))
    kind, name = ref.get("kind"), ref.get("name")
    if not isinstance(kind, str) or kind not in BY_KIND or not ctx.state.is_available(kind):
        return None  # a custom resource, or a kind we could not read: cannot tell
    if ctx.get(kind, namespace_of(h), str(name or "")) is not None:
        return None
    return Violation(
        f"HorizontalPodAutoscaler {_name(h)} targets {kind} {name}, which does not exist in "
        f"namespace {namespace_of(h)}",
        fix_text="point spec.scaleTargetRef at the workload's current name, or delete the "
                 "HPA if the workload is gone")


def _cpu_utilization_containers(h: Obj) -> list[str] | None:
    """None when the HPA does not scale on CPU utilization; else the containers it
    reads ([] = all of them). No metrics at all means the default, 80% CPU."""
    spec = _dict(h.get("spec"))
    metrics = spec.get("metrics")
    if not isinstance(metrics, list) or not metrics:
        return []  # v1 targetCPUUtilizationPercentage, or the default
    names: list[str] = []
    found = False
    for m in metrics:
        m = _dict(m)
        if m.get("type") == "Resource":
            r = _dict(m.get("resource"))
            if r.get("name") == "cpu" and _dict(r.get("target")).get("type") == "Utilization":
                return []
        elif m.get("type") == "ContainerResource":
            r = _dict(m.get("containerResource"))
            if r.get("name") == "cpu" and _dict(r.get("target")).get("type") == "Utilization":
                found = True
                names.append(str(r.get("container") or ""))
    return names if found else None


@check("hpa-cpu-no-request", family=FAMILY, severity="danger", category="reliability",
       target="object", kinds=("HorizontalPodAutoscaler",),
       title="HPA scales on CPU utilization of containers without a CPU request",
       rationale="CPU utilization is usage divided by the request; without a request the "
                 "autoscaler cannot compute it and does not scale at all.")
def hpa_cpu_no_request(h: Obj, ctx: AuditContext) -> Violation | None:
    wanted = _cpu_utilization_containers(h)
    w = _hpa_target(h, ctx) if wanted is not None else None
    if w is None or wanted is None:
        return None
    bad = [c for c in w.containers if c.section == "containers"
           and (not wanted or c.name in wanted) and resource_missing(c, ctx, "requests", "cpu")]
    if not bad:
        return None
    changes: dict[tuple[str | int, ...], Any] = {}
    parts = []
    for c in bad:
        v, source = resource_proposed(c, "requests", "cpu")
        changes[c.path("resources", "requests", "cpu")] = v
        parts.append(f"{c.name} to {v} ({source})")
    names = ", ".join(c.name for c in bad)
    return Violation(
        f"HorizontalPodAutoscaler {_name(h)} scales {w.kind} {w.name} on CPU utilization but "
        f"container(s) {names} have no CPU request, so it cannot scale",
        patch(w.obj, changes, description=f"set the CPU request of {'; '.join(parts)} on "
                                          f"{w.kind} {w.name}; the pods restart"))
