"""Run every registered check over a cluster state or a set of manifests.

Each check sees each of its subjects once; a check that raises is isolated and
reported (the others still run). Results carry pass and fail alike, for the
scores; `AuditReport.failures()` is what outputs list.
"""

from __future__ import annotations

import gc
import time
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


def audit(state: ClusterState, *, checks: list[str] | None = None,
          exemptions: ex.Config | None = None,
          origin: dict[int, tuple[str, int | None]] | None = None) -> AuditReport:
    """Audit a cluster state (live, snapshot, demo or manifests).

    Subjects are walked once per target, every check of that target judging each
    in turn, so what identifies a subject (names, annotations, file and line) is
    worked out once, not once per check. The cyclic garbage collector is paused
    meanwhile (as in `diagnose`): the results make no cycles, and on a large state
    the collections they would set off traverse the whole heap, seconds each."""
    start = time.perf_counter()
    paused = gc.isenabled()
    gc.disable()
    try:
        return _audit(state, checks, exemptions, origin, start)
    finally:
        if paused:
            gc.enable()


def _audit(state: ClusterState, checks: list[str] | None, exemptions: ex.Config | None,
           origin: dict[int, tuple[str, int | None]] | None, start: float) -> AuditReport:
    registry = load_checks()
    ctx = AuditContext(state, origin or {})
    config = exemptions or ex.Config()
    groups: dict[tuple[str, tuple[str, ...]], list[Check]] = {}
    for cid, chk in registry.items():
        if not checks or cid in checks:
            groups.setdefault((chk.target, chk.kinds), []).append(chk)
    ns_annotations = {n: annotations(o) for n, o in ctx.namespace_objects.items()}
    broken: dict[str, str] = {}
    results: list[Result] = []
    for (target, kinds), chks in groups.items():
        for subject in ctx.iter_targets(target, kinds):
            ident = _identity(subject, ctx, ns_annotations)
            ns, kind, name, container, _ann, file, line = ident
            for chk in chks:
                if chk.id in broken:
                    continue
                try:
                    out = chk.fn(subject, ctx)
                    if out is not None and not isinstance(out, Violation):
                        out = [v for v in out if v is not None]
                except Exception as exc:  # isolate a broken check; report it
                    broken[chk.id] = f"{type(exc).__name__}: {exc}"
                    continue
                if not out:  # the common case, kept inline: most verdicts are passes
                    results.append(Result(chk, ns, kind, name, container, True,
                                          file=file, line=line))
                else:
                    _judge(chk, out, ident, config, results)
    if broken:  # a check that raised contributes no verdict at all
        results = [r for r in results if r.check.id not in broken]
    enforced = {n: _labels(ctx, n).get("pod-security.kubernetes.io/enforce", "")
                for n in ctx.namespace_objects}
    return AuditReport(results, ctx.namespaces, list(state.problems),
                       [CheckFailure(c, e) for c, e in broken.items()],
                       {n: v for n, v in enforced.items() if v}, state.source,
                       (time.perf_counter() - start) * 1000)


def _labels(ctx: AuditContext, namespace: str) -> dict[str, str]:
    labels = meta(ctx.namespace_objects.get(namespace) or {}).get("labels")
    return labels if isinstance(labels, dict) else {}


_Identity = tuple[str, str, str, str, dict[str, str], str, "int | None"]


def _identity(subject: Any, ctx: AuditContext,
              ns_annotations: dict[str, dict[str, str]]) -> _Identity:
    """namespace, kind, name, container, annotations, file and line of a subject."""
    ns, kind, name, container, ann = _subject_identity(subject)
    if kind == "Namespace":
        ann = ns_annotations.get(name, {})
    obj = subject.workload.obj if isinstance(subject, Container) else (
        subject.obj if isinstance(subject, Workload) else
        subject if isinstance(subject, dict) else ctx.namespace_objects.get(subject, {}))
    return (ns, kind, name, container, ann, *ctx.where(obj))


def _judge(chk: Check, out: Violation | list[Violation] | None, ident: _Identity,
           config: ex.Config, results: list[Result]) -> None:
    """Append the check's verdict on one subject: a pass, or its violations with
    the exemption that covers them, if any."""
    ns, kind, name, container, ann, file, line = ident
    if not out:
        results.append(Result(chk, ns, kind, name, container, True, file=file, line=line))
        return
    reason = ex.annotated(ann, chk.id) if ann else None
    if reason is None and config.exemptions:
        rule = config.match(chk.id, ns, kind, name, container)
        reason = f"exemptions file: {rule.reason}" if rule else None
    for v in [out] if isinstance(out, Violation) else out:
        results.append(Result(chk, ns, kind, name, container, False, v.message, v.fix,
                              v.fix_text, reason is not None, reason or "", file, line))
