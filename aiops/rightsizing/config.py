"""Settings of right-sizing: one pydantic model, validated, with the seed plan's
defaults (request = p95 + 30 %, memory from the peak + 30 %).

Quantities are floats in cores and bytes; durations are pandas-style strings
("1d", "36h"). `RightsizeConfig.model_validate({...})` accepts a plain dict, so a
YAML settings file maps onto it directly.
"""

from __future__ import annotations

import re

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

MIB = 2**20
_DAY_UNIT = re.compile(r"(?<=\d)d(?![a-z])")


def duration(text: str | None) -> str | None:
    """Normalise a duration for pandas: '14d' -> '14D' (pandas 3 deprecates 'd')."""
    return _DAY_UNIT.sub("D", text.strip()) if isinstance(text, str) else text


class ScalingConfig(BaseModel):
    """When and how to recommend replicas (see `aiops.rightsizing.scaling`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cv_threshold: float = Field(0.5, ge=0, description="coefficient of variation of the "
                                "workload's summed CPU above which load counts as variable")
    target_min: float = Field(0.30, gt=0, le=1)
    target_max: float = Field(0.75, gt=0, le=1)
    peak_headroom: float = Field(1.2, ge=1, description="maxReplicas covers peak x this")
    p95_multiple: float = Field(3.0, ge=1, description="maxReplicas covers p95 load x this")
    kinds: tuple[str, ...] = ("Deployment",)


class LeakConfig(BaseModel):
    """Thresholds of the memory-leak forecast (see `aiops.rightsizing.leak`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_days: int = Field(5, ge=3, description="full days of daily maxima in the fitted segment")
    min_r2: float = Field(0.8, ge=0, le=1)
    min_steady: float = Field(0.75, ge=0, le=1, description="share of day-over-day increases")
    min_t: float = Field(3.0, ge=0, description="slope / its standard error")
    min_growth: float = Field(0.10, ge=0, description="growth over the segment / start level")
    reset_drop: float = Field(0.30, gt=0, lt=1, description="a daily maximum this much below "
                              "the previous one marks a restart; the fit starts after it")
    day_coverage: float = Field(0.5, gt=0, le=1, description="a day with fewer samples than "
                                "this share of the pod's median day is left out (partial day)")
    critical_days: float = Field(3.0, ge=0)
    warning_days: float = Field(14.0, ge=0)


class RightsizeConfig(BaseModel):
    """How recommendations are computed.

    - CPU request = `percentile` of usage x (1 + `margin`) (strategy `percentile`).
    - CPU limit: `cpu_limit_multiple` x request when set; None keeps the current
      limit (raised to the new request when it would sit below it).
    - Memory request = peak x (1 + `margin`); memory limit = request x
      `memory_limit_multiple` (1.0: request == limit, as krr and the VPA advise).
    - Floors `min_cpu` / `min_memory` (krr: 10m, 100Mi).
    - A container OOM-killed in the snapshot gets, like the VPA, at least
      max(usage + `oom_bump_bytes`, usage x `oom_bump_ratio`) where usage is the
      largest of the OOM-killed limit and the observed peak.
    - Fewer than `min_samples` samples or a span below `min_span` ->
      status insufficient-data, nothing changes.
    - A change smaller than `min_change` (relative) is not proposed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: str = "percentile"
    percentile: float = Field(0.95, gt=0, lt=1)
    margin: float = Field(0.30, ge=0)
    cpu_limit_multiple: float | None = Field(None, ge=1)
    memory_limit_multiple: float = Field(1.0, ge=1)
    min_cpu: float = Field(0.010, ge=0, description="cores")
    min_memory: float = Field(100 * MIB, ge=0, description="bytes")
    min_samples: int = Field(100, ge=1)
    min_span: str = "1d"
    oom_bump_bytes: float = Field(100 * MIB, ge=0)
    oom_bump_ratio: float = Field(1.2, ge=1)
    min_change: float = Field(0.05, ge=0, description="relative change worth a rollout")
    cpu_burst_factor: float = Field(2.0, ge=1, description="back-test: without a CPU limit, "
                                    "samples above request x this count as throttling risk")
    krr_buffer: float = Field(0.15, ge=0, description="memory buffer of the krr-simple strategy")
    detect_leaks: bool = True
    include_init_containers: bool = False
    scaling: ScalingConfig = ScalingConfig()
    leak: LeakConfig = LeakConfig()

    @field_validator("min_span")
    @classmethod
    def _span(cls, v: str) -> str:
        try:
            td = pd.Timedelta(duration(v))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"min_span {v!r} is not a duration such as 1d or 36h") from exc
        if td < pd.Timedelta(0):
            raise ValueError(f"min_span {v!r} is negative")
        return v

    @property
    def min_span_delta(self) -> pd.Timedelta:
        return pd.Timedelta(duration(self.min_span))

    @property
    def quantiles(self) -> tuple[float, ...]:
        """The usage quantiles the strategies and the scaling advice read."""
        return tuple(sorted({0.5, 0.9, 0.95, 0.99, self.percentile}))
