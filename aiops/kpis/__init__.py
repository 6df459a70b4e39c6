"""Operations KPIs from the audit trail (PHRs) and the cluster's findings.

MTTD, MTTR, approval latency against the tier SLAs, PHR compliance, rollbacks,
recommendation acceptance, configuration incidents, toil reduction and cost
savings realised. I/O only in `load_kpi_inputs`; every KPI is a pure function
of `KpiInputs` (see each function's docstring for its exact definition).
"""

from aiops.kpis.inputs import KpiInputs, load_kpi_inputs
from aiops.kpis.summary import KPIS, NO_DATA, KpiReport, KpiSpec, format_value, kpis

__all__ = ["KPIS", "NO_DATA", "KpiInputs", "KpiReport", "KpiSpec", "format_value", "kpis",
           "load_kpi_inputs"]
