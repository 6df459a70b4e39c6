"""Workload rules: controllers that cannot reach their desired state.

These report on the controller object (Deployment, ReplicaSet, Job, CronJob)
because the fix lives there: roll back the template, fit it into the quota,
repair the Job. Pod-level causes (crash loop, image pull...) are quoted as
evidence but diagnosed by the pod rules.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from aiops.diagnose.actions import manual, patch_field, rollout_undo, set_container_fields
from aiops.diagnose.context import (
    NOT_READY,
    Context,
    Obj,
    earliest,
    event_evidence,
    event_first_seen,
    log_evidence,
    md,
    parse_time,
    status_evidence,
)
from aiops.diagnose.finding import Action, Evidence, Finding, Remediation
from aiops.diagnose.registry import rule
from aiops.quantity import to_float

FAMILY = "workloads"
REVISION = "deployment.kubernetes.io/revision"
MAX_PODS = 4
LOG_TAIL = 5
STARTUP_GRACE_S = 300  # not-ready pods younger than this may simply be starting
FAILING_WAITING = frozenset({
    "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName",
    "ErrImageNeverPull", "CreateContainerConfigError", "CreateContainerError",
    "RunContainerError", "PreStartHookError", "PostStartHookError",
})

_QUOTA = re.compile(r"exceeded quota: ([^,\s]+), requested: (.*?), used: (.*?), limited: (\S.*?)"
                    r"(?:$|\n)")
_QUOTA_SPECIFY = re.compile(r"failed quota: ([^:\s]+): (must specify [^\n]*)")
_LIMIT = re.compile(r"(maximum|minimum) (\S+) usage per (Container|Pod) is (\S+), but "
                    r"(limit|request) is (\S+?)\.?(?:$|\s|,)")
_RATIO = re.compile(r"(\S+) max limit to request ratio per (Container|Pod) is (\S+), but "
                    r"provided ratio is (\S+?)\.?(?:$|\s|,)")
_ADMISSION = (_QUOTA, _QUOTA_SPECIFY, _LIMIT, _RATIO)


# -- defensive accessors ------------------------------------------------------------------
def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _l(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _name(o: Obj) -> str:
    n = md(o).get("name")
    return n if isinstance(n, str) else ""


def _ns(o: Obj) -> str:
    n = md(o).get("namespace")
    return n if isinstance(n, str) else ""


def _condition(obj: Obj, ctype: str) -> Obj:
    for c in _l(_d(obj.get("status")).get("conditions")):
        if isinstance(c, dict) and c.get("type") == ctype:
            return c
    return {}


def _cond_text(c: Obj) -> str:
    return f"{c.get('status')} {c.get('reason') or ''}: {c.get('message') or ''}".strip()


def _controller(o: Obj) -> tuple[str, str] | None:
    for r in _l(md(o).get("ownerReferences")):
        if isinstance(r, dict) and r.get("controller") is True:
            kind, name = r.get("kind"), r.get("name")
            if isinstance(kind, str) and isinstance(name, str):
                return kind, name
    return None


def _created(o: Obj) -> datetime | None:
    return parse_time(md(o).get("creationTimestamp"))


def _revision(rs: Obj) -> int:
    try:
        return int(str(_d(md(rs).get("annotations")).get(REVISION)))
    except ValueError:
        return 0


def _images(o: Obj) -> dict[str, str]:
    spec = _d(_d(_d(o.get("spec")).get("template")).get("spec"))
    return {str(c.get("name")): str(c.get("image")) for c in _l(spec.get("containers"))
            if isinstance(c, dict)}


def _images_text(images: dict[str, str]) -> str:
    return ", ".join(f"{c}={i}" for c, i in images.items()) or "?"


class _Children:
    """Objects by their controller, built once per (kind, namespace) and state."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._cache: dict[tuple[str, str], dict[tuple[str, str], list[Obj]]] = ctx.shared(
            ("workloads", "children"), dict)

    def of(self, kind: str, ns: str, owner_kind: str, owner_name: str) -> list[Obj]:
        key = (kind, ns)
        if key not in self._cache:
            idx: dict[tuple[str, str], list[Obj]] = defaultdict(list)
            for o in self.ctx.in_namespace(kind, ns):
                c = _controller(o) if isinstance(o, dict) else None
                if c:
                    idx[c].append(o)
            self._cache[key] = idx
        return self._cache[key].get((owner_kind, owner_name), [])


# -- pod states ----------------------------------------------------------------------------
def _ready(pod: Obj) -> bool:
    return _condition(pod, "Ready").get("status") == "True"


class _PodState:
    """What keeps one pod from being ready, in words, with where it was read."""

    def __init__(self, pod: Obj, text: str, path: str, failing: bool,
                 time: datetime | None) -> None:
        self.pod, self.text, self.path, self.failing, self.time = pod, text, path, failing, time

    def evidence(self) -> Evidence:
        return Evidence("status", f"pod {_name(self.pod)}: {self.text}",
                        f"Pod/{_name(self.pod)} {self.path}", self.time)


def pod_state(ctx: Context, pod: Obj) -> _PodState:
    """The most telling reason a pod is not ready (read once per pod and state: the
    rollout and replica rules both ask)."""
    table: dict[int, _PodState] = ctx.shared(("workloads", "pod-state"), dict)
    found = table.get(id(pod))
    if found is None or found.pod is not pod:
        found = table[id(pod)] = _pod_state(ctx, pod)
    return found


