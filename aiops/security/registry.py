"""The check registry: one decorated function per check, one module per family.

Adding a check is one function in its family module (aiops/security/checks/)
and its test; ids are a public interface (exemptions and CI scripts key on
them), so an id is never renamed.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from aiops.security.check import Check, CheckFn, Refs

CHECKS: dict[str, Check] = {}


def check(id: str, *, family: str, title: str, severity: str, category: str, target: str,
          rationale: str, refs: Refs | None = None,
          kinds: tuple[str, ...] = ()) -> Callable[[CheckFn], CheckFn]:
    """Register `fn` as check `id`.

    `fn` receives the subject and the AuditContext: a Container, a Workload, an
    object dict (target "object", one of `kinds`) or a namespace name.
    """

    def deco(fn: CheckFn) -> CheckFn:
        if id in CHECKS:
            raise ValueError(f"check id {id!r} registered twice")
        CHECKS[id] = Check(id, family, title, severity, category, target, kinds,
                           rationale, refs or Refs(), fn)
        return fn

    return deco


def load_checks() -> dict[str, Check]:
    """Import every family module once so their checks register themselves."""
    from aiops.security import checks as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{pkg.__name__}.{mod.name}")
    return CHECKS
