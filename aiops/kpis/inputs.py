"""The KPIs' inputs, and the one place that reads them (the PHR store, the cluster).

Everything downstream is a pure function of `KpiInputs`: tests build one from
hand-made frames, reports from `load_kpi_inputs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from aiops.approvals.tiers import Governance
from aiops.errors import AiopsError
from aiops.kpis.timeline import changes_table, prepare

FINDING_COLUMNS = ["rule", "severity", "namespace", "kind", "name", "owner", "first_seen"]


@dataclass
class KpiInputs:
    """The PHR frame, the cluster's current findings and the governance in force.

    `problem` says why there is no audit trail (no store, not a git repository)
    when that is the case; the KPIs then all read "no data".
    """

    phr: pd.DataFrame | None = None
    findings: pd.DataFrame | None = None
    governance: Governance = field(default_factory=Governance)
    problem: str = ""
    store: str = ""

    @cached_property
    def records(self) -> pd.DataFrame:
        """The PHR frame with event time (`at`) and `automated` (see timeline.py)."""
        return prepare(self.phr)

    @cached_property
    def finding_frame(self) -> pd.DataFrame:
        if self.findings is None or self.findings.empty:
            return pd.DataFrame(columns=FINDING_COLUMNS)
        df = self.findings.copy()
        for c in FINDING_COLUMNS:
            if c not in df.columns:
                df[c] = None
        df["first_seen"] = pd.to_datetime(df["first_seen"], utc=True, errors="coerce")
        return df

    @cached_property
    def changes(self) -> pd.DataFrame:
        """One row per proposal (timeline.changes_table)."""
        return changes_table(self.records, self.governance, self.finding_frame)

    def scoped(self, namespaces: list[str] | None) -> KpiInputs:
        """Only the records and findings about objects in `namespaces` (None: all).
        Records about no namespaced object (cluster-scoped, reports) drop out."""
        if not namespaces:
            return self
        phr = None if self.phr is None else self.phr[self.phr["namespace"].isin(namespaces)]
        f = self.findings
        f = None if f is None else f[f["namespace"].isin(namespaces)]
        return KpiInputs(phr, f, self.governance, self.problem, self.store)

    @property
    def empty(self) -> bool:
        return self.records.empty


def load_kpi_inputs(store: Any = None, state: Any = None,
                    governance: Governance | str | Path | None = None) -> KpiInputs:
    """Read the PHR store and (optionally) diagnose the cluster.

    `store`: a PhrStore, a store directory, or None/"" for the default store
    (`$AIOPS_HISTORY`, else history/prompts of the git repository around the
    cwd). A store that cannot be opened is not an error here: the inputs say
    why in `problem`, and every KPI reads "no data". `state`: a ClusterState
    whose diagnose findings supply failure starts and open configuration
    incidents. `governance`: a Governance, a governance file, or None for
    `load_governance()`.
    """
    from aiops.approvals.phr import PhrStore
    from aiops.approvals.tiers import load_governance

    gov = governance if isinstance(governance, Governance) else load_governance(governance)
    findings = None
    if state is not None:
        from aiops.diagnose import diagnose

        findings = diagnose(state).to_frame()
    try:
        st = store if isinstance(store, PhrStore) else PhrStore(store or None)
        if not st.root.exists():
            return KpiInputs(None, findings, gov, f"the PHR store {st.root} does not exist yet",
                             str(st.root))
        return KpiInputs(st.frame(), findings, gov, "", str(st.root))
    except AiopsError as exc:
        return KpiInputs(None, findings, gov, exc.message, str(store or ""))
