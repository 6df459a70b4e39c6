"""Risk tiers, their approval rules and the people allowed to approve.

One YAML file holds both (defaults below, the seed plan's); `load_governance`
validates it so a typo fails loudly instead of silently loosening the gate.

    tiers:
      medium: {approvals: 1, sla: 30m, expires: 4h, dry_run: true}
    emergency_sla: 5m
    approvers:
      - {name: Ada Lovelace, email: ada@example.com, roles: [approver, security]}
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aiops.config_file import load_model
from aiops.durations import parse_duration
from aiops.errors import ParameterError

TIERS = ("trivial", "low", "medium", "critical")
ENV = "AIOPS_GOVERNANCE"


def _duration(v: Any) -> timedelta:
    """A duration from '30m', '2h' or seconds (a ValueError, so pydantic names the field)."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        return timedelta(seconds=v)
    if isinstance(v, timedelta):
        return timedelta(seconds=v.total_seconds())
    try:
        return timedelta(seconds=parse_duration(str(v)).total_seconds())
    except ParameterError:
        raise ValueError(f"{v!r} is not a duration (use e.g. 5m, 30m, 2h)") from None


class TierPolicy(BaseModel):
    """What a change of one tier needs before it may run."""

    model_config = ConfigDict(extra="forbid")

    approvals: int = Field(ge=0, le=5)  # distinct approvers needed
    roles: list[str] = Field(default_factory=list)  # at least one approver holds each
    sla: timedelta | None = None  # approval expected within
    expires: timedelta | None = None  # a proposal (or approval) older than this is void
    dry_run: bool = False  # a server-side dry run must pass first
    self_approval: bool = False  # may the proposer approve it

    _parse = field_validator("sla", "expires", mode="before")(
        lambda v: None if v is None else _duration(v))


class Approver(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    roles: list[str] = Field(default_factory=lambda: ["approver"])


def _default_tiers() -> dict[str, TierPolicy]:
    m = timedelta(minutes=1)
    return {
        "trivial": TierPolicy(approvals=0, self_approval=True),
        "low": TierPolicy(approvals=1, sla=5 * m, expires=60 * m, self_approval=True),
        "medium": TierPolicy(approvals=1, sla=30 * m, expires=240 * m, dry_run=True),
        "critical": TierPolicy(approvals=2, roles=["security"], sla=120 * m,
                               expires=240 * m, dry_run=True),
    }


class Governance(BaseModel):
    """The tiers, the emergency SLA and the known approvers."""

    model_config = ConfigDict(extra="forbid")

    tiers: dict[str, TierPolicy] = Field(default_factory=_default_tiers)
    emergency_sla: timedelta = timedelta(minutes=5)
    approvers: list[Approver] = Field(default_factory=list)

    _parse = field_validator("emergency_sla", mode="before")(_duration)

    @field_validator("tiers", mode="before")
    @classmethod
    def _merge_defaults(cls, v: Any) -> Any:
        """A file may override some tiers only; the others keep the defaults."""
        if not isinstance(v, dict):
            return v
        unknown = set(v) - set(TIERS)
        if unknown:
            raise ValueError(f"unknown tier(s) {sorted(unknown)}; tiers are {list(TIERS)}")
        merged: dict[str, Any] = {k: p.model_dump() for k, p in _default_tiers().items()}
        for k, p in v.items():
            merged[k] = {**merged[k], **(p or {})}
        return merged

    def policy(self, tier: str) -> TierPolicy:
        if tier not in self.tiers:
            raise ParameterError(f"unknown risk tier {tier!r}", f"use one of {list(TIERS)}")
        return self.tiers[tier]

    def approver(self, email: str) -> Approver | None:
        """The configured approver with this email (case-insensitive), or None."""
        e = email.strip().lower()
        return next((a for a in self.approvers if a.email.lower() == e), None)


def load_governance(path: str | Path | None = None) -> Governance:
    """The governance file at `path`, else $AIOPS_GOVERNANCE, else the defaults
    with no approvers (so every approval is refused until someone is named)."""
    path = path or os.environ.get(ENV)
    if not path:
        return Governance()
    return load_model(path, Governance, what="governance file",
                      unreadable_hint=f"pass an existing file or unset {ENV}",
                      invalid_hint="see the example in aiops/approvals/tiers.py")
