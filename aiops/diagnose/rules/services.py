"""Service, Endpoints and Ingress rules: traffic that has nowhere to go.

A Service only routes to pods its selector matches and that are Ready; the
endpoint controller writes the result to Endpoints/EndpointSlices. So an empty
Endpoints object is explained either by the selector (matches nothing) or by
the pods (match, but none is Ready), and an Ingress backend is broken when its
Service is missing, lacks the port, or has no ready endpoints.

`backends()` and `describe_backends()` are shared with the logs family, which
links "connection refused" to the Service the app was calling.
"""

from __future__ import annotations

import json
import math
import re
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from difflib import get_close_matches
from functools import lru_cache
from typing import Any

from aiops.diagnose.actions import patch_field, pointer, scale, target_of
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
from aiops.diagnose.rules._common import as_list as _list
from aiops.diagnose.rules._common import str_map as _str_map

FAMILY = "services"
DOCS_SERVICE = "https://kubernetes.io/docs/concepts/services-networking/service/"
DOCS_DEBUG = "https://kubernetes.io/docs/tasks/debug/debug-application/debug-service/"
DOCS_INGRESS = "https://kubernetes.io/docs/concepts/services-networking/ingress/"

# labels controllers stamp on pods; never part of a Service selector
VOLATILE_LABELS = frozenset({
    "pod-template-hash", "controller-revision-hash", "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index", "pod-template-generation", "job-name", "controller-uid",
    "batch.kubernetes.io/job-name", "batch.kubernetes.io/controller-uid",
    "batch.kubernetes.io/job-completion-index",
})
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")
CANDIDATE_THRESHOLD = 0.5
MAX_PODS_QUOTED = 5


_MEMO: weakref.WeakKeyDictionary[Context, dict[tuple[str, ...], Any]] = \
    weakref.WeakKeyDictionary()


def _memo(ctx: Context, key: tuple[str, ...], fn: Callable[[], Any], obj: Obj | None = None,
          state_key: Any = None) -> Any:
    """Per-diagnosis cache: the logs family asks about the same Service for every
    pod that calls it. What `fn` computes only reads the state, so it is also kept
    on the state: by the identity of `obj` (the Service), or under `state_key`."""
    d = _MEMO.setdefault(ctx, {})
    if key not in d:
        table: dict[Any, tuple[Obj | None, Any]] = ctx.shared(("services", "memo"), dict)
        skey = (key[0], id(obj)) if obj is not None else (key[0], state_key)
        hit = table.get(skey)
        if hit is None or hit[0] is not obj:
            hit = table[skey] = (obj, fn())
        d[key] = hit[1]
    return d[key]


# -- small readers ----------------------------------------------------------------


def _s(v: Any) -> str:
    """A name or namespace as a string ('' when missing or not a string)."""
    return v if isinstance(v, str) else ""


def selector_of(svc: Obj) -> dict[str, str]:
    """The Service's pod selector; {} for selector-less or ExternalName Services."""
    spec = _dict(svc.get("spec"))
    if spec.get("type") == "ExternalName":
        return {}
    return _str_map(spec.get("selector"))


def _fmt_labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())


def _ref(obj: Obj) -> str:
    m = md(obj)
    ns = m.get("namespace")
    return f"{obj.get('kind', '?')}/{ns + '/' if ns else ''}{m.get('name', '?')}"


def _matching(ctx: Context, ns: str, sel: dict[str, str]) -> list[Obj]:
    """Pods of the namespace whose labels satisfy `sel` (like ctx.pods_matching,
    but tolerant of a malformed labels field), from the per-state label index."""
    return ctx.pods_labelled(ns, sel)


def _live(pod: Obj) -> bool:
    """A pod the endpoint controller can still list (not finished, not deleted)."""
    phase = _dict(pod.get("status")).get("phase")
    return phase not in ("Succeeded", "Failed") and not md(pod).get("deletionTimestamp")


def _condition(obj: Obj, ctype: str) -> dict[str, Any]:
    for c in _list(_dict(obj.get("status")).get("conditions")):
        if isinstance(c, dict) and c.get("type") == ctype:
            return c
    return {}


def _pod_ready(pod: Obj) -> bool:
    return _condition(pod, "Ready").get("status") == "True"


# -- what a Service routes to ---------------------------------------------------

@dataclass
class Backends:
    """A Service's endpoint state as the endpoint controller published it."""

    service: Obj
    selector: dict[str, str]
    pods: list[Obj]  # live pods the selector matches
    ready: list[str] = field(default_factory=list)  # "10.244.0.5 (pod-x)"
    not_ready: list[str] = field(default_factory=list)
    not_ready_pods: list[str] = field(default_factory=list)
    source: str = "none"  # Endpoints | EndpointSlice | pods | none
    quote: str = ""  # verbatim-ish state of the endpoint object
    ref: str = ""
    changed: datetime | None = None  # endpoints last-change-trigger-time

    @property
    def has_ready(self) -> bool:
        return bool(self.ready)


def _address(a: Any) -> tuple[str, str]:
    a = _dict(a)
    target = _dict(a.get("targetRef")).get("name") or ""
    ip = a.get("ip") or ""
    if not ip:
        ips = [x for x in _list(a.get("addresses")) if isinstance(x, str)]
        ip = ips[0] if ips else "?"
    return f"{ip} ({target})" if target else str(ip), str(target)