def _pod_state(ctx: Context, pod: Obj) -> _PodState:
    spec, status = _d(pod.get("spec")), _d(pod.get("status"))
    sched = _condition(pod, "PodScheduled")
    if not spec.get("nodeName") and sched.get("status") == "False":
        return _PodState(pod, f"Pending, {sched.get('reason')}: {sched.get('message') or ''}",
                         "status.conditions[PodScheduled]", True,
                         parse_time(sched.get("lastTransitionTime")))
    if status.get("phase") == "Failed":
        return _PodState(pod, f"Failed, {status.get('reason') or ''}: "
                         f"{status.get('message') or ''}", "status.phase", True, None)
    found: _PodState | None = None
    for c in ctx.containers(pod):
        w, t, last = c.waiting, c.terminated, c.last_terminated
        reason = w.get("reason")
        if isinstance(reason, str) and reason:
            text = f"container {c.name} waiting: {reason}"
            if w.get("message"):
                text += f": {w.get('message')}"
            if last:
                text += f" (last exit code {last.get('exitCode')}, {last.get('reason')})"
            state = _PodState(pod, text, f"{c.path}.state.waiting", reason in FAILING_WAITING,
                              parse_time(last.get("finishedAt")))
        elif t and t.get("exitCode") not in (0, None):
            state = _PodState(pod, f"container {c.name} terminated: {t.get('reason')} "
                              f"(exit code {t.get('exitCode')})", f"{c.path}.state.terminated",
                              True, parse_time(t.get("finishedAt")))
        elif c.status and c.status.get("ready") is not True and not c.init:
            probe = _probe_failure(ctx, pod, c.name)
            text = f"container {c.name} running but not ready (restarts {c.restarts})"
            if probe:
                text += f": {probe.get('message')}"
            state = _PodState(pod, text, f"{c.path}.ready", c.restarts > 0 or bool(probe),
                              event_first_seen([probe]) if probe else None)
        else:
            continue
        if found is None or (state.failing and not found.failing):
            found = state
    if found:
        return found
    return _PodState(pod, f"{status.get('phase') or 'Unknown'}, not Ready",
                     "status.conditions[Ready]", False, None)


def _probe_failure(ctx: Context, pod: Obj, container: str) -> Obj | None:
    """The latest failed-probe (Unhealthy) event about one container, if any."""
    for e in reversed(ctx.events(pod, reason="Unhealthy")):
        io = e.get("involvedObject") if isinstance(e.get("involvedObject"), dict) else {}
        where = str(io.get("fieldPath") or "")
        if not where or where.endswith(f"{{{container}}}"):
            return e
    return None


def _young(ctx: Context, pod: Obj) -> bool:
    created = _created(pod)
    return created is not None and (ctx.now - created).total_seconds() < STARTUP_GRACE_S


def _warning_first_seen(ctx: Context, pods: list[Obj]) -> datetime | None:
    table: dict[int, tuple[Obj, datetime | None]] = ctx.shared(("workloads", "warned"), dict)

    def first(p: Obj) -> datetime | None:
        hit = table.get(id(p))
        if hit is None or hit[0] is not p:
            hit = table[id(p)] = (p, event_first_seen(ctx.events(p, type="Warning")))
        return hit[1]
    return earliest(*(first(p) for p in pods))


def _selector_text(w: Obj) -> str:
    sel = _d(_d(_d(w.get("spec")).get("selector")).get("matchLabels"))
    return ",".join(f"{k}={v}" for k, v in sel.items())


def _available(w: Obj) -> tuple[int, int] | None:
    """(desired, available) of a Deployment, StatefulSet or DaemonSet (accessors
    inlined: the replica pre-pass reads it for every workload)."""
    spec, st, kind = w.get("spec"), w.get("status"), w.get("kind")
    if not isinstance(st, dict):
        st = {}
    if kind == "DaemonSet":
        desired = _int(st.get("desiredNumberScheduled"))
        return (desired, _int(st.get("numberAvailable")) or 0) if desired is not None else None
    if not isinstance(spec, dict):
        spec = {}
    desired = _int(spec.get("replicas")) if "replicas" in spec else 1
    if desired is None:
        return None
    avail = st.get("availableReplicas")
    if not (isinstance(avail, int) and not isinstance(avail, bool)):
        avail = _int(st.get("readyReplicas")) if kind == "StatefulSet" else None
    return desired, avail or 0


def _workload_pods(ctx: Context, kids: _Children, w: Obj) -> list[Obj]:
    ns, kind, name = _ns(w), str(w.get("kind")), _name(w)
    if kind != "Deployment":
        return list(kids.of("Pod", ns, kind, name))
    return [p for rs in kids.of("ReplicaSet", ns, "Deployment", name)
            for p in kids.of("Pod", ns, "ReplicaSet", _name(rs))]


# -- rollout-stuck ---------------------------------------------------------------------------
@rule("rollout-stuck", family=FAMILY, title="Deployment rollout is stuck on a failing revision",
      severity="critical", rank=70, supersedes=("replicas-unavailable",),
      docs="https://kubernetes.io/docs/concepts/workloads/controllers/deployment/"
           "#failed-deployment")
def rollout_stuck(ctx: Context) -> Iterator[Finding]:
    """A new revision whose pods never become ready: rolling back restores service."""
    kids = _Children(ctx)
    unready = _UnreadyPods.of(ctx) if ctx.whole_cluster else None
    test = (lambda d: _rollout_suspect(kids, d)) if unready is None \
        else (lambda d: _rollout_suspect_fast(kids, unready, d))
    for dep in ctx.objects_where("Deployment", "workloads:rollout", test):
        if not isinstance(dep, dict) or _d(dep.get("spec")).get("paused") is True:
            continue
        found = _stuck_rollout(ctx, kids, dep, unready)
        if found is not None:
            yield found


def _deadline_passed(dep: Obj) -> bool:
    """The Progressing condition says ProgressDeadlineExceeded (`_condition` inlined:
    the whole-cluster pre-pass reads it for every Deployment)."""
    st = dep.get("status")
    conds = st.get("conditions") if isinstance(st, dict) else None
    for c in conds if isinstance(conds, list) else ():
        if isinstance(c, dict) and c.get("type") == "Progressing":
            return c.get("status") == "False" and c.get("reason") == "ProgressDeadlineExceeded"
    return False


def _rollout_suspect(kids: _Children, dep: Any) -> bool:
    """What `_stuck_rollout` needs to find anything: the progress deadline passed, or
    some ReplicaSet of the Deployment has a pod that is not ready."""
    if not isinstance(dep, dict) or _d(dep.get("spec")).get("paused") is True:
        return False
    if _deadline_passed(dep):
        return True
    ns = _ns(dep)
    return any(not _ready(p) for rs in kids.of("ReplicaSet", ns, "Deployment", _name(dep))
               for p in kids.of("Pod", ns, "ReplicaSet", _name(rs)))


