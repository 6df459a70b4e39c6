"""Scheduling rules: why a pod stays Pending with no node.

The scheduler says why in one line (the PodScheduled condition and the
FailedScheduling event carry the same text): "0/3 nodes are available: 1
Insufficient memory, 2 node(s) had untolerated taint {...}. preemption: ...".
Each rule owns one kind of reason in that line and checks it against the
snapshot (node allocatable, node labels, node taints, the claims).
"""

from __future__ import annotations

import difflib
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiops.diagnose.actions import manual, patch_field, pod_template_path, set_container_fields
from aiops.diagnose.context import (
    PENDING,
    Context,
    Obj,
    earliest,
    event_evidence,
    event_first_seen,
    md,
    parse_time,
    status_evidence,
)
from aiops.diagnose.finding import Action, Evidence, Finding, Remediation
from aiops.diagnose.registry import rule
from aiops.quantity import format_bytes, format_cores, to_float

FAMILY = "scheduling"
MAX_EVENTS = 3
ROUTINE_TAINTS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
NODE_CONDITION_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable",
                         "node.kubernetes.io/memory-pressure", "node.kubernetes.io/disk-pressure",
                         "node.kubernetes.io/pid-pressure",
                         "node.kubernetes.io/network-unavailable")
CORDON_TAINT = "node.kubernetes.io/unschedulable"
LOWERABLE = ("cpu", "memory", "ephemeral-storage")

_INSUFFICIENT = re.compile(r"(?:(\d+) )?Insufficient ([A-Za-z0-9./_-]+)")
_TOO_MANY_PODS = re.compile(r"(?:(\d+) )?Too many pods")
_SELECTOR = re.compile(r"(?:(\d+) )?node\(s\) didn't match (?:Pod's node affinity/selector"
                       r"|Pod's node affinity|node selector)")
_TAINT = re.compile(r"(?:(\d+) )?node\(s\) had (?:untolerated )?taints? \{([^}]*)\}")
_OLD_TAINTS = re.compile(r"(?:(\d+) )?node\(s\) had taints that the pod didn't tolerate")
_CORDONED = re.compile(r"(?:(\d+) )?node\(s\) were unschedulable")
_PVC_UNBOUND = re.compile(r"pod has unbound immediate PersistentVolumeClaims")
_PVC_NAMED = re.compile(r'persistentvolumeclaim "([^"]+)" (not found|is being deleted)')
_PVC_NODES = re.compile(r"(?:(\d+) )?node\(s\) (?:didn't find available persistent volumes "
                        r"to bind|had volume node affinity conflict)")
_PVC_ANY = (_PVC_UNBOUND, _PVC_NAMED, _PVC_NODES)


