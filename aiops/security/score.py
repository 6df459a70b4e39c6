"""Scores and grades, with the formula stated where they are shown.

Score (Polaris' weighting): 100 x 2P / (2P + W + 2D), P passed checks, W failed
warnings, D failed dangers; info checks and exempted results do not count.
Grades as Popeye's: A >= 90, B >= 80, C >= 70, D >= 60, E >= 50, else F.
PSS level of a namespace: `restricted` when no (unexempted) Pod Security
Standards control fails there, `baseline` when only restricted controls fail,
else `privileged`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from aiops.security.check import Result

FORMULA = "score = 100 x 2P / (2P + W + 2D) (P passed, W failed warnings, D failed dangers)"
GRADES = ((90, "A"), (80, "B"), (70, "C"), (60, "D"), (50, "E"))
CLUSTER = "(cluster)"  # the 'namespace' of cluster-scoped objects


def grade(score: float) -> str:
    return next((g for floor, g in GRADES if score >= floor), "F")


@dataclass(frozen=True)
class Score:
    passed: int
    warnings: int
    dangers: int

    @property
    def value(self) -> float:
        denom = 2 * self.passed + self.warnings + 2 * self.dangers
        return 100.0 if denom == 0 else round(100 * 2 * self.passed / denom, 1)

    @property
    def grade(self) -> str:
        return grade(self.value)

    def to_dict(self) -> dict[str, object]:
        return {"score": self.value, "grade": self.grade, "passed": self.passed,
                "warnings": self.warnings, "dangers": self.dangers}


def score(results: Iterable[Result], *, with_exempt: bool = False) -> Score:
    """The score of some results; `with_exempt` counts exempted failures as failures
    (what the score would be without the exemptions)."""
    p = w = d = 0
    for r in results:
        if r.severity == "info" or (r.exempt and not with_exempt):
            continue
        if r.passed:
            p += 1
        elif r.severity == "danger":
            d += 1
        else:
            w += 1
    return Score(p, w, d)


def by(results: list[Result], key: str) -> dict[str, Score]:
    """Scores grouped by 'category' or 'namespace'."""
    groups: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        k = r.category if key == "category" else (r.namespace or CLUSTER)
        groups[k].append(r)
    return {k: score(v) for k, v in sorted(groups.items())}


PSS_LEVELS = ("privileged", "baseline", "restricted")


def pss_levels(results: list[Result], namespaces: Iterable[str]) -> dict[str, str]:
    """The Pod Security Standards level each namespace's workloads pass today."""
    worst: dict[str, str] = {ns: "restricted" for ns in namespaces}
    for r in results:
        level = r.check.refs.pss
        if r.passed or r.exempt or not level or not r.namespace:
            continue
        current = worst.get(r.namespace, "restricted")
        failed_to = "privileged" if level == "baseline" else "baseline"
        if PSS_LEVELS.index(failed_to) < PSS_LEVELS.index(current):
            worst[r.namespace] = failed_to
    return dict(sorted(worst.items()))