def _rollout_suspect_fast(kids: _Children, unready: _UnreadyPods,
                          dep: Any) -> bool:
    """`_rollout_suspect` answered from the few not-ready pods up instead of from every
    Deployment down through its ReplicaSets and their pods; and, as `_stuck_rollout`
    reports no deadline only when an older ReplicaSet still serves, some ReplicaSet of
    the Deployment must have available replicas and another beside it."""
    if not isinstance(dep, dict):
        return False
    spec = dep.get("spec")
    if isinstance(spec, dict) and spec.get("paused") is True:
        return False
    if _deadline_passed(dep):
        return True
    ns, name = _ns(dep), _name(dep)
    if (ns, name) not in unready.deployments:
        return False
    rses = kids.of("ReplicaSet", ns, "Deployment", name)
    return len(rses) > 1 and any((_int(_d(r.get("status")).get("availableReplicas")) or 0) > 0
                                 for r in rses)


class _UnreadyPods:
    """The pods `ctx.pods_with(NOT_READY)` gives a whole-cluster diagnosis, by the
    (namespace, kind, name) of their controller, and the (namespace, name) of the
    Deployments controlling the ReplicaSets among those: what the rollout and replica
    rules read of the pods, found from the few not-ready pods up instead of from every
    workload down. Namespaces are matched as `in_namespace` files objects
    (`metadata.namespace or ""`), so `_Children` lists the same pods, less the ready."""

    def __init__(self, ctx: Context) -> None:
        self.by_owner: dict[tuple[str, str, str], list[Obj]] = defaultdict(list)
        self.deployments: set[tuple[str, str]] = set()
        for p in ctx.pods_with(NOT_READY):
            ns = md(p).get("namespace") or ""
            c = _controller(p) if isinstance(ns, str) else None
            if c is not None:
                self.by_owner[(ns, *c)].append(p)
        named: dict[str, dict[str, list[Obj]]] = {}  # namespace -> name -> ReplicaSets
        for ns, kind, rs_name in self.by_owner:
            if kind != "ReplicaSet":
                continue
            if ns not in named:
                named[ns] = defaultdict(list)
                for rs in ctx.in_namespace("ReplicaSet", ns):
                    if isinstance(rs, dict):
                        named[ns][_name(rs)].append(rs)
            for rs in named[ns].get(rs_name, ()):
                owner = _controller(rs)
                if owner is not None and owner[0] == "Deployment":
                    self.deployments.add((ns, owner[1]))

    @staticmethod
    def of(ctx: Context) -> _UnreadyPods:
        """Built once per state, for a whole-cluster diagnosis only (`pods_with` is
        scoped otherwise)."""
        assert ctx.whole_cluster
        return ctx.shared(("workloads", "unready-pods"), lambda: _UnreadyPods(ctx))

    def owned(self, ns: str, kind: str, name: str) -> list[Obj]:
        """Those of them the controller controls, in state order (what
        `_Children.of("Pod", ns, kind, name)` lists, less ready pods)."""
        return self.by_owner.get((ns, kind, name), [])

    def of_workload(self, kids: _Children, w: Obj) -> list[Obj]:
        """`_workload_pods` less ready pods, in the same order."""
        ns, kind, name = _ns(w), str(w.get("kind")), _name(w)
        if kind != "Deployment":
            return list(self.owned(ns, kind, name))
        return [p for rs in kids.of("ReplicaSet", ns, "Deployment", name)
                for p in self.owned(ns, "ReplicaSet", _name(rs))]


def _stuck_rollout(ctx: Context, kids: _Children, dep: Obj,
                   unready: _UnreadyPods | None) -> Finding | None:
    ns, name = _ns(dep), _name(dep)
    prog = _condition(dep, "Progressing")
    deadline = prog.get("status") == "False" and prog.get("reason") == "ProgressDeadlineExceeded"
    rses = sorted(kids.of("ReplicaSet", ns, "Deployment", name), key=_revision, reverse=True)
    named = re.search(r'ReplicaSet "([^"]+)"', str(prog.get("message") or ""))
    new = next((r for r in rses if named and _name(r) == named.group(1)), None) \
        or (rses[0] if rses else None)
    older = [r for r in rses if new is not None and _revision(r) < _revision(new)]
    prev = next((r for r in older if (_int(_d(r.get("status")).get("availableReplicas")) or 0)
                 > 0), older[0] if older else None)
    # only the not-ready ones are read: for the whole cluster, those are indexed
    new_pods = [] if new is None else kids.of("Pod", ns, "ReplicaSet", _name(new)) \
        if unready is None else unready.owned(ns, "ReplicaSet", _name(new))
    serving = prev is not None and (_int(_d(prev.get("status")).get("availableReplicas"))
                                    or 0) > 0
    if not deadline and not serving:
        return None  # whatever the new pods' states
    states = [pod_state(ctx, p) for p in new_pods if not _ready(p)]
    if not deadline and not any(s.failing for s in states):
        return None
    return _rollout_finding(ctx, dep, prog if deadline else {}, new, prev, states)


