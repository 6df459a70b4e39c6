"""Run the rules over a target, then order what they found: root cause first,
symptoms it explains dropped, many pods of one workload folded into one finding.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from aiops.diagnose.context import Context, Target
from aiops.diagnose.finding import Finding
from aiops.diagnose.registry import PREFETCH, RULES, load_rules
from aiops.model import ClusterState

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
MAX_GROUP_EVIDENCE = 8


@dataclass(frozen=True)
class RuleFailure:
    """A rule that raised: reported, never allowed to stop the others."""

    rule: str
    error: str


@dataclass
class Diagnosis:
    findings: list[Finding]
    failures: list[RuleFailure] = field(default_factory=list)
    elapsed_ms: float = 0.0
    target: Target = field(default_factory=Target)

    @property
    def has_critical(self) -> bool:
        return any(f.severity == "critical" for f in self.findings)

    def to_dicts(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self.findings]

    def to_frame(self) -> pd.DataFrame:
        cols = ["rule", "severity", "namespace", "kind", "name", "owner", "summary",
                "confidence", "first_seen"]
        return pd.DataFrame([{c: getattr(f, c) for c in cols} for f in self.findings],
                            columns=cols)

    def rules_fired(self) -> set[str]:
        return {f.rule for f in self.findings}


def diagnose(state: ClusterState, *, namespace: str | None = None, pod: str | None = None,
             workload: tuple[str, str] | None = None,
             rules: list[str] | None = None) -> Diagnosis:
    """Diagnose a pod, a workload, a namespace, or (no target) the whole cluster.

    The cyclic garbage collector is paused while the rules run: they make no
    reference cycles, and on a large snapshot (a million objects) the temporaries
    of one triage would otherwise live long enough to be promoted and set off
    full collections of the whole heap, seconds each. What the run kept (the
    state's indexes, hundreds of thousands of containers after a first triage)
    is then frozen out of the collector's reach, as `load_snapshot` does with the
    objects themselves: collecting it when the collector resumes would cost a
    fifth of a second and could free nothing. Reference counting still frees it
    with the state (a test checks that a diagnosis leaves no cycles behind).
    """
    load_rules()
    start = time.perf_counter()
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        ctx = Context(state, Target(namespace, pod, workload))
        found: list[Finding] = []
        failures: list[RuleFailure] = []
        served: set[str] = set()
        for hook, ids in PREFETCH:
            if not rules or ids.intersection(rules):
                # a hook only starts work early: if it fails, the rules it serves
                # build their table themselves and report what that raises
                with contextlib.suppress(Exception):
                    hook(ctx)
                served |= ids
        for rid in _run_order(served):
            if rules and rid not in rules:
                continue
            try:
                found.extend(RULES[rid].fn(ctx))
            except Exception as exc:  # isolate a broken rule; report it
                failures.append(RuleFailure(rid, f"{type(exc).__name__}: {exc}"))
        if len(failures) > 1:  # reported in registry order
            place = {rid: i for i, rid in enumerate(RULES)}
            failures.sort(key=lambda f: place.get(f.rule, 0))
        findings = order(group_by_workload(suppress(found)))
    finally:
        if paused:
            gc.freeze()
            gc.enable()
    return Diagnosis(findings, failures, (time.perf_counter() - start) * 1000, ctx.target)


def _run_order(served: set[str]) -> list[str]:
    """Registry order, except that the rules a prefetch hook serves run last: their
    table is built in a worker thread meanwhile, so the more rules run before them,
    the less they wait for it. (What is found does not depend on the order: it is
    sorted by `order`.)"""
    return [*(r for r in RULES if r not in served), *(r for r in RULES if r in served)]


def _obj_key(f: Finding) -> tuple[str, str, str]:
    return (f.namespace, f.kind, f.name)


def suppress(findings: list[Finding]) -> list[Finding]:
    """Drop findings that another finding on the same object explains."""
    by_obj: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for f in findings:
        by_obj[_obj_key(f)].add(f.rule)
    explained: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for key, rules in by_obj.items():
        for rid in rules:
            explained[key].update(RULES[rid].supersedes)
    return [f for f in findings if f.rule not in explained[_obj_key(f)]]


def group_by_workload(findings: list[Finding]) -> list[Finding]:
    """Fold the same rule firing on several pods of one workload into one finding."""
    groups: dict[tuple[str, str, str], list[Finding]] = defaultdict(list)
    out: list[Finding] = []
    for f in findings:
        if f.kind == "Pod" and f.owner and not f.owner.startswith("Pod/"):
            groups[(f.rule, f.namespace, f.owner)].append(f)
        else:
            out.append(f)
    for (_rule, _ns, owner), members in groups.items():
        if len(members) == 1:
            out.append(members[0])
            continue
        members.sort(key=lambda f: (-f.confidence, f.name))
        head = members[0]
        kind, _, name = owner.partition("/")
        evidence = [e for f in members for e in f.evidence][:MAX_GROUP_EVIDENCE]
        first = min((f.first_seen for f in members if f.first_seen), default=None)
        pods = sorted(p for f in members for p in f.pods)
        out.append(Finding(
            rule=head.rule, severity=min((f.severity for f in members),
                                         key=lambda s: SEVERITY_ORDER.get(s, 9)),
            namespace=head.namespace, kind=kind, name=name, owner=owner,
            summary=f"{len(members)} pods of {owner}: {head.summary}",
            evidence=evidence, confidence=max(f.confidence for f in members),
            first_seen=first, remediation=head.remediation, docs=head.docs,
            pods=pods, rank=head.rank,
        ))
    return out


def order(findings: list[Finding]) -> list[Finding]:
    """Worst workloads first; within one workload, the root cause (lowest rank) first."""
    worst: dict[tuple[str, str], int] = {}
    for f in findings:
        k = (f.namespace, f.owner)
        worst[k] = min(worst.get(k, 9), SEVERITY_ORDER.get(f.severity, 9))
    return sorted(findings, key=lambda f: (worst[(f.namespace, f.owner)], f.namespace, f.owner,
                                           f.rank, f.kind, f.name, f.rule))
