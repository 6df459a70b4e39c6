"""Exemptions: by annotation on the object and by a config file.

An exempted failure stays in the results (marked, with its reason) and is left
out of the score; the report states how many there are and what the score would
be without them, so an exemption never improves the score silently.

Annotation: `aiops.io/exempt: "<check-id>,<check-id>"` (or `*` for every check)
with the reason in `aiops.io/exempt-reason`. File (YAML):

    exemptions:
      - checks: [pss-run-as-non-root]      # omitted: every check
        namespaces: [kube-system]          # glob patterns; omitted: any
        workloads: ["DaemonSet/kube-proxy"] # KIND/NAME globs; omitted: any
        containers: ["*"]                  # omitted: any
        reason: system components run as root
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from aiops.config_file import load_model

ANNOTATION = "aiops.io/exempt"
REASON_ANNOTATION = "aiops.io/exempt-reason"


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checks: list[str] = Field(default_factory=lambda: ["*"])
    namespaces: list[str] = Field(default_factory=lambda: ["*"])
    workloads: list[str] = Field(default_factory=lambda: ["*"])
    containers: list[str] = Field(default_factory=lambda: ["*"])
    reason: str = Field(min_length=1)

    def matches(self, check: str, namespace: str, kind: str, name: str,
                container: str) -> bool:
        return (_any(self.checks, check) and _any(self.namespaces, namespace)
                and _any(self.workloads, f"{kind}/{name}")
                and (not container or _any(self.containers, container)))


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exemptions: list[Rule] = Field(default_factory=list)

    def match(self, check: str, namespace: str, kind: str, name: str,
              container: str) -> Rule | None:
        return next((r for r in self.exemptions
                     if r.matches(check, namespace, kind, name, container)), None)


def _any(patterns: list[str], value: str) -> bool:
    return any(fnmatchcase(value, p) for p in patterns)


def load_config(path: str | Path | None) -> Config:
    """The exemptions file, validated; None gives no exemptions."""
    if path is None:
        return Config()
    return load_model(path, Config, what="exemptions file",
                      unreadable_hint="pass an existing YAML file to --exemptions",
                      invalid_hint="each entry needs a reason; keys: checks, namespaces, "
                                   "workloads, containers, reason")


def annotated(annotations: dict[str, str], check: str) -> str | None:
    """The reason an object's annotations exempt it from `check`, else None."""
    ids = annotations.get(ANNOTATION)
    if not ids:
        return None
    wanted = {x.strip() for x in ids.split(",") if x.strip()}
    if check not in wanted and "*" not in wanted:
        return None
    return annotations.get(REASON_ANNOTATION) or f"annotation {ANNOTATION} (no reason given)"