def _read_endpoints(ep: Obj, b: Backends) -> None:
    subsets = ep.get("subsets")
    b.source, b.ref = "Endpoints", f"Endpoints {md(ep).get('namespace')}/{md(ep).get('name')}"
    b.changed = parse_time(_dict(md(ep).get("annotations"))
                           .get("endpoints.kubernetes.io/last-change-trigger-time"))
    if not _list(subsets):
        shown = "[]" if isinstance(subsets, list) else "<none>"
        b.quote = f"{b.ref}: subsets: {shown} (ENDPOINTS <none>: no ready or not-ready address)"
        return
    for s in _list(subsets):
        for a in _list(_dict(s).get("addresses")):
            b.ready.append(_address(a)[0])
        for a in _list(_dict(s).get("notReadyAddresses")):
            text, pod = _address(a)
            b.not_ready.append(text)
            if pod:
                b.not_ready_pods.append(pod)
    b.quote = (f"{b.ref}: addresses: {', '.join(b.ready) or 'none'}; "
               f"notReadyAddresses: {', '.join(b.not_ready) or 'none'}")


def _read_slices(slices: list[Obj], b: Backends) -> None:
    b.source = "EndpointSlice"
    b.ref = "EndpointSlices " + ", ".join(str(md(s).get("name")) for s in slices)
    for s in slices:
        for e in _list(s.get("endpoints")):
            cond = _dict(_dict(e).get("conditions"))
            text, pod = _address(e)
            # a nil `ready` means unknown, which consumers treat as ready
            if cond.get("ready") is False:
                b.not_ready.append(text)
                if pod:
                    b.not_ready_pods.append(pod)
            else:
                b.ready.append(text)
    b.quote = (f"{b.ref}: ready endpoints: {', '.join(b.ready) or 'none'}; "
               f"not ready: {', '.join(b.not_ready) or 'none'}")


def backends(ctx: Context, svc: Obj) -> Backends:
    """Read the Service's Endpoints (or EndpointSlices, or failing both, its pods)."""
    m = md(svc)
    return _memo(ctx, ("backends", _s(m.get("namespace")), _s(m.get("name"))),
                 lambda: _backends(ctx, svc), svc)


def _backends(ctx: Context, svc: Obj) -> Backends:
    m = md(svc)
    ns, name = _s(m.get("namespace")), _s(m.get("name"))
    sel = selector_of(svc)
    pods = [p for p in _matching(ctx, ns, sel) if _live(p)] if sel else []
    b = Backends(svc, sel, pods)
    ep = ctx.get("Endpoints", ns, name)
    slices = [s for s in ctx.in_namespace("EndpointSlice", ns)
              if _dict(md(s).get("labels")).get("kubernetes.io/service-name") == name]
    if ep is not None:
        _read_endpoints(ep, b)
    elif slices:
        _read_slices(slices, b)
    elif sel:
        b.source, b.ref = "pods", f"pods matching {_fmt_labels(sel)}"
        for p in pods:
            ip = _dict(p.get("status")).get("podIP") or "no IP"
            text = f"{ip} ({md(p).get('name')})"
            if _pod_ready(p):
                b.ready.append(text)
            else:
                b.not_ready.append(text)
                b.not_ready_pods.append(str(md(p).get("name")))
        b.quote = (f"no Endpoints object captured; matching pods Ready: "
                   f"{', '.join(b.ready) or 'none'}; not Ready: {', '.join(b.not_ready) or 'none'}")
    return b


def describe_backends(ctx: Context, svc: Obj, b: Backends | None = None) -> str:
    """One sentence on where a Service's traffic goes, for other families to quote."""
    b = b or backends(ctx, svc)
    ref = f"Service {md(svc).get('namespace')}/{md(svc).get('name')}"
    if _dict(svc.get("spec")).get("type") == "ExternalName":
        return f"{ref} is an ExternalName for {_dict(svc.get('spec')).get('externalName')}"
    if b.has_ready:
        return f"{ref} has ready endpoints: {', '.join(b.ready[:3])}"
    if not b.selector:
        return f"{ref} has no selector and no ready endpoints (manual Endpoints)"
    if not b.pods:
        return (f"{ref} has no endpoints: its selector {_fmt_labels(b.selector)} "
                f"matches no pod")
    names = ", ".join(str(md(p).get("name")) for p in b.pods[:MAX_PODS_QUOTED])
    return f"{ref} has no ready endpoints: the pods its selector matches ({names}) are not Ready"


# -- selector near-misses ------------------------------------------------------------

@lru_cache(maxsize=16384)
def _tokens(value: str) -> frozenset[str]:
    return frozenset(t for t in re.split(r"[-_./:]+", value.lower()) if t)


def _pod_tokens(labels: dict[str, str]) -> set[str]:
    out: set[str] = set()
    for k, v in labels.items():
        if k not in VOLATILE_LABELS:
            out |= _tokens(v)
    return out


def _weights(pods: list[Obj]) -> dict[str, float]:
    """Inverse document frequency of label tokens: 'todo' in every pod says little."""
    df: dict[str, int] = {}
    for p in pods:
        for t in _pod_tokens(_str_map(md(p).get("labels"))):
            df[t] = df.get(t, 0) + 1
    n = len(pods)
    return {t: math.log((n + 1) / (c + 0.5)) for t, c in df.items()}


def _pair_score(key: str, value: str, labels: dict[str, str], w: dict[str, float],
                common: set[str]) -> float:
    """How nearly one selector term is satisfied by some label of a pod. Tokens
    no pod carries weigh in full (they are what is missing), except the
    namespace's own words ('todo' in todo-redis), which say nothing."""
    want = _tokens(value)
    total = sum(w.get(t, 0.1 if t in common else math.log(4)) for t in want) or 1.0
    best = 0.0
    for lk, lv in labels.items():
        if lk in VOLATILE_LABELS:
            continue
        if lv == value:
            best = max(best, 1.0 if lk == key else 0.95)
            continue
        shared = want & _tokens(lv)
        if shared:
            overlap = sum(w.get(t, 0.0) for t in shared) / total
            best = max(best, overlap * (0.85 if lk == key else 0.8))
    return best


