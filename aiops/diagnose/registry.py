"""The rule registry: every rule is a small function registered under a stable id.

Adding a rule is one decorated function in its family module plus its test;
the engine discovers families by importing `aiops.diagnose.rules`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiops.diagnose.context import Context
    from aiops.diagnose.finding import Finding

RuleFn = Callable[["Context"], Iterable["Finding"]]


@dataclass(frozen=True)
class Rule:
    id: str
    family: str
    title: str
    severity: str  # default severity of its findings
    docs: str  # Kubernetes documentation page
    rank: int  # root-cause order on one object: lower is closer to the root
    supersedes: tuple[str, ...]  # rule ids this one explains on the same object
    fn: RuleFn


RULES: dict[str, Rule] = {}


def rule(id: str, *, family: str, title: str, severity: str, docs: str, rank: int = 50,
         supersedes: tuple[str, ...] = ()) -> Callable[[RuleFn], RuleFn]:
    """Register `fn` as rule `id`. Ids are a public interface: never rename one."""

    def deco(fn: RuleFn) -> RuleFn:
        if id in RULES:
            raise ValueError(f"rule id {id!r} registered twice")
        RULES[id] = Rule(id, family, title, severity, docs, rank, supersedes, fn)
        return fn

    return deco


PrefetchFn = Callable[["Context"], None]
# (hook, the rules it serves): called before those rules run (see `prefetch`)
PREFETCH: list[tuple[PrefetchFn, frozenset[str]]] = []


def prefetch(*rule_ids: str) -> Callable[[PrefetchFn], PrefetchFn]:
    """Register a hook the engine calls before running any of `rule_ids`, so that a
    family can start work that mostly runs outside the interpreter lock (RE2 over
    every log) while the rules before its own run (`Context.prefetch`)."""

    def deco(fn: PrefetchFn) -> PrefetchFn:
        PREFETCH.append((fn, frozenset(rule_ids)))
        return fn

    return deco


_LOADED: list[bool] = []


def load_rules() -> dict[str, Rule]:
    """Import every family module once so their rules register themselves (listing
    the package again on every diagnosis cost a third of a one-pod diagnosis)."""
    if _LOADED:
        return RULES
    import importlib
    import pkgutil

    from aiops.diagnose import rules as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{pkg.__name__}.{mod.name}")
    _LOADED.append(True)
    return RULES
