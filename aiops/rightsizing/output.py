"""Serialising recommendations: JSON records with stable field names.

`REC_FIELDS` are a public interface (reports, PHRs and users' scripts key on
them): keep them stable. Quantities stay numbers (cores, bytes); NaN becomes
null; the back-test is an object; the Action is its `to_dict()` (with hash).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from aiops.diagnose.finding import Action
from aiops.rightsizing.engine import EXTRA_COLUMNS, REC_FIELDS


def _plain(v: Any) -> Any:
    if isinstance(v, Action):
        return v.to_dict()
    if v is None or v is pd.NaT:
        return None
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        return None if math.isnan(v) or math.isinf(v) else float(v)
    if isinstance(v, pd.Timestamp):
        return v.isoformat().replace("+00:00", "Z")
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def to_json_records(recs: pd.DataFrame, *, extra: bool = False) -> list[dict[str, Any]]:
    """One JSON-able dict per recommendation with exactly REC_FIELDS (plus
    EXTRA_COLUMNS when `extra`)."""
    fields = list(REC_FIELDS) + ([c for c in EXTRA_COLUMNS if c in recs.columns]
                                 if extra else [])
    return [{f: _plain(v) for f, v in zip(fields, row, strict=True)}
            for row in recs[fields].itertuples(index=False, name=None)]