def _port_matches(svc: Obj, pod: Obj) -> bool:
    """Does any Service targetPort name a port some container of the pod declares?"""
    ports: list[Any] = []
    for c in _list(_dict(pod.get("spec")).get("containers")):
        for p in _list(_dict(c).get("ports")):
            p = _dict(p)
            ports += [x for x in (p.get("containerPort"), p.get("name")) if x is not None]
    for sp in _list(_dict(svc.get("spec")).get("ports")):
        sp = _dict(sp)
        if sp.get("targetPort", sp.get("port")) in ports:
            return True
    return False


def _candidates(ctx: Context, svc: Obj, sel: dict[str, str]) -> list[tuple[float, Obj]]:
    """Live pods in the namespace that nearly match the selector, best first."""
    ns = md(svc).get("namespace") or ""
    pods = [p for p in ctx.in_namespace("Pod", ns) if _live(p)]
    if not pods:
        return []
    w = _memo(ctx, ("weights", _s(md(svc).get("namespace"))), lambda: _weights(pods),
              state_key=ns)
    common = _tokens(_s(md(svc).get("namespace")))
    scored = []
    for p in pods:
        labels = _str_map(md(p).get("labels"))
        s = sum(_pair_score(k, v, labels, w, common) for k, v in sel.items()) / len(sel)
        if s >= CANDIDATE_THRESHOLD - 0.1 and _port_matches(svc, p):
            s += 0.1
        if s >= CANDIDATE_THRESHOLD:
            scored.append((min(s, 1.0), p))
    scored.sort(key=lambda x: (-x[0], str(md(x[1]).get("name"))))
    return scored


def _template_labels(workload: Obj) -> dict[str, str]:
    spec = _dict(workload.get("spec"))
    if workload.get("kind") == "CronJob":
        spec = _dict(_dict(spec.get("jobTemplate")).get("spec"))
    return _str_map(_dict(_dict(spec.get("template")).get("metadata")).get("labels"))


def proposed_selector(ctx: Context, pod: Obj) -> tuple[dict[str, str], Obj | None]:
    """The selector that would pick `pod`'s workload: its matchLabels (stable across
    rollouts, a subset of the pod template labels), else the template labels."""
    owner = ctx.owner_object(pod)
    if owner is not None:
        match = _str_map(_dict(_dict(owner.get("spec")).get("selector")).get("matchLabels"))
        labels = match or _template_labels(owner)
    else:
        labels = _str_map(md(pod).get("labels"))
    return {k: v for k, v in labels.items() if k not in VOLATILE_LABELS}, owner


def _workload_selected(ctx: Context, ns: str, sel: dict[str, str]) -> Obj | None:
    """A workload whose pod template the selector matches (pods may just not exist);
    remembered per namespace and selector on the state."""
    table: dict[tuple[str, frozenset[tuple[str, str]]], Obj | None] = ctx.shared(
        ("services", "workload-selected"), dict)
    key = (ns, frozenset(sel.items()))
    if key not in table:
        table[key] = _find_workload(ctx, ns, sel)
    return table[key]


def _find_workload(ctx: Context, ns: str, sel: dict[str, str]) -> Obj | None:
    for kind in WORKLOAD_KINDS:
        for w in ctx.in_namespace(kind, ns):
            if kind == "ReplicaSet" and _list(md(w).get("ownerReferences")):
                continue
            if _template_selected(w, sel):
                return w
    return None


def _template_selected(workload: Obj, sel: dict[str, str]) -> bool:
    """`sel` matches the workload's pod template labels (`_template_labels`, not
    empty), read in place: every workload of a namespace is asked."""
    spec = workload.get("spec")
    if workload.get("kind") == "CronJob":
        job = spec.get("jobTemplate") if isinstance(spec, dict) else None
        spec = job.get("spec") if isinstance(job, dict) else None
    template = spec.get("template") if isinstance(spec, dict) else None
    m = template.get("metadata") if isinstance(template, dict) else None
    labels = m.get("labels") if isinstance(m, dict) else None
    if not isinstance(labels, dict) or not labels:
        return False
    if not sel:  # `all` holds: the string labels must not be empty
        return bool(_str_map(labels))
    # a label equal to a string value is a string one
    return all(labels.get(k) == v for k, v in sel.items())


# -- evidence ------------------------------------------------------------------------

def _selector_evidence(svc: Obj, sel: dict[str, str]) -> Evidence:
    return Evidence("spec", f"selector: {json.dumps(sel, sort_keys=True)}",
                    f"{_ref(svc)} spec.selector")


def _endpoints_evidence(b: Backends) -> Evidence:
    if b.source == "none":
        return Evidence("object", "no Endpoints or EndpointSlice object for this Service",
                        "Endpoints", b.changed)
    return Evidence("object", b.quote, b.ref, b.changed)


def _labels_evidence(pod: Obj, score: float | None = None) -> Evidence:
    labels = {k: v for k, v in _str_map(md(pod).get("labels")).items()
              if k not in VOLATILE_LABELS}
    near = f" (similarity {score:.2f})" if score is not None else ""
    return Evidence("object", f"pod {md(pod).get('name')} labels: "
                    f"{json.dumps(labels, sort_keys=True)}{near}",
                    f"{_ref(pod)} metadata.labels")


def _created(obj: Obj) -> datetime | None:
    return parse_time(md(obj).get("creationTimestamp"))


def _svc_commands(ns: str, name: str, sel: dict[str, str]) -> list[str]:
    return [f"kubectl get endpoints -n {ns} {name} -o yaml",
            f"kubectl get endpointslices -n {ns} -l kubernetes.io/service-name={name}",
            f"kubectl describe service -n {ns} {name}",
            f"kubectl get pods -n {ns} -l {_fmt_labels(sel)} -o wide",
            f"kubectl get pods -n {ns} --show-labels"]


