"""Operational runbooks generated from the rule catalog and the audit trail."""

from aiops.runbooks.generate import generate
from aiops.runbooks.history import measured_mttr
from aiops.runbooks.links import runbook_html, runbook_path

__all__ = ["generate", "measured_mttr", "runbook_html", "runbook_path"]
