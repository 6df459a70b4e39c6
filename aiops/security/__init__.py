"""Security and reliability posture audit (the weekly security report).

`audit(state)` runs every registered check (aiops/security/checks/, one module
per family) over a cluster state; `load_manifests(path)` turns plain manifests
into one, remembering file and line for SARIF and JUnit.
"""

from aiops.security.engine import AuditReport, audit
from aiops.security.manifests import load_manifests
from aiops.security.registry import CHECKS, check, load_checks

__all__ = ["CHECKS", "AuditReport", "audit", "check", "load_checks", "load_manifests"]