# -- suspects: what the Service pre-passes keep ------------------------------------------

_UNMATCHED = 1  # `_unmatched`: the selector matches no live pod
_NO_READY = 2  # `_without_ready`: a selector and no ready backend


def _suspects(ctx: Context, flag: int) -> Callable[[Obj], bool]:
    """The pre-pass test of a Service: is it `_unmatched` (flag _UNMATCHED) or
    `_without_ready` (_NO_READY)? A whole-cluster diagnosis reads every Service once
    for both flags (`_suspicions`); a narrower one reads the few it asks about."""
    if not ctx.whole_cluster:
        return lambda svc: bool(_suspicion(ctx, svc, flag) & flag)
    table: dict[int, tuple[Obj, int]] | None = None

    def test(svc: Obj) -> bool:
        nonlocal table
        if table is None:
            table = _suspicions(ctx)
        hit = table.get(id(svc))
        return bool((hit[1] if hit is not None and hit[0] is svc
                     else _suspicion(ctx, svc, flag)) & flag)
    return test


def _suspicion_of(ctx: Context, svc: Obj, flag: int) -> int:
    """`_suspicion(ctx, svc, flag) & flag`, from the table when there is one."""
    if ctx.whole_cluster:
        hit = _suspicions(ctx).get(id(svc))
        if hit is not None and hit[0] is svc:
            return hit[1] & flag
    return _suspicion(ctx, svc, flag) & flag


def _suspicions(ctx: Context) -> dict[int, tuple[Obj, int]]:
    """id -> (Service, its `_suspicion` flags) for every Service of the state."""
    def build() -> dict[int, tuple[Obj, int]]:
        names = (ctx.state.named("Endpoints"), ctx.state.named("Pod"))
        both = _UNMATCHED | _NO_READY
        return {id(s): (s, _suspicion(ctx, s, both, names))
                for s in ctx.cluster_objects("Service")}
    return ctx.shared(("services", "suspicion"), build)


Names = dict[tuple[str, str], Obj]


def _suspicion(ctx: Context, svc: Obj, want: int = _UNMATCHED | _NO_READY,
               names: tuple[Names, Names] | None = None) -> int:
    """`_unmatched` and `_without_ready` (those `want`ed) as flags, from one look at
    its Endpoints: most Services of a cluster list a ready address (so they have a
    ready backend) of a live pod their selector matches (so it matches one), which
    settles both without parsing the selector or matching labels. Inlined: this
    runs for every Service of the cluster. `names`: the state's Endpoints and Pods
    by (namespace, name), when the caller looks up many."""
    m = svc.get("metadata")
    if not isinstance(m, dict):
        return 0
    name, ns = m.get("name"), m.get("namespace")
    if not isinstance(name, str) or not name:
        return 0  # both need a name
    ns = ns if isinstance(ns, str) else ""
    spec = svc.get("spec")
    if not isinstance(spec, dict) or spec.get("type") == "ExternalName":
        return 0  # `selector_of` is empty: neither
    sel = spec.get("selector")
    if not isinstance(sel, dict) or not sel:
        return 0
    endpoints, pods = names or (ctx.state.named("Endpoints"), ctx.state.named("Pod"))
    # a dict whenever found: only a non-dict object is indexed, under ("", "")
    ep = endpoints.get((ns, name))
    ready: bool | None = None  # `_endpoints_ready`
    listed = False  # the Endpoints name a live pod `sel` matches
    if ep is not None:
        ready = False
        subsets = ep.get("subsets")
        for sub in subsets if isinstance(subsets, list) else ():
            if not isinstance(sub, dict):
                continue
            addresses = sub.get("addresses")
            if isinstance(addresses, list) and addresses:
                ready = True
                listed = listed or _lists_match(pods, ns, addresses, sel)
                if listed:
                    return 0
            if not listed:
                addresses = sub.get("notReadyAddresses")
                listed = isinstance(addresses, list) and _lists_match(pods, ns, addresses, sel)
    flags = 0
    if want & _UNMATCHED and not listed and _unmatched(ctx, svc):
        flags |= _UNMATCHED
    # Endpoints without an address: no ready backend, so the selector decides
    if want & _NO_READY and (_without_ready(ctx, svc) if ready is None
                             else not ready and selector_of(svc)):
        flags |= _NO_READY
    return flags


def _lists_match(pods: Names, ns: str, addresses: list[Any],
                 sel: dict[Any, Any]) -> bool:
    """Some address names (targetRef) a pod of `ns` that `_live_match` accepts."""
    for a in addresses:
        ref = a.get("targetRef") if isinstance(a, dict) else None
        pod = ref.get("name") if isinstance(ref, dict) else None
        if isinstance(pod, str) and pod and _live_match(pods.get((ns, pod)), sel):
            return True
    return False


def _live_match(pod: Any, sel: dict[Any, Any]) -> bool:
    """`pod` is live (`_live`) and its labels include every string pair of `sel`
    (as `Context.pods_labelled` lists it: a label equal to a string is one), so a
    non-empty `selector_of` matches it."""
    if not isinstance(pod, dict):
        return False
    m = pod.get("metadata")
    if not isinstance(m, dict) or m.get("deletionTimestamp"):
        return False
    status = pod.get("status")
    if isinstance(status, dict) and status.get("phase") in ("Succeeded", "Failed"):
        return False
    labels = m.get("labels")
    if not isinstance(labels, dict):
        return False
    for k, v in sel.items():
        if isinstance(k, str) and isinstance(v, str) and labels.get(k) != v:
            return False
    return True


# -- rules ----------------------------------------------------------------------------

