"""krr's `simple` strategy, for comparison: CPU request = p95, no CPU limit;
memory request = limit = peak x 1.15 (`krr_buffer`).

"No CPU limit" means the strategy proposes none (NaN): the engine's limit rule
applies (`cpu_limit_multiple`; by default an existing limit is kept, never
removed, so the patch does not silently change a workload's QoS class).

krr takes the p95 per pod and then the maximum across pods; the statistics
here pool the samples of all pods of the workload, which gives the same
number when pods share the load evenly and a lower one when a single pod is hot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aiops.rightsizing.config import RightsizeConfig
from aiops.rightsizing.strategies import strategy


@strategy("krr-simple", description="krr simple: CPU request = p95, no CPU limit; "
          "memory request = limit = peak x 1.15")
def krr_simple(usage: pd.DataFrame, config: RightsizeConfig) -> pd.DataFrame:
    mem = usage["memory_peak"] * (1 + config.krr_buffer)
    return pd.DataFrame({
        "cpu_request": usage["cpu_p95"],
        "cpu_limit": np.nan,
        "memory_request": mem,
        "memory_limit": mem,
        "basis": f"krr simple: cpu p95; memory peak + {config.krr_buffer * 100:g} %",
    }, index=usage.index)
