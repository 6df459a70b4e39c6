"""What a diagnosis returns: Finding, its Evidence, and a Remediation with an
optional machine-readable Action.

Field names of `Finding.to_dict()` are a public interface (reports, PHRs and
users' scripts key on them): keep them stable.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SEVERITIES = ("critical", "warning", "info")
TIERS = ("trivial", "low", "medium", "critical")


def _iso(t: datetime | None) -> str | None:
    return t.isoformat().replace("+00:00", "Z") if t else None


@dataclass(frozen=True, init=False)
class Evidence:
    """One quoted fact and where it was read."""

    source: str  # status | event | log | spec | object
    text: str  # the quoted fact, verbatim where possible
    ref: str  # field path, "event Reason x3 last <time>", or "logs-previous <c> line N"
    time: datetime | None = None

    def __init__(self, source: str, text: str, ref: str, time: datetime | None = None) -> None:
        # fields stored straight into __dict__: the generated frozen __init__ calls
        # object.__setattr__ per field, and a triage makes thousands of these
        d = self.__dict__
        d["source"], d["text"], d["ref"], d["time"] = source, text, ref, time

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "text": self.text, "ref": self.ref,
                "time": _iso(self.time)}


@dataclass(frozen=True)
class Action:
    """A concrete, reversible change, for the approval workflow.

    `patch` and `inverse` are RFC 6902 JSON patches against `target`; applying
    `inverse` after `patch` restores the object. `validate` lists what proves
    the change worked.
    """

    kind: str  # patch | scale | rollout-restart | rollout-undo | delete-pod | manual
    target: dict[str, str]  # apiVersion, kind, namespace, name
    description: str
    tier: str
    patch: list[dict[str, Any]] = field(default_factory=list)
    inverse: list[dict[str, Any]] = field(default_factory=list)
    validate: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": dict(self.target),
                "description": self.description, "tier": self.tier,
                "patch": self.patch, "inverse": self.inverse, "validate": list(self.validate),
                "hash": self.hash()}

    def hash(self) -> str:
        """sha256 of the canonical action: an approval is bound to exactly this."""
        body = {"kind": self.kind, "target": self.target, "patch": self.patch,
                "inverse": self.inverse, "tier": self.tier}
        raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return "sha256:" + hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True, init=False)
class Remediation:
    summary: str  # what to do, in words
    commands: tuple[str, ...] = ()  # exact kubectl commands, read-only ones first
    action: Action | None = None

    def __init__(self, summary: str, commands: tuple[str, ...] = (),
                 action: Action | None = None) -> None:
        d = self.__dict__  # as `Evidence.__init__`
        d["summary"], d["commands"], d["action"] = summary, commands, action

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "commands": list(self.commands),
                "action": self.action.to_dict() if self.action else None}


@dataclass
class Finding:
    rule: str
    severity: str
    namespace: str
    kind: str
    name: str
    owner: str  # top workload, e.g. "Deployment/todo-backend"
    summary: str
    evidence: list[Evidence]
    confidence: float
    first_seen: datetime | None
    remediation: Remediation
    docs: str
    # not serialised: the pods folded into a workload-level finding, and the
    # rule's root-cause rank used for ordering
    pods: list[str] = field(default_factory=list, repr=False)
    rank: int = field(default=50, repr=False)

    @property
    def object_ref(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{ns}{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "severity": self.severity, "namespace": self.namespace,
            "kind": self.kind, "name": self.name, "owner": self.owner,
            "summary": self.summary, "evidence": [e.to_dict() for e in self.evidence],
            "confidence": round(self.confidence, 2), "first_seen": _iso(self.first_seen),
            "remediation": self.remediation.to_dict(), "docs": self.docs,
        }


FINDING_FIELDS = ("rule", "severity", "namespace", "kind", "name", "owner", "summary",
                  "evidence", "confidence", "first_seen", "remediation", "docs")