def _selector_patch(svc: Obj, new: dict[str, str], ns: str, name: str,
                    owner_ref: str) -> Action:
    return patch_field(
        svc, ("spec", "selector"), new,
        description=f"Point Service {ns}/{name} at {owner_ref}: set spec.selector to "
                    f"{_fmt_labels(new)}",
        tier="medium",
        validate=[f"kubectl get endpoints -n {ns} {name} lists ready addresses",
                  f"kubectl get pods -n {ns} -l {_fmt_labels(new)} lists the pods of "
                  f"{owner_ref}"])


@rule("service-selector-mismatch", family=FAMILY, title="Service selector matches no pod",
      severity="critical", docs=DOCS_DEBUG, rank=10, supersedes=("service-no-endpoints",))
def service_selector_mismatch(ctx: Context) -> Iterator[Finding]:
    """A selector matching nothing leaves the Service without endpoints; the
    usual cause is a label typo or a different labelling convention, so look
    for the pods that nearly match and propose their workload's labels."""
    for svc in ctx.objects_where("Service", "services:unmatched",
                                 _suspects(ctx, _UNMATCHED)):
        sel = selector_of(svc)
        m = md(svc)
        ns, name = _s(m.get("namespace")), _s(m.get("name"))
        if not sel or not name:
            continue
        if any(_live(p) for p in _matching(ctx, ns, sel)):
            continue
        if _workload_selected(ctx, ns, sel) is not None:
            continue  # the selector is right; the workload has no pods (no-endpoints)
        yield _mismatch_finding(ctx, svc, ns, name, sel)


def _unmatched(ctx: Context, svc: Obj) -> bool:
    """A named Service whose selector matches no live pod (what `_suspicion` decides
    faster for a whole cluster)."""
    sel = selector_of(svc)
    m = md(svc)
    return bool(sel and _s(m.get("name"))) and not any(
        _live(p) for p in _matching(ctx, _s(m.get("namespace")), sel))


@dataclass(frozen=True)
class SelectorFix:
    """The nearest workload for a selector that matches nothing, and the patch."""

    pod: Obj  # best near-matching pod
    score: float
    selector: dict[str, str]  # proposed spec.selector
    owner_ref: str  # e.g. "Deployment/todo/redis"
    action: Action | None


def selector_fix(ctx: Context, svc: Obj) -> tuple[list[tuple[float, Obj]], SelectorFix | None]:
    """Near-matching pods of a selector-mismatched Service and the proposed fix."""
    m = md(svc)
    return _memo(ctx, ("fix", _s(m.get("namespace")), _s(m.get("name"))),
                 lambda: _selector_fix(ctx, svc), svc)


def _selector_fix(ctx: Context, svc: Obj) -> tuple[list[tuple[float, Obj]], SelectorFix | None]:
    m = md(svc)
    ns, name = _s(m.get("namespace")), _s(m.get("name"))
    sel = selector_of(svc)
    if not sel or any(_live(p) for p in _matching(ctx, ns, sel)) \
            or _workload_selected(ctx, ns, sel) is not None:
        return [], None  # the selector is not the problem
    cands = _candidates(ctx, svc, sel)
    if not cands:
        return cands, None
    score, best = cands[0]
    new, owner = proposed_selector(ctx, best)
    owner_ref = _ref(owner) if owner is not None else _ref(best)
    action = None
    if new and new != sel and any(_live(p) for p in _matching(ctx, ns, new)):
        action = _selector_patch(svc, new, ns, name, owner_ref)
    return cands, SelectorFix(best, score, new, owner_ref, action)


def _mismatch_finding(ctx: Context, svc: Obj, ns: str, name: str,
                      sel: dict[str, str]) -> Finding:
    b = backends(ctx, svc)
    cands, fx = selector_fix(ctx, svc)
    evidence = [_selector_evidence(svc, sel), _endpoints_evidence(b)]
    evidence += [_labels_evidence(p, s) for s, p in cands[:MAX_PODS_QUOTED]]
    evidence += [event_evidence(e) for e in ctx.events(svc, type="Warning")[-3:]]
    commands = _svc_commands(ns, name, sel)
    first = b.changed or _created(svc)
    if fx is not None:
        new = fx.selector
        if fx.action is not None:
            patch = json.dumps({"spec": {"selector": {**dict.fromkeys(sel), **new}}},
                               sort_keys=True)
            commands.append(f"kubectl patch service -n {ns} {name} --type=merge -p '{patch}'")
        summary = (f"Service {ns}/{name} selects no pod: its selector {_fmt_labels(sel)} "
                   f"matches nothing, while pod {md(fx.pod).get('name')} of {fx.owner_ref} "
                   f"carries {_fmt_labels(new) or 'similar labels'}; point the selector "
                   f"at those labels.")
        fix = (f"Change spec.selector of Service {ns}/{name} from {_fmt_labels(sel)} to "
               f"{_fmt_labels(new)} (the labels {fx.owner_ref} gives its pods), or relabel "
               f"the pod template; the Endpoints fill as soon as a Ready pod matches.")
        confidence, severity = min(0.95, 0.7 + 0.25 * fx.score), "critical"
        action = fx.action
    else:
        summary = (f"Service {ns}/{name} selects no pod: no pod in namespace {ns} carries "
                   f"{_fmt_labels(sel)} and none is labelled similarly; deploy its backend "
                   f"or fix the selector.")
        fix = (f"No pod or workload in {ns} matches {_fmt_labels(sel)}: deploy the backend "
               f"workload with these labels, or correct the selector.")
        confidence, severity, action = 0.8, "warning", None
    return ctx.finding("service-selector-mismatch", svc, summary, evidence,
                       Remediation(fix, tuple(commands), action),
                       confidence=confidence, first_seen=first, severity=severity)