# -- small, defensive accessors -------------------------------------------------
def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _l(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _str_map(v: Any) -> dict[str, str]:
    return {str(k): str(x) if x is not None else "" for k, x in _d(v).items()}


def _condition(obj: Obj, ctype: str) -> Obj:
    for c in _l(_d(obj.get("status")).get("conditions")):
        if isinstance(c, dict) and c.get("type") == ctype:
            return c
    return {}


def _fmt(resource: str, value: float) -> str:
    if math.isnan(value):
        return "-"
    if resource in ("memory", "ephemeral-storage") or resource.startswith("hugepages-"):
        return format_bytes(value)
    if resource == "cpu":
        return format_cores(value)
    return f"{value:g}"


# -- which pods are stuck, and what the scheduler said ----------------------------
@dataclass(frozen=True)
class Stuck:
    """A pod the scheduler could not place, with its current scheduler message."""

    pod: Obj
    message: str  # the latest message: PodScheduled condition, else latest event
    condition: Obj  # PodScheduled=False/Unschedulable, or {}
    events: list[Obj]  # FailedScheduling events about the pod, oldest first

    @property
    def ns(self) -> str:
        return md(self.pod).get("namespace") or ""

    @property
    def name(self) -> str:
        return md(self.pod).get("name") or ""

    @property
    def head(self) -> str:
        """The message without its preemption tail (which repeats node counts)."""
        return re.split(r"\s*preemption:", self.message, maxsplit=1)[0]


def _stuck_pods(ctx: Context) -> Iterator[Stuck]:
    for pod in ctx.pods_with(PENDING):  # unscheduled pods are Pending (or phase-less)
        spec, status = _d(pod.get("spec")), _d(pod.get("status"))
        if spec.get("nodeName") or status.get("phase") not in (None, "", "Pending"):
            continue
        cond = _condition(pod, "PodScheduled")
        if not (cond.get("status") == "False" and cond.get("reason") == "Unschedulable"):
            cond = {}
        events = ctx.events(pod, reason="FailedScheduling")
        message = cond.get("message") if isinstance(cond.get("message"), str) else ""
        if not message and events:
            last = events[-1].get("message") or events[-1].get("note")
            message = last if isinstance(last, str) else ""
        if cond or message:
            yield Stuck(pod, message or "", cond, events)


def _signal(ctx: Context, s: Stuck, patterns: Iterable[re.Pattern[str]]
            ) -> tuple[list[Evidence], datetime | None]:
    """Quote the condition and the FailedScheduling events that show `patterns`."""
    pats = list(patterns)
    ev: list[Evidence] = []
    cond_time = parse_time(s.condition.get("lastTransitionTime"))
    if s.condition:
        ev.append(status_evidence("status.conditions[PodScheduled]",
                                  f"False Unschedulable: {s.message}", cond_time))
    matching = [e for e in s.events
                if any(p.search(str(e.get("message") or e.get("note") or "")) for p in pats)]
    shown = matching[-MAX_EVENTS:]
    ev.extend(event_evidence(e) for e in shown)
    return ev, earliest(cond_time, event_first_seen(matching))


def _serving(ctx: Context, pod: Obj) -> bool:
    """Whether the pod's workload still has available replicas elsewhere."""
    owner = ctx.owner_object(pod)
    st = _d(owner.get("status")) if owner else {}
    for key in ("availableReplicas", "numberAvailable", "readyReplicas"):
        v = st.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return True
    return False


def _severity(ctx: Context, pod: Obj) -> str:
    return "warning" if _serving(ctx, pod) else "critical"


def _describe(s: Stuck) -> str:
    return f"kubectl describe pod -n {s.ns} {s.name}"


def _events_cmd(s: Stuck) -> str:
    return (f"kubectl get events -n {s.ns} --field-selector "
            f"involvedObject.name={s.name},reason=FailedScheduling")


def _nodes(ctx: Context) -> list[Obj]:
    """Every node: a Pending pod has no node, so the target scope has none for it."""
    return [n for n in ctx.state.kind("Node") if isinstance(n, dict)]


def _node_name(n: Obj) -> str:
    return md(n).get("name") or "?"


def _workload_ref(ctx: Context, pod: Obj) -> str:
    kind, name = ctx.owner(pod)
    return f"{kind.lower()}/{name}"


# -- unschedulable-resources --------------------------------------------------------
def _container_requests(c: Obj) -> dict[str, tuple[float, str]]:
    """Requests of one container (limits stand in, as API defaulting does)."""
    res = _d(c.get("resources"))
    out: dict[str, tuple[float, str]] = {}
    for src in (_d(res.get("limits")), _d(res.get("requests"))):
        for k, raw in src.items():
            v = to_float(raw)
            if not math.isnan(v):
                out[str(k)] = (v, str(raw))
    return out


def pod_requests(pod: Obj) -> dict[str, float]:
    """Effective pod request: max(app + sidecars, any init step) plus overhead."""
    spec = _d(pod.get("spec"))
    total: dict[str, float] = defaultdict(float)
    init_peak: dict[str, float] = defaultdict(float)
    sidecars: dict[str, float] = defaultdict(float)
    for c in _l(spec.get("initContainers")):
        if not isinstance(c, dict):
            continue
        req = _container_requests(c)
        if c.get("restartPolicy") == "Always":
            for k, (v, _) in req.items():
                sidecars[k] += v
        else:
            for k, (v, _) in req.items():
                init_peak[k] = max(init_peak[k], v + sidecars[k])
    for c in _l(spec.get("containers")):
        if isinstance(c, dict):
            for k, (v, _) in _container_requests(c).items():
                total[k] += v
    for k, v in sidecars.items():
        total[k] += v
    for k, v in init_peak.items():
        total[k] = max(total[k], v)
    for k, raw in _d(spec.get("overhead")).items():
        v = to_float(raw)
        if not math.isnan(v):
            total[str(k)] += v
    total["pods"] = 1.0
    return dict(total)


def _allocatable(node: Obj) -> dict[str, float]:
    out = {}
    for k, raw in _d(_d(node.get("status")).get("allocatable")).items():
        v = to_float(raw)
        if not math.isnan(v):
            out[str(k)] = v
    return out


def _node_usage(ctx: Context) -> dict[str, dict[str, float]]:
    """Requests already placed on each node by pods that are not finished (one
    pass over every pod, kept on the state)."""
    return ctx.shared(("scheduling", "node-usage"), lambda: _sum_node_usage(ctx))


def _sum_node_usage(ctx: Context) -> dict[str, dict[str, float]]:
    """Each placed, unfinished pod's `pod_requests` added to its node's, in pod order.
    The replicas of a template request alike: `pod_requests` is worked out once per
    `_requests_key` (for this pass only) and reused. A key is kept only when every
    resource name and quantity in it is text, as the API gives them (1, 1.0 and True
    are equal keys but not the same resource name): a key equal to a kept one then
    holds text too, so a hit needs no check."""
    used: dict[str, dict[str, float]] = {}
    seen: dict[tuple[Any, ...], dict[str, float]] = {}
    for p in ctx.state.kind("Pod"):
        if not isinstance(p, dict):
            continue
        spec = p.get("spec")
        node = spec.get("nodeName") if isinstance(spec, dict) else None
        if not isinstance(node, str) or not node:
            continue
        status = p.get("status")
        if isinstance(status, dict) and status.get("phase") in ("Succeeded", "Failed"):
            continue
        key: tuple[Any, ...] | None = _requests_key(spec)  # type: ignore[arg-type]
        try:
            req = seen.get(key)  # type: ignore[arg-type]
        except TypeError:  # a quantity that is a list or a map
            req, key = None, None
        if req is None:
            req = pod_requests(p)
            if key is not None and _all_text(key):
                seen[key] = req
        into = used.get(node)
        if into is None:
            into = used[node] = {}
        for k, v in req.items():
            into[k] = into.get(k, 0.0) + v
    return used


def _requests_key(spec: Obj) -> tuple[Any, ...]:
    """Everything `pod_requests` reads of a pod spec (each container's limits and
    requests, whether an init container is a sidecar, the overhead) as a key."""
    parts: list[Any] = []
    for section in ("initContainers", "containers"):
        cs = spec.get(section)
        for c in cs if isinstance(cs, list) else ():
            if not isinstance(c, dict):
                continue
            res = c.get("resources")
            lim = res.get("limits") if isinstance(res, dict) else None
            req = res.get("requests") if isinstance(res, dict) else None
            parts.append((section == "initContainers" and c.get("restartPolicy") == "Always",
                          tuple(lim.items()) if isinstance(lim, dict) else (),
                          tuple(req.items()) if isinstance(req, dict) else ()))
        parts.append(section)  # where the section ends
    over = spec.get("overhead")
    parts.append(tuple(over.items()) if isinstance(over, dict) else ())
    return tuple(parts)


def _all_text(key: tuple[Any, ...]) -> bool:
    """Every resource name and quantity of a `_requests_key` is text."""
    maps = [m for part in key[:-1] if isinstance(part, tuple) for m in part[1:]]
    return all(type(k) is str and type(v) is str for m in (*maps, key[-1]) for k, v in m)


def _short_resources(s: Stuck) -> list[tuple[str, int | None]]:
    """(resource, node count) the scheduler found short, in message order."""
    out: list[tuple[str, int | None]] = []
    for m in _INSUFFICIENT.finditer(s.head):
        out.append((m.group(2).rstrip(".,"), int(m.group(1)) if m.group(1) else None))
    for m in _TOO_MANY_PODS.finditer(s.head):
        out.append(("pods", int(m.group(1)) if m.group(1) else None))
    return out


@dataclass(frozen=True)
class _Fit:
    resource: str
    requested: float
    best_node: str | None
    best_alloc: float
    best_free: float  # allocatable minus what other pods request on the best node

    @property
    def exceeds_every_node(self) -> bool:
        return self.best_node is not None and self.requested > self.best_alloc


def _allocatables(ctx: Context) -> Callable[[Obj], dict[str, float]]:
    """`_allocatable`, cached per node on the state: every stuck pod weighs every node."""
    table: dict[int, tuple[Obj, dict[str, float]]] = ctx.shared(
        ("scheduling", "allocatable"), dict)

    def get(node: Obj) -> dict[str, float]:
        hit = table.get(id(node))
        if hit is None or hit[0] is not node:
            hit = table[id(node)] = (node, _allocatable(node))
        return hit[1]
    return get


def _fit(resource: str, requested: float, nodes: list[Obj],
         usage: dict[str, dict[str, float]],
         allocatable: Callable[[Obj], dict[str, float]] = _allocatable) -> _Fit:
    best: tuple[float, float, str] | None = None
    for n in nodes:
        alloc = allocatable(n).get(resource)
        if alloc is None:
            continue
        free = alloc - usage.get(_node_name(n), {}).get(resource, 0.0)
        if best is None or (alloc, free) > (best[0], best[1]):
            best = (alloc, free, _node_name(n))
    if best is None:
        return _Fit(resource, requested, None, math.nan, math.nan)
    return _Fit(resource, requested, best[2], best[0], best[1])


def _requests_evidence(pod: Obj, resource: str, total: float) -> Evidence:
    parts = []
    for c in _l(_d(pod.get("spec")).get("containers")):
        if isinstance(c, dict):
            got = _container_requests(c).get(resource)
            if got:
                parts.append(f"{c.get('name')}={got[1]}")
    return Evidence("spec", f"pod requests {resource}={_fmt(resource, total)}"
                    + (f" (containers: {', '.join(parts)})" if parts else ""),
                    f"spec.containers[*].resources.requests.{resource}")


def _node_evidence(fit: _Fit, eligible: int, total: int) -> Evidence:
    r = fit.resource
    if fit.best_node is None:
        return Evidence("object", f"no node in the snapshot reports allocatable {r}",
                        f"Node/* status.allocatable.{r}")
    return Evidence(
        "object",
        f"largest node allocatable {r}={_fmt(r, fit.best_alloc)} on {fit.best_node} "
        f"({_fmt(r, max(fit.best_free, 0.0))} not yet requested; {eligible} of {total} "
        "node(s) eligible)",
        f"Node/{fit.best_node} status.allocatable.{r}")


def _round_down(resource: str, value: float) -> str | None:
    if resource == "cpu":
        milli = int(value * 1000)
        return f"{milli}m" if milli > 0 else None
    mib = int(value // (1024 * 1024))
    return f"{mib}Mi" if mib > 0 else None


def _lower_to_fit(ctx: Context, pod: Obj, fits: list[_Fit]) -> Action | None:
    """Lower one container's request so the pod fits the roomiest node."""
    workload = ctx.owner_object(pod)
    over = [f for f in fits if f.exceeds_every_node]
    if workload is None or not over or any(f.resource not in LOWERABLE for f in over):
        return None
    containers = [c for c in _l(_d(pod.get("spec")).get("containers")) if isinstance(c, dict)]
    chosen: str | None = None
    changes: dict[tuple[str, ...], Any] = {}
    notes = []
    for f in over:
        reqs = [(_container_requests(c).get(f.resource, (0.0, ""))[0], str(c.get("name")))
                for c in containers]
        if not reqs:
            return None
        biggest, name = max(reqs)
        room = f.best_free if f.best_free > 0 else f.best_alloc
        new = _round_down(f.resource, biggest - (f.requested - room))
        if new is None or (chosen is not None and name != chosen):
            return None
        chosen = name
        changes[("resources", "requests", f.resource)] = new
        notes.append(f"{f.resource} {_fmt(f.resource, biggest)} -> {new}")
    if chosen is None:
        return None
    f = over[0]
    room = (f"{f.best_node}: {_fmt(f.resource, f.best_alloc)} allocatable, "
            f"{_fmt(f.resource, max(f.best_free, 0.0))} of it not yet requested")
    return set_container_fields(
        workload, chosen, changes, tier="medium",
        description=(f"lower the requests of container {chosen} ({'; '.join(notes)}) so the "
                     f"pod fits the roomiest node ({room}); check from its usage that the "
                     "app still fits, or add a bigger node instead"),
        validate=[f"a new pod of {ctx.owner(pod)[1]} gets PodScheduled=True",
                  "no OOMKilled or CPU throttling alerts on it for 30 minutes"])


def _tolerates(tols: list[Obj], taint: Obj) -> bool:
    for t in tols:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("operator") == "Exists":
            if not t.get("key") or t.get("key") == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and \
                str(t.get("value") or "") == str(taint.get("value") or ""):
            return True
    return False


def _eligible(ctx: Context, pod: Obj, nodes: list[Obj]) -> list[Obj]:
    """`eligible_nodes`, shared by the pods that ask the same of the nodes (the
    replicas of one template): keyed by exactly what it reads of the pod."""
    spec = _d(pod.get("spec"))
    asks = repr(([t for t in _l(spec.get("tolerations")) if isinstance(t, dict)],
                 _str_map(spec.get("nodeSelector")), _required_terms(pod)))
    table: dict[tuple[str, tuple[int, ...]], list[Obj]] = ctx.shared(
        ("scheduling", "eligible-by-spec"), dict)
    key = (asks, tuple(map(id, nodes)))
    if key not in table:
        table[key] = eligible_nodes(pod, nodes)
    return table[key]


def eligible_nodes(pod: Obj, nodes: list[Obj]) -> list[Obj]:
    """Nodes the pod could use if they had room: schedulable, taints tolerated,
    nodeSelector and required affinity satisfied."""
    spec = _d(pod.get("spec"))
    tols = [t for t in _l(spec.get("tolerations")) if isinstance(t, dict)]
    selector = _str_map(spec.get("nodeSelector"))
    terms = _required_terms(pod)
    out = []
    for n in nodes:
        if _d(n.get("spec")).get("unschedulable") is True:
            continue
        if any(t.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(tols, t)
               for t in _node_taints(n)):
            continue
        labels = _node_labels(n)
        if any(labels.get(k) != v for k, v in selector.items()):
            continue
        if terms and not any(_node_name(n) in _term_nodes(t, [n]) for t in terms):
            continue
        out.append(n)
    return out


@rule("unschedulable-resources", family=FAMILY,
      title="Pod cannot be scheduled: not enough CPU, memory or other resources",
      severity="critical", rank=30,
      docs="https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/")
def unschedulable_resources(ctx: Context) -> Iterator[Finding]:
    """The scheduler found no node with room for the pod's requests."""
    usage: dict[str, dict[str, float]] | None = None
    allocatable = _allocatables(ctx)
    eligible: dict[int, tuple[Obj, list[Obj]]] = ctx.shared(("scheduling", "eligible"), dict)
    fits_seen: dict[tuple[Any, ...], _Fit] = ctx.shared(("scheduling", "fits"), dict)
    for s in _stuck_pods(ctx):
        short = _short_resources(s)
        if not short:
            continue
        every = _nodes(ctx)
        hit = eligible.get(id(s.pod))
        if hit is None or hit[0] is not s.pod:  # per pod and state: every node weighed
            hit = eligible[id(s.pod)] = (s.pod, _eligible(ctx, s.pod, every))
        nodes = list(hit[1]) or every
        usage = usage if usage is not None else _node_usage(ctx)
        totals = pod_requests(s.pod)
        evidence, first = _signal(ctx, s, (_INSUFFICIENT, _TOO_MANY_PODS))
        fits = []
        for res, _count in dict(short).items():
            key = (res, totals.get(res, 0.0), tuple(map(id, nodes)))
            fit = fits_seen.get(key)  # pods of one template weigh the same nodes alike
            if fit is None:
                fit = fits_seen[key] = _fit(res, key[1], nodes, usage, allocatable)
            fits.append(fit)
            evidence.append(_requests_evidence(s.pod, res, fit.requested))
            evidence.append(_node_evidence(fit, len(nodes), len(every)))
        yield _resources_finding(ctx, s, fits, evidence, first)


def _resources_finding(ctx: Context, s: Stuck, fits: list[_Fit], evidence: list[Evidence],
                       first: datetime | None) -> Finding:
    names = ", ".join(f.resource for f in fits)
    over = [f for f in fits if f.exceeds_every_node]
    if over:
        f = over[0]
        why = (f"it requests {f.resource}={_fmt(f.resource, f.requested)}, more than any node "
               f"can offer (largest allocatable {_fmt(f.resource, f.best_alloc)} on "
               f"{f.best_node})")
    elif fits and fits[0].best_node:
        f = fits[0]
        why = (f"no node has {_fmt(f.resource, f.requested)} of {f.resource} free "
               f"(at most {_fmt(f.resource, max(f.best_free, 0.0))} on {f.best_node})")
    else:
        why = "no node has room for its requests"
    action = _lower_to_fit(ctx, s.pod, fits)
    if over and action is not None:
        words = ("Lower the request to what a node can hold (or add a bigger node); "
                 "the proposed patch lowers it to fit the roomiest node.")
    elif over:
        words = "Lower the pod's requests or add a node large enough for them."
        action = manual(ctx.owner_object(s.pod) or s.pod, words)
    else:
        words = ("Free capacity (scale down or right-size other workloads), add a node, "
                 "or lower the pod's requests.")
        action = manual(ctx.owner_object(s.pod) or s.pod, words)
    commands = (_describe(s), _events_cmd(s), "kubectl describe nodes",
                "kubectl top nodes",
                f"kubectl get pod -n {s.ns} {s.name} -o jsonpath='{{.spec.containers[*]"
                f".resources}}'")
    return ctx.finding(
        "unschedulable-resources", s.pod,
        f"Pod {s.ns}/{s.name} cannot be scheduled (Insufficient {names}): {why}.",
        evidence, Remediation(words, commands, action),
        confidence=0.95 if s.condition or s.events else 0.8, first_seen=first,
        severity=_severity(ctx, s.pod))


# -- unschedulable-node-selector -----------------------------------------------------
def _expr_matches(expr: Obj, labels: dict[str, str], fields: dict[str, str]) -> bool:
    key, op = str(expr.get("key") or ""), expr.get("operator")
    values = [str(v) for v in _l(expr.get("values"))]
    src = fields if expr.get("_field") else labels
    has, val = key in src, src.get(key)
    if op == "In":
        return has and val in values
    if op == "NotIn":
        return not has or val not in values
    if op == "Exists":
        return has
    if op == "DoesNotExist":
        return not has
    if op in ("Gt", "Lt") and has and values:
        try:
            a, b = int(str(val)), int(values[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


def _required_terms(pod: Obj) -> list[list[Obj]]:
    """Required node-affinity terms, each a list of expressions (fields marked)."""
    na = _d(_d(_d(pod.get("spec")).get("affinity")).get("nodeAffinity"))
    req = _d(na.get("requiredDuringSchedulingIgnoredDuringExecution"))
    terms = []
    for t in _l(req.get("nodeSelectorTerms")):
        if not isinstance(t, dict):
            continue
        exprs = [dict(e) for e in _l(t.get("matchExpressions")) if isinstance(e, dict)]
        exprs += [{**e, "_field": True} for e in _l(t.get("matchFields")) if isinstance(e, dict)]
        terms.append(exprs)
    return terms


def _expr_text(e: Obj) -> str:
    vals = ", ".join(str(v) for v in _l(e.get("values")))
    return f"{e.get('key')} {e.get('operator')}" + (f" [{vals}]" if vals else "")


def _node_labels(n: Obj) -> dict[str, str]:
    return _str_map(md(n).get("labels"))


def _term_nodes(term: list[Obj], nodes: list[Obj]) -> list[str]:
    """Nodes satisfying every expression of one required term."""
    return [_node_name(n) for n in nodes
            if all(_expr_matches(e, _node_labels(n), {"metadata.name": _node_name(n)})
                   for e in term)]


def _label_values(nodes: list[Obj], key: str) -> str:
    have = [f"{_node_name(n)}={_node_labels(n)[key]}" for n in nodes if key in _node_labels(n)]
    if not have:
        return f"no node has label {key} (nodes: {', '.join(_node_name(n) for n in nodes)})"
    return f"node label {key}: {', '.join(have)}"


def _selector_fix(nodes: list[Obj], selector: dict[str, str]
                  ) -> tuple[dict[str, str], list[str]]:
    """The selector minus the pairs no node has. A key that is a near-miss of a node
    label carrying the same value is taken as a typo and corrected; a different value
    is never guessed (ssd vs hdd is a choice, not a typo)."""
    labels = [_node_labels(n) for n in nodes]
    fixed, notes = {}, []
    for k, v in selector.items():
        if any(lab.get(k) == v for lab in labels):
            fixed[k] = v
            continue
        same_value = sorted({lk for lab in labels for lk, lv in lab.items() if lv == v})
        close = difflib.get_close_matches(k, same_value, n=1, cutoff=0.85)
        if close:
            fixed[close[0]] = v
            notes.append(f"{k}={v} -> {close[0]}={v}")
        else:
            notes.append(f"drop {k}={v}")
    return fixed, notes


@rule("unschedulable-node-selector", family=FAMILY,
      title="Pod cannot be scheduled: no node matches its nodeSelector or node affinity",
      severity="critical", rank=20,
      docs="https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/")
def unschedulable_node_selector(ctx: Context) -> Iterator[Finding]:
    """A nodeSelector/affinity no node satisfies keeps the pod Pending forever."""
    for s in _stuck_pods(ctx):
        if not _SELECTOR.search(s.head):
            continue
        yield _selector_finding(ctx, s)


def _selector_finding(ctx: Context, s: Stuck) -> Finding:
    nodes = _nodes(ctx)
    spec = _d(s.pod.get("spec"))
    selector = _str_map(spec.get("nodeSelector"))
    terms = _required_terms(s.pod)
    evidence, first = _signal(ctx, s, (_SELECTOR,))
    if selector:
        evidence.append(Evidence("spec", "nodeSelector: " + ", ".join(
            f"{k}={v}" for k, v in selector.items()), "spec.nodeSelector"))
    for i, term in enumerate(terms):
        fits = _term_nodes(term, nodes)
        evidence.append(Evidence(
            "spec", f"required node affinity term {i}: "
            + " AND ".join(_expr_text(e) for e in term)
            + (f" (matches {', '.join(fits)})" if fits else " (matches no node)"),
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
            f".nodeSelectorTerms[{i}]"))
    keys = list(dict.fromkeys([*selector, *(str(e.get("key")) for t in terms for e in t
                                           if not e.get("_field"))]))
    for k in keys:
        evidence.append(Evidence("object", _label_values(nodes, k), f"Node/* metadata.labels.{k}"))
    missing = [f"{k}={v}" for k, v in selector.items()
               if not any(_node_labels(n).get(k) == v for n in nodes)]
    if missing:
        cause = f"no node has the label {', '.join(missing)} its nodeSelector requires"
    elif terms and not any(_term_nodes(t, nodes) for t in terms):
        cause = "no node satisfies its required node affinity"
    elif selector or terms:
        cause = "no node satisfies its nodeSelector and required node affinity together"
    else:
        cause = "the scheduler reports no node matching its node affinity/selector"
    action, words = _selector_action(ctx, s, nodes, selector, missing)
    commands = (_describe(s), "kubectl get nodes --show-labels",
                f"kubectl get pod -n {s.ns} {s.name} -o jsonpath='{{.spec.nodeSelector}} "
                f"{{.spec.affinity.nodeAffinity}}'")
    return ctx.finding(
        "unschedulable-node-selector", s.pod, f"Pod {s.ns}/{s.name} cannot be scheduled: "
        f"{cause}.", evidence, Remediation(words, commands, action),
        confidence=0.95 if missing else 0.8, first_seen=first,
        severity=_severity(ctx, s.pod))


def _selector_action(ctx: Context, s: Stuck, nodes: list[Obj], selector: dict[str, str],
                     missing: list[str]) -> tuple[Action | None, str]:
    workload = ctx.owner_object(s.pod)
    if not missing or not nodes:
        words = ("Fix the node affinity so at least one node satisfies it, or label a node "
                 "to match (kubectl label node <node> key=value).")
        return manual(workload or s.pod, words), words
    fixed, notes = _selector_fix(nodes, selector)
    words = (f"Change the nodeSelector ({'; '.join(notes)}) or label a node to match, e.g. "
             f"kubectl label node {_node_name(nodes[0])} {missing[0]}.")
    if workload is None:
        return manual(s.pod, words), words
    path = (*pod_template_path(workload.get("kind") or ""), "nodeSelector")
    action = patch_field(
        workload, path, fixed, tier="medium",
        description=f"fix the nodeSelector of {ctx.owner(s.pod)[1]}: {'; '.join(notes)}",
        validate=[f"a new pod of {ctx.owner(s.pod)[1]} gets PodScheduled=True",
                  f"kubectl rollout status {_workload_ref(ctx, s.pod)} -n {s.ns} succeeds"])
    return action, words


# -- unschedulable-taint ---------------------------------------------------------------
def _parse_taint(text: str) -> tuple[str, str]:
    key, _, value = text.partition(":")
    return key.strip(), value.strip()


def _node_taints(n: Obj) -> list[Obj]:
    return [t for t in _l(_d(n.get("spec")).get("taints")) if isinstance(t, dict)]


def _taint_text(t: Obj) -> str:
    v = t.get("value")
    return f"{t.get('key')}{'=' + str(v) if v else ''}:{t.get('effect')}"


def _toleration_text(t: Obj) -> str:
    key = t.get("key") or "*"
    op = t.get("operator") or "Equal"
    val = f"={t.get('value')}" if t.get("value") else ""
    eff = t.get("effect") or "*"
    secs = t.get("tolerationSeconds")
    return f"{key}{val}:{eff} ({op}{f', {secs}s' if secs is not None else ''})"


def _has_other_reasons(head: str) -> bool:
    return any(p.search(head) for p in (_INSUFFICIENT, _TOO_MANY_PODS, _SELECTOR, *_PVC_ANY))


def _untolerated(s: Stuck) -> list[tuple[str, str]]:
    """Taints (key, value) the scheduler named; routine control-plane taints only when
    nothing else keeps the pod off the other nodes."""
    taints = [_parse_taint(m.group(2)) for m in _TAINT.finditer(s.head)]
    if _CORDONED.search(s.head):
        taints.append((CORDON_TAINT, ""))
    if not taints and _OLD_TAINTS.search(s.head):
        taints.append(("", ""))
    real = [t for t in taints if t[0] not in ROUTINE_TAINTS]
    if real or not taints:
        return list(dict.fromkeys(real))
    return [] if _has_other_reasons(s.head) else list(dict.fromkeys(taints))


def _tainted_nodes(nodes: list[Obj], key: str, value: str) -> list[tuple[Obj, Obj]]:
    out = []
    for n in nodes:
        for t in _node_taints(n):
            if (not key or t.get("key") == key) and (not value or str(t.get("value")) == value):
                out.append((n, t))
        if key == CORDON_TAINT and _d(n.get("spec")).get("unschedulable") is True \
                and not any(t.get("key") == CORDON_TAINT for t in _node_taints(n)):
            out.append((n, {"key": CORDON_TAINT, "effect": "NoSchedule"}))
    return out


@rule("unschedulable-taint", family=FAMILY,
      title="Pod cannot be scheduled: nodes carry taints it does not tolerate",
      severity="critical", rank=25,
      docs="https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/")
def unschedulable_taint(ctx: Context) -> Iterator[Finding]:
    """Taints repel pods without a matching toleration (dedicated, cordoned or sick nodes)."""
    for s in _stuck_pods(ctx):
        taints = _untolerated(s)
        if taints:
            yield _taint_finding(ctx, s, taints)


def _taint_finding(ctx: Context, s: Stuck, taints: list[tuple[str, str]]) -> Finding:
    nodes = _nodes(ctx)
    evidence, first = _signal(ctx, s, (_TAINT, _OLD_TAINTS, _CORDONED))
    found: list[tuple[Obj, Obj]] = []
    for key, value in taints:
        hits = _tainted_nodes(nodes, key, value)
        found.extend(hits)
        for n, t in hits[:MAX_EVENTS]:
            evidence.append(Evidence("object", f"node {_node_name(n)} taint {_taint_text(t)}",
                                     f"Node/{_node_name(n)} spec.taints"))
    tols = [t for t in _l(_d(s.pod.get("spec")).get("tolerations")) if isinstance(t, dict)]
    evidence.append(Evidence("spec", "tolerations: " + (
        "; ".join(_toleration_text(t) for t in tols) if tols else "none"), "spec.tolerations"))
    key, value = taints[0]
    shown = f"{{{key}: {value}}}" if key else "taints"
    summary = (f"Pod {s.ns}/{s.name} cannot be scheduled: nodes have the untolerated taint "
               f"{shown}" + (f" (and {len(taints) - 1} more)" if len(taints) > 1 else "") + ".")
    words, action, extra = _taint_fix(ctx, s, key, value, found)
    commands = (_describe(s),
                "kubectl get nodes -o custom-columns=NAME:.metadata.name,"
                "TAINTS:.spec.taints,UNSCHEDULABLE:.spec.unschedulable", *extra)
    return ctx.finding("unschedulable-taint", s.pod, summary, evidence,
                       Remediation(words, commands, action),
                       confidence=0.9 if key else 0.7, first_seen=first,
                       severity=_severity(ctx, s.pod))


def _taint_fix(ctx: Context, s: Stuck, key: str, value: str, found: list[tuple[Obj, Obj]]
               ) -> tuple[str, Action | None, tuple[str, ...]]:
    """What to do depends on why the node is tainted."""
    node = found[0][0] if found else None
    nname = _node_name(node) if node else "<node>"
    workload = ctx.owner_object(s.pod)
    if key == CORDON_TAINT:
        words = f"Node {nname} is cordoned; uncordon it once its maintenance is over."
        return words, manual(node or s.pod, words, "critical"), (
            f"kubectl uncordon {nname}",)
    if key in NODE_CONDITION_TAINTS:
        words = (f"Node {nname} is tainted by its condition ({key}); repair the node "
                 "rather than tolerating the taint.")
        return words, manual(node or s.pod, words, "critical"), (
            f"kubectl describe node {nname}",)
    if key in ROUTINE_TAINTS or not key:
        words = ("Only control-plane (or tainted) nodes are left for this pod; add a worker "
                 "node or give the pod room on the existing workers.")
        return words, manual(workload or s.pod, words), ()
    effect = str(found[0][1].get("effect") or "NoSchedule") if found else "NoSchedule"
    tol = {"key": key, "operator": "Equal", "value": value, "effect": effect} if value \
        else {"key": key, "operator": "Exists", "effect": effect}
    words = (f"Either the pod belongs on the dedicated nodes (add a toleration for {key}) "
             f"or the taint is stale (remove it from the node).")
    extra = (f"kubectl taint nodes {nname} {key}{'=' + value if value else ''}:{effect}-",)
    if workload is None:
        return words, manual(s.pod, words), extra
    path = (*pod_template_path(workload.get("kind") or ""), "tolerations")
    cur: Any = workload
    for p in path:
        cur = cur.get(p) if isinstance(cur, dict) else None
    existing = [t for t in _l(cur) if isinstance(t, dict)]
    action = patch_field(
        workload, path, [*existing, tol], tier="medium",
        description=f"add a toleration for {key}{'=' + value if value else ''}:{effect} to "
                    f"{ctx.owner(s.pod)[1]}",
        validate=[f"a new pod of {ctx.owner(s.pod)[1]} gets PodScheduled=True"])
    return words, action, extra


# -- unschedulable-pvc --------------------------------------------------------------------
def _claims(pod: Obj) -> list[tuple[str, str]]:
    """(volume, claim name) of the pod, generic ephemeral volumes included."""
    out = []
    pname = md(pod).get("name") or ""
    for v in _l(_d(pod.get("spec")).get("volumes")):
        if not isinstance(v, dict):
            continue
        claim = _d(v.get("persistentVolumeClaim")).get("claimName")
        if isinstance(claim, str) and claim:
            out.append((str(v.get("name")), claim))
        elif isinstance(v.get("ephemeral"), dict):
            out.append((str(v.get("name")), f"{pname}-{v.get('name')}"))
    return out


def _waits_for_consumer(ctx: Context, pvc: Obj) -> bool:
    """A WaitForFirstConsumer claim is Pending by design until its pod is placed."""
    if ctx.events(pvc, reason="ProvisioningFailed"):
        return False
    sc_name = _d(pvc.get("spec")).get("storageClassName")
    sc = ctx.get("StorageClass", None, sc_name) if isinstance(sc_name, str) and sc_name \
        else None
    if sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer":
        return True
    return bool(ctx.events(pvc, reason="WaitForFirstConsumer")
                or ctx.events(pvc, reason="WaitForPodScheduled"))


def _bad_claims(ctx: Context, s: Stuck) -> list[tuple[str, Obj | None]]:
    """Claims that keep the pod off every node: missing, Lost, or Pending for real."""
    bad = []
    for _vol, name in _claims(s.pod):
        pvc = ctx.get("PersistentVolumeClaim", s.ns, name)
        if pvc is None:
            if ctx.state.is_available("PersistentVolumeClaim") \
                    and "PersistentVolumeClaim" in ctx.state.objects:
                bad.append((name, None))
            continue
        phase = _d(pvc.get("status")).get("phase")
        if phase == "Lost" or (phase == "Pending" and not _waits_for_consumer(ctx, pvc)):
            bad.append((name, pvc))
    return bad


@rule("unschedulable-pvc", family=FAMILY,
      title="Pod cannot be scheduled: its PersistentVolumeClaim is missing or unbound",
      severity="critical", rank=10, supersedes=("unschedulable-resources",),
      docs="https://kubernetes.io/docs/concepts/storage/persistent-volumes/")
def unschedulable_pvc(ctx: Context) -> Iterator[Finding]:
    """The scheduler waits for a pod's claims to bind before it places the pod."""
    for s in _stuck_pods(ctx):
        said = any(p.search(s.head) for p in _PVC_ANY)
        bad = _bad_claims(ctx, s)
        if said or bad:
            yield _pvc_finding(ctx, s, bad)


def _pvc_finding(ctx: Context, s: Stuck, bad: list[tuple[str, Obj | None]]) -> Finding:
    evidence, first = _signal(ctx, s, _PVC_ANY)
    named = dict.fromkeys(m.group(1) for m in _PVC_NAMED.finditer(s.head))
    for name, _ in bad:
        named.setdefault(name)
    if not named:
        for _vol, name in _claims(s.pod):
            named.setdefault(name)
    for name in named:
        evidence.extend(_claim_evidence(ctx, s.ns, name))
        pvc = ctx.get("PersistentVolumeClaim", s.ns, name)
        if pvc is not None:
            first = earliest(first, event_first_seen(
                ctx.events(pvc, reason="ProvisioningFailed")))
    names = list(named)
    label = ", ".join(names) if names else "(unnamed)"
    missing = [n for n in names if ctx.get("PersistentVolumeClaim", s.ns, n) is None]
    why = (f"PersistentVolumeClaim {', '.join(missing)} does not exist" if missing
           else f"PersistentVolumeClaim {label} is not bound")
    target = ctx.get("PersistentVolumeClaim", s.ns, names[0]) if names else None
    words = ("Create the missing claim (or fix the claim name in the pod template)." if missing
             else "Get the claim bound (see its pvc-pending finding: StorageClass, "
                  "provisioner, matching PersistentVolume); the pod schedules once it binds.")
    commands = (_describe(s),
                *(f"kubectl describe pvc -n {s.ns} {n}" for n in names[:MAX_EVENTS]),
                "kubectl get storageclass", "kubectl get pv")
    return ctx.finding(
        "unschedulable-pvc", s.pod, f"Pod {s.ns}/{s.name} cannot be scheduled: {why}.",
        evidence, Remediation(words, commands, manual(target or ctx.owner_object(s.pod)
                                                      or s.pod, words)),
        confidence=0.95, first_seen=first, severity=_severity(ctx, s.pod))


def _claim_evidence(ctx: Context, ns: str, name: str) -> list[Evidence]:
    pvc = ctx.get("PersistentVolumeClaim", ns, name)
    if pvc is None:
        return [Evidence("object", f'persistentvolumeclaim "{name}" not found in the snapshot',
                         f"PersistentVolumeClaim/{ns}/{name}")]
    st, spec = _d(pvc.get("status")), _d(pvc.get("spec"))
    out = [Evidence("status", f"phase: {st.get('phase')}",
                    f"PersistentVolumeClaim/{name} status.phase"),
           Evidence("spec", f"storageClassName: {spec.get('storageClassName')}",
                    f"PersistentVolumeClaim/{name} spec.storageClassName")]
    warn = ctx.events(pvc, type="Warning")
    out.extend(event_evidence(e) for e in warn[-1:])
    return out