def _rollout_finding(ctx: Context, dep: Obj, prog: Obj, new: Obj | None, prev: Obj | None,
                     states: list[_PodState]) -> Finding:
    ns, name = _ns(dep), _name(dep)
    st = _d(dep.get("status"))
    available = _int(st.get("availableReplicas")) or 0
    ev: list[Evidence] = []
    if prog:
        ev.append(status_evidence("status.conditions[Progressing]", _cond_text(prog),
                                  parse_time(prog.get("lastTransitionTime"))))
    new_imgs, prev_imgs = (_images(new) if new else {}), (_images(prev) if prev else {})
    if new is not None:
        nst = _d(new.get("status"))
        ev.append(Evidence("object", f"new ReplicaSet {_name(new)} (revision {_revision(new)}): "
                           f"{_images_text(new_imgs)}; {_int(nst.get('readyReplicas')) or 0}/"
                           f"{_int(_d(new.get('spec')).get('replicas')) or 0} ready",
                           f"ReplicaSet/{_name(new)} metadata.annotations.{REVISION}",
                           _created(new)))
    failing = sorted(states, key=lambda s: not s.failing)
    ev.extend(s.evidence() for s in failing[:MAX_PODS])
    if prev is not None:
        pst = _d(prev.get("status"))
        ev.append(Evidence("object", f"previous ReplicaSet {_name(prev)} (revision "
                           f"{_revision(prev)}): {_images_text(prev_imgs)}; "
                           f"{_int(pst.get('availableReplicas')) or 0} available",
                           f"ReplicaSet/{_name(prev)} metadata.annotations.{REVISION}"))
    ev.append(status_evidence("status.availableReplicas", available))
    reasons = sorted({s.text.split(": ")[1].split(":")[0] if ": " in s.text else s.text
                      for s in failing if s.failing}) or sorted({s.text for s in failing[:1]})
    what = (f"new ReplicaSet {_name(new)} (revision {_revision(new)}, "
            f"{_images_text(new_imgs)})" if new else "the new ReplicaSet")
    summary = (f"Deployment {ns}/{name} rollout is stuck"
               + (" (ProgressDeadlineExceeded)" if prog else "")
               + f": {what} has {len(states)} pod(s) not ready"
               + (f" ({', '.join(reasons)})" if reasons else "")
               + (f"; revision {_revision(prev)} ({_images_text(prev_imgs)}) still serves "
                  f"{available} pod(s)" if prev is not None and available else "") + ".")
    action = _undo_action(dep, new, prev, new_imgs, prev_imgs)
    words = (f"Roll back to revision {_revision(prev)} ({_images_text(prev_imgs)}), then fix "
             "the new revision (see the pod findings) before rolling forward again."
             if prev is not None else
             "There is no earlier revision to roll back to: fix the pod template.")
    commands = (f"kubectl rollout status deployment/{name} -n {ns} --timeout=10s",
                f"kubectl rollout history deployment/{name} -n {ns}",
                *(f"kubectl describe pod -n {ns} {_name(s.pod)}" for s in failing[:2]),
                *((f"kubectl rollout undo deployment/{name} -n {ns} --to-revision="
                   f"{_revision(prev)}",) if prev is not None else ()))
    first = earliest(parse_time(prog.get("lastTransitionTime")) if prog else None,
                     _warning_first_seen(ctx, [s.pod for s in states]),
                     *(s.time for s in states))
    return ctx.finding("rollout-stuck", dep, summary, ev, Remediation(words, commands, action),
                       confidence=0.95 if prog else 0.8, first_seen=first,
                       severity="critical" if available == 0 else "warning")


def _undo_action(dep: Obj, new: Obj | None, prev: Obj | None, new_imgs: dict[str, str],
                 prev_imgs: dict[str, str]) -> Action | None:
    """Set each changed container back to the previous revision's image."""
    if prev is None:
        return manual(dep, "fix the pod template of the new revision", "low")
    rev = str(_revision(new)) if new is not None else None
    current = _images(dep) or new_imgs
    changed = {c: img for c, img in prev_imgs.items() if c in current and current[c] != img}
    desc = (f"roll {_name(dep)} back to revision {_revision(prev)}: "
            + ", ".join(f"{c} {current[c]} -> {img}" for c, img in changed.items()))
    if not changed:
        return manual(dep, f"kubectl rollout undo deployment/{_name(dep)} --to-revision="
                      f"{_revision(prev)} (the revisions differ in more than images)", "low")
    patch: list[dict[str, Any]] = []
    inverse: list[dict[str, Any]] = []
    base: Action | None = None
    for c, img in changed.items():
        one = rollout_undo(dep, c, img, rev, description=desc)
        if one is None:
            return manual(dep, desc, "low")
        base = base or one
        patch += one.patch
        inverse = one.inverse + inverse
    if base is None:
        return manual(dep, desc, "low")
    return Action(base.kind, base.target, desc, base.tier, patch, inverse, base.validate)


# -- replicas-unavailable ------------------------------------------------------------------------
@rule("replicas-unavailable", family=FAMILY,
      title="Workload has fewer available replicas than desired", severity="critical",
      rank=80, docs="https://kubernetes.io/docs/tasks/debug/debug-application/debug-pods/")
def replicas_unavailable(ctx: Context) -> Iterator[Finding]:
    """Fewer replicas serve than asked for; the pods' states say why."""
    kids = _Children(ctx)
    unready = _UnreadyPods.of(ctx) if ctx.whole_cluster else None
    for kind in ("Deployment", "StatefulSet", "DaemonSet"):
        for w in ctx.objects_where(kind, "workloads:unavailable", _short_of_replicas):
            if isinstance(w, dict):
                f = _unavailable(ctx, kids, w, unready)
                if f is not None:
                    yield f


def _short_of_replicas(w: Any) -> bool:
    """Fewer available replicas than desired (what `_unavailable` starts from)."""
    counts = _available(w) if isinstance(w, dict) else None
    return counts is not None and counts[0] > 0 and counts[1] < counts[0]


def _unavailable(ctx: Context, kids: _Children, w: Obj,
                 unready: _UnreadyPods | None) -> Finding | None:
    counts = _available(w)
    if counts is None or counts[0] <= 0 or counts[1] >= counts[0]:
        return None
    desired, available = counts
    if unready is None:
        pods = looked = _workload_pods(ctx, kids, w)
    else:  # only the not-ready pods are read, and whether there are any pods at all
        looked = unready.of_workload(kids, w)
        pods = looked or _workload_pods(ctx, kids, w)
    states = sorted((pod_state(ctx, p) for p in looked if not _ready(p)),
                    key=lambda s: not s.failing)
    if states and not any(s.failing for s in states) \
            and all(_young(ctx, s.pod) for s in states):
        return None  # still starting
    ns, name, kind = _ns(w), _name(w), str(w.get("kind"))
    ev = [status_evidence("spec.replicas" if kind != "DaemonSet"
                          else "status.desiredNumberScheduled", desired),
          status_evidence("status.numberAvailable" if kind == "DaemonSet"
                          else "status.availableReplicas", available)]
    cond = _condition(w, "Available")
    if cond.get("status") == "False":
        ev.append(status_evidence("status.conditions[Available]", _cond_text(cond),
                                  parse_time(cond.get("lastTransitionTime"))))
    ev.extend(s.evidence() for s in states[:MAX_PODS])
    if not pods:
        ev.append(Evidence("object", f"no pods of {kind}/{name} exist",
                           f"Pod/* ownerReferences -> {kind}/{name}"))
    why = states[0].text if states else "no pods exist (check the controller's events)"
    ref = f"{kind.lower()}/{name}"
    sel = _selector_text(w)
    commands = (f"kubectl get pods -n {ns}" + (f" -l {sel}" if sel else "") + " -o wide",
                f"kubectl describe {ref} -n {ns}",
                *(f"kubectl describe pod -n {ns} {_name(s.pod)}" for s in states[:2]),
                f"kubectl get events -n {ns} --sort-by=.lastTimestamp")
    first = earliest(parse_time(cond.get("lastTransitionTime")) if cond else None,
                     *(s.time for s in states), _warning_first_seen(ctx, [s.pod for s in states]))
    return ctx.finding(
        "replicas-unavailable", w,
        f"{kind} {ns}/{name} has {available}/{desired} replicas available: "
        f"{_name(states[0].pod) + ' ' if states else ''}{why}.", ev,
        Remediation("Fix what keeps the pods from becoming ready (see the pod findings); "
                    "the workload recovers on its own once they are Ready.", commands),
        confidence=0.9 if any(s.failing for s in states) or not pods else 0.7,
        first_seen=first, severity="critical" if available == 0 else "warning")