def _why_not_ready(ctx: Context, pod: Obj) -> tuple[str, list[Evidence], datetime | None]:
    """Why one pod is not an endpoint: its phase, a waiting container, a failing
    readiness probe, or the Ready condition's own message."""
    name = md(pod).get("name")
    status = _dict(pod.get("status"))
    phase = status.get("phase") or "Unknown"
    ev: list[Evidence] = []
    ready = _condition(pod, "Ready")
    t = parse_time(ready.get("lastTransitionTime"))
    if phase == "Pending":
        sched = _condition(pod, "PodScheduled")
        if sched.get("status") == "False":
            msg = f"{sched.get('reason')}: {sched.get('message')}"
            ev.append(Evidence("status", f"PodScheduled=False {msg}",
                               f"{_ref(pod)} status.conditions[PodScheduled]"))
            return f"{name} is Pending ({msg})", ev, t
    for c in ctx.containers(pod):
        w = c.waiting
        if w.get("reason") and w.get("reason") not in ("ContainerCreating", "PodInitializing"):
            text = f"{w.get('reason')}" + (f": {w.get('message')}" if w.get("message") else "")
            ev.append(Evidence("status", f"waiting: {text}",
                               f"{_ref(pod)} {c.path}.state.waiting"))
            return f"{name} container {c.name} is waiting ({w.get('reason')})", ev, t
    probes = [e for e in ctx.events(pod, reason="Unhealthy")
              if str(e.get("message") or e.get("note") or "").startswith("Readiness probe")]
    if probes:
        ev.append(event_evidence(probes[-1]))
        msg = str(probes[-1].get("message") or probes[-1].get("note") or "")
        return f"{name} fails its readiness probe ({msg[:160]})", ev, \
            earliest(t, event_first_seen(probes))
    if ready:
        text = f"Ready={ready.get('status')} {ready.get('reason') or ''} " \
               f"{ready.get('message') or ''}".strip()
        ev.append(Evidence("status", text, f"{_ref(pod)} status.conditions[Ready]", t))
        return f"{name} is not Ready ({ready.get('reason') or phase})", ev, t
    return f"{name} is {phase} with no Ready condition", ev, t


@rule("service-no-endpoints", family=FAMILY, title="Service has no ready endpoints",
      severity="critical", docs=DOCS_DEBUG, rank=12)
def service_no_endpoints(ctx: Context) -> Iterator[Finding]:
    """The selector is right but nothing is Ready behind it: name the pods and why,
    since that is where the fix is."""
    for svc in ctx.objects_where("Service", "services:no-ready",
                                 _suspects(ctx, _NO_READY)):
        sel = selector_of(svc)
        m = md(svc)
        ns, name = _s(m.get("namespace")), _s(m.get("name"))
        if not sel or not name:
            continue
        b = backends(ctx, svc)
        if b.has_ready:
            continue
        if b.pods:
            if not any(_pod_ready(p) for p in b.pods):  # else: a stale Endpoints capture
                yield _not_ready_finding(ctx, svc, ns, name, b)
            continue
        workload = _workload_selected(ctx, ns, sel)
        if workload is not None:
            yield _no_pods_finding(ctx, svc, ns, name, b, workload)


def _without_ready(ctx: Context, svc: Obj) -> bool:
    """A named Service with a selector and no ready backend (what `_suspicion`
    decides faster for a whole cluster)."""
    return bool(selector_of(svc) and _s(md(svc).get("name"))) and not _has_ready(ctx, svc)


def _endpoints_ready(ctx: Context, ns: str, name: str) -> bool | None:
    """`_has_ready` when the Service's Endpoints object decides it (whether some
    subset lists an address), else None."""
    ep = ctx.get("Endpoints", ns, name)
    if ep is None:
        return None
    return any(_list(_dict(s).get("addresses")) for s in _list(ep.get("subsets")))


def _has_ready(ctx: Context, svc: Obj) -> bool:
    """`backends(ctx, svc).has_ready`, decided from the same source in the same order
    (Endpoints, else EndpointSlices, else the matching pods) without quoting it: for
    the many healthy Services of a cluster."""
    m = md(svc)
    ns, name = _s(m.get("namespace")), _s(m.get("name"))
    ready = _endpoints_ready(ctx, ns, name)
    if ready is not None:
        return ready
    slices = [s for s in ctx.in_namespace("EndpointSlice", ns)
              if _dict(md(s).get("labels")).get("kubernetes.io/service-name") == name]
    if slices:
        return any(_dict(_dict(e).get("conditions")).get("ready") is not False
                   for s in slices for e in _list(s.get("endpoints")))
    sel = selector_of(svc)
    return bool(sel) and any(_live(p) and _pod_ready(p) for p in _matching(ctx, ns, sel))


def _not_ready_finding(ctx: Context, svc: Obj, ns: str, name: str, b: Backends) -> Finding:
    reasons, evidence, times = [], [_selector_evidence(svc, b.selector), _endpoints_evidence(b)], []
    for p in b.pods[:MAX_PODS_QUOTED]:
        why, ev, t = _why_not_ready(ctx, p)
        reasons.append(why)
        evidence += ev
        times.append(t)
    # the Service lost its last endpoint when the last pod went unready
    known = [t for t in times if t is not None]
    first = max(known) if known else b.changed
    pods = ", ".join(str(md(p).get("name")) for p in b.pods[:MAX_PODS_QUOTED])
    summary = (f"Service {ns}/{name} has no ready endpoints: its selector matches "
               f"{len(b.pods)} pod(s) but none is Ready ({reasons[0]}).")
    commands = _svc_commands(ns, name, b.selector)[:2] + [
        f"kubectl describe pod -n {ns} {md(p).get('name')}" for p in b.pods[:3]]
    fix = (f"Fix the pods behind Service {ns}/{name} ({pods}): " + "; ".join(reasons)
           + ". The Service routes to them as soon as one is Ready.")
    return ctx.finding("service-no-endpoints", svc, summary, evidence,
                       Remediation(fix, tuple(commands)), confidence=0.9, first_seen=first)


