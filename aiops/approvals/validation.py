"""Did the change work? Checks an executor polls after applying an Action.

Each check reads the cluster through the KubeWriter and returns (passed, what
it saw); `validate` polls them until all pass or the timeout ends, so a slow
rollout is waited for and a stuck one is reported with what it is stuck on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jsonpatch
from jsonpointer import resolve_pointer

from aiops.approvals.kube_writer import ApiCallError, KubeWriter
from aiops.diagnose.finding import Action
from aiops.patches import value_at
from aiops.quantity import parse_quantity

Obj = dict[str, Any]
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")


@dataclass
class Outcome:
    passed: bool
    checks: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": self.checks, "seconds": round(self.seconds, 2)}


Check = Callable[[KubeWriter], tuple[bool, str]]


def checks_for(action: Action, pre: Obj | None, pre_restarts: int | None) -> dict[str, Check]:
    """The checks proving `action` worked on its target."""
    t = action.target
    out: dict[str, Check] = {}
    if action.kind == "create":
        out["object exists"] = lambda w: _exists(w, t)
        return out
    if action.kind == "delete-pod":
        uid = ((pre or {}).get("metadata") or {}).get("uid")
        out["pod replaced"] = lambda w: _replaced(w, t, uid)
        return out
    if pre is not None and action.patch:
        out["fields changed as patched"] = lambda w: _fields_applied(w, t, pre, action.patch)
    pausing = any(op.get("path") == "/spec/paused" and op.get("value") is True
                  for op in action.patch if op.get("op") in ("add", "replace"))
    if t["kind"] in WORKLOADS and pausing:
        # a paused rollout never completes: it worked once the controller saw it
        out["rollout paused where it stood"] = lambda w: _paused(w, t)
    elif t["kind"] in WORKLOADS:
        out["rollout complete, pods ready"] = lambda w: _rolled_out(w, t)
        if pre_restarts is not None:
            out["restarts not increasing"] = lambda w: _restarts_steady(w, t, pre_restarts)
        if any(op.get("path", "").endswith("/limits/memory") for op in action.patch):
            out["memory below the new limit"] = lambda w: _below_limit(w, t)
    return out


def validate(writer: KubeWriter, checks: dict[str, Check], *, timeout: float,
             poll: float, sleep: Callable[[float], None] = time.sleep) -> Outcome:
    """Poll every check until all pass or `timeout` seconds have gone."""
    start = time.monotonic()
    while True:
        results = []
        for name, check in checks.items():
            try:
                ok, seen = check(writer)
            except ApiCallError as exc:
                ok, seen = False, exc.message
            results.append({"check": name, "passed": ok, "seen": seen})
        passed = all(r["passed"] for r in results)
        elapsed = time.monotonic() - start
        if passed or elapsed >= timeout:
            return Outcome(passed, results, elapsed)
        sleep(min(poll, max(timeout - elapsed, 0.0)))


# -- checks -------------------------------------------------------------------------

def _exists(w: KubeWriter, t: dict[str, str]) -> tuple[bool, str]:
    obj = w.get(t)
    return obj is not None, "present" if obj is not None else "not found"


def _replaced(w: KubeWriter, t: dict[str, str], uid: str | None) -> tuple[bool, str]:
    obj = w.get(t)
    if obj is None:
        return True, "deleted (its controller creates a new pod under a new name)"
    now = (obj.get("metadata") or {}).get("uid")
    return now != uid, f"uid {now}"


def _fields_applied(w: KubeWriter, t: dict[str, str], pre: Obj,
                    ops: list[dict[str, Any]]) -> tuple[bool, str]:
    """The fields the patch touched hold what the patch put there."""
    want = jsonpatch.apply_patch(pre, ops)
    now = w.get(t)
    if now is None:
        return False, "object not found"
    for op in ops:
        got = resolve_pointer(now, op["path"], None)
        if got != resolve_pointer(want, op["path"], None):
            return False, f"{op['path']} is {got!r}"
    return True, f"{len(ops)} field(s) as patched"


def _rolled_out(w: KubeWriter, t: dict[str, str]) -> tuple[bool, str]:
    obj = w.get(t)
    if obj is None:
        return False, "object not found"
    md, spec, st = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    gen, observed = md.get("generation") or 0, st.get("observedGeneration") or 0
    if t["kind"] == "DaemonSet":
        want = st.get("desiredNumberScheduled") or 0
        updated, ready = st.get("updatedNumberScheduled") or 0, st.get("numberReady") or 0
    else:
        want = spec.get("replicas", 1) or 0
        updated = st.get("updatedReplicas") or 0
        ready = st.get("readyReplicas") or 0
    ok = observed >= gen and updated >= want and ready >= want
    return ok, f"generation {observed}/{gen}, updated {updated}/{want}, ready {ready}/{want}"


def _paused(w: KubeWriter, t: dict[str, str]) -> tuple[bool, str]:
    obj = w.get(t)
    if obj is None:
        return False, "object not found"
    md, spec, st = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    gen, observed = md.get("generation") or 0, st.get("observedGeneration") or 0
    ok = spec.get("paused") is True and observed >= gen
    return ok, f"paused {spec.get('paused')}, generation {observed}/{gen}"


def _pods(w: KubeWriter, t: dict[str, str]) -> list[Obj]:
    obj = w.get(t) or {}
    sel = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return w.list("Pod", t.get("namespace", ""), sel) if sel else []


def restarts(w: KubeWriter, t: dict[str, str]) -> int | None:
    """Total container restarts of a workload's pods now (None: not a workload)."""
    if t["kind"] not in WORKLOADS:
        return None
    return sum(int(cs.get("restartCount") or 0) for p in _pods(w, t)
               for cs in (p.get("status") or {}).get("containerStatuses") or [])


def _restarts_steady(w: KubeWriter, t: dict[str, str], before: int) -> tuple[bool, str]:
    now = restarts(w, t) or 0
    return now <= before, f"{now} restarts (were {before})"


def _below_limit(w: KubeWriter, t: dict[str, str]) -> tuple[bool, str]:
    """Working set of each container under its (new) memory limit, when metrics-server
    answers; without metrics the check passes and says so."""
    obj = w.get(t) or {}
    limits = {c.get("name"): value_at(c, ("resources", "limits", "memory"))
              for c in ((obj.get("spec") or {}).get("template") or {}).get("spec", {})
              .get("containers") or []}
    pods = {(p.get("metadata") or {}).get("name") for p in _pods(w, t)}
    try:
        metrics = w.list("PodMetrics", t.get("namespace", ""))
    except ApiCallError:
        return True, "no metrics available (metrics-server absent): not checked"
    worst = []
    for m in metrics:
        if (m.get("metadata") or {}).get("name") not in pods:
            continue
        for c in m.get("containers") or []:
            limit = limits.get(c.get("name"))
            used = (c.get("usage") or {}).get("memory")
            if limit and used and parse_quantity(used) >= parse_quantity(limit):
                worst.append(f"{c.get('name')} uses {used} >= {limit}")
    return not worst, "; ".join(worst) or "every container below its limit"