# -- quota-exceeded -----------------------------------------------------------------------------
@rule("quota-exceeded", family=FAMILY,
      title="Pods cannot be created: ResourceQuota or LimitRange rejects them",
      severity="critical", rank=10,
      docs="https://kubernetes.io/docs/concepts/policy/resource-quotas/")
def quota_exceeded(ctx: Context) -> Iterator[Finding]:
    """Admission rejects the pods, so the controller never gets any to run."""
    kids = _Children(ctx)
    suspects = ctx.shared(("workloads", "quota"), lambda: _cluster_quota_suspects(ctx)) \
        if ctx.whole_cluster else _quota_suspects(ctx, kids)
    for obj in suspects:
        f = _quota_finding(ctx, obj)
        if f is not None:
            yield f


def _quota_suspects(ctx: Context, kids: _Children) -> list[Obj]:
    """Each creator once, kept when it has what `_quota_finding` reads: FailedCreate
    events or a true ReplicaFailure condition."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for obj in _creators(ctx, kids):
        key = (str(obj.get("kind")), _ns(obj), _name(obj))
        if key in seen:
            continue
        seen.add(key)
        if ctx.events(obj, reason="FailedCreate") \
                or _condition(obj, "ReplicaFailure").get("status") == "True":
            out.append(obj)
    return out


def _cluster_quota_suspects(ctx: Context) -> list[Obj]:
    """`_quota_suspects` for the whole cluster (a test holds them equal), in one tight
    pass over the ~10^4 creators: each is in `ctx.objects` there (those `_creators`
    finds again through their owners are skipped as seen), and whether some
    FailedCreate event is about it is one look-up in the event index by reason."""
    failed_create = ctx.with_event("FailedCreate")
    seen: set[tuple[str, str, str]] = set()
    out = []
    for kind in ("ReplicaSet", "StatefulSet", "Job", "DaemonSet"):
        for obj in ctx.objects(kind):
            if not isinstance(obj, dict):
                continue
            m = obj.get("metadata")
            if not isinstance(m, dict):
                m = {}
            ns, name, k = m.get("namespace"), m.get("name"), obj.get("kind")
            key = (str(k), ns if isinstance(ns, str) else "", name if isinstance(name, str)
                   else "")
            if key in seen:
                continue
            seen.add(key)
            # the key `ctx.events` looks up is the same tuple when all three are text
            if (key if type(k) is str and type(ns) is str and type(name) is str
                    else (k or "", ns or "", name or "")) in failed_create \
                    or _replica_failure(obj):
                out.append(obj)
    return out


def _has_event(ctx: Context, obj: Obj, reasons: tuple[str, ...]) -> bool:
    """Some event of one of `reasons` is about `obj` (what a non-empty `ctx.events(obj,
    reason=r)` says), looked up without sorting or copying the object's events."""
    m = md(obj)
    evs = ctx.state.events_by_object.get(
        (obj.get("kind") or "", m.get("namespace") or "", m.get("name") or ""))
    return bool(evs) and any(e.get("reason") in reasons for e in evs)


def _replica_failure(obj: Obj) -> bool:
    """A ReplicaFailure condition of status "True" (`_condition` inlined)."""
    st = obj.get("status")
    conds = st.get("conditions") if isinstance(st, dict) else None
    for c in conds if isinstance(conds, list) else ():
        if isinstance(c, dict) and c.get("type") == "ReplicaFailure":
            return c.get("status") == "True"
    return False


def _creators(ctx: Context, kids: _Children) -> Iterator[Obj]:
    """Objects that create pods; ReplicaSets and Jobs are found through their owners
    too, since a workload with no pods has none of them in a pod-derived scope."""
    for kind in ("ReplicaSet", "StatefulSet", "Job", "DaemonSet"):
        yield from (o for o in ctx.objects(kind) if isinstance(o, dict))
    for dep in ctx.objects("Deployment"):
        if isinstance(dep, dict):
            yield from kids.of("ReplicaSet", _ns(dep), "Deployment", _name(dep))
    for cj in ctx.objects("CronJob"):
        if isinstance(cj, dict):
            yield from kids.of("Job", _ns(cj), "CronJob", _name(cj))


