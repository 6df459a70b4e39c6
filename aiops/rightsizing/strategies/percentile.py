"""The seed plan: CPU request = p95 + margin, memory = peak + margin.

CPU is sized from a percentile because CPU above the request is only slowed
(throttled or contended), not killed. Memory is sized from the peak, never a
percentile: above its limit a container is OOM-killed, and krr users report
OOMs when memory sits close to a percentile of usage.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aiops.rightsizing.config import RightsizeConfig
from aiops.rightsizing.strategies import strategy
from aiops.usage import qcol


@strategy("percentile", description="CPU request = p95 x (1 + margin); memory request = "
          "peak x (1 + margin), limit = request x memory_limit_multiple (default 1)")
def percentile(usage: pd.DataFrame, config: RightsizeConfig) -> pd.DataFrame:
    q = qcol(config.percentile)
    factor = 1 + config.margin
    mem = usage["memory_peak"] * factor
    pct = f"{config.margin * 100:g} %"
    return pd.DataFrame({
        "cpu_request": usage[f"cpu_{q}"] * factor,
        "cpu_limit": np.nan,
        "memory_request": mem,
        "memory_limit": mem * config.memory_limit_multiple,
        "basis": f"cpu {q} + {pct}; memory peak + {pct}",
    }, index=usage.index)
