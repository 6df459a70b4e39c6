"""Run every registered check over a cluster state or a set of manifests.

Each check sees each of its subjects once; a check that raises is isolated and
reported (the others still run). Results carry pass and fail alike, for the
scores; `AuditReport.failures()` is what outputs list.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from aiops.model import ClusterState, LoadProblem
from aiops.security import exemptions as ex
from aiops.security import score as sc
from aiops.security.check import RESULT_FIELDS, Check, Result, Violation
from aiops.security.registry import load_checks
from aiops.security.subjects import (
    AuditContext,
    Container,
    Workload,
    annotations,
    meta,
    namespace_of,
)

SEVERITY_ORDER = {"danger": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class CheckFailure:
    """A check that raised: reported, not fatal."""

    check: str
    error: str


@dataclass
class AuditReport:
    results: list[Result]
    namespaces: list[str]
    problems: list[LoadProblem] = field(default_factory=list)
    check_failures: list[CheckFailure] = field(default_factory=list)
    enforced: dict[str, str] = field(default_factory=dict)  # namespace -> PSS enforce label
    source: str = ""
    elapsed_ms: float = 0.0

    def failures(self, *, include_exempt: bool = True) -> list[Result]:
        """Failed results, worst first (danger, then warning, then info)."""
        out = [r for r in self.results if not r.passed and (include_exempt or not r.exempt)]
        return sorted(out, key=lambda r: (SEVERITY_ORDER[r.severity], r.namespace, r.kind,
                                          r.name, r.container, r.check.id))

    def exempted(self) -> list[Result]:
        return [r for r in self.failures() if r.exempt]

    @property
    def score(self) -> sc.Score:
        return sc.score(self.results)

    @property
    def score_without_exemptions(self) -> sc.Score:
        return sc.score(self.results, with_exempt=True)

    def scores(self, key: str) -> dict[str, sc.Score]:
        return sc.by(self.results, key)

    def pss_levels(self) -> dict[str, str]:
        return sc.pss_levels(self.results, self.namespaces)

    def dangers(self) -> list[Result]:
        return [r for r in self.failures(include_exempt=False) if r.severity == "danger"]

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.failures()]

    def frame(self) -> pd.DataFrame:
        """Failed results as a frame (RESULT_FIELDS, fix as its description)."""
        rows = []
        for r in self.failures():
            d = r.to_dict()
            d["fix"] = (d["fix"] or {}).get("description", "")
            rows.append(d)
        return pd.DataFrame(rows, columns=list(RESULT_FIELDS))

    def summary(self) -> dict[str, Any]:
        s, raw = self.score, self.score_without_exemptions
        return {"source": self.source, "formula": sc.FORMULA, **s.to_dict(),
                "score_without_exemptions": raw.value, "exempted": len(self.exempted()),
                "categories": {k: v.to_dict() for k, v in self.scores("category").items()},
                "namespaces": {k: v.to_dict() for k, v in self.scores("namespace").items()},
                "pss": self.pss_levels(), "pss_enforced": self.enforced,
                "checks_run": len({r.check.id for r in self.results}),
                "objects_with_failures": len({(r.namespace, r.kind, r.name)
                                              for r in self.failures(include_exempt=False)}),
                "check_failures": [f"{f.check}: {f.error}" for f in self.check_failures],
                "problems": [str(p) for p in self.problems]}


def _subject_identity(subject: Any) -> tuple[str, str, str, str, dict[str, Any]]:
    """namespace, kind, name, container and the annotations exemptions read."""
    if isinstance(subject, Container):
        w = subject.workload
        ann = annotations(w.obj) | _template_annotations(w)
        return w.namespace, w.kind, w.name, subject.name, ann
    if isinstance(subject, Workload):
        return (subject.namespace, subject.kind, subject.name, "",
                annotations(subject.obj) | _template_annotations(subject))
    if isinstance(subject, str):  # a namespace
        return subject, "Namespace", subject, "", {}
    return (namespace_of(subject), subject.get("kind") or "", str(meta(subject).get("name") or ""),
            "", annotations(subject))


def _template_annotations(w: Workload) -> dict[str, str]:
    a = w.template_meta.get("annotations")
    return {k: v for k, v in a.items() if isinstance(v, str)} if isinstance(a, dict) else {}


def _violations(out: Violation | Iterable[Violation] | None) -> list[Violation]:
    if out is None:
        return []
    if isinstance(out, Violation):
        return [out]
    return [v for v in out if v is not None]


def audit(state: ClusterState, *, checks: list[str] | None = None,
          exemptions: ex.Config | None = None,
          origin: dict[int, tuple[str, int | None]] | None = None) -> AuditReport:
    """Audit a cluster state (live, snapshot, demo or manifests)."""
    start = time.perf_counter()
    registry = load_checks()
    ctx = AuditContext(state, origin or {})
    config = exemptions or ex.Config()
    results: list[Result] = []
    failures: list[CheckFailure] = []
    ns_annotations = {n: annotations(o) for n, o in ctx.namespace_objects.items()}
    cache: dict[int, _Identity] = {}
    for cid, chk in registry.items():
        if checks and cid not in checks:
            continue
        try:
            results.extend(_run(chk, ctx, config, ns_annotations, cache))
        except Exception as exc:  # isolate a broken check; report it
            failures.append(CheckFailure(cid, f"{type(exc).__name__}: {exc}"))
    enforced = {n: _labels(ctx, n).get("pod-security.kubernetes.io/enforce", "")
                for n in ctx.namespace_objects}
    return AuditReport(results, ctx.namespaces, list(state.problems), failures,
                       {n: v for n, v in enforced.items() if v}, state.source,
                       (time.perf_counter() - start) * 1000)


def _labels(ctx: AuditContext, namespace: str) -> dict[str, str]:
    labels = meta(ctx.namespace_objects.get(namespace) or {}).get("labels")
    return labels if isinstance(labels, dict) else {}


_Identity = tuple[str, str, str, str, dict[str, str], str, "int | None"]


def _identity(subject: Any, ctx: AuditContext, cache: dict[int, _Identity],
              ns_annotations: dict[str, dict[str, str]]) -> _Identity:
    """namespace, kind, name, container, annotations, file, line of a subject,
    worked out once per audit (every check of its target asks again)."""
    key = id(subject)
    hit = cache.get(key)
    if hit is None:
        ns, kind, name, container, ann = _subject_identity(subject)
        if kind == "Namespace":
            ann = ns_annotations.get(name, {})
        obj = subject.workload.obj if isinstance(subject, Container) else (
            subject.obj if isinstance(subject, Workload) else
            subject if isinstance(subject, dict) else ctx.namespace_objects.get(subject, {}))
        hit = cache[key] = (ns, kind, name, container, ann, *ctx.where(obj))
    return hit


def _run(chk: Check, ctx: AuditContext, config: ex.Config,
         ns_annotations: dict[str, dict[str, str]],
         cache: dict[int, _Identity]) -> list[Result]:
    out: list[Result] = []
    for subject in ctx.iter_targets(chk.target, chk.kinds):
        found = _violations(chk.fn(subject, ctx))
        ns, kind, name, container, ann, file, line = _identity(subject, ctx, cache,
                                                               ns_annotations)
        if not found:
            out.append(Result(chk, ns, kind, name, container, True, file=file, line=line))
            continue
        reason = ex.annotated(ann, chk.id)
        if reason is None:
            rule = config.match(chk.id, ns, kind, name, container)
            reason = f"exemptions file: {rule.reason}" if rule else None
        for v in found:
            out.append(Result(chk, ns, kind, name, container, False, v.message, v.fix,
                              v.fix_text, reason is not None, reason or "", file, line))
    return out