def _quota_finding(ctx: Context, obj: Obj) -> Finding | None:
    cond = _condition(obj, "ReplicaFailure")
    events = [e for e in ctx.events(obj, reason="FailedCreate")
              if any(p.search(str(e.get("message") or "")) for p in _ADMISSION)]
    cond_msg = str(cond.get("message") or "") if cond.get("status") == "True" else ""
    if not events and not any(p.search(cond_msg) for p in _ADMISSION):
        return None
    message = str(events[-1].get("message") or "") if events else cond_msg
    ns, name, kind = _ns(obj), _name(obj), str(obj.get("kind"))
    ev: list[Evidence] = []
    if cond_msg:
        ev.append(status_evidence("status.conditions[ReplicaFailure]", _cond_text(cond),
                                  parse_time(cond.get("lastTransitionTime"))))
    ev.extend(event_evidence(e) for e in events[-2:])
    quota = _QUOTA.search(message) or _QUOTA_SPECIFY.search(message)
    limit = _LIMIT.search(message)
    if quota:
        ev.extend(_quota_evidence(ctx, ns, quota.group(1), message))
    for lr in ctx.in_namespace("LimitRange", ns):
        if limit or _RATIO.search(message):
            ev.append(_limitrange_evidence(lr))
    workload = ctx.owner_object(obj) or obj
    wref = f"{str(workload.get('kind')).lower()}/{_name(workload)}"
    action = _limit_action(workload, limit) if limit else None
    if quota:
        words = (f"The namespace quota {quota.group(1)} is used up: lower the workload's "
                 "requests/limits, scale other workloads down, or raise the quota.")
        cause = f"ResourceQuota {quota.group(1)} is exceeded" if _QUOTA.search(message) \
            else f"ResourceQuota {quota.group(1)} requires requests/limits the pods lack"
    else:
        words = ("A LimitRange rejects the pods' resources: bring the container's "
                 "requests/limits within the LimitRange, or change the LimitRange.")
        cause = "a LimitRange rejects its pods"
    action = action or manual(workload, words)
    detail = message.split("forbidden: ", 1)[-1].strip()
    commands = (f"kubectl describe {kind.lower()} -n {ns} {name}",
                f"kubectl describe resourcequota -n {ns}", f"kubectl describe limitrange -n {ns}",
                f"kubectl get {wref} -n {ns} -o jsonpath='{{..resources}}'")
    st = _d(obj.get("status"))
    running = (_int(st.get("readyReplicas")) or 0) + (_int(st.get("active")) or 0)
    first = earliest(event_first_seen(events), parse_time(cond.get("lastTransitionTime"))
                     if cond_msg else None)
    return ctx.finding("quota-exceeded", obj,
                       f"{kind} {ns}/{name} cannot create pods: {cause} ({detail}).", ev,
                       Remediation(words, commands, action), confidence=0.95,
                       first_seen=first, severity="warning" if running else "critical")


def _quota_evidence(ctx: Context, ns: str, qname: str, message: str) -> list[Evidence]:
    q = ctx.get("ResourceQuota", ns, qname)
    if q is None:
        return [Evidence("object", f"ResourceQuota {qname} not in the snapshot",
                         f"ResourceQuota/{ns}/{qname}")]
    st = _d(q.get("status"))
    hard, used = _d(st.get("hard")), _d(st.get("used"))
    named = [k for k in hard if re.search(rf"(?<![\w.]){re.escape(str(k))}(?![\w.])", message)]
    keys = named or list(hard)
    return [Evidence("object", f"{k}: used {used.get(k, '0')} of hard {hard.get(k)}",
                     f"ResourceQuota/{qname} status.hard/used.{k}") for k in keys[:6]]


def _limitrange_evidence(lr: Obj) -> Evidence:
    parts = []
    for item in _l(_d(lr.get("spec")).get("limits")):
        if isinstance(item, dict):
            bounds = ", ".join(f"{b} {_d(item.get(b))}" for b in
                               ("max", "min", "default", "defaultRequest",
                                "maxLimitRequestRatio") if item.get(b))
            parts.append(f"{item.get('type')}: {bounds}")
    return Evidence("object", f"LimitRange {_name(lr)}: " + "; ".join(parts),
                    f"LimitRange/{_name(lr)} spec.limits")


def _limit_action(workload: Obj, m: re.Match[str]) -> Action | None:
    """Bring the one offending container within a per-Container max/min."""
    bound, resource, scope, allowed, field, actual = m.groups()
    if scope != "Container" or workload.get("kind") == "Job":
        return None  # a Job's pod template is immutable: fix it where it is defined
    spec: Any = workload
    path = ("spec", "jobTemplate", "spec", "template", "spec") \
        if workload.get("kind") == "CronJob" else ("spec", "template", "spec")
    for p in path:
        spec = spec.get(p) if isinstance(spec, dict) else None
    want = to_float(actual)
    section = "limits" if field == "limit" else "requests"
    hits = []
    for c in _l(_d(spec).get("containers")):
        if isinstance(c, dict):
            got = to_float(_d(_d(c.get("resources")).get(section)).get(resource))
            if not math.isnan(want) and not math.isnan(got) and math.isclose(got, want):
                hits.append(str(c.get("name")))
    if len(hits) != 1:
        return None
    return set_container_fields(
        workload, hits[0], {("resources", section, resource): allowed}, tier="medium",
        description=f"set {section}.{resource} of container {hits[0]} to {allowed}, the "
                    f"LimitRange {bound}")


# -- job-failed ------------------------------------------------------------------------------------
def _job_failed(job: Obj) -> Obj:
    for ctype in ("Failed", "FailureTarget"):
        c = _condition(job, ctype)
        if c.get("status") == "True":
            return c
    return {}


_JOB_ENDED = ("BackoffLimitExceeded", "DeadlineExceeded")


def _job_complete(job: Obj) -> bool:
    return _condition(job, "Complete").get("status") == "True"


def _failed_containers(ctx: Context, pod: Obj) -> list[tuple[str, Obj, str]]:
    """(container, terminated state, path) of containers that exited non-zero."""
    out = []
    for c in ctx.containers(pod):
        for t, where in ((c.terminated, "state"), (c.last_terminated, "lastState")):
            code = t.get("exitCode")
            if t and code not in (0, None):
                out.append((c.name, t, f"{c.path}.{where}.terminated"))
                break
    return out


def _failed_pods(ctx: Context, kids: _Children, job: Obj) -> list[tuple[Obj, datetime | None]]:
    pods = []
    for p in kids.of("Pod", _ns(job), "Job", _name(job)):
        failed = _failed_containers(ctx, p)
        if failed or _d(p.get("status")).get("phase") == "Failed":
            when = earliest(*(parse_time(t.get("finishedAt")) for _, t, _ in failed))
            pods.append((p, when or _created(p)))
    return sorted(pods, key=lambda x: (x[1] is not None, str(x[1] or ""), _name(x[0])))


def _log_tail(ctx: Context, pod: Obj, container: str) -> list[Evidence]:
    ns, name = _ns(pod), _name(pod)
    for previous in (False, True):
        lines = ctx.log_lines(ns, name, container, previous=previous)
        if any(line.strip() for line in lines):
            base = ctx.log_offset(ns, name, container, previous)
            tail = [(i, line) for i, line in enumerate(lines) if line.strip()][-LOG_TAIL:]
            return [log_evidence(container, base + i, line, previous) for i, line in tail]
    return []


@rule("job-failed", family=FAMILY, title="Job failed", severity="critical", rank=20,
      docs="https://kubernetes.io/docs/concepts/workloads/controllers/job/"
           "#handling-pod-and-container-failures")