def _no_pods_finding(ctx: Context, svc: Obj, ns: str, name: str, b: Backends,
                     workload: Obj) -> Finding:
    spec = _dict(workload.get("spec"))
    replicas = spec.get("replicas")
    wref = _ref(workload)
    evidence = [_selector_evidence(svc, b.selector), _endpoints_evidence(b),
                Evidence("spec", f"replicas: {replicas}", f"{wref} spec.replicas")]
    action = None
    if replicas == 0 and workload.get("kind") in ("Deployment", "StatefulSet"):
        action = scale(workload, 1, description=f"Scale {wref} from 0 to 1 replica so "
                                                f"Service {ns}/{name} has an endpoint")
        why = f"{wref} is scaled to 0 replicas"
    else:
        why = f"{wref} matches the selector but has no pods"
    summary = f"Service {ns}/{name} has no endpoints: {why}."
    commands = [*_svc_commands(ns, name, b.selector)[:1],
                f"kubectl describe {str(workload.get('kind')).lower()} -n {ns} "
                f"{md(workload).get('name')}"]
    if action is not None:
        commands.append(f"kubectl scale {str(workload.get('kind')).lower()}/"
                        f"{md(workload).get('name')} -n {ns} --replicas=1")
    return ctx.finding("service-no-endpoints", svc, summary, evidence,
                       Remediation(f"Give Service {ns}/{name} a backend: {why}.",
                                   tuple(commands), action),
                       confidence=0.8, first_seen=b.changed, severity="warning")


# -- ingress ------------------------------------------------------------------------

@dataclass(frozen=True)
class _Backend:
    where: str  # "rule host=x path=/api" or "defaultBackend"
    parts: tuple[Any, ...]  # JSON path to the backend object inside the Ingress
    service: str
    port: Any  # number, name or None
    v1beta1: bool


def _ingress_backends(ing: Obj) -> Iterator[_Backend]:
    spec = _dict(ing.get("spec"))
    for key in ("defaultBackend", "backend"):
        b = _backend(_dict(spec.get(key)), "defaultBackend", ("spec", key))
        if b:
            yield b
    for i, r in enumerate(_list(spec.get("rules"))):
        r = _dict(r)
        for j, p in enumerate(_list(_dict(r.get("http")).get("paths"))):
            p = _dict(p)
            where = f"rule host={r.get('host') or '*'} path={p.get('path') or '/'}"
            b = _backend(_dict(p.get("backend")), where,
                         ("spec", "rules", i, "http", "paths", j, "backend"))
            if b:
                yield b


def _backend(b: dict[str, Any], where: str, parts: tuple[Any, ...]) -> _Backend | None:
    svc = _dict(b.get("service"))
    if svc.get("name"):
        port = _dict(svc.get("port"))
        return _Backend(where, parts, str(svc["name"]), port.get("number", port.get("name")),
                        False)
    if b.get("serviceName"):  # extensions/v1beta1, networking.k8s.io/v1beta1
        return _Backend(where, parts, str(b["serviceName"]), b.get("servicePort"), True)
    return None


def _port_ok(svc: Obj, port: Any) -> bool:
    ports = [_dict(p) for p in _list(_dict(svc.get("spec")).get("ports"))]
    if port is None:
        return bool(ports)
    return any(port in (p.get("port"), p.get("name")) or str(port) == str(p.get("port"))
               for p in ports)


def _exposed(svc: Obj) -> str:
    ports = [_dict(p) for p in _list(_dict(svc.get("spec")).get("ports"))]
    return ", ".join(f"{p.get('port')}" + (f" ({p.get('name')})" if p.get("name") else "")
                     for p in ports) or "none"


def _replace(obj: Obj, parts: tuple[Any, ...], new: Any, description: str) -> Action | None:
    """A replace patch at a path that may cross list indices (patch_field walks
    dicts only), with its exact inverse."""
    cur: Any = obj
    for p in parts:
        if isinstance(cur, dict):
            cur = cur.get(p)
        elif isinstance(cur, list) and isinstance(p, int) and 0 <= p < len(cur):
            cur = cur[p]
        else:
            return None
    if cur is None:
        return None
    path = pointer(*parts)
    return Action("patch", target_of(obj), description, "medium",
                  [{"op": "replace", "path": path, "value": new}],
                  [{"op": "replace", "path": path, "value": cur}], [])


@dataclass
class _Problem:
    backend: _Backend
    text: str
    critical: bool
    fix: Action | None = None


