"""Deterministic, evidence-based diagnosis: rules over the loaded cluster."""

from aiops.diagnose.engine import Diagnosis, diagnose
from aiops.diagnose.finding import Action, Evidence, Finding, Remediation

__all__ = ["Action", "Diagnosis", "Evidence", "Finding", "Remediation", "diagnose"]
