"""Deterministic, evidence-based diagnosis: rules over the loaded cluster."""

from aiops.diagnose.engine import Diagnosis, diagnose
from aiops.diagnose.finding import Action, Evidence, Finding, Remediation
from aiops.diagnose.registry import load_rules

# the rule families register on import, with what they read of a source as it loads
# (`aiops.model.LOG_INDEXERS`): so importing this package before loading is enough
load_rules()

__all__ = ["Action", "Diagnosis", "Evidence", "Finding", "Remediation", "diagnose"]