def _check_backend(ctx: Context, ing: Obj, ns: str, be: _Backend) -> _Problem | None:
    svc = ctx.get("Service", ns, be.service)
    port = f" port {be.port}" if be.port is not None else ""
    if svc is None:
        names = [str(md(s).get("name")) for s in ctx.in_namespace("Service", ns)]
        close = get_close_matches(be.service, names, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        fix = None
        if close:
            key = "serviceName" if be.v1beta1 else "service"
            parts = (*be.parts, key) if be.v1beta1 else (*be.parts, key, "name")
            fix = _replace(ing, parts, close[0],
                           f"Point {be.where} of Ingress {ns}/{md(ing).get('name')} at "
                           f"Service {close[0]}")
        return _Problem(be, f"{be.where}: Service {ns}/{be.service} does not exist{hint}",
                        True, fix)
    if not _port_ok(svc, be.port):
        fix = None
        ports = [_dict(p) for p in _list(_dict(svc.get("spec")).get("ports"))]
        if len(ports) == 1 and not be.v1beta1 and isinstance(be.port, int) \
                and isinstance(ports[0].get("port"), int):
            fix = _replace(ing, (*be.parts, "service", "port", "number"), ports[0]["port"],
                           f"Use port {ports[0]['port']} of Service {be.service} in "
                           f"{be.where} of Ingress {ns}/{md(ing).get('name')}")
        return _Problem(be, f"{be.where}: Service {ns}/{be.service} does not expose{port} "
                            f"(it exposes {_exposed(svc)})", True, fix)
    # `svc` is named be.service: _NO_READY is "a selector and no ready backend"
    if _suspicion_of(ctx, svc, _NO_READY):  # so healthy Services build no `Backends`
        b = backends(ctx, svc)
        if not b.has_ready and b.source != "none":
            return _Problem(be, f"{be.where}: {describe_backends(ctx, svc, b)}", False)
    return None


@rule("ingress-backend-missing", family=FAMILY, title="Ingress routes to a missing backend",
      severity="critical", docs=DOCS_INGRESS, rank=10)
def ingress_backend_missing(ctx: Context) -> Iterator[Finding]:
    """An Ingress path whose Service is missing, lacks the port, or has no ready
    endpoints answers 503/404 at the controller; name each broken backend."""
    for ing in ctx.objects_where("Ingress", "services:ingress", lambda i: _broken_ingress(ctx, i)):
        m = md(ing)
        ns, name = _s(m.get("namespace")), _s(m.get("name"))
        problems = [p for be in _ingress_backends(ing)
                    if (p := _check_backend(ctx, ing, ns, be)) is not None]
        if problems:
            yield _ingress_finding(ctx, ing, ns, name, problems)


def _broken_ingress(ctx: Context, ing: Obj) -> bool:
    """Some backend of the Ingress has a problem (`_check_backend`). Most Ingresses
    plainly route to healthy Services (`_plainly_routed`): they are settled without
    building their backends."""
    ns = _s(md(ing).get("namespace"))
    if _plainly_routed(ctx, ing, ns):
        return False
    return any(_check_backend(ctx, ing, ns, be) is not None for be in _ingress_backends(ing))


def _plainly_routed(ctx: Context, ing: Obj, ns: str) -> bool:
    """True when every backend `_ingress_backends` finds passes `_check_backend`, read
    straight from the spec; False when one may not, or the spec is unusual (then the
    full check decides)."""
    spec = ing.get("spec")
    if not isinstance(spec, dict):
        return False
    for key in ("defaultBackend", "backend"):
        b = spec.get(key)
        if b is not None and not _plainly_served(ctx, ns, b):
            return False
    rules = spec.get("rules")
    if rules is None:
        return True
    if not isinstance(rules, list):
        return False
    for r in rules:
        http = r.get("http") if isinstance(r, dict) else None
        paths = http.get("paths") if isinstance(http, dict) else None
        if not isinstance(paths, list):
            return False
        for p in paths:
            if not isinstance(p, dict) or not _plainly_served(ctx, ns, p.get("backend")):
                return False
    return True


def _plainly_served(ctx: Context, ns: str, b: Any) -> bool:
    """The backend `_backend` reads from `b` (if any) names a Service of `ns` that
    exposes its port (by number or name; any port when none is given) and has a
    ready backend: `_check_backend` finds no problem. False: it may find one."""
    if not isinstance(b, dict):
        return False
    ref = b.get("service")
    if isinstance(ref, dict) and ref.get("name"):
        name, port = ref["name"], ref.get("port")
        port = port.get("number", port.get("name")) if isinstance(port, dict) else None
    elif b.get("serviceName"):
        name, port = b["serviceName"], b.get("servicePort")
    else:
        return True  # no backend there
    svc = ctx.get("Service", ns, name) if isinstance(name, str) else None
    if not isinstance(svc, dict):
        return False
    spec = svc.get("spec")
    ports = spec.get("ports") if isinstance(spec, dict) else None
    if not isinstance(ports, list) or not ports:
        return False
    if port is not None and not any(isinstance(p, dict) and port in (p.get("port"), p.get("name"))
                                    for p in ports):
        return False
    return not _suspicion_of(ctx, svc, _NO_READY)


def _ingress_finding(ctx: Context, ing: Obj, ns: str, name: str,
                     problems: list[_Problem]) -> Finding:
    evidence = [Evidence("spec", p.text, f"{_ref(ing)} "
                         + ".".join(str(x) for x in p.backend.parts))
                for p in problems]
    warnings = ctx.events(ing, type="Warning")
    evidence += [event_evidence(e) for e in warnings[-3:]]
    critical = any(p.critical for p in problems)
    fixes = [p.fix for p in problems if p.fix is not None]
    action = fixes[0] if len(fixes) == 1 and len(problems) == 1 else None
    if action is not None:
        action = Action(action.kind, action.target, action.description, action.tier,
                        action.patch, action.inverse,
                        [f"kubectl describe ingress -n {ns} {name} shows the backend "
                         f"with endpoints", "requests through the Ingress no longer "
                         "return 503"])
    services = sorted({p.backend.service for p in problems})
    commands = [f"kubectl describe ingress -n {ns} {name}",
                f"kubectl get service -n {ns}",
                *[f"kubectl get endpoints -n {ns} {s}" for s in services[:3]],
                f"kubectl edit ingress -n {ns} {name}"]
    summary = (f"Ingress {ns}/{name} routes to a broken backend: {problems[0].text}"
               + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "") + ".")
    fix = ("Point each broken path at an existing Service and one of its ports, or fix "
           "the Service so it has ready endpoints: " + "; ".join(p.text for p in problems[:4]))
    first = event_first_seen(warnings) or _created(ing)
    return ctx.finding("ingress-backend-missing", ing, summary, evidence,
                       Remediation(fix, tuple(commands), action),
                       confidence=0.9 if critical else 0.75, first_seen=first,
                       severity="critical" if critical else "warning")