def job_failed(ctx: Context) -> Iterator[Finding]:
    """A failed Job will not retry: its pods' exit codes and last log lines say why."""
    kids = _Children(ctx)
    for job in _job_failed_suspects(ctx):
        if not isinstance(job, dict):
            continue
        cond = _job_failed(job)
        events = ctx.events(job, reason="BackoffLimitExceeded") \
            + ctx.events(job, reason="DeadlineExceeded")
        if cond or (events and not _job_complete(job)):
            yield _job_finding(ctx, kids, job, cond, events)


def _job_failed_suspects(ctx: Context) -> list[Obj]:
    """The in-scope Jobs `job_failed` looks at (the cronjob rule reads them too)."""
    return ctx.objects_where("Job", "workloads:job-failed",
                             lambda j: _job_failed_suspect(ctx, j))


def _job_failed_suspect(ctx: Context, job: Any) -> bool:
    """A failed condition, or an event saying the Job gave up while it is not complete
    (its events are sorted and copied only when it has such an event)."""
    if not isinstance(job, dict):
        return False
    if _has_failed(job):
        return True
    if not _has_event(ctx, job, _JOB_ENDED):
        return False
    events = ctx.events(job, reason="BackoffLimitExceeded") \
        + ctx.events(job, reason="DeadlineExceeded")
    return bool(events) and not _job_complete(job)


def _has_failed(job: Obj) -> bool:
    """`_job_failed` is not empty (read in one pass over the conditions: the pre-pass
    asks every Job): the first Failed or the first FailureTarget condition is true."""
    st = job.get("status")
    conds = st.get("conditions") if isinstance(st, dict) else None
    seen = set()
    for c in conds if isinstance(conds, list) else ():
        if isinstance(c, dict):
            t = c.get("type")
            if t in ("Failed", "FailureTarget") and t not in seen:
                if c.get("status") == "True":
                    return True
                seen.add(t)
    return False


def _job_finding(ctx: Context, kids: _Children, job: Obj, cond: Obj,
                 events: list[Obj]) -> Finding:
    ns, name = _ns(job), _name(job)
    ev: list[Evidence] = []
    if cond:
        ev.append(status_evidence(f"status.conditions[{cond.get('type')}]", _cond_text(cond),
                                  parse_time(cond.get("lastTransitionTime"))))
    ev.extend(event_evidence(e) for e in events[-1:])
    st = _d(job.get("status"))
    ev.append(status_evidence("status.failed", _int(st.get("failed")) or 0))
    pods = _failed_pods(ctx, kids, job)
    codes = []
    for p, _when in pods[-MAX_PODS:]:
        for cname, t, path in _failed_containers(ctx, p)[:1]:
            codes.append(t.get("exitCode"))
            ev.append(Evidence("status", f"pod {_name(p)} container {cname}: exit code "
                               f"{t.get('exitCode')} ({t.get('reason')})",
                               f"Pod/{_name(p)} {path}", parse_time(t.get("finishedAt"))))
    last_line = ""
    if pods:
        last = pods[-1][0]
        failed = _failed_containers(ctx, last)
        cname = failed[0][0] if failed else next((c.name for c in ctx.containers(last)), "")
        logs = _log_tail(ctx, last, cname) if cname else []
        ev.extend(logs)
        last_line = logs[-1].text if logs else ""
    reason = str(cond.get("reason") or (events[-1].get("reason") if events else "") or "Failed")
    msg = str(cond.get("message") or (events[-1].get("message") if events else "") or "")
    summary = (f"Job {ns}/{name} failed ({reason}{': ' + msg if msg else ''})"
               + (f"; {len(pods)} pod(s) failed, last exit code {codes[-1]}" if codes else "")
               + (f"; last log line: {last_line!r}" if last_line else "") + ".")
    top = ctx.owner_object(job) or job
    cmd_logs = (f"kubectl logs -n {ns} {_name(pods[-1][0])}" if pods
                else f"kubectl logs -n {ns} job/{name}")
    rerun = (f"kubectl create job -n {ns} {_name(top)}-manual --from=cronjob/{_name(top)}"
             if top.get("kind") == "CronJob"
             else f"kubectl get job -n {ns} {name} -o yaml > job.yaml  # then delete and "
                  "re-apply after the fix")
    commands = (f"kubectl describe job -n {ns} {name}", cmd_logs, rerun)
    words = ("Fix the cause in the failed pods' exit codes and logs, then re-run the Job "
             "(a failed Job is not retried).")
    first = earliest(*(w for _, w in pods), parse_time(cond.get("lastTransitionTime")),
                     event_first_seen(events))
    return ctx.finding("job-failed", job, summary, ev,
                       Remediation(words, commands, manual(top, words)),
                       confidence=0.95 if cond else 0.8, first_seen=first,
                       severity="warning" if _newer_success(ctx, job) else "critical")


def _newer_success(ctx: Context, job: Obj) -> bool:
    """A later Job of the same CronJob completed: this failure is history."""
    owner = _controller(job)
    if not owner or owner[0] != "CronJob":
        return False
    mine = str(md(job).get("creationTimestamp") or "")
    return any(_job_complete(j) and str(md(j).get("creationTimestamp") or "") > mine
               for j in ctx.in_namespace("Job", _ns(job))
               if isinstance(j, dict) and _controller(j) == owner)


# -- cronjob-failing ----------------------------------------------------------------------------
@rule("cronjob-failing", family=FAMILY, title="CronJob's recent runs fail (or it is suspended)",
      severity="critical", rank=30,
      docs="https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/")
def cronjob_failing(ctx: Context) -> Iterator[Finding]:
    """Scheduled work that silently stops succeeding (backups, reports) is easy to miss."""
    kids = _Children(ctx)
    if ctx.whole_cluster:
        owners = ctx.shared(("workloads", "failed-job-owners"), lambda: _failed_job_owners(ctx))
        test = lambda c: _cronjob_suspect_fast(owners, c)  # noqa: E731
    else:
        test = lambda c: _cronjob_suspect(kids, c)  # noqa: E731
    for cj in ctx.objects_where("CronJob", "workloads:cronjob", test):
        if not isinstance(cj, dict):
            continue
        if _d(cj.get("spec")).get("suspend") is True:
            yield _suspended(ctx, cj)
            continue
        f = _failing(ctx, kids, cj)
        if f is not None:
            yield f


