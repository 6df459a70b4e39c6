"""What a posture check is and what it reports.

A check is a small registered function with a stable id; it looks at one
subject (a container, a workload's pod spec, an object or a namespace) and
returns the ways that subject fails it, each with the fix as a reviewable
Action. Passing subjects are counted too: the score needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiops.diagnose.finding import Action

SEVERITIES = ("danger", "warning", "info")
CATEGORIES = ("security", "reliability", "efficiency")
# what a check looks at; the engine walks the subjects of each target once
TARGETS = ("container", "workload", "object", "namespace")

RESULT_FIELDS = ("check", "title", "severity", "category", "namespace", "kind", "name",
                 "container", "message", "fix", "refs", "exempt", "exempt_reason",
                 "file", "line")


@dataclass(frozen=True)
class Refs:
    """The same control in the tools users already know."""

    pss: str | None = None  # "baseline" | "restricted"
    pss_control: str | None = None  # the control's name in the PSS page
    checkov: tuple[str, ...] = ()  # CKV_K8S_* ids
    polaris: str | None = None  # Polaris check name
    kube_score: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.pss:
            out["pss"] = self.pss
        if self.pss_control:
            out["pss_control"] = self.pss_control
        if self.checkov:
            out["checkov"] = list(self.checkov)
        if self.polaris:
            out["polaris"] = self.polaris
        if self.kube_score:
            out["kube_score"] = self.kube_score
        return out


@dataclass(frozen=True, slots=True)
class Violation:
    """One way a subject fails a check: what is wrong, in one sentence, and the
    Action that fixes it (None when only a human can, e.g. pick a digest)."""

    message: str
    fix: Action | None = None
    fix_text: str = ""  # the fix in words, when there is no patch or to explain it


CheckFn = Callable[..., "Violation | Iterable[Violation] | None"]


@dataclass(frozen=True)
class Check:
    id: str
    family: str
    title: str
    severity: str
    category: str
    target: str  # one of TARGETS
    kinds: tuple[str, ...]  # for target "object": the kinds it looks at
    rationale: str
    refs: Refs
    fn: CheckFn

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"check {self.id}: severity {self.severity!r} not in {SEVERITIES}")
        if self.category not in CATEGORIES:
            raise ValueError(f"check {self.id}: category {self.category!r} not in {CATEGORIES}")
        if self.target not in TARGETS:
            raise ValueError(f"check {self.id}: target {self.target!r} not in {TARGETS}")
        if self.target == "object" and not self.kinds:
            raise ValueError(f"check {self.id}: target 'object' needs kinds")


@dataclass(slots=True)
class Result:
    """One check on one subject: failed (`passed` False) or passed."""

    check: Check
    namespace: str
    kind: str
    name: str
    container: str = ""
    passed: bool = True
    message: str = ""
    fix: Action | None = None
    fix_text: str = ""
    exempt: bool = False
    exempt_reason: str = ""
    file: str = ""  # where the object came from, for manifests
    line: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        return self.check.severity

    @property
    def category(self) -> str:
        return self.check.category

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON shape (RESULT_FIELDS, in that order)."""
        fix: dict[str, Any] | None = None
        if self.fix is not None or self.fix_text:
            fix = {"description": self.fix_text or (self.fix.description if self.fix else "")}
            if self.fix is not None:
                fix["action"] = self.fix.to_dict()
        return {"check": self.check.id, "title": self.check.title,
                "severity": self.severity, "category": self.category,
                "namespace": self.namespace, "kind": self.kind, "name": self.name,
                "container": self.container, "message": self.message, "fix": fix,
                "refs": self.check.refs.to_dict(), "exempt": self.exempt,
                "exempt_reason": self.exempt_reason, "file": self.file, "line": self.line}