def _failed_job_owners(ctx: Context) -> set[tuple[str, str]]:
    """(namespace, name) of the CronJobs controlling a failed Job, found from the Jobs
    the job rule looks at (whole cluster: every failed Job is among them)."""
    out = set()
    for j in _job_failed_suspects(ctx):
        if isinstance(j, dict) and _job_failed(j):
            ns = md(j).get("namespace") or ""
            c = _controller(j) if isinstance(ns, str) else None
            if c is not None and c[0] == "CronJob":
                out.add((ns, c[1]))
    return out


def _cronjob_suspect_fast(owners: set[tuple[str, str]], cj: Any) -> bool:
    """`_cronjob_suspect` without listing each CronJob's Jobs: a failed streak needs a
    failed Job of the CronJob, a stale status needs its times to say so."""
    if not isinstance(cj, dict):
        return False
    if _d(cj.get("spec")).get("suspend") is True or (_ns(cj), _name(cj)) in owners:
        return True
    st = _d(cj.get("status"))
    if _l(st.get("active")):
        return False
    last_sched = parse_time(st.get("lastScheduleTime"))
    if last_sched is None:
        return False
    last_ok = parse_time(st.get("lastSuccessfulTime"))
    return last_ok is None or last_ok < last_sched


def _suspended(ctx: Context, cj: Obj) -> Finding:
    ns, name = _ns(cj), _name(cj)
    last = _d(cj.get("status")).get("lastScheduleTime")
    action = patch_field(cj, ("spec", "suspend"), False, tier="low",
                         description=f"resume CronJob {name}",
                         validate=[f"a Job of {name} is created at the next schedule"])
    return ctx.finding(
        "cronjob-failing", cj, f"CronJob {ns}/{name} is suspended: no Job runs until it is "
        "resumed.", [Evidence("spec", "suspend: true", "spec.suspend"),
                     status_evidence("status.lastScheduleTime", last or "never")],
        Remediation("Resume it if the suspension is no longer wanted.",
                    (f"kubectl get cronjob -n {ns} {name}",
                     f"kubectl patch cronjob -n {ns} {name} "
                     "-p '{\"spec\":{\"suspend\":false}}'"),
                    action),
        confidence=0.9, first_seen=None, severity="info")


def _cronjob_suspect(kids: _Children, cj: Any) -> bool:
    """Suspended, or what `_failing` reports: a failed streak or a stale status."""
    if not isinstance(cj, dict):
        return False
    if _d(cj.get("spec")).get("suspend") is True:
        return True
    streak, stale = _streak(kids, cj)[1:3]
    return bool(streak) or stale


def _streak(kids: _Children, cj: Obj) -> tuple[list[Obj], list[Obj], bool, datetime | None]:
    """(Jobs oldest first, the newest Jobs that failed in a row, whether the status says
    the last run did not succeed while no Job is left, last schedule time)."""
    ns, name = _ns(cj), _name(cj)
    st = _d(cj.get("status"))
    jobs = sorted(kids.of("Job", ns, "CronJob", name),
                  key=lambda j: (str(md(j).get("creationTimestamp") or ""), _name(j)))
    streak = []
    for j in reversed(jobs):
        if not _job_failed(j):
            break
        streak.append(j)
    last_sched, last_ok = parse_time(st.get("lastScheduleTime")), \
        parse_time(st.get("lastSuccessfulTime"))
    active = bool(_l(st.get("active")))
    # no Job left to look at (history limits, or Jobs not captured): trust the status
    stale = (not jobs and not active and last_sched is not None
             and (last_ok is None or last_ok < last_sched))
    return jobs, streak, stale, last_sched


def _failing(ctx: Context, kids: _Children, cj: Obj) -> Finding | None:
    ns, name = _ns(cj), _name(cj)
    st = _d(cj.get("status"))
    _jobs, streak, stale, last_sched = _streak(kids, cj)
    if not streak and not stale:
        return None
    ev = [status_evidence("status.lastScheduleTime", st.get("lastScheduleTime") or "never"),
          status_evidence("status.lastSuccessfulTime", st.get("lastSuccessfulTime") or "never")]
    for j in streak[:MAX_PODS]:
        c = _job_failed(j)
        ev.append(Evidence("object", f"Job {_name(j)}: {c.get('type')} {c.get('reason')}: "
                           f"{c.get('message') or ''} (see job-failed on Job/{ns}/{_name(j)})",
                           f"Job/{_name(j)} status.conditions[{c.get('type')}]",
                           parse_time(c.get("lastTransitionTime"))))
    saw = [e for e in ctx.events(cj, reason="SawCompletedJob")
           if "Failed" in str(e.get("message") or "")]
    ev.extend(event_evidence(e) for e in saw[-1:])
    newest = streak[0] if streak else None
    if newest is not None:
        c = _job_failed(newest)
        runs = "its last Job" if len(streak) == 1 else f"its last {len(streak)} Jobs"
        summary = (f"CronJob {ns}/{name}: {runs} failed, newest "
                   f"{_name(newest)} ({c.get('reason')})"
                   + (f"; last success {st.get('lastSuccessfulTime')}"
                      if st.get("lastSuccessfulTime") else "; it never succeeded") + ".")
    else:
        summary = (f"CronJob {ns}/{name}: its run scheduled at {st.get('lastScheduleTime')} "
                   f"did not succeed (last success "
                   f"{st.get('lastSuccessfulTime') or 'never'}).")
    first = earliest(*(parse_time(_job_failed(j).get("lastTransitionTime")) or _created(j)
                       for j in streak)) or last_sched
    target = _name(newest) if newest is not None else None
    commands = (f"kubectl get jobs -n {ns} --sort-by=.metadata.creationTimestamp",
                *((f"kubectl describe job -n {ns} {target}", f"kubectl logs -n {ns} job/{target}")
                  if target else ()),
                f"kubectl create job -n {ns} {name}-manual --from=cronjob/{name}")
    words = ("Fix the cause of the Job failure (see job-failed), then trigger a run by hand "
             "to confirm before the next schedule.")
    return ctx.finding("cronjob-failing", cj, summary, ev,
                       Remediation(words, commands, manual(cj, words)),
                       confidence=0.9 if streak else 0.7, first_seen=first,
                       severity="critical" if streak else "warning")
